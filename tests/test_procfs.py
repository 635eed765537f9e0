"""The Linux emulation backend on real processes and real login sessions.

Ground truth is what each process reads about itself from its own
``/proc/self/sessionid``; the backend, asked from outside, must agree.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sessionid_cffi.emulation.procfs import (
    _PARSED_LIMIT,
    AUDIT_UNSET,
    PID_MAX_LIMIT,
    ProcfsBackend,
)

import sessionid_cffi as s

from conftest import IS_ROOT, LINUX, Login, needs_root

pytestmark = pytest.mark.skipif(not LINUX, reason="procfs is the Linux backend")


def own_truth() -> int:
    raw = int(Path("/proc/self/sessionid").read_text())
    return 0 if raw == AUDIT_UNSET else raw


# A child that first writes its loginuid ("-": leaves it), then reports its
# sessionid file and the library's answer from inside, and waits.
OWN_SESSION_CHILD = (
    "import sys, sessionid_cffi as s\n"
    "if sys.argv[1] != '-':\n"
    "    try:\n"
    "        open('/proc/self/loginuid', 'w').write(sys.argv[1])\n"
    "    except PermissionError:\n"
    "        print('denied', flush=True); sys.exit()\n"
    "print(open('/proc/self/sessionid').read(), s.current_session_id(), flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.mark.parametrize("loginuid", ["4294967295", "65534"], ids=["unset", "set"])
def test_unset_audit_session_is_session_0_and_set_ones_are_kept(loginuid: str) -> None:
    """A child with an unset loginuid (4294967295) is in session 0; one that
    logged in (any uid) is in the fresh session the kernel gave it, as its
    own sessionid file says, asked from inside and from outside. Writing
    the loginuid needs root, or a loginuid that is still unset."""
    child = subprocess.Popen(
        [sys.executable, "-c", OWN_SESSION_CHILD, loginuid],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        if line == ["denied"]:
            pytest.skip("this process's loginuid is set and it is not root: cannot log in")
        raw, inside = (int(x) for x in line)
        if loginuid == "4294967295":
            assert raw == AUDIT_UNSET
            expected = 0
        else:
            assert raw not in (AUDIT_UNSET, 0)
            expected = raw
        assert inside == expected
        assert s.process_id_to_session_id(child.pid) == expected
        assert s.session_ids([child.pid]) == {child.pid: expected}
    finally:
        child.kill()
        child.wait()


def test_every_listed_process_agrees_with_its_sessionid_file() -> None:
    backend = ProcfsBackend()
    checked = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            raw = int(Path(f"/proc/{name}/sessionid").read_text())
        except FileNotFoundError:
            continue  # exited since the listing
        try:
            answer = backend.session_id(int(name))
        except ProcessLookupError:
            # "Not found" is only true of a process that is gone by now.
            assert not Path(f"/proc/{name}").exists(), f"{name} is alive, the backend says gone"
            continue
        assert answer == (0 if raw == AUDIT_UNSET else raw), name
        checked += 1
    assert checked > 5


@needs_root
def test_a_new_login_is_its_own_session_seen_from_outside(login: Login) -> None:
    assert login.session not in (0, own_truth())
    assert s.process_id_to_session_id(login.pid) == login.session


@needs_root
def test_two_logins_get_distinct_sessions() -> None:
    first, second = Login(1000), Login(1001)
    try:
        assert first.session != second.session
        assert s.process_id_to_session_id(first.pid) == first.session
        assert s.process_id_to_session_id(second.pid) == second.session
    finally:
        first.close()
        second.close()


@needs_root
def test_children_of_a_login_inherit_it() -> None:
    """A login's child and grandchild report the login's session (C2)."""
    code = (
        "import subprocess, sys\n"
        "open('/proc/self/loginuid', 'w').write('1000')\n"
        "grand = subprocess.Popen([sys.executable, '-c', "
        "'import sys; print(open(\"/proc/self/sessionid\").read(), flush=True); sys.stdin.read()'],"
        " stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)\n"
        "child_line = grand.stdout.readline().strip()\n"
        "print(open('/proc/self/sessionid').read(), grand.pid, child_line, flush=True)\n"
        "sys.stdin.read(); grand.kill(); grand.wait()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        session, grand_pid, grand_session = (int(x) for x in child.stdout.readline().split())
        assert session == grand_session != 0
        assert s.process_id_to_session_id(child.pid) == session
        assert s.process_id_to_session_id(grand_pid) == session
    finally:
        child.kill()
        child.wait()


@needs_root
def test_a_zombie_keeps_its_login_session_until_reaped(login: Login) -> None:
    login.process.kill()
    os.waitid(os.P_PID, login.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
    assert Path(f"/proc/{login.pid}/stat").read_text().split(") ")[1][0] == "Z"
    assert s.process_id_to_session_id(login.pid) == login.session
    login.process.wait()
    with pytest.raises(s.ProcessNotFoundError) as caught:
        s.process_id_to_session_id(login.pid)
    assert caught.value.errno == errno.ENOENT


def test_a_thread_id_is_not_a_process(thread_id: int) -> None:
    assert Path(f"/proc/{thread_id}/sessionid").exists()  # procfs answers for it...
    with pytest.raises(s.ProcessNotFoundError, match="thread") as caught:
        s.process_id_to_session_id(thread_id)  # ...but it names no process
    assert caught.value.winerror == 87
    # The status-file check (used where pidfd_open is unavailable) agrees.
    with pytest.raises(s.ProcessNotFoundError, match="thread"):
        ProcfsBackend(live=False).session_id(thread_id)


@pytest.mark.parametrize("pid", [0, PID_MAX_LIMIT, PID_MAX_LIMIT + 1, 2**31, 2**32 - 1])
def test_impossible_pids_answer_87_without_touching_procfs(tmp_path: Path, pid: int) -> None:
    # An empty proc_root: any filesystem access would report "no procfs".
    with pytest.raises(s.ProcessNotFoundError):
        ProcfsBackend(str(tmp_path)).session_id(pid)


def test_no_procfs_is_a_clear_error_at_call_time(tmp_path: Path) -> None:
    backend = ProcfsBackend(str(tmp_path))  # constructing it does not fail
    with pytest.raises(s.BackendUnavailableError, match="mount -t proc") as caught:
        backend.session_id(1)
    assert caught.value.winerror == 50
    with s.use_backend(backend):
        out = s.ffi.new("DWORD *", 7)
        assert (s.ProcessIdToSessionId(1, out), s.GetLastError(), out[0]) == (0, 50, 7)


def fake_proc(root: Path, pid: int, tgid: int | None = None, **files: str) -> None:
    """A process directory in a fake procfs tree."""
    (root / "self").mkdir(exist_ok=True)
    base = root / str(pid)
    base.mkdir()
    (base / "status").write_text(f"Name:\tx\nUmask:\t0022\nState:\tS\nTgid:\t{tgid or pid}\n")
    for name, content in files.items():
        (base / name).write_text(content)


def test_kernel_without_audit_falls_back_to_the_logind_cgroup(tmp_path: Path) -> None:
    fake_proc(tmp_path, 10, cgroup="0::/user.slice/user-1000.slice/session-4.scope\n")
    fake_proc(tmp_path, 11, cgroup="0::/user.slice/user-1000.slice/session-c7.scope\n")
    fake_proc(tmp_path, 12, cgroup="0::/system.slice/cron.service\n")
    fake_proc(tmp_path, 13, tgid=10, cgroup="0::/user.slice/user-1000.slice/session-4.scope\n")
    backend = ProcfsBackend(str(tmp_path))
    assert backend.live is False
    assert [backend.session_id(pid) for pid in (10, 11, 12)] == [4, 7, 0]
    with pytest.raises(s.ProcessNotFoundError, match="thread"):
        backend.session_id(13)
    with pytest.raises(s.ProcessNotFoundError):
        backend.session_id(14)


def test_audit_values_map_as_documented(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "sessionid").write_text(str(AUDIT_UNSET))
    fake_proc(tmp_path, 20, sessionid=str(AUDIT_UNSET))
    fake_proc(tmp_path, 21, sessionid="1")
    fake_proc(tmp_path, 22, sessionid=str(AUDIT_UNSET - 1))
    fake_proc(tmp_path, 23, sessionid="12abc")
    backend = ProcfsBackend(str(tmp_path))
    # Asked again in another order: answers never depend on what came before.
    asked = (20, 21, 22, 21, 20, 22, 20)
    assert [backend.session_id(pid) for pid in asked] == [
        0,
        1,
        AUDIT_UNSET - 1,
        1,
        0,
        AUDIT_UNSET - 1,
        0,
    ]
    with pytest.raises(s.SessionIdError, match="not a session id") as caught:
        backend.session_id(23)
    assert caught.value.winerror == 13
    with pytest.raises(s.SessionIdError, match="not a session id"):
        backend.session_ids(None)  # a bulk pass never hides a malformed entry


def test_many_distinct_sessions_answer_right_and_stay_bounded(tmp_path: Path) -> None:
    """The backend keeps parsed sessionid contents; more distinct ones than
    it keeps still answer right, and what it keeps stays bounded."""
    count = _PARSED_LIMIT + 50
    for pid in range(1, count + 1):
        fake_proc(tmp_path, pid, sessionid=str(pid * 7))
    backend = ProcfsBackend(str(tmp_path))
    for _ in range(2):
        assert [backend.session_id(pid) for pid in range(1, count + 1)] == [
            pid * 7 for pid in range(1, count + 1)
        ]
    assert len(backend._parsed) <= _PARSED_LIMIT


@pytest.mark.skipif(not IS_ROOT, reason="needs root to drop to user nobody")
def test_eacces_and_eperm_map_to_access_denied(tmp_path: Path) -> None:
    fake_proc(tmp_path, 30, sessionid="5")
    (tmp_path / "30" / "sessionid").chmod(0)
    tmp_path.chmod(0o755)
    code = (
        "import os, sys, sessionid_cffi as s\n"
        "from sessionid_cffi.emulation.procfs import ProcfsBackend\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "try:\n    ProcfsBackend(sys.argv[1]).session_id(30)\n"
        "except s.AccessDeniedError as e:\n    print(e.winerror, e.errno, e.pid)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.stdout.split() == ["5", str(errno.EACCES), "30"], done.stderr


def test_console_session_comes_from_logind_state(tmp_path: Path) -> None:
    seats, sessions = tmp_path / "systemd" / "seats", tmp_path / "systemd" / "sessions"
    seats.mkdir(parents=True)
    sessions.mkdir(parents=True)
    backend = ProcfsBackend(run_root=str(tmp_path))
    assert backend.console_session_id() is None  # no seat0: nobody at the console
    (seats / "seat0").write_text("IS_SEAT0=1\nACTIVE=c2\nACTIVE_UID=1000\n")
    (sessions / "c2").write_text("UID=1000\nUSER=ann\nAUDIT=17\n")
    assert backend.console_session_id() == 17
    (sessions / "c2").write_text("UID=1000\nUSER=ann\n")
    assert backend.console_session_id() == 2
    (seats / "seat0").write_text("IS_SEAT0=1\nACTIVE=5\n")
    assert backend.console_session_id() == 5
    (seats / "seat0").write_text("IS_SEAT0=1\n")
    assert backend.console_session_id() is None


# -- a PID namespace whose /proc belongs to another one ------------------------
NAMESPACE_SCENE = r"""
import ctypes, json, os, subprocess, sys
open("/proc/self/loginuid", "w").write("1000")  # a fresh login: session N != 0
import sessionid_cffi as s
from sessionid_cffi import ffi

