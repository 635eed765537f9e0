"""kill_session on Windows, run for real in the Windows lane (Windows CPython
under Wine, kernel32's OpenProcess and TerminateProcess through cffi).

Wine puts every process in session 1, its own services included, so a real
"session" here is everything: the scene that ends session 1 (with the
caller left out) runs only when nothing but Wine's own processes shares the
wineserver. The other scenes give kill_session a view of the real process
table that holds only the processes the test started (a stand-in for a
session of their own, which Wine cannot make); everything after the
listing (pinning, the re-check, TerminateProcess, the rescan) is real.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

import sessionid_cffi as s
from sessionid_cffi.testing._processes import process_started_at, wait_until_gone

pytestmark = pytest.mark.skipif(
    sys.platform != "win32", reason="Windows-only: ends processes with kernel32 (tox -e wine)"
)

SIGKILL = 9  # Windows' signal module has no SIGKILL; kill_session takes its number
# Wine's own processes, all in session 1 with the programs it runs.
WINE_PROCESSES = {
    "services.exe",
    "explorer.exe",
    "winedevice.exe",
    "svchost.exe",
    "plugplay.exe",
    "rpcss.exe",
    "conhost.exe",
    "start.exe",
    "rundll32.exe",
    "wineboot.exe",
}
SLEEPER = "import sys, time; print(flush=True); time.sleep(120)"
# A child that starts a sleeping grandchild, reports its PID and exits
# (the grandchild is an orphan, as a double fork leaves one on Linux).
ORPHANER = (
    "import subprocess, sys\n"
    "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "print(c.pid, flush=True)\n"
)
# A child that starts new sleeping children back to back, forever: one is
# always being created when a scan runs.
FORKER = (
    "import subprocess, sys\n"
    "print(flush=True)\n"
    "while True:\n"
    "    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
)


def start(code: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    )
    return child


def ready(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    return child.stdout.readline().strip()


def listing() -> dict[int, int]:
    from sessionid_cffi._kernel32 import Kernel32Backend

    return Kernel32Backend().session_ids(None)


def kill(session: int, *args: Any, **named: Any) -> list[int]:
    """kill_session on a Since view: it holds only the test's processes, so
    naming session 0 (where a real-Windows CI runner's processes are) is safe."""
    return s.kill_session(session, *args, allow_session_zero=True, **named)


class Since:
    """The kernel32 backend whose listing holds only the processes started
    after it was made (and never the caller): a stand-in for a session of
    their own. Everything else is the real API."""

    def __new__(cls, claim: dict[int, int] | None = None, delay: float = 0) -> object:
        from sessionid_cffi._kernel32 import Kernel32Backend

        # By PID and start time: Wine gives the PIDs of processes that
        # ended before to new ones.
        before = {(pid, process_started_at(pid)) for pid in listing()}
        extra = dict(claim or {})
        # Only copies of this interpreter, as every process the tests start
        # is: a service that starts meanwhile (real Windows) is not ours.
        image = os.path.basename(sys.executable).lower()

        class Started(Kernel32Backend):
            def session_ids(self, pids: list[int] | None) -> dict[int, int]:
                if pids is not None:
                    return super().session_ids(pids)
                mine = {
                    pid: session
                    for pid, session, name, _owner in self._enumerate()
                    if pid != os.getpid()
                    and (name or "").lower() == image
                    and (pid, process_started_at(pid)) not in before
                }
                # A listing that is old by the time it is used (a busy
                # machine): members started meanwhile are not in it.
                time.sleep(delay)
                return {**mine, **extra}

        return Started()


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        child.kill()
        child.wait(30)
        if child.stdout is not None:
            child.stdout.close()


def test_dry_run_and_signal_0_name_the_members_and_end_nothing(
    children: list[subprocess.Popen[str]],
) -> None:
    own, session = os.getpid(), s.current_session_id()
    backend = Since(claim={own: session})  # the caller is listed too
    children += [start(SLEEPER) for _ in range(3)]
    for child in children:
        ready(child)
    pids = sorted(child.pid for child in children)
    with s.use_backend(backend):  # type: ignore[arg-type]
        assert kill(session, dry_run=True) == pids
        assert kill(session, 0) == pids
        assert kill(session, SIGKILL, dry_run=True) == pids
        assert kill(session, dry_run=True, include_self=True) == sorted([*pids, own])
    time.sleep(0.5)
    assert [child.poll() for child in children] == [None, None, None]


@pytest.mark.parametrize("sig", [signal.SIGTERM, SIGKILL, signal.SIGINT])
def test_members_end_with_the_signal_number_as_exit_code(
    children: list[subprocess.Popen[str]], sig: int
) -> None:
    backend = Since()
    children += [start(SLEEPER) for _ in range(2)]
    for child in children:
        ready(child)
    with s.use_backend(backend):  # type: ignore[arg-type]
        ended = kill(s.current_session_id(), sig)
    assert ended == sorted(child.pid for child in children)
    # The exit code as Windows reports it to the parent (Popen's handle).
    assert [child.wait(30) for child in children] == [int(sig)] * 2


def test_orphans_and_a_forking_member_cannot_outrun_it(
    children: list[subprocess.Popen[str]],
) -> None:
    backend = Since(delay=0.3)
    orphaner = start(ORPHANER)
    children.append(orphaner)
    orphan = int(ready(orphaner))
    orphaner.wait(30)
    orphan_started = process_started_at(orphan)
    forker = start(FORKER)
    children.append(forker)
    ready(forker)
    session = s.current_session_id()
    with s.use_backend(backend):  # type: ignore[arg-type]
        for _wait in range(300):  # until the forker has children of its own
            before = backend.session_ids(None)  # type: ignore[attr-defined]
            if len(before) >= 3:
                break
        assert len(before) >= 3, before  # orphan, forker, the forker's children
        ended = kill(session, signal.SIGTERM)
        left = backend.session_ids(None)  # type: ignore[attr-defined]
    assert forker.wait(30) == signal.SIGTERM
    assert orphan in ended
    assert forker.pid in ended
    assert os.getpid() not in ended
    assert wait_until_gone(orphan, orphan_started, 10), f"the orphan {orphan} still runs"
    # Nothing started since the test began runs any more (Wine may list an
    # ended process for a moment while it tears it down).
    running = [pid for pid in left if process_started_at(pid) is not None]
    for pid in running:
        assert wait_until_gone(pid, process_started_at(pid), 10), f"{pid} still runs"


def test_it_says_when_it_gives_up(children: list[subprocess.Popen[str]]) -> None:
    # A first pass that takes longer than the whole timeout (the listing is
    # 0.3 s old when used) while the session still gains members: it gives
    # up, saying how many it ended, instead of scanning on.
    backend = Since(delay=0.3)
    forker = start(FORKER)
    children.append(forker)
    ready(forker)
    time.sleep(0.5)
    session = s.current_session_id()
    with s.use_backend(backend):  # type: ignore[arg-type]
        with pytest.raises(s.KillTimeoutError, match=r"gave up after ending \d+") as caught:
            kill(session, signal.SIGTERM, timeout=0.1)
        assert caught.value.winerror == 1460
        assert forker.wait(30) == signal.SIGTERM  # found in the first pass
        kill(session, SIGKILL)  # what it left: the forker's last children


def test_a_stale_listing_never_ends_a_process_outside_the_session(
    children: list[subprocess.Popen[str]],
) -> None:
    # The listing says the child is in session 5; asked again on its pinned
    # handle it is in the caller's session: left alone.
    child = start(SLEEPER)
    children.append(child)
    ready(child)
    backend = Since(claim={child.pid: 5})
    with s.use_backend(backend):  # type: ignore[arg-type]
        assert kill(5, signal.SIGTERM) == []
    time.sleep(0.5)
    assert child.poll() is None


def test_an_exited_member_whose_handle_is_held_is_left_out(
    children: list[subprocess.Popen[str]],
) -> None:
    # Popen holds the exited child's handle, so its PID still opens; the
    # listing claims it. It runs nothing: not ended, not denied.
    session = s.current_session_id()
    exited = start(SLEEPER)
    children.append(exited)
    ready(exited)
    exited.kill()
    exited.wait(30)
    backend = Since(claim={exited.pid: session})
    running = start(SLEEPER)
    children.append(running)
    ready(running)
    with s.use_backend(backend):  # type: ignore[arg-type]
        assert kill(session, signal.SIGTERM) == [running.pid]
    assert running.wait(30) == signal.SIGTERM


def test_a_pinned_process_keeps_its_pid_after_it_exits(
    children: list[subprocess.Popen[str]],
) -> None:
    """The rule the re-check rests on: while kill_session's handle is open,
    the PID names the pinned process even after it exited and its parent's
    handle was closed, and no newcomer gets it. (Wine hands freed PIDs out
    again first in, first out, so a control that watches one reused at
    once cannot be counted on.)"""
    from sessionid_cffi._kill_windows import PIN_ACCESS, kernel32

    target = start(SLEEPER)
    children.append(target)
    ready(target)
    started_at = process_started_at(target.pid)
    handle = kernel32.OpenProcess(PIN_ACCESS, False, target.pid)
    assert handle != s.ffi.NULL
    try:
        target.kill()
        target.wait(30)
        target._handle.Close()  # type: ignore[attr-defined]
        newcomers = [start(SLEEPER) for _ in range(8)]
        children.extend(newcomers)
        assert target.pid not in [child.pid for child in newcomers]
        time.sleep(1)  # past Wine's teardown of an unheld process (~0.5 s)
        assert process_started_at(target.pid) == started_at
        assert s.process_id_to_session_id(target.pid) == s.current_session_id()
    finally:
        kernel32.CloseHandle(handle)
    assert wait_until_gone(target.pid, started_at), "released, it should go"


class Denying:
    """kernel32 for _kill_windows, but OpenProcess (or TerminateProcess)
    denies the given PIDs with ERROR_ACCESS_DENIED: a stand-in, since Wine
    denies nothing. Every other call is the real one."""

    def __init__(self, real: object, open_denied: set[int], end_denied: set[int]) -> None:
        self.real = real
        self.open_denied = open_denied
        self.end_denied = end_denied

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)

    def OpenProcess(self, access: int, inherit: bool, pid: int) -> object:
        if pid in self.open_denied:
            self.real.SetLastError(5)  # type: ignore[attr-defined]
            return s.ffi.NULL
        return self.real.OpenProcess(access, inherit, pid)  # type: ignore[attr-defined]

    def TerminateProcess(self, handle: object, code: int) -> int:
        if self.real.GetProcessId(handle) in self.end_denied:  # type: ignore[attr-defined]
            self.real.SetLastError(5)  # type: ignore[attr-defined]
            return 0
        return int(self.real.TerminateProcess(handle, code))  # type: ignore[attr-defined]


