"""The kit's process identity helpers (sessionid_cffi.testing._processes),
on real processes: the forest harness and the live contract world judge
"gone", "exited" and "who holds it" with them, so they are proven here on
both OSes (Linux: zombies; Windows: handles, run in the Wine lane)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from _forest import RealForest

from sessionid_cffi.testing._processes import (
    describe_holders,
    has_exited,
    holders,
    process_started_at,
    wait_until_gone,
)

WINDOWS = sys.platform == "win32"
windows_only = pytest.mark.skipif(not WINDOWS, reason="process handles are Windows-only")


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait()


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


def test_nothing_is_named_as_a_holder_of_a_gone_process(child: subprocess.Popen[bytes]) -> None:
    started_at = process_started_at(child.pid)
    child.kill()
    reap(child)
    assert wait_until_gone(child.pid, started_at)
    assert holders(child.pid, started_at) == {}
    assert describe_holders({}) == "no process holds a handle to it (the OS keeps it)"
