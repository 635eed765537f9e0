"""Worlds: where the contract checks get their processes, and their truth.

A rule of the contract needs processes in known states (the caller, a
child, a child in a new login, an exited child that is not reaped yet, a
PID that names nothing, a thread id) and, to judge an answer, the session
each of them is really in, learnt without the backend under check.

- ``LiveWorld`` makes them for real on this OS. Every child reports its own
  session from the inside (Linux: it reads ``/proc/self/sessionid``;
  Windows: it calls kernel32 ``ProcessIdToSessionId(GetCurrentProcessId())``
  through ctypes) on a pipe; on Linux a child starts a new login by writing
  a uid to ``/proc/self/loginuid`` (root may always; anyone whose loginuid
  is unset may once), which gives it a fresh audit session.
- ``ModelWorld`` makes them by changing a ``ModelBackend``; its truth is what
  the world itself put in the table (a snapshot taken before the check and
  the sessions it spawned children in), never what the backend answers.
- ``ListedWorld`` only knows what an arbitrary backend lists: it has no
  truth of its own, so the rules that need one are not checked there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from .. import get_backend
from ..emulation.model import ModelBackend
from ._processes import process_started_at, start_process, wait_until_gone

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._generated import Judgement

WINDOWS = sys.platform == "win32"
LINUX = sys.platform.startswith("linux")

# Linux's hard ceiling for PIDs (as in emulation.procfs, which is not imported
# here: the kit must import on every OS).
PID_MAX_LIMIT = 4194304
#: What /proc/<pid>/sessionid reads when no login set it: the library's session 0.
AUDIT_UNSET = 0xFFFFFFFF


class Child:
    """A process started for a check: alive, then exited, then gone.

    ``truth`` is the session the process is in, as learnt without the
    backend under check (None where the world cannot tell).
    """

    def __init__(self, pid: int, truth: int | None) -> None:
        self.pid = pid
        self.truth = truth

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

    def self_truth(self) -> int | None:
        """The caller's session, learnt without the backend (None: unknown)."""
        return None

    @contextmanager
    def child(self, *, login: bool = False) -> Iterator[Child | None]:
        """A running child: in the caller's session, or with ``login=True``
        in a new login session of its own (None where that cannot be made:
        ``login_unavailable()`` says why)."""
        yield None

    def login_unavailable(self) -> str | None:
        """Why no new login can be made here (None: it can)."""
        return f"{self.description}: cannot start a new login"

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

    @property
    def judged(self) -> dict[str, str]:
        """Per rule, what its part of the generated world judged (for the report)."""
        judged: dict[str, str] = self.__dict__.setdefault("_judged_rules", {})
        return judged

    def generated(self, backend: object) -> Judgement | None:
        """The generated live world's findings about ``backend`` (built
        and judged once per backend), or None where the world has none."""
        return None

    def existing(self) -> dict[int, int]:
        """Running processes the world knows the truth of, other than the
        caller, ``{pid: session}``: rules that cannot start a child of
        their own act on these (C10, C11)."""
        return {}

    @staticmethod
    def declare(
        table: dict[int, int],
        *,
        threads: Iterable[int] = (),
        denied: Iterable[int] = (),
        exited: Iterable[int] = (),
        gone: Iterable[int] = (),
        aliasing: bool = False,
    ) -> World:
        """The world of a fake of your own, as you declare it: ``table``
        ``{pid: session}`` of the processes it knows (exited ones included),
        ``threads`` (thread ids: must answer 87), ``denied`` (PIDs of the
        table that must answer 5), ``exited`` (PIDs of the table that have
        exited but are held: they still answer), ``gone`` (PIDs that were
        reaped: 87) and ``aliasing`` (Windows: PID+1..+3 answer like the
        PID). Pass it as ``check_contract(fake, world=World.declare(...))``:
        every rule this world allows is then judged against it."""
        return DeclaredWorld(
            table, threads=threads, denied=denied, exited=exited, gone=gone, aliasing=aliasing
        )


World.__module__ = "sessionid_cffi.testing"  # exported there


# -- the live world: real processes that report their own session -----------

# The child reports its own session from the inside, on stdout, then waits
# for stdin to close. On Linux it is /bin/sh, whose builtins act on the shell
# itself (no fork): it starts a login when given a uid by writing
# /proc/self/loginuid, reads /proc/self/sessionid, and prints it, or "E" if
# the login could not start. Unset (4294967295) is the library's session 0.
# A shell runs for any user (a Python in root's home may not), and starts
# in about a millisecond.
_REPORTER_SH = """\
if [ -n "$1" ]; then
    if ! { echo "$1" > /proc/self/loginuid; } 2>/dev/null; then
        echo E; read -r _ignored; exit 0
    fi
fi
read -r session < /proc/self/sessionid
[ "$session" = 4294967295 ] && session=0
echo "$session"
read -r _ignored
"""
_REPORTER_WINDOWS = """\
import ctypes, sys
# kernel32 through ctypes, not the library's cffi binding.
kernel32 = ctypes.WinDLL('kernel32', use_last_error=True)
out = ctypes.c_ulong(0)
if kernel32.ProcessIdToSessionId(kernel32.GetCurrentProcessId(), ctypes.byref(out)):
    print(out.value, flush=True)
else:
    print('E', ctypes.get_last_error(), flush=True)
sys.stdin.read()
"""


