"""The kit's process identity helpers (sessionid_cffi.testing._processes),
on real processes: the forest harness and the live contract world judge
"gone", "exited" and "who holds it" with them, so they are proven here on
both OSes (Linux: zombies; Windows: handles, run in the Wine lane)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from _forest import ForestError, RealForest
from _handles import describe_holders, holders

from sessionid_cffi.testing._processes import (
    has_exited,
    process_started_at,
    start_process,
    wait_until_gone,
)

WINDOWS = sys.platform == "win32"
windows_only = pytest.mark.skipif(not WINDOWS, reason="process handles are Windows-only")


def exit_without_reaping(process: subprocess.Popen[bytes]) -> None:
    """Linux: a zombie; Windows: exited, the Popen still holds its handle."""
    process.kill()
    if WINDOWS:
        process.wait()
    else:
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)


def reap(process: subprocess.Popen[bytes]) -> None:
    process.wait()
    if WINDOWS:
        process._handle.Close()  # type: ignore[attr-defined]


def test_a_process_is_named_by_its_start_time_until_it_is_gone(
    child: subprocess.Popen[bytes],
) -> None:
    started_at = process_started_at(child.pid)
    assert started_at is not None
    assert process_started_at(child.pid) == started_at  # stable while it lives
    assert process_started_at(os.getpid()) not in (None, started_at)  # we started earlier
    assert not has_exited(child.pid, started_at)
    exit_without_reaping(child)
    assert has_exited(child.pid, started_at)
    assert process_started_at(child.pid) == started_at  # held: still there
    reap(child)
    assert wait_until_gone(child.pid, started_at)
    assert has_exited(child.pid, started_at)


def test_a_newcomer_on_the_pid_is_not_the_old_process(child: subprocess.Popen[bytes]) -> None:
    started_at = process_started_at(child.pid)
    assert started_at is not None
    # Another start time on the same PID stands for a process that reused it.
    assert wait_until_gone(child.pid, started_at - 1, timeout=0)
    assert has_exited(child.pid, started_at - 1)
    assert not has_exited(child.pid, started_at)


@windows_only
def test_wait_until_gone_gives_up_while_a_handle_is_held(child: subprocess.Popen[bytes]) -> None:
    started_at = process_started_at(child.pid)
    exit_without_reaping(child)  # our Popen keeps the handle
    assert not wait_until_gone(child.pid, started_at, timeout=1)
    assert holders(child.pid, started_at) == {os.getpid(): os.path.basename(sys.executable)}
    reap(child)
    assert wait_until_gone(child.pid, started_at)
    assert holders(child.pid, started_at) == {}


@windows_only
def test_holders_names_another_process_that_keeps_an_exited_one() -> None:
    forest = RealForest()
    try:
        root = forest.spawn(None)
        child = forest.spawn(root)
        forest.exit(child)  # exited; root's Popen holds its handle
        held = holders(child.pid, child.started_at)
        assert set(held) == {root.pid}
        assert held[root.pid].lower() == "python.exe"
        assert f"held by PID {root.pid} (python.exe)" in describe_holders(held)
        # The root holds a handle to nobody else, and nothing else holds the child.
        assert holders(root.pid, root.started_at) == {os.getpid(): held[root.pid]}
    finally:
        forest.close()


@windows_only
def test_a_thread_handle_holds_its_process() -> None:
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined,unused-ignore]
    kernel32.OpenThread.restype = wintypes.HANDLE
    kernel32.OpenThread.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
    forest = RealForest()
    try:
        root = forest.spawn(None)
        child = forest.spawn(root)  # root's Popen holds the child's process handle
        tid = forest.add_thread(child)
        assert set(holders(child.pid, child.started_at)) == {root.pid}
        thread = kernel32.OpenThread(0x0800, False, tid)  # THREAD_QUERY_LIMITED_INFORMATION
        assert thread
        try:
            assert set(holders(child.pid, child.started_at)) == {root.pid, os.getpid()}
        finally:
            kernel32.CloseHandle(thread)
        assert set(holders(child.pid, child.started_at)) == {root.pid}
    finally:
        forest.close()


def test_nothing_is_named_as_a_holder_of_a_gone_process(child: subprocess.Popen[bytes]) -> None:
    started_at = process_started_at(child.pid)
    child.kill()
    reap(child)
    assert wait_until_gone(child.pid, started_at)
    assert holders(child.pid, started_at) == {}
    assert describe_holders({}) == "no process holds a handle to it (the OS keeps it)"


# Holds a handle to the process whose PID it is given until its stdin closes.
KEEPER = (
    "import ctypes, sys\n"
    "handle = ctypes.WinDLL('kernel32').OpenProcess(0x1000, False, int(sys.argv[1]))\n"
    "print('holding' if handle else 'failed', flush=True)\n"
    "sys.stdin.read()\n"
)


@windows_only
def test_close_records_a_process_that_another_program_keeps() -> None:
    forest = RealForest()
    forest.release_timeout = 2
    root = forest.spawn(None)
    keeper = subprocess.Popen(
        [sys.executable, "-c", KEEPER, str(root.pid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert keeper.stdout is not None
        assert keeper.stdout.readline().strip() == b"holding"
        forest.close()  # the keeper is not ours to fix: recorded, no failure
        assert root.held_by == f"held by PID {keeper.pid} (python.exe)"
        assert root.still_exists()
        assert has_exited(root.pid, root.started_at)
    finally:
        keeper.communicate(b"")
    assert wait_until_gone(root.pid, root.started_at)  # let go: gone


@windows_only
def test_close_fails_while_the_test_process_holds_a_forest_process() -> None:
    import _winapi

    forest = RealForest()
    forest.release_timeout = 2
    root = forest.spawn(None)
    handle = _winapi.OpenProcess(0x1000, False, root.pid)  # a leak of ours
    try:
        with pytest.raises(ForestError, match=f"still exists after close.*PID {os.getpid()} "):
            forest.close()
    finally:
        _winapi.CloseHandle(handle)
    assert wait_until_gone(root.pid, root.started_at)


def test_start_process_gives_other_errors_at_once() -> None:
    with pytest.raises(FileNotFoundError):
        start_process([os.path.join(os.getcwd(), "no-such-program")])


def test_start_process_tries_again_when_the_os_fails_to_start_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A stand-in for Popen: Wine's rare failure (WinError 1359) cannot be
    # caused on purpose, so it is raised here the way CreateProcess gives it.
    attempts: list[list[str]] = []

    def start_failure() -> OSError:
        err = OSError(22, "Internal error")
        err.winerror = 1359  # type: ignore[attr-defined]
        return err

    def flaky_popen(command: list[str], **options: object) -> str:
        attempts.append(command)
        if len(attempts) < 3:
            raise start_failure()
        return "started"

    monkeypatch.setattr(subprocess, "Popen", flaky_popen)
    assert start_process(["prog"]) == "started"
    assert len(attempts) == 3
    attempts.clear()

    def failing_popen(command: list[str], **options: object) -> str:
        attempts.append(command)
        raise start_failure()

    monkeypatch.setattr(subprocess, "Popen", failing_popen)
    with pytest.raises(OSError, match="Internal error") as raised:
        start_process(["prog"])
    assert raised.value.winerror == 1359  # type: ignore[attr-defined]
    assert len(attempts) == 3  # gave up after three
