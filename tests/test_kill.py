"""kill_session and ``sessionid kill`` on real logins (Linux, root).

A login is a child that writes a uid to /proc/self/loginuid (a fresh audit
session its descendants inherit) and starts members that escape the job
control session: a setsid'd one, a double-forked one, a nohup'd one, and a
shell loop that keeps forking. Truth is read from /proc/<pid>/sessionid and
/proc/<pid>/stat directly, never through the library.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from test_cli import valid
from test_pid_reuse import LOGINS

import sessionid_cffi as sid

from conftest import IS_ROOT, Login

needs_login = pytest.mark.skipif(
    not IS_ROOT or not hasattr(os, "pidfd_open"),
    reason="needs root on Linux with pidfd_open: starts logins and signals them",
)

WORLD = r"""
import subprocess, sys
open('/proc/self/loginuid', 'w').write(sys.argv[1])
print(open('/proc/self/sessionid').read(), flush=True)
quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
subprocess.Popen(['setsid', 'sleep', '1000'], **quiet)
subprocess.Popen(['sh', '-c', '(sleep 1000 &); nohup sleep 1000 &'], **quiet)
if sys.argv[2] == 'forker':
    subprocess.Popen(['sh', '-c', 'while :; do sleep 0.01 & done'], **quiet)
if sys.argv[2] == 'spawner':
    # Last, so its PID is the highest: the member signalled last. Its own
    # pipe (not this process's stdin, which this process reads too): it reads
    # the test's "go", or EOF once this process is killed, then starts a member.
    spawner = subprocess.Popen(
        ['sh', '-c', 'read line; sleep 2000'], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
if sys.argv[2] == 'stubborn':
    subprocess.Popen(['sh', '-c', 'trap "" TERM; while :; do sleep 0.05; done'], **quiet)
print('ready', flush=True)
sys.stdin.read()
"""


def members(session: int) -> dict[int, str]:
    """{pid: state letter} of every process whose own sessionid reads ``session``."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/sessionid") as file:
                if int(file.read()) != session:
                    continue
            with open(f"/proc/{name}/stat") as file:
                found[int(name)] = file.read().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError):
            continue
    return found


def running(session: int) -> list[int]:
    return sorted(pid for pid, state in members(session).items() if state != "Z")


def none_running_soon(session: int) -> bool:
    """Whether nothing of ``session`` runs within 5 s: a signalled process
    takes a moment to die on a loaded machine, while a member the kill
    missed (sleep 1000) would still run."""
    deadline = time.monotonic() + 5
    while running(session):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class World:
    def __init__(self, uid: int, kind: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORLD, str(uid), kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.session = int(self.process.stdout.readline())  # the child's own report
        assert self.process.stdout.readline() == "ready\n"  # every member started
        # The login, 3 sleeps, and the loop's shell (and a child of it). The
        # double fork's shells come and go on their own: the three
        # `sleep 1000` must all run, and only they count towards `want`.
        want = {"forker": 6, "stubborn": 5, "spawner": 5}.get(kind, 4)
        deadline = time.monotonic() + 10
        while (
            len(running_with(self.session, b"sleep\x001000")) != 3
            or len(running(self.session)) < want
        ):
            assert time.monotonic() < deadline, members(self.session)
            time.sleep(0.02)

    def close(self) -> None:
        for pid in running(self.session):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    made = World(5000 + os.getpid() % 1000, getattr(request, "param", "forker"))
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def bystanders() -> Iterator[tuple[Login, subprocess.Popen[bytes]]]:
    """Another login, and a process in the caller's own session."""
    other = Login(uid=4242)
    mine = subprocess.Popen(["sleep", "1000"])
    try:
        yield other, mine
    finally:
        other.close()
        mine.kill()
        mine.wait()


def running_with(session: int, marker: bytes) -> list[int]:
    """The running members whose command line holds ``marker``."""
    found = []
    for pid in running(session):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                if marker in file.read():
                    found.append(pid)
        except OSError:
            continue  # exited meanwhile
    return found


def long_sleeps(session: int) -> list[int]:
    """The members running ``sleep 1000`` (those that would outlive the login)."""
    return running_with(session, b"sleep\x001000\x00")


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as file:
        return int(file.read().rsplit(")", 1)[1].split()[1])


def state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as file:
        return file.read().rsplit(")", 1)[1].split()[0]


def assert_untouched(bystanders: tuple[Login, subprocess.Popen[bytes]]) -> None:
    other, mine = bystanders
    for process in (other.process, mine):
        # Still running a moment later (a signal takes a moment to end it).
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=0.3)
        assert state(process.pid) != "T"
    assert running(other.session) == [other.pid]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessionid_cffi", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_login