def own_session_from_inside() -> int:
    """The caller's session as the OS tells the caller itself (not through
    the library): ``/proc/self/sessionid`` on Linux (right in any PID
    namespace), kernel32 through ctypes on Windows."""
    # Windows only: judged by the Wine lane, not by the mutation gate on Linux.
    # pragma: no mutate start
    if WINDOWS:
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
        out = ctypes.c_ulong(0)
        if not kernel32.ProcessIdToSessionId(kernel32.GetCurrentProcessId(), ctypes.byref(out)):
            raise OSError(ctypes.get_last_error(), "ProcessIdToSessionId(own PID) failed")  # type: ignore[attr-defined,unused-ignore]
        return int(out.value)
    # pragma: no mutate end
    with open("/proc/self/sessionid") as file:
        session = int(file.read())
    return 0 if session == AUDIT_UNSET else session


class _LiveChild(Child):
    """A child that reported its own session (``truth``)."""

    def __init__(self, login_uid: int | None) -> None:
        uid = "" if login_uid is None else str(login_uid)
        if WINDOWS:
            command = [sys.executable, "-c", _REPORTER_WINDOWS]  # pragma: no mutate
        else:
            command = ["/bin/sh", "-c", _REPORTER_SH, "reporter", uid]
        self._process = start_process(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._process.stdout is not None
        line = self._process.stdout.readline().decode().split()
        #: Whether the child failed to start the login it was asked for.
        self.login_failed = line[:1] == ["E"]
        truth = int(line[0]) if line and not self.login_failed else None
        super().__init__(self._process.pid, truth)
        self._started_at = process_started_at(self.pid) if WINDOWS else None  # pragma: no mutate

    def exit(self) -> None:
        self._process.kill()
        if WINDOWS:
            self._process.wait()  # Popen keeps the handle open  # pragma: no mutate
        else:
            # Wait for the exit without reaping: the child stays a zombie.
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)

    def reap(self) -> bool:
        self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()
        if not WINDOWS:
            return not os.path.exists(f"/proc/{self.pid}")
        # Windows only: judged by the Wine lane, not by the mutation gate on Linux.
        # pragma: no mutate block
        if self._process._handle.closed:  # type: ignore[attr-defined]
            return process_started_at(self.pid) is None  # reaped before
        self._process._handle.Close()  # type: ignore[attr-defined]
        return wait_until_gone(self.pid, self._started_at) and process_started_at(self.pid) is None


class LiveWorld(World):
    """Real processes and threads of the running OS."""

    description = "real processes of this machine"
    aliasing = WINDOWS

    def __init__(
        self, *, worlds: int | None = None, size: int | None = None, seed: int | None = None
    ) -> None:
        from ._generated import sizing

        #: The generated world's knobs: how many worlds of how many
        #: processes (see ``check_contract``), and the first world's seed.
        self.worlds, self.size = sizing(worlds, size)
        self.seed = seed
        self._judged: dict[int, Judgement] = {}
        self._login_unavailable: str | None = None
        # Windows only: judged by the Wine lane, not by the mutation gate on Linux.
        # pragma: no mutate block
        if WINDOWS:
            self._login_unavailable = (
                "Windows: a process cannot start a new session of its own (under Wine "
                "every process is in session 1)"
            )
        elif not LINUX:
            self._login_unavailable = f"no login sessions can be made on {sys.platform}"

    def self_pid(self) -> int:
        return os.getpid()

    def self_truth(self) -> int | None:
        return own_session_from_inside()

    def login_unavailable(self) -> str | None:
        return self._login_unavailable

    @contextmanager
    def child(self, *, login: bool = False) -> Iterator[Child | None]:
        if login and self._login_unavailable:
            yield None
            return
        # Root may write any uid; anyone else may write its own once.
        child = _LiveChild((os.getuid() or 65534) if login else None)
        try:
            if child.login_failed:
                self._login_unavailable = (
                    "a child could not start a login: writing /proc/self/loginuid was "
                    "refused (the caller's loginuid is set and it lacks CAP_AUDIT_CONTROL)"
                )
                yield None
                return
            if child.truth is None:
                raise RuntimeError(f"child {child.pid} did not report its session")
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

    def generated(self, backend: object) -> Judgement | None:
        if self.worlds == 0:
            return None
        from ._generated import judge

        key = id(backend)
        if key not in self._judged:
            self._judged[key] = judge(backend, worlds=self.worlds, size=self.size, seed=self.seed)
        return self._judged[key]


