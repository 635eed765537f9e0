"""Worlds: where the contract checks get their processes from.

A rule of the contract needs processes in known states: the caller, a
child, an exited child that is not reaped yet, a PID that names nothing, a
thread id. ``LiveWorld`` makes them for real on this OS; ``ModelWorld``
makes them by changing a ``ModelBackend``; ``ListedWorld`` only knows what
an arbitrary backend lists, so rules that need to spawn are skipped there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .. import get_backend
from ..emulation.model import ModelBackend
from ._processes import process_started_at, start_process, wait_until_gone

WINDOWS = sys.platform == "win32"


# Linux's hard ceiling for PIDs (as in emulation.procfs, which is not imported
# here: the kit must import on every OS).
PID_MAX_LIMIT = 4194304


class Child:
    """A process started for a check: alive, then exited, then gone."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def exit(self) -> None:
        """Make it exit but keep it answerable (Linux: a zombie; Windows:
        its handle stays open)."""

    def reap(self) -> bool:
        """Make it gone for good. True if its PID names nothing afterwards;
        False if the OS still keeps it (Windows: another process holds a
        handle to it) or a new process already took the PID."""
        return True


class World:
    """What a world offers; a method returning None means "cannot here"."""

    description = "a world"
    #: Windows ignores the low two bits of a PID (C10).
    aliasing = False

    def self_pid(self) -> int:
        raise NotImplementedError

    @contextmanager
    def child(self) -> Iterator[Child | None]:
        yield None

    @contextmanager
    def thread_id(self) -> Iterator[int | None]:
        yield None

    def missing_pids(self) -> list[int]:
        """PIDs that name no process now."""
        raise NotImplementedError

    def denied_pid(self) -> int | None:
        return None

    def names_process(self, pid: int) -> bool | None:
        """Whether ``pid`` names a process now; None if the world cannot tell."""
        return None


class _LiveChild(Child):
    def __init__(self) -> None:
        # A Python child is the one command that exists on every OS here.
        command = [sys.executable, "-c", "import time; time.sleep(300)"]
        if not WINDOWS and os.path.exists("/bin/sleep"):
            command = ["/bin/sleep", "300"]
        self._process = start_process(command, stdin=subprocess.DEVNULL)
        super().__init__(self._process.pid)
        self._started_at = process_started_at(self.pid) if WINDOWS else None

    def exit(self) -> None:
        self._process.kill()
        if WINDOWS:
            self._process.wait()  # Popen keeps the process handle open
        else:
            # Wait for the exit without reaping: the child stays a zombie.
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)

    def reap(self) -> bool:
        self._process.kill()
        self._process.wait()
        if not WINDOWS:
            return not os.path.exists(f"/proc/{self.pid}")
        if self._process._handle.closed:  # type: ignore[attr-defined]
            return process_started_at(self.pid) is None  # reaped before
        self._process._handle.Close()  # type: ignore[attr-defined]
        return wait_until_gone(self.pid, self._started_at) and process_started_at(self.pid) is None


class LiveWorld(World):
    """Real processes and threads of the running OS."""

    description = "real processes of this machine"
    aliasing = WINDOWS

    def self_pid(self) -> int:
        return os.getpid()

    @contextmanager
    def child(self) -> Iterator[Child | None]:
        child = _LiveChild()
        try:
            yield child
        finally:
            child.reap()

    @contextmanager
    def thread_id(self) -> Iterator[int | None]:
        release = threading.Event()
        thread = threading.Thread(target=release.wait, name="sessionid-contract")
        thread.start()
        try:
            yield thread.native_id
        finally:
            release.set()
            thread.join()

    def missing_pids(self) -> list[int]:
        with self.child() as child:
            assert child is not None
            gone = child.pid
            child.reap()
        pids = [0, 0xFFFFFFFF, 0x80000000]
        if process_started_at(gone) is None:  # not already reused by a newcomer
            pids.append(gone)
        if not WINDOWS:
            pids.append(PID_MAX_LIMIT + 1)
        return pids

    def names_process(self, pid: int) -> bool | None:
        if WINDOWS:
            return None
        return os.path.exists(f"/proc/{pid}")  # true for thread ids too


class ModelWorld(World):
    """Processes made by changing a ModelBackend (the changes are undone)."""

    def __init__(self, model: ModelBackend) -> None:
        self.model = model
        self.aliasing = model.aliasing
        self.description = "the model's table"

    def _free_pid(self) -> int:
        """A multiple of 4 with it and the next three PIDs unused, so that
        C10 can tell aliasing apart from none with or without aliasing."""
        used = self.model.processes().keys() | self.model.threads()
        pid = (max(used, default=0) // 4 + 1) * 4
        if pid > 0xFFFFFFFF - 3:  # the table reaches the top: take a gap
            pid = next(p for p in range(4, 0xFFFFFFFF, 4) if used.isdisjoint(range(p, p + 4)))
        return pid

    def self_pid(self) -> int:
        table = self.model.processes()
        if os.getpid() in table:
            return os.getpid()
        if not table:
            raise LookupError("the model's table is empty: give it at least the caller's PID")
        return min(table)

    @contextmanager
    def child(self) -> Iterator[Child | None]:
        model = self.model
        pid = self._free_pid()
        model.spawn(pid, model.session_id(self.self_pid()))

        class _ModelChild(Child):
            def exit(self) -> None:
                model.exit(pid)

            def reap(self) -> bool:
                if pid in model.processes():
                    model.reap(pid)
                return True

        child = _ModelChild(pid)
        try:
            yield child
        finally:
            child.reap()

    @contextmanager
    def thread_id(self) -> Iterator[int | None]:
        tid = self._free_pid()
        self.model.add_thread(tid)
        try:
            yield tid
        finally:
            self.model.remove_thread(tid)

    def missing_pids(self) -> list[int]:
        pids = [0, self._free_pid() + 16, 0xFFFFFFFF & ~3]
        return [pid for pid in pids if pid <= 0xFFFFFFFF and not self.names_process(pid)]

    def denied_pid(self) -> int | None:
        return min(self.model.denied, default=None)

    def names_process(self, pid: int) -> bool | None:
        key = pid & ~3 if self.model.aliasing else pid
        return key in self.model.processes() or key in self.model.threads()


class ListedWorld(World):
    """An arbitrary backend: only the processes it lists are known."""

    description = "the processes the backend lists"

    def __init__(self, listed: dict[int, int]) -> None:
        self._listed = listed

    def self_pid(self) -> int:
        if os.getpid() in self._listed:
            return os.getpid()
        if not self._listed:
            raise LookupError("the backend lists no process (session_ids(None) is empty)")
        return min(self._listed)

    def missing_pids(self) -> list[int]:
        top = max(self._listed, default=0)
        pids = [0, top + 4, top + 1000, 0xFFFFFFFC]
        return [pid for pid in pids if pid not in self._listed]


def world_for(backend: object) -> World:
    """The world that can exercise ``backend``."""
    if isinstance(backend, ModelBackend):
        return ModelWorld(backend)
    if getattr(backend, "name", None) in ("kernel32", "procfs") and (
        backend is get_backend() or getattr(backend, "live", True)
    ):
        return LiveWorld()
    return ListedWorld(backend.session_ids(None))  # type: ignore[attr-defined]