def test_kill_session_sigkill_leaves_nothing_of_a_forking_login(world, bystanders) -> None:
    lasting = [world.process.pid, *long_sleeps(world.session)]
    assert len(lasting) == 4  # the login, its setsid'd, double-forked and nohup'd members
    signalled = sid.kill_session(world.session, signal.SIGKILL)
    assert signalled == sorted(signalled)
    assert set(lasting) <= set(signalled)
    assert world.process.wait(timeout=10) == -signal.SIGKILL
    assert none_running_soon(world.session)
    assert_untouched(bystanders)


@needs_login
def test_sessionid_kill_s_kill_leaves_nothing_of_a_forking_login(world, bystanders) -> None:
    lasting = long_sleeps(world.session)
    assert len(lasting) == 3
    done = cli("kill", "-s", "KILL", str(world.session))
    assert done.returncode == 0, done.stderr
    listed = {int(line.split()[0]) for line in done.stdout.splitlines()}
    assert {world.process.pid, *lasting} <= listed
    assert world.process.wait(timeout=10) == -signal.SIGKILL
    assert none_running_soon(world.session)
    assert_untouched(bystanders)
    # Nothing left: exit 1, nothing printed.
    again = cli("kill", "-s", "9", str(world.session))
    assert (again.returncode, again.stdout) == (1, ""), again
    empty = cli("kill", "--json", str(world.session))
    assert empty.returncode == 1
    assert valid(json.loads(empty.stdout)) == {
        "signal": signal.SIGTERM,
        "dry_run": False,
        "processes": [],
        "errors": [],
    }


@needs_login
@pytest.mark.parametrize("world", ["quiet"], indirect=True)
def test_dry_run_lists_the_members_and_signals_nothing(world, bystanders) -> None:
    truth = running(world.session)
    assert sid.kill_session(world.session, signal.SIGKILL, dry_run=True) == truth
    done = cli("kill", "--dry-run", "--json", "-s", "KILL", str(world.session))
    assert done.returncode == 0, done.stderr
    document = valid(json.loads(done.stdout))
    assert isinstance(document, dict)
    assert [p["pid"] for p in document["processes"]] == truth
    assert document["dry_run"] is True
    assert document["signal"] == signal.SIGKILL
    assert running(world.session) == truth
    assert all(state(pid) != "T" for pid in truth)
    assert_untouched(bystanders)


@needs_login
@pytest.mark.parametrize("world", ["stubborn"], indirect=True)
def test_sigterm_continues_what_it_stopped(world) -> None:
    # The member that ignores TERM is stopped while the session is frozen:
    # it must run again afterwards, not stay stopped.
    stubborn = [
        pid for pid in running_with(world.session, b"trap") if parent(pid) == world.process.pid
    ]
    assert len(stubborn) == 1
    signalled = sid.kill_session(world.session)
    assert stubborn[0] in signalled
    assert world.process.pid in signalled
    assert world.process.wait(timeout=10) == -signal.SIGTERM
    time.sleep(0.3)
    assert state(stubborn[0]) in "SR", state(stubborn[0])


@needs_login
@pytest.mark.parametrize("world", ["spawner"], indirect=True)
@pytest.mark.parametrize(
    "sig", [getattr(signal, "SIGKILL", 9), signal.SIGTERM]
)  # Windows has no SIGKILL
def test_a_member_started_after_the_scan_is_caught_by_the_rescan(world, sig, monkeypatch) -> None:
    # Deterministic: once the first member is signalled, the spawner (not
    # signalled yet: highest PID) starts a new member the scan never saw.
    from sessionid_cffi import _kill as kill_module

    spawner = [pid for pid in running_with(world.session, b"read line") if pid != world.process.pid]
    assert len(spawner) == 1
    real = kill_module._signal
    started: list[int] = []

    class Spy:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def pidfd_send_signal(self, pidfd: int, number: int) -> None:
            real.pidfd_send_signal(pidfd, number)
            if number and not started:
                with open(f"/proc/{spawner[0]}/fd/0", "w") as pipe:
                    pipe.write("go\n")
                deadline = time.monotonic() + 10
                while not started:
                    assert time.monotonic() < deadline
                    started.extend(running_with(world.session, b"sleep\x002000"))

    monkeypatch.setattr(kill_module, "_signal", Spy())
    signalled = sid.kill_session(world.session, sig)
    assert started[0] in signalled
    world.process.wait(timeout=10)
    assert none_running_soon(world.session)