# -- the model world: truth is what the world put in the table ---------------
class ModelWorld(World):
    """Processes made by changing a ModelBackend (the changes are undone)."""

    def __init__(self, model: ModelBackend) -> None:
        self.model = model
        self.aliasing = model.aliasing
        self.description = "the model's table"
        # The truth: the table as given, before any rule asked anything.
        self._truth = model.processes()
        self._unusable = set(model.denied) | set(model.zombies)

    def _free_pid(self) -> int:
        """A multiple of 4 with it and the next three PIDs unused, so that
        C10 can tell aliasing apart from none with or without aliasing.
        Never the caller's own PID, which a fake may leave out on purpose."""
        used = self.model.processes().keys() | self.model.threads() | {os.getpid()}
        pid = (max(used, default=0) // 4 + 1) * 4
        if pid > 0xFFFFFFFF - 3:  # the table reaches the top: take a gap
            pid = next(p for p in range(4, 0xFFFFFFFF, 4) if used.isdisjoint(range(p, p + 4)))
        return pid

    def self_pid(self) -> int:
        """The caller's PID if the table has it, else the lowest PID that
        stands for a live, inspectable process (not denied, not a zombie)."""
        own = os.getpid()
        if own in self._truth:
            return own
        usable = sorted(self._truth.keys() - self._unusable)
        if not usable:
            raise LookupError(
                "the model's table has no process to act as the caller: give it the "
                "caller's PID (or one PID that is neither denied nor a zombie)"
            )
        return usable[0]

    def self_truth(self) -> int | None:
        return self._truth[self.self_pid()]

    def login_unavailable(self) -> str | None:
        return None

    @contextmanager
    def child(self, *, login: bool = False) -> Iterator[Child | None]:
        model = self.model
        pid = self._free_pid()
        if login:
            # A new login: a session no process of the table is in.
            taken = set(model.processes().values())
            session = next(n for n in range(1, len(taken) + 2) if n not in taken)
        else:
            session = self._truth[self.self_pid()]
        model.spawn(pid, session)

        class _ModelChild(Child):
            def exit(self) -> None:
                model.exit(pid)

            def reap(self) -> bool:
                if pid in model.processes():
                    model.reap(pid)
                return True

        child = _ModelChild(pid, session)
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


class DeclaredWorld(World):
    """A fake's world as its author declared it (see ``World.declare``):
    the truth is the declaration, never the fake's answers. Nothing can
    be started in it; C2 and C5 judge every declared process instead of a
    child (through the same judging as the generated live world)."""

    description = "the declared world"

    def __init__(
        self,
        table: dict[int, int],
        *,
        threads: Iterable[int] = (),
        denied: Iterable[int] = (),
        exited: Iterable[int] = (),
        gone: Iterable[int] = (),
        aliasing: bool = False,
    ) -> None:
        self.table = dict(table)
        self.threads = set(threads)
        self.denied = set(denied)
        self.exited = set(exited)
        self.gone = set(gone)
        self.aliasing = aliasing
        unknown = (self.denied | self.exited) - self.table.keys()
        if unknown:
            raise ValueError(f"denied and exited PIDs must be in the table: {sorted(unknown)}")
        clash = (self.threads | self.gone) & self.table.keys()
        if clash:
            raise ValueError(f"thread ids and gone PIDs cannot be in the table: {sorted(clash)}")
        self._judged: dict[int, Judgement] = {}

    def _usable(self) -> list[int]:
        return sorted(self.table.keys() - self.denied - self.exited)

    def self_pid(self) -> int:
        own = os.getpid()
        if own in self.table and own not in self.denied | self.exited:
            return own
        usable = self._usable()
        if not usable:
            raise LookupError("the declared table has no running, inspectable process")
        return usable[0]

    def self_truth(self) -> int | None:
        return self.table[self.self_pid()]

    def login_unavailable(self) -> str | None:
        return "a declared world cannot start processes"

    @contextmanager
    def thread_id(self) -> Iterator[int | None]:
        yield min(self.threads, default=None)

    def _key(self, pid: int) -> int:
        return pid & ~3 if self.aliasing else pid

    def names_process(self, pid: int) -> bool | None:
        key = self._key(pid)
        return key in self.table or key in self.threads

    def missing_pids(self) -> list[int]:
        used = self.table.keys() | self.threads | self.gone
        top = (max(used, default=0) // 4 + 1) * 4
        pids = [0, top + 16, 0xFFFFFFFF & ~3]
        return [p for p in pids if p <= 0xFFFFFFFF and not self.names_process(p)]

    def denied_pid(self) -> int | None:
        return min(self.denied, default=None)

    def existing(self) -> dict[int, int]:
        own = self.self_pid()
        return {pid: self.table[pid] for pid in self._usable() if pid != own}

    def generated(self, backend: object) -> Judgement | None:
        from ._generated import judge_declared

        key = id(backend)
        if key not in self._judged:
            self._judged[key] = judge_declared(backend, self)
        return self._judged[key]


class ListedWorld(World):
    """An arbitrary backend: only the processes it lists are known, and no
    truth apart from the backend's own answers."""

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