def own_truth():
    raw = int(open("/proc/self/sessionid").read())
    return 0 if raw == 2**32 - 1 else raw

def outcome(call):
    try:
        return ["ok", call()]
    except s.SessionIdError as err:
        return [type(err).__name__, err.winerror, str(err)]

def raw(pid):
    out = ffi.new("DWORD *", 0xDEADBEEF)
    return [s.ProcessIdToSessionId(pid, out), s.GetLastError(), int(out[0])]

result = {"truth": own_truth(), "parent": outcome(lambda: s.process_id_to_session_id(os.getppid()))}
# The answer for another PID above made the backend check /proc and keep its verdict.
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x20000000) != 0:  # CLONE_NEWPID: the next child is PID 1 of a new namespace
    print(json.dumps({"skip": os.strerror(ctypes.get_errno())}))
    sys.exit()
read_end, write_end = os.pipe()
child = os.fork()
if child == 0:  # forked into the new namespace, with the parent's backend object
    helper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                              stdin=subprocess.PIPE)
    fresh = subprocess.run(
        [sys.executable, "-c", "import json, sessionid_cffi as s\n"
         "def o(c):\n    try: return ['ok', c()]\n"
         "    except s.SessionIdError as e: return [type(e).__name__, e.winerror, str(e)]\n"
         "print(json.dumps([o(s.current_session_id), o(lambda: s.process_id_to_session_id(1)),"
         " int(open('/proc/self/sessionid').read())]))"],
        capture_output=True, text=True)
    got = {
        "pid": os.getpid(), "helper": helper.pid, "truth": own_truth(),
        "current": outcome(s.current_session_id),
        "own": outcome(lambda: s.process_id_to_session_id(os.getpid())),
        "other": outcome(lambda: s.process_id_to_session_id(helper.pid)),
        "own_list": outcome(lambda: s.session_ids([os.getpid()])),
        "mixed_list": outcome(lambda: s.session_ids([os.getpid(), helper.pid])),
        "all": outcome(lambda: s.session_ids()),
        "raw_own": raw(os.getpid()), "raw_other": raw(helper.pid),
        "fresh": json.loads(fresh.stdout) if fresh.returncode == 0 else fresh.stderr,
    }
    helper.kill(); helper.wait()
    os.write(write_end, json.dumps(got).encode())
    os._exit(0)