@needs_login
def test_the_caller_is_left_out_unless_asked(login) -> None:
    # The caller's own session holds the caller: never signalled by default.
    own = sid.current_session_id()
    listed = sid.kill_session(own, signal.SIGKILL, dry_run=True, allow_session_zero=True)
    assert os.getpid() not in listed
    listed = sid.kill_session(
        own, signal.SIGKILL, dry_run=True, include_self=True, allow_session_zero=True
    )
    assert os.getpid() in listed


@needs_login
def test_session_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="session 0"):
        sid.kill_session(0, signal.SIGKILL, dry_run=True)
    done = cli("kill", "-s", "KILL", "0")
    assert done.returncode == 2
    assert "session 0" in done.stderr


@needs_login
def test_exit_codes_and_usage_errors(login) -> None:
    session = login.session
    login.close()  # the session held one process; now none
    assert (cli("kill", str(session)).returncode, cli("kill", str(session)).stdout) == (1, "")
    for bad in (["kill", "-s", "NOPE", "7"], ["kill", "-s", "999", "7"], ["kill"], ["kill", "x"]):
        done = cli(*bad)
        assert done.returncode == 2, (bad, done)
        assert done.stderr.startswith("sessionid: "), done.stderr
    assert cli("--dry-run", "7").returncode == 2


@pytest.mark.parametrize(
    ("session", "sig", "error"),
    [
        ("5", signal.SIGTERM, TypeError),
        (5.0, signal.SIGTERM, TypeError),
        (True, signal.SIGTERM, TypeError),
        (None, signal.SIGTERM, TypeError),
        (-1, signal.SIGTERM, ValueError),
        (2**32, signal.SIGTERM, ValueError),
        (5, "TERM", TypeError),
        (5, True, TypeError),
        (5, 999, ValueError),
        (5, -1, ValueError),
    ],
)
def test_bad_arguments_raise(session: object, sig: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        sid.kill_session(session, sig, dry_run=True)  # type: ignore[arg-type]


def test_the_model_backend_removes_the_members() -> None:
    from sessionid_cffi.testing import ModelBackend

    model = ModelBackend({10: 1, 11: 1, 12: 2, os.getpid(): 1}, denied=[11])
    with sid.use_backend(model), pytest.raises(sid.AccessDeniedError) as caught:
        sid.kill_session(1)
    assert caught.value.denied == [11]
    assert caught.value.signalled == [10]
    assert model.processes() == {11: 1, 12: 2, os.getpid(): 1}


SCENE = (
    r"""
import json, os, signal, subprocess
import sessionid_cffi as sid
from sessionid_cffi import _kill as kill_module
from sessionid_cffi.emulation import procfs as procfs_module
"""
    + LOGINS
    + r"""


class Steps:
    # Stands in for os (procfs.py and _kill.py) and signal (_kill.py).
    def __init__(self, module, counter):
        self.module, self.counter = module, counter

    def __getattr__(self, name):
        real = getattr(self.module, name)
        if not callable(real) or name in ("getpid", "fsdecode", "fsencode") or name.isupper():
            return real
        def step(*args, **kwargs):
            result = real(*args, **kwargs)
            self.counter(name, args)
            return result
        return step


def names(name, args, pid):
    if name == "pidfd_open":
        return args[0] == pid
    paths = [os.fsdecode(a) for a in args if isinstance(a, (str, bytes))]
    return any(f"/{pid}/" in a or a.startswith(f"{pid}/") for a in paths)


def hooked(after):
    state = {"count": 0}
    def counter(name, args):
        state["count"] += 1
        after(state["count"], name, args)
    procfs_module.os = Steps(os, counter)
    kill_module.os = Steps(os, counter)
    kill_module._signal = Steps(signal, counter)
    return state


def unhook():
    procfs_module.os = kill_module.os = os
    kill_module._signal = signal


report = {"rounds": [], "reused": 0}
target, session = login()
sid.kill_session(session, 0, dry_run=True)  # the namespace check is then done and kept
first = []
def note_first(step, name, args):
    if not first and names(name, args, target.pid):
        first.append(step)
state = hooked(note_first)
try:
    assert sid.kill_session(session, signal.SIGKILL) == [target.pid]
    total = state["count"]
finally:
    unhook()
end(target)
for k in range(first[0], total + 1):
    target, session = login()
    pid = target.pid
    swapped = {}
    def swap(step, name, args):
        if step != k:
            return
        end(target)
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        newcomer, new_session = login()
        swapped.update(newcomer=newcomer, session=new_session, after=name)
    hooked(swap)
    try:
        answer = sid.kill_session(session, signal.SIGKILL)
    finally:
        unhook()
    newcomer = swapped["newcomer"]
    try:  # a signal takes a moment to end it: wait that moment
        newcomer.wait(timeout=0.3)
        alive = False
    except subprocess.TimeoutExpired:
        alive = True
    report["reused"] += newcomer.pid == pid
    report["rounds"].append({"step": k, "after": swapped["after"], "pid": pid,
                             "newcomer_pid": newcomer.pid, "alive": alive,
                             "target": session, "newcomer": swapped["session"],
                             "answer": answer})
    end(newcomer)
print(json.dumps(report))
"""
)


@needs_login
def test_a_reused_pid_is_never_signalled() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) from util-linux")
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", SCENE],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rounds = report["rounds"]
    assert len(rounds) >= 5, rounds
    assert report["reused"] == len(rounds), rounds
    for r in rounds:
        assert r["target"] != r["newcomer"], r
        assert r["alive"], r  # the newcomer on the reused PID was never signalled
        assert r["answer"] in ([], [r["pid"]]), r
    # Both outcomes: the swap came before the target was signalled, and after.
    assert any(r["answer"] == [] for r in rounds), rounds
    assert any(r["answer"] == [r["pid"]] for r in rounds), rounds


