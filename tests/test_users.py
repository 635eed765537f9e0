"""``users()`` against psutil.users(), for real (issue 18).

psutil reads utmp, written by OpenSSH itself: an independent oracle for
terminal logins. Each scene runs sshd in a private mount namespace with a
private /run, so a utmp made there (as a distribution that keeps one) is
the one sshd writes and psutil reads, and the machine's /run is untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from _private_run import in_private_run
from _sshd import Sshd

import sessionid_cffi as s

from conftest import needs_root

F = TypeVar("F", bound=Callable[..., Any])

# The utmp scenes: Linux, root (sshd, private mounts) and psutil.
real_logins = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="utmp and sshd: Linux"),
    needs_root,
]
try:
    import psutil
except ImportError:
    psutil = None
    real_logins.append(pytest.mark.skip(reason="psutil is not installed (the test group has it)"))


def _apply(marks: list[pytest.MarkDecorator]) -> Callable[[F], F]:
    def decorate(test: F) -> F:
        for mark in marks:
            test = mark(test)
        return test

    return decorate


REPORT = "cat /proc/self/sessionid; echo; echo $$; exec sleep 120"


def _scene(
    tmp: Path, utmp: bool
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], int, int]:
    """Both views with a -tt login and a command login running."""
    if utmp:
        import grp

        Path("/run/utmp").touch()
        os.chown("/run/utmp", 0, grp.getgrnam("utmp").gr_gid)
        os.chmod("/run/utmp", 0o664)
    os.makedirs("/run/sshd", exist_ok=True)
    daemon = Sshd(Path(tempfile.mkdtemp(dir=tmp)))
    logins: list[subprocess.Popen[str]] = []
    try:
        shells, sessions = [], set()
        for tty in (True, False):
            login = daemon.login(REPORT, tty=tty)
            logins.append(login)
            assert login.stdout is not None
            sessions.add(int(login.stdout.readline()))
            shells.append(int(login.stdout.readline()))
        # Other logins of this machine (other tests, benchmarks) are left out.
        ours = [tuple(e) for e in s.users() if s.process_id_to_session_id(e.pid) in sessions]
        theirs = [tuple(entry) for entry in psutil.users()]
        # The same names and fields, so code written for psutil reads ours.
        for ours_entry, theirs_entry in zip(s.users(), psutil.users(), strict=False):
            assert type(ours_entry).__name__ == type(theirs_entry).__name__ == "suser"
            assert ours_entry._fields == theirs_entry._fields
        return ours, theirs, shells[0], shells[1]
    finally:
        for login in logins:
            login.kill()
            login.wait(timeout=30)
        daemon.close()


@_apply(real_logins)
def test_users_equals_psutil_users_where_utmp_records_the_login(tmp_path: Path) -> None:
    ours, theirs, terminal_shell, command_shell = in_private_run({}, lambda: _scene(tmp_path, True))
    # psutil (utmp) lists the terminal login only, with the PID of the
    # command sshd ran on the terminal, which the remote shell reported.
    [(name, terminal, host, started, pid)] = theirs
    assert (name, host, pid) == ("root", "127.0.0.1", terminal_shell)
    [entry] = [e for e in ours if e[4] != command_shell]
    assert entry[:3] == (name, terminal, host)
    assert entry[4] == pid
    assert abs(entry[3] - started) < 1  # type: ignore[operator]
    # The command login has no terminal: in neither view.
    assert all(e[4] != command_shell for e in ours)
    assert len(ours) == 1


@_apply(real_logins)
def test_users_lists_the_login_where_there_is_no_utmp(tmp_path: Path) -> None:
    ours, theirs, terminal_shell, _ = in_private_run({}, lambda: _scene(tmp_path, False))
    assert theirs == []  # psutil without utmp: nothing (psutil issue 2597)
    [(name, terminal, host, started, pid)] = ours
    assert (name, host, pid) == ("root", "127.0.0.1", terminal_shell)
    assert str(terminal).startswith("pts/")
    assert started is not None


class _StationBackend:
    """A backend that lists its sessions itself, as kernel32's does
    (WinStations, no terminal per process): users() needs nothing more
    from it. Built on the model, which holds only its processes."""

    def __init__(self, infos: list[object]) -> None:
        from sessionid_cffi.emulation.model import ModelBackend

        self._model = ModelBackend({4: 1, 8: 2, 12: 0})
        self._infos = infos
        self.name = "stations"

    def __getattr__(self, name: str) -> object:
        return getattr(self._model, name)

    def session_infos(self) -> list[object]:
        return self._infos


def test_users_from_a_backend_that_lists_sessions_itself_as_windows_does() -> None:
    infos = [
        s.SessionInfo(0, tty="Services", process_count=1),
        s.SessionInfo(1, user="alice", tty="Console", since=100.0, leader=4, process_count=1),
        s.SessionInfo(2, user="bob", tty="RDP-Tcp#0", since=200.0, host="192.0.2.7"),
        s.SessionInfo(3, tty="RDP-Tcp#1"),  # disconnected, nobody logged on
    ]
    with s.use_backend(_StationBackend(infos)):  # type: ignore[type-var]
        listed = [tuple(entry) for entry in s.users()]
    local = "" if sys.platform.startswith("linux") else None
    assert listed == [
        ("alice", "Console", local, 100.0, 4),
        ("bob", "RDP-Tcp#0", "192.0.2.7", 200.0, None),
    ]
