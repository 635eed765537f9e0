"""Real PAM logins through a private sshd (tests/_sshd.py): the session the
kernel gave a login, as the login's own processes read it from
/proc/self/sessionid, is what the library and the ``sessionid`` command
report, from inside the login and from outside, for a ``setsid`` child and
for a process the login left behind after logout; ``sessions`` names the
login's user, leader, terminal and start."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from _sshd import Sshd, sshd  # noqa: F401 - the fixture

import sessionid_cffi as s

from conftest import IS_ROOT

COMMAND = [sys.executable, "-m", "sessionid_cffi"]
# From tests/, not the checkout's root (see test_cli.NEUTRAL).
NEUTRAL = os.path.dirname(os.path.abspath(__file__))

# Runs inside the login: reports what the kernel says (its own sessionid
# file), what the library and the command say, and starts a setsid child
# that reports its own sessionid and outlives the login. Then it waits for
# a line on stdin, so the test can look at it from outside.
INSIDE = r"""
import json, os, subprocess, sys
import sessionid_cffi

def own_session():
    value = int(open("/proc/self/sessionid").read())
    return 0 if value == 4294967295 else value

child = subprocess.Popen(
    ["setsid", sys.executable, "-c",
     "import os, sys; print(open('/proc/self/sessionid').read().strip(), os.getsid(0), flush=True);"
     "sys.stdout.close(); os.close(1); import time; time.sleep(120)"],
    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
)
child_session, child_sid = child.stdout.readline().split()
command = subprocess.run(
    [sys.executable, "-m", "sessionid_cffi", "--json", str(os.getpid()), str(child.pid)],
    capture_output=True, text=True,
)
print(json.dumps({
    "pid": os.getpid(),
    "kernel": own_session(),
    "library_current": sessionid_cffi.current_session_id(),
    "library_pid": sessionid_cffi.process_id_to_session_id(os.getpid()),
    "command": json.loads(command.stdout),
    "child": child.pid,
    "child_kernel": int(child_session),
    "child_sid": int(child_sid),
    "child_library": sessionid_cffi.process_id_to_session_id(child.pid),
}), flush=True)
sys.stdin.readline()
"""


def watched(login: subprocess.Popen[str], timeout: float = 120) -> threading.Timer:
    """A timer that kills ``login`` after ``timeout`` s: a stuck login then
    reads as end of output and fails the test instead of hanging it."""
    watchdog = threading.Timer(timeout, login.kill)
    watchdog.start()
    return watchdog


def line_of(login: subprocess.Popen[str]) -> str:
    """The next line the login prints; fails if it ended without one."""
    assert login.stdout is not None
    line = login.stdout.readline()
    if not line:
        login.kill()
        _, err = login.communicate()
        raise AssertionError(f"the login ended (or was stuck and killed) without output: {err!r}")
    return line


def outside(*args: str) -> object:
    done = subprocess.run(
        [*COMMAND, "--json", *args], capture_output=True, text=True, timeout=60, cwd=NEUTRAL
    )
    assert (done.returncode, done.stderr) == (0, ""), done
    return json.loads(done.stdout)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_login_is_one_session_inside_outside_and_after_logout(sshd: Sshd) -> None:  # noqa: F811
    import base64

    code = base64.b64encode(INSIDE.encode()).decode()
    login = sshd.login(f"{sys.executable} -c \"import base64; exec(base64.b64decode('{code}'))\"")
    watchdog = watched(login)
    assert login.stdout is not None
    assert login.stdin is not None
    report = json.loads(line_of(login))
    child = report["child"]
    try:
        session = report["kernel"]
        assert session not in (0, s.current_session_id())  # a login of its own
        # Inside: the library and the command agree with the kernel.
        assert report["library_current"] == report["library_pid"] == session
        assert report["command"] == {
            "processes": [
                {"pid": report["pid"], "session_id": session},
                {"pid": child, "session_id": session},
            ],
            "errors": [],
        }
        # A setsid child: a new POSIX session (getsid), the same login session.
        assert report["child_sid"] == child
        assert report["child_kernel"] == report["child_library"] == session
        # Outside: the same answers, from the library and the command.
        assert s.process_id_to_session_id(report["pid"]) == session
        assert s.process_id_to_session_id(child) == session
        assert report["pid"] in s.processes_in_session(session)
        listed = outside("ps", "--session", str(session), "-o", "pid,uid,user,luid,login")
        rows = {row["pid"]: row for row in listed["processes"]}  # type: ignore[index]
        assert {report["pid"], child} <= set(rows)
        assert rows[child] == {"pid": child, "uid": 0, "user": "root", "luid": 0, "login": "root"}
        # Logout: the login's shell ends; the setsid child stays in the session.
        login.stdin.write("\n")
        login.stdin.flush()
        login.wait(timeout=30)
        deadline = time.monotonic() + 10
        while alive(report["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(report["pid"])
        assert alive(child)
        assert s.process_id_to_session_id(child) == session
        assert outside(str(child)) == {
            "processes": [{"pid": child, "session_id": session}],
            "errors": [],
        }
        [row] = [r for r in outside("sessions")["sessions"] if r["session_id"] == session]  # type: ignore[index]
        assert (row["uid"], row["user"], row["leader"], row["process_count"]) == (
            0,
            "root",
            child,
            1,
        )
    finally:
        watchdog.cancel()
        if login.poll() is None:
            login.kill()
        login.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, 9)
        for stream in (login.stdin, login.stdout, login.stderr):
            if stream is not None:
                stream.close()


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    raise AssertionError(f"no PPid in /proc/{pid}/status")


def test_sessions_shows_a_terminal_login_its_user_leader_tty_and_start(
    sshd: Sshd,  # noqa: F811
) -> None:
    before = time.time()
    login = sshd.login("tty; cat /proc/self/sessionid; echo; echo $$; exec sleep 60", tty=True)
    watchdog = watched(login)
    assert login.stdout is not None
    try:
        tty = line_of(login).strip()
        session = int(line_of(login))
        shell = int(line_of(login))
        after = time.time()
        assert tty.startswith("/dev/pts/")
        [row] = [r for r in outside("sessions")["sessions"] if r["session_id"] == session]  # type: ignore[index]
        # The leader is sshd's per-login process: a child of the listener,
        # which itself is outside the session (session 0).
        leader = row["leader"]
        assert parent_of(leader) == sshd.process.pid
        assert s.process_id_to_session_id(sshd.process.pid) == 0
        assert s.process_id_to_session_id(leader) == session
        assert leader not in (shell, sshd.process.pid)
        since = row["since"]
        from datetime import datetime

        started = datetime.fromisoformat(since).timestamp()
        # btime has whole seconds and sshd authenticates first: a few seconds' slack.
        assert before - 2 <= started <= after + 1, (before, since, after)
        assert row == {
            "session_id": session,
            "uid": 0,
            "user": "root",
            "leader": leader,
            "tty": tty.removeprefix("/dev/"),
            "since": since,
            "process_count": row["process_count"],
            "is_console": False,
            # sshd's per-login process (root) wrote the login uid; its parent,
            # the listener, is root too: every PAM login looks like this.
            "verified": True,
            # Issue 18 (tests/test_session_details.py checks these in depth).
            "host": "127.0.0.1",
            "service": "sshd",
            "idle": row["idle"],
        }
        # The shell (now sleep) and sshd's processes of this login, at least.
        assert row["process_count"] >= 2
        plain = subprocess.run(
            [*COMMAND, "sessions"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            cwd=NEUTRAL,
        ).stdout.splitlines()
        [line] = [ln.split() for ln in plain if ln.split()[0] == str(session)]
        assert line[:5] == [str(session), "0", "root", str(leader), tty.removeprefix("/dev/")]
        assert line[8] == "yes"  # VERIFIED
        ps = subprocess.run(
            [*COMMAND, "ps", "-p", str(shell), "-o", "pid,tty,user,login,comm"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            cwd=NEUTRAL,
        ).stdout.splitlines()
        assert ps[1].split() == [str(shell), tty.removeprefix("/dev/"), "root", "root", "sleep"]
    finally:
        watchdog.cancel()
        login.kill()
        login.wait()
        for stream in (login.stdin, login.stdout, login.stderr):
            if stream is not None:
                stream.close()


UNSET = 4294967295
POSE = "sshd: root@pts/9"


def own_login_uid() -> int:
    with open("/proc/self/loginuid") as file:
        return int(file.read())


def made_login(script: str, user: int | None = None) -> tuple[subprocess.Popen[str], int]:
    """A process started by ``script`` (bash) that opens a login of its own
    by writing /proc/self/loginuid, then prints the session the kernel gave
    it and becomes ``sleep 900``; with the session number from the inside."""
    process = subprocess.Popen(
        ["bash", "-c", f"{script}; cat /proc/self/sessionid; echo; exec -a '{POSE}' sleep 900"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        user=user,
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def session_row(session: int) -> dict[str, object]:
    [row] = [r for r in outside("sessions")["sessions"] if r["session_id"] == session]  # type: ignore[index]
    return row  # type: ignore[no-any-return]


def plain_row(session: int) -> list[str]:
    plain = subprocess.run(
        [*COMMAND, "sessions"], capture_output=True, text=True, timeout=60, check=True, cwd=NEUTRAL
    ).stdout.splitlines()
    [line] = [ln.split() for ln in plain[1:] if ln.split()[0] == str(session)]
    return line


@pytest.mark.parametrize("claimed", [0, 1000])
def test_a_login_forged_by_nobody_is_not_verified(claimed: int) -> None:
    # Issue 20: a process whose loginuid is unset may set it once, to any uid,
    # without privilege. As nobody: claim root's login and pose as sshd.
    if not IS_ROOT:  # root on Linux (Windows has no geteuid)
        pytest.skip("needs root to start a process as nobody")
    if own_login_uid() != UNSET:
        pytest.skip("this test runs inside a login: its children cannot set the login uid")
    forger, session = made_login(f"echo {claimed} > /proc/self/loginuid", user=65534)
    try:
        assert session not in (0, UNSET), "the kernel refused nobody's write"
        row = session_row(session)
        # It looks like a root login, and says it is not verified.
        assert (row["uid"], row["leader"]) == (claimed, forger.pid)
        assert row["verified"] is False
        line = plain_row(session)
        assert line[1:2] + line[3:4] == [str(claimed), str(forger.pid)]
        assert line[8] == "NO"  # VERIFIED
        [info] = [i for i in s.sessions() if i.session_id == session]
        assert info.verified is False
    finally:
        forger.kill()
        forger.wait()
        assert forger.stdout is not None
        forger.stdout.close()


@pytest.mark.parametrize("uid", [0, 1000])
def test_a_login_made_by_root_is_verified(uid: int) -> None:
    if not IS_ROOT:  # root on Linux (Windows has no geteuid)
        pytest.skip("needs root to write a login uid")
    login, session = made_login(f"echo {uid} > /proc/self/loginuid")
    try:
        row = session_row(session)
        assert (row["uid"], row["leader"], row["verified"]) == (uid, login.pid, True)
        assert plain_row(session)[8] == "yes"
    finally:
        login.kill()
        login.wait()
        assert login.stdout is not None
        login.stdout.close()


@pytest.mark.parametrize("parent_stays", [False, True])
def test_a_login_whose_maker_became_root_through_setuid_is_not_verified(
    parent_stays: bool,
) -> None:
    # nobody sets the login uid, then runs a setuid-root program: the
    # process is owned by root (effective uid 0) but its real uid is nobody;
    # and where nobody's shell that started it stays, its parent is nobody.
    if not IS_ROOT:  # root on Linux (Windows has no geteuid)
        pytest.skip("needs root to make a setuid program")
    if own_login_uid() != UNSET:
        pytest.skip("this test runs inside a login: its children cannot set the login uid")
    folder = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's tmp_path is closed to nobody
    program = folder / "sleeper"
    shutil.copy("/bin/sleep", program)
    os.chmod(folder, 0o755)
    os.chmod(program, 0o4755)
    script = (
        "echo 0 > /proc/self/loginuid; echo session $(cat /proc/self/sessionid); "
        f"exec {program} 900"
    )
    if parent_stays:  # a subshell makes the login, its nobody parent waits
        # Labelled lines: the subshell and its parent print in either order.
        script = f"( {script} ) & echo leader $!; wait"
    forger = subprocess.Popen(
        ["bash", "-c", script],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        user=65534,
    )
    try:
        assert forger.stdout is not None
        said = dict(forger.stdout.readline().split() for _ in range(1 + parent_stays))
        leader = int(said["leader"]) if parent_stays else forger.pid
        session = int(said["session"])
        deadline = time.monotonic() + 10
        while os.stat(f"/proc/{leader}").st_uid != 0:  # the exec has happened
            assert time.monotonic() < deadline
            time.sleep(0.01)
        row = session_row(session)
        assert (row["uid"], row["leader"]) == (0, leader)
        assert row["verified"] is False
    finally:
        if parent_stays:
            os.kill(leader, 9)
        forger.kill()
        forger.wait()
        assert forger.stdout is not None
        forger.stdout.close()
        shutil.rmtree(folder)


def test_a_login_whose_maker_dropped_to_its_own_user_cannot_be_told() -> None:
    # What systemd's user@.service does: root writes the user's uid, then the
    # process becomes that user. A service of that user forging its own
    # login looks the same from outside (root parent, own uid as login uid).
    if not IS_ROOT:  # root on Linux (Windows has no geteuid)
        pytest.skip("needs root to write a login uid")
    code = (
        "import os, sys\n"
        "open('/proc/self/loginuid', 'w').write('1000')\n"
        "print(open('/proc/self/sessionid').read(), flush=True)\n"
        "os.setgid(1000)\n"
        "os.setuid(1000)\n"
        "print(flush=True)\n"
        "sys.stdin.read()\n"
    )
    login = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert login.stdout is not None
        session = int(login.stdout.readline())
        login.stdout.readline()  # it is now uid 1000
        row = session_row(session)
        assert (row["uid"], row["leader"]) == (1000, login.pid)
        assert row["verified"] is None
        assert plain_row(session)[8] == "-"
    finally:
        login.kill()
        login.wait()
        for stream in (login.stdin, login.stdout):
            if stream is not None:
                stream.close()