@needs_login
@pytest.mark.parametrize("world", ["quiet"], indirect=True)
def test_it_gives_up_after_the_timeout_and_resumes_what_it_stopped(world) -> None:
    # Any deadline shorter than one pass: the first pass finds new members,
    # and there is no time left for the rescan that would prove none is new.
    truth = running(world.session)
    with pytest.raises(sid.KillTimeoutError) as caught:
        sid.kill_session(world.session, signal.SIGTERM, timeout=1e-9)
    assert caught.value.winerror == 1460
    assert "gave up" in str(caught.value)
    assert running(world.session) == truth  # nothing signalled
    assert all(state(pid) != "T" for pid in truth)  # nothing left stopped


@pytest.mark.parametrize(
    ("timeout", "error"), [(0, ValueError), (-1.0, ValueError), ("1", TypeError)]
)
def test_a_bad_timeout_raises(timeout: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        sid.kill_session(5, signal.SIGTERM, dry_run=True, timeout=timeout)  # type: ignore[arg-type]


DENIED_LOGIN = r"""
import os, subprocess, sys
open('/proc/self/loginuid', 'w').write('4343')
print(open('/proc/self/sessionid').read(), flush=True)
mine = subprocess.Popen(['sleep', '1000'], user=65534, group=65534, extra_groups=[])
print(mine.pid, flush=True)
sys.stdin.read()
"""


@needs_login
def test_members_the_caller_may_not_signal_are_named_after_the_others() -> None:
    # A login with a root-owned leader and a member owned by nobody; the
    # caller runs as nobody: it may signal the member only.
    login = subprocess.Popen(
        [sys.executable, "-c", DENIED_LOGIN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    session = member = 0
    try:
        assert login.stdout is not None
        session = int(login.stdout.readline())
        member = int(login.stdout.readline())
        # Loaded as root, then dropped to nobody (the install may not be
        # readable by nobody): a dry run loads every module kill needs.
        code = (
            "import io, json, os, sys, sessionid_cffi as s\n"
            "from sessionid_cffi import _cli\n"
            f"s.kill_session({session}, 0, dry_run=True)\n"
            "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
            "try:\n"
            f"    s.kill_session({session}, 15)\n"
            "except s.AccessDeniedError as err:\n"
            "    found = [err.winerror, err.pid, err.denied, err.signalled, str(err)]\n"
            "out, sys.stdout, sys.stderr = sys.stdout, io.StringIO(), io.StringIO()\n"
            f"status = _cli.main(['kill', '{session}'])\n"
            "print(json.dumps([found, status, sys.stderr.getvalue()]), file=out)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd="/",
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert done.returncode == 0, done.stderr
        found, status, stderr = json.loads(done.stdout)
        winerror, pid, denied, signalled, message = found
        assert (winerror, pid, denied, signalled) == (5, login.pid, [login.pid], [member])
        assert str(login.pid) in message
        # The member got SIGTERM; the leader runs on, not left stopped.
        deadline = time.monotonic() + 10
        while member in running(session):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert login.poll() is None
        assert state(login.pid) != "T"
        # The command, the member gone: the leader is refused, exit 1.
        assert status == 1
        assert stderr.startswith("sessionid: ")
        assert str(login.pid) in stderr
    finally:
        for pid in running(session) if session else ():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # the member too, if the kill missed it
        login.kill()
        login.wait()
        for stream in (login.stdin, login.stdout):
            if stream is not None:
                stream.close()
        # Until init reaped it: a process of nobody's, even a zombie, would
        # show in other tests that count what nobody can see.
        deadline = time.monotonic() + 10
        while member and os.path.exists(f"/proc/{member}") and time.monotonic() < deadline:
            time.sleep(0.02)


def test_backends_that_cannot_signal_refuse() -> None:
    from sessionid_cffi.emulation.procfs import ProcfsBackend

    class Answers:
        """A backend of the user's own: it answers, it cannot signal."""

        name = "answers"

        def session_id(self, pid: int) -> int:
            return 3

        def console_session_id(self) -> None:
            return None

        def session_ids(self, pids: list[int] | None) -> dict[int, int]:
            return {10: 3}

    # A tree laid out like procfs is not this namespace's processes; a
    # backend of the user's own cannot signal (kernel32: tests/test_kill_windows.py).
    with sid.use_backend(Answers()), pytest.raises(sid.BackendUnavailableError) as caught:
        sid.kill_session(3, signal.SIGTERM)
    assert caught.value.winerror == 50
    tree = ProcfsBackend("/proc", live=False)
    with sid.use_backend(tree), pytest.raises(sid.BackendUnavailableError):
        sid.kill_session(3, signal.SIGTERM)


@needs_login
@pytest.mark.parametrize("world", ["quiet"], indirect=True)
def test_without_pidfd_open_it_refuses_rather_than_signal_by_pid(world, monkeypatch) -> None:
    # A stand-in for a kernel older than 5.3 (or a seccomp filter), which
    # this machine cannot be made into: pidfd_open fails with ENOSYS.
    import errno

    from sessionid_cffi import _kill as kill_module

    class NoPidfd:
        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

        def pidfd_open(self, pid: int) -> int:
            raise OSError(errno.ENOSYS, "Function not implemented")

    truth = running(world.session)
    monkeypatch.setattr(kill_module, "os", NoPidfd())
    with pytest.raises(sid.BackendUnavailableError, match="pidfd_open"):
        sid.kill_session(world.session, signal.SIGKILL)
    assert running(world.session) == truth


@needs_login
def test_include_self_signals_the_caller_last() -> None:
    # A login whose leader ends its own login, itself included: the member
    # gets the signal first, then the caller (SIGTERM ends both).
    code = (
        "import subprocess, sys, sessionid_cffi as s\n"
        "open('/proc/self/loginuid', 'w').write('4444')\n"
        "member = subprocess.Popen(['sleep', '1000'])\n"
        "session = int(open('/proc/self/sessionid').read())\n"
        "print(session, member.pid, flush=True)\n"
        "s.kill_session(session, 15, include_self=True)\n"
        "member.wait()\n"
        "print('survived', flush=True)\n"
    )
    caller = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert caller.stdout is not None
    session, member = map(int, caller.stdout.readline().split())
    assert caller.wait(timeout=30) == -signal.SIGTERM
    assert caller.stdout.read() == ""
    caller.stdout.close()
    assert none_running_soon(session), members(session)
    assert member not in running(session)