os.close(write_end)
data = b""
while chunk := os.read(read_end, 65536):
    data += chunk
os.waitpid(child, 0)
result["inside"] = json.loads(data)
print(json.dumps(result))
"""


@needs_root
def test_in_a_pid_namespace_without_its_own_proc_only_the_own_session_answers(
    tmp_path: Path,
) -> None:
    """``unshare -pf`` without a new /proc: /proc/<N> is the host's process N.

    The caller's own session comes through /proc/self (right in any PID
    namespace); any other PID gets a clear error naming the problem, never
    the session of the host process that happens to carry that number. A
    child forked into the namespace with its parent's backend checks again.
    Truth: each process's own /proc/self/sessionid, in a fresh login (N != 0,
    while the host's PID 1 and 2 are in session 0).
    """
    done = subprocess.run(
        [sys.executable, "-c", NAMESPACE_SCENE],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    if "skip" in result:
        pytest.skip(f"no new PID namespace here: {result['skip']}")
    session = result["truth"]
    assert session != 0
    assert result["parent"][0] == "ok"  # before unshare, other PIDs answer
    inside = result["inside"]
    assert inside["pid"] == 1  # a new PID namespace, seen from inside
    assert inside["truth"] == session  # the kernel keeps the login across namespaces
    assert inside["current"] == ["ok", session]
    assert inside["own"] == ["ok", session]
    assert inside["own_list"] == ["ok", {"1": session}]
    assert inside["raw_own"] == [1, 0, session]
    for key in ("other", "mixed_list", "all"):
        assert inside[key][:2] == ["BackendUnavailableError", 50], (key, inside[key])
        assert "PID namespace" in inside[key][2], inside[key]
    assert inside["raw_other"] == [0, 50, 0xDEADBEEF]
    # A fresh interpreter started inside the namespace: the same answers.
    current, pid_1, fresh_truth = inside["fresh"]
    assert current == ["ok", 0 if fresh_truth == AUDIT_UNSET else fresh_truth] == ["ok", session]
    assert pid_1[:2] == ["BackendUnavailableError", 50]