@pytest.mark.parametrize("where", ["OpenProcess", "TerminateProcess"])
def test_denied_members_are_named_after_the_others_ended(
    children: list[subprocess.Popen[str]], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    from sessionid_cffi import _kill_windows

    backend = Since()
    children += [start(SLEEPER) for _ in range(3)]
    for child in children:
        ready(child)
    denied = children[1].pid
    wrapper = Denying(
        _kill_windows.kernel32,
        {denied} if where == "OpenProcess" else set(),
        {denied} if where == "TerminateProcess" else set(),
    )
    monkeypatch.setattr(_kill_windows, "kernel32", wrapper)
    with s.use_backend(backend), pytest.raises(s.AccessDeniedError) as caught:  # type: ignore[arg-type]
        kill(s.current_session_id(), signal.SIGTERM)
    others = sorted(c.pid for c in children if c.pid != denied)
    assert caught.value.winerror == 5
    assert caught.value.denied == [denied]  # type: ignore[attr-defined]
    assert caught.value.signalled == others  # type: ignore[attr-defined]
    assert [children[0].wait(30), children[2].wait(30)] == [signal.SIGTERM] * 2
    assert children[1].poll() is None


class ExitsFirst:
    """kernel32 for _kill_windows, but each pinned process really exits
    (exit code 0) just before kill_session's TerminateProcess reaches it:
    the race of a member that ends by itself, made to happen on time."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.answers: list[tuple[int, int]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)

    def TerminateProcess(self, handle: object, code: int) -> int:
        real: Any = self.real
        assert real.TerminateProcess(handle, 0)
        assert real.WaitForSingleObject(handle, 10_000) == 0
        answer = int(real.TerminateProcess(handle, code))
        self.answers.append((answer, s.ffi.getwinerror()[0]))
        return answer


def test_a_member_that_exits_by_itself_before_its_end_is_not_denied(
    children: list[subprocess.Popen[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessionid_cffi import _kill_windows

    backend = Since()
    child = start(SLEEPER)
    children.append(child)
    ready(child)
    wrapper = ExitsFirst(_kill_windows.kernel32)
    monkeypatch.setattr(_kill_windows, "kernel32", wrapper)
    with s.use_backend(backend):  # type: ignore[arg-type]
        ended = kill(s.current_session_id(), signal.SIGTERM)  # no AccessDeniedError
    assert child.wait(30) == 0  # its own exit, not the signal's
    if wine_version() is None:
        # Windows refuses to end an exited process with access denied: that
        # member ended by itself, it is neither ended nor denied.
        assert (wrapper.answers, ended) == ([(0, 5)], [])
    else:
        # Wine 8 says TRUE and keeps the first exit code (measured): ended.
        assert (wrapper.answers[0][0], ended) == (1, [child.pid])


def wine_version() -> str | None:
    import ctypes

    try:
        get = ctypes.WinDLL("ntdll").wine_get_version
    except AttributeError:
        return None
    get.restype = ctypes.c_char_p
    return str(get().decode())


def test_a_session_without_processes_and_bad_input() -> None:
    # A session no process is in: nothing ended.
    unused = max(listing().values()) + 1
    assert s.kill_session(unused, signal.SIGTERM) == []
    with pytest.raises(ValueError, match="session 0"):
        s.kill_session(0)
    with pytest.raises(ValueError, match="unknown signal"):
        s.kill_session(7, 99)
    with pytest.raises(TypeError):
        s.kill_session("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"DWORD|4294967295|range"):
        s.kill_session(2**32)


def test_ending_the_whole_session_leaves_the_caller_alone(
    children: list[subprocess.Popen[str]],
) -> None:
    """The real session: every process of it but the caller. Wine's own
    processes are in it too, so this runs only when nothing else shares
    this wineserver (another test run would lose its processes)."""
    from sessionid_cffi._kernel32 import Kernel32Backend

    own, session = os.getpid(), s.current_session_id()
    names = {pid: name for pid, _n, name, _o in Kernel32Backend()._enumerate()}
    others = {pid: name for pid, name in names.items() if pid != own}
    strangers = {pid: name for pid, name in others.items() if name not in WINE_PROCESSES}
    if strangers:
        pytest.skip(f"other programs share this wineserver, ending them is not ours: {strangers}")
    children += [start(SLEEPER), start(FORKER)]
    for child in children:
        ready(child)
    ended = s.kill_session(session, signal.SIGTERM)
    assert own not in ended
    assert {child.pid for child in children} <= set(ended)
    assert [child.wait(30) for child in children] == [signal.SIGTERM] * 2
    returned = (time.time() + 11644473600) * 10_000_000  # as a FILETIME (100 ns ticks)
    # What ran in the session is gone: whatever runs now besides the caller
    # was started after the call returned (Wine restarting its services).
    for _wait in range(100):  # Wine tears ended processes down within ~0.5 s
        before_return = {
            pid: started
            for pid in listing()
            if pid != own
            and (started := process_started_at(pid)) is not None
            and started < returned
        }
        if not before_return:
            break
        time.sleep(0.1)
    assert before_return == {}, {pid: names.get(pid) for pid in before_return}
    assert s.process_id_to_session_id(own) == session
    # A new process still starts after Wine's own were ended.
    after = start(SLEEPER)
    children.append(after)
    ready(after)


def sessionid(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessionid_cffi", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_sessionid_kill_exit_codes(children: list[subprocess.Popen[str]]) -> None:
    """The command under Wine. Ending session 1 for real would end this
    test's own process (the command leaves out only itself), so the real
    runs are --dry-run, signal 0 and a session that holds nothing."""
    import json

    child = start(SLEEPER)
    children.append(child)
    ready(child)
    session = str(s.current_session_id())
    force = ["--force"] if session == "0" else []  # a real-Windows CI runner's session
    dry = sessionid("--json", "kill", "--dry-run", *force, session)
    assert dry.returncode == 0, dry.stderr
    listed = {entry["pid"] for entry in json.loads(dry.stdout)["processes"]}
    assert {os.getpid(), child.pid} <= listed
    check = sessionid("kill", "-s", "0", *force, session)
    # Wine denies nothing; real Windows may deny some of the session (1).
    assert check.returncode in ((0,) if wine_version() is not None else (0, 1)), check
    assert {os.getpid(), child.pid} <= {int(line.split()[0]) for line in check.stdout.splitlines()}
    assert child.poll() is None  # checked, not ended
    assert s.process_id_to_session_id(child.pid) == int(session)
    empty = sessionid("kill", str(max(listing().values()) + 1))
    assert (empty.returncode, empty.stdout) == (1, "")
    assert sessionid("kill", "0").returncode == 2  # session 0 without --force
    assert sessionid("kill", "-s", "BOGUS", "7").returncode == 2


def test_sessionid_kill_ends_members_exit_0_and_1_when_denied(
    children: list[subprocess.Popen[str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command's real ending, run in this process (its main()) on a
    view of the test's own processes: ending session 1 from a child
    process would end this test too."""
    from sessionid_cffi import _kill_windows
    from sessionid_cffi._cli import main

    session = str(s.current_session_id())
    force = ["--force"] if session == "0" else []
    backend = Since()
    children += [start(SLEEPER) for _ in range(3)]
    for child in children:
        ready(child)
    with s.use_backend(backend):  # type: ignore[arg-type]
        capsys.readouterr()
        assert main(["kill", *force, session]) == 0
        out = capsys.readouterr().out
        assert [line.split() for line in out.splitlines()] == [
            [str(child.pid), session] for child in sorted(children, key=lambda c: c.pid)
        ]
        assert [child.wait(30) for child in children] == [signal.SIGTERM] * 3
        # A member the caller may not end: named on stderr, the others ended, exit 1.
        more = [start(SLEEPER) for _ in range(2)]
        children.extend(more)
        for child in more:
            ready(child)
        wrapper = Denying(_kill_windows.kernel32, {more[0].pid}, set())
        monkeypatch.setattr(_kill_windows, "kernel32", wrapper)
        assert main(["kill", *force, session]) == 1
        captured = capsys.readouterr()
        assert str(more[0].pid) in captured.err
        assert captured.out.split() == [str(more[1].pid), session]
    assert more[1].wait(30) == signal.SIGTERM
    assert more[0].poll() is None
