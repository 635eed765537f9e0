"""Bulk queries: processes_in_session(), sessions(), SessionInfo and the
backends' process_records(), on the model (any OS) and on real processes
(Linux procfs, with real login sessions as root; Windows kernel32)."""

from __future__ import annotations

import collections
import json
import os
import pickle
import subprocess
import sys
import threading
import time

import pytest
from _private_run import in_private_run, logind_files
from hypothesis import given
from hypothesis import strategies as st

import sessionid_cffi as s
from sessionid_cffi import ProcessRecord, SessionInfo, use_backend
from sessionid_cffi.testing import ModelBackend

from conftest import Login, linux_only, needs_root, windows_only

AUDIT_UNSET = 4294967295


# -- the model: the API's own logic on any OS -------------------------------------


def model_world() -> tuple[ModelBackend, dict[int, int]]:
    table = {4: 0, 8: 0, 100: 1, 101: 1, 102: 1, 200: 2, 300: 3}
    model = ModelBackend(
        table,
        denied=[300, 101],
        zombies=[102],
        threads=[103],
        console_session=1,
        users={1: "alice", 2: "bob"},
        commands={100: "bash", 102: "defunct", 200: "sshd"},
    )
    return model, table


def test_processes_in_session_lists_inspectable_pids_in_order() -> None:
    model, _ = model_world()
    with use_backend(model):
        assert s.processes_in_session(1) == [100, 102]  # 101 denied, 103 a thread
        assert s.processes_in_session(0) == [4, 8]
        assert s.processes_in_session(3) == []  # its only process is denied
        assert s.processes_in_session(77) == []


def test_sessions_aggregates_users_counts_and_the_console() -> None:
    model, _ = model_world()
    with use_backend(model):
        assert s.sessions() == [
            # The model knows no uids, start times or terminals: None.
            SessionInfo(0, None, None, None, None, None, 2, False),
            SessionInfo(1, None, "alice", None, None, None, 2, True),
            SessionInfo(2, None, "bob", None, None, None, 1, False),
        ]
        model.console_session = None
        assert [info.is_console for info in s.sessions()] == [False, False, False]


def test_process_records_follow_spawn_and_reap() -> None:
    model, _ = model_world()
    model.spawn(400, 2, command="vim")
    vim = ProcessRecord(400, 2, login="bob", comm="vim")
    assert vim in model.process_records()
    model.exit(400)
    assert vim in model.process_records()  # a zombie answers
    model.reap(400)
    assert all(record.pid != 400 for record in model.process_records())
    model.spawn(400, 1)  # PID reused: nothing of the old process is left
    assert ProcessRecord(400, 1, login="alice") in model.process_records()


@pytest.mark.parametrize("bad", ["1", 1.0, None, True, b"1"])
def test_processes_in_session_refuses_non_integers(bad: object) -> None:
    with pytest.raises(TypeError, match="session_id"):
        s.processes_in_session(bad)


@pytest.mark.parametrize("bad", [-1, 2**32, 2**64])
def test_processes_in_session_refuses_non_dwords(bad: int) -> None:
    with pytest.raises(ValueError, match="session_id"):
        s.processes_in_session(bad)


TABLES = st.dictionaries(st.integers(1, 5000).map(lambda n: n * 4), st.integers(0, 6), max_size=40)


@given(table=TABLES, data=st.data())
def test_bulk_views_agree_with_the_table(table: dict[int, int], data: st.DataObject) -> None:
    denied = data.draw(st.sets(st.sampled_from(sorted(table)))) if table else set()
    console = data.draw(st.none() | st.integers(0, 7))
    users = data.draw(st.dictionaries(st.integers(0, 6), st.text(min_size=1, max_size=5)))
    model = ModelBackend(table, denied=denied, console_session=console, users=users)
    visible = {pid: session for pid, session in table.items() if pid not in denied}
    with use_backend(model):
        listed = s.sessions()
        by_session = {
            session: sorted(pid for pid in visible if visible[pid] == session)
            for session in set(visible.values())
        }
        for session in range(8):
            assert s.processes_in_session(session) == by_session.get(session, [])
    counts = collections.Counter(visible.values())
    assert [info.session_id for info in listed] == sorted(counts)
    for info in listed:
        assert info.process_count == counts[info.session_id]
        # Session 0 (system and services) never has a user, whatever the map says.
        assert info.user == (None if info.session_id == 0 else users.get(info.session_id))
        assert info.is_console == (info.session_id == console)


def test_session_info_is_a_named_tuple() -> None:
    info = SessionInfo(
        3, 1000, "alice", 4242, "pts/3", 1.5e9, 2, True, False, "10.0.0.9", "sshd", 7.5
    )
    session_id, uid, user, leader, tty, since, count, console, verified, host, service, idle = info
    assert (session_id, uid, user, leader, tty, since, count, console, verified) == (
        3,
        1000,
        "alice",
        4242,
        "pts/3",
        1.5e9,
        2,
        True,
        False,
    )
    assert (host, service, idle) == ("10.0.0.9", "sshd", 7.5)
    assert info._asdict() == {
        "session_id": 3,
        "uid": 1000,
        "user": "alice",
        "leader": 4242,
        "tty": "pts/3",
        "since": 1.5e9,
        "process_count": 2,
        "is_console": True,
        "verified": False,
        "host": "10.0.0.9",
        "service": "sshd",
        "idle": 7.5,
    }
    assert json.loads(json.dumps(info)) == list(info)
    assert json.loads(json.dumps(info._asdict())) == info._asdict()
    assert info == SessionInfo(*info)
    assert info != info._replace(process_count=3)
    assert hash(info) == hash(SessionInfo(*info))
    assert pickle.loads(pickle.dumps(info)) == info
    assert eval(repr(info), {"SessionInfo": SessionInfo}) == info
    assert SessionInfo._fields == tuple(info._asdict())
    with pytest.raises(AttributeError):
        info.user = "mallory"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        info.extra = 1  # type: ignore[attr-defined]
    # Issue 17: the session and keywords, the rest defaulted.
    defaulted = (3, None, "alice", None, None, None, 0, False, None, None, None, None)
    assert SessionInfo(3, user="alice") == defaulted
    with pytest.raises(TypeError, match="missing"):
        SessionInfo(user="alice")  # type: ignore[call-arg]


def test_process_record_is_a_named_tuple_with_optional_fields() -> None:
    record = ProcessRecord(42, 3, comm="sshd", uid=0)
    assert (record.pid, record.session_id, record.comm, record.uid) == (42, 3, "sshd", 0)
    assert record.ppid is record.args is record.started is None
    pid, session, *rest = record
    assert (pid, session, len(rest)) == (42, 3, len(ProcessRecord._fields) - 2)
    assert json.loads(json.dumps(record._asdict()))["comm"] == "sshd"
    assert pickle.loads(pickle.dumps(record)) == record
    assert eval(repr(record), {"ProcessRecord": ProcessRecord}) == record
    assert ProcessRecord._make(record) == record
    with pytest.raises(TypeError, match="unexpected field 'command'"):
        ProcessRecord(42, 3, command="sshd")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="twice"):
        ProcessRecord(42, 3, pid=43)  # type: ignore[misc]
    with pytest.raises(TypeError, match="missing session_id"):
        ProcessRecord(42)  # type: ignore[call-arg]


def test_process_records_refuses_unknown_fields() -> None:
    model, _ = model_world()
    with use_backend(model):
        with pytest.raises(ValueError, match=r"'command'.*choose from: pid, session_id"):
            s.process_records(["comm", "command"])
        with pytest.raises(TypeError, match="not a string"):
            s.process_records("comm")
        assert {r.pid for r in s.process_records(["comm"])} == {4, 8, 100, 102, 200}


def test_records_without_a_recording_backend_carry_pid_and_session() -> None:
    class Minimal:
        name = "minimal"

        def session_id(self, pid: int) -> int:
            return {7: 1}[pid]

        def console_session_id(self) -> None:
            return None

        def session_ids(self, pids: list[int] | None) -> dict[int, int]:
            return {7: 1}

    with use_backend(Minimal()):
        assert s.process_records() == [ProcessRecord(7, 1)]
        assert s.sessions() == [SessionInfo(1, None, None, None, None, None, 1, False)]


def test_new_names_are_exported() -> None:
    for name in (
        "ProcessRecord",
        "SessionInfo",
        "process_records",
        "processes_in_session",
        "sessions",
    ):
        assert name in s.__all__
        assert getattr(s, name) is not None


# -- the live backend: what this machine's processes say --------------------------


def read_sessionid(pid: int) -> int | None:
    """Ground truth, read independently of the library (None when gone)."""
    try:
        with open(f"/proc/{pid}/sessionid") as file:
            value = int(file.read())
    except (FileNotFoundError, ProcessLookupError):
        return None
    return 0 if value == AUDIT_UNSET else value


def user_of(uid: int) -> str | None:
    """The passwd name, None where there is none (never a number as text)."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


@linux_only
def test_scan_matches_an_independent_read_of_every_process() -> None:
    before = {int(name) for name in os.listdir("/proc") if name.isdigit()}
    scanned = s.session_ids()
    assert os.getpid() in scanned
    compared = 0
    for pid, session in scanned.items():
        truth = read_sessionid(pid)
        if truth is not None:  # still there
            assert session == truth, pid
            compared += 1
    assert compared > 0
    # Nothing is lost: a process there before the scan and still there after it is listed.
    missing = {pid for pid in before - set(scanned) if read_sessionid(pid) is not None}
    assert not missing


# A child that reports its own truth from the inside, then waits: it runs on
# a pty that `setsid -c` makes its controlling terminal and drops from root
# to nobody, as sshd's privilege-separated process does. Not dumpable (what a
# uid change leaves where fs.suid_dumpable is 0, and what ssh-agent asks
# for), the kernel shows /proc/<pid> as owned by root; dumpable, as nobody.
REPORTER = """
import ctypes, json, os, sys, time
os.setgid(65534)
os.setuid(65534)
ctypes.CDLL(None).prctl(4, int(sys.argv[1] == "dumpable"), 0, 0, 0)  # PR_SET_DUMPABLE
print(json.dumps({
    "pid": os.getpid(), "ppid": os.getppid(), "euid": os.geteuid(),
    "tty": os.ttyname(0), "comm": open("/proc/self/comm").read().rstrip("\\n"),
    "argv": sys.argv, "session": int(open("/proc/self/sessionid").read()),
}), flush=True)
sys.stdin.read()
"""


def report_from(mode: str) -> tuple[subprocess.Popen[str], dict[str, object], float]:
    """The child, its report, and the time just before it started."""
    import pty

    leader, follower = pty.openpty()
    before = time.time()
    child = subprocess.Popen(
        ["setsid", "-c", *reporter_argv(mode)],
        stdin=follower,
        stdout=subprocess.PIPE,
        text=True,
    )
    os.close(follower)
    assert child.stdout is not None
    report = json.loads(child.stdout.readline())
    child.leader_fd = leader  # type: ignore[attr-defined]
    return child, report, before


def reporter_argv(mode: str) -> list[str]:
    return [sys.executable, "-c", REPORTER, mode, "arg  x"]


def stop(child: subprocess.Popen[str]) -> None:
    child.kill()
    child.wait()
    os.close(child.leader_fd)  # type: ignore[attr-defined]
    assert child.stdout is not None
    child.stdout.close()


@needs_root
@pytest.mark.parametrize("mode", ["dumpable", "undumpable"])
def test_records_match_what_the_process_reports_itself(mode: str) -> None:
    child, report, before = report_from(mode)
    try:
        # The trap is set: a file of an undumpable process shows root. Only
        # its directory keeps the effective uid (procfs's task_dump_owner).
        owner = os.stat(f"/proc/{report['pid']}/stat").st_uid
        assert owner == (0 if mode == "undumpable" else 65534)
        records = {r.pid: r for r in s.process_records()}
        after = time.time()
        record = records[report["pid"]]  # type: ignore[index]
        session = report["session"]
        assert record.session_id == (0 if session == AUDIT_UNSET else session)
        assert record.ppid == report["ppid"]
        assert record.uid == report["euid"] == 65534
        assert record.user == user_of(65534)
        assert record.tty == report["tty"].removeprefix("/dev/")  # type: ignore[union-attr]
        assert record.comm == report["comm"]
        assert record.args == " ".join(reporter_argv(mode))
        # btime has whole seconds: the start is known to within one.
        assert record.started is not None
        assert before - 1 <= record.started <= after + 1
        # Asked for less, the others stay None (their files are not read).
        [slim] = [r for r in s.process_records(["comm"]) if r.pid == report["pid"]]
        assert slim == ProcessRecord(record.pid, record.session_id, comm=report["comm"])
        [bare] = [r for r in s.process_records(["uid"]) if r.pid == report["pid"]]
        assert bare == ProcessRecord(record.pid, record.session_id, uid=65534, user=record.user)
    finally:
        stop(child)


@linux_only
def test_records_of_this_process_match_independent_reads() -> None:
    own = {r.pid: r for r in s.process_records()}[os.getpid()]
    with open("/proc/self/comm") as file:
        assert own.comm == file.read().rstrip("\n")
    with open("/proc/self/loginuid") as file:
        uid = int(file.read())
    assert own.luid == (None if uid == AUDIT_UNSET else uid)
    assert own.login == (None if uid == AUDIT_UNSET else user_of(uid))
    assert (own.session_id, own.ppid, own.uid) == (
        s.current_session_id(),
        os.getppid(),
        os.geteuid(),
    )
    with open("/proc/self/cmdline", "rb") as cmdline:
        assert own.args == cmdline.read().rstrip(b"\0").replace(b"\0", b" ").decode()


@linux_only
def test_own_session_is_listed_with_this_process() -> None:
    # Truth from the inside: this process's own sessionid, read as a file.
    with open("/proc/self/sessionid") as file:
        raw = int(file.read())
    own = 0 if raw == AUDIT_UNSET else raw
    assert os.getpid() in s.processes_in_session(own)
    info = {i.session_id: i for i in s.sessions()}[own]
    assert info.process_count >= 1


@linux_only
@needs_root
def test_is_console_is_the_session_logind_names_on_seat0() -> None:
    # The console is what logind's seat0 file says, under a private /run the
    # test fills (tests/_private_run.py): this session, another one, none.
    with open("/proc/self/sessionid") as file:
        raw = int(file.read())
    own = 0 if raw == AUDIT_UNSET else raw
    elsewhere = own + 1 if own else 4242  # a session nobody is in

    def scene() -> tuple[int | None, dict[int, bool]]:
        return s.active_console_session_id(), {i.session_id: i.is_console for i in s.sessions()}

    for active in ([own] if own else []) + [elsewhere, None]:
        name = None if active is None else str(active)
        files = logind_files(name, {} if name is None else {name: active})
        console, is_console = in_private_run(files, scene)
        assert console == active
        assert is_console[own] == (own == active), (active, is_console)
        assert sum(is_console.values()) == (active in is_console), (active, is_console)


@needs_root
def test_login_sessions_show_up_as_their_own_sessions(login: Login) -> None:
    other = Login(uid=4242424)  # no passwd entry: no name, the uid says who
    try:
        assert {login.session, other.session}.isdisjoint({0})
        assert login.session != other.session
        scanned = s.session_ids()
        assert scanned[login.pid] == login.session
        assert scanned[other.pid] == other.session
        assert s.processes_in_session(login.session) == [login.pid]
        assert s.processes_in_session(other.session) == [other.pid]
        # The console: login's session, as logind would name it on seat0
        # (a private /run the test fills; tests/_private_run.py).
        seat = logind_files(str(login.session), {str(login.session): login.session})
        listed = in_private_run(seat, lambda: {info.session_id: info for info in s.sessions()})
        for who, uid, name in ((login, 1000, user_of(1000)), (other, 4242424, None)):
            info = listed[who.session]
            assert (info.uid, info.user, info.leader, info.process_count) == (uid, name, who.pid, 1)
            assert info.is_console == (who is login)
            assert info.tty is None  # the child has no terminal
        records = {r.pid: r for r in s.process_records()}
        with open(f"/proc/{login.pid}/comm") as file:
            comm = file.read().rstrip("\n")
        record = records[login.pid]
        assert (record.session_id, record.luid, record.login, record.comm) == (
            login.session,
            1000,
            user_of(1000),
            comm,
        )
        assert (record.uid, record.user, record.ppid) == (0, "root", os.getpid())
    finally:
        other.close()
    assert s.processes_in_session(other.session) == []


CHURN = """
import os, sys
k = int(sys.argv[1])
open('/proc/self/loginuid', 'w').write(str(3000000 + k))
open('/proc/self/comm', 'w').write('churn%d' % k)
"""


@needs_root
def test_records_never_mix_processes_while_pids_come_and_go() -> None:
    # Short-lived logins: each child writes its own uid, then names itself
    # after it. A record named churnK must carry that child's user and a
    # login session, whatever was reaped or reused in between.
    stop = threading.Event()

    def churn() -> None:
        k = 0
        while not stop.is_set():
            subprocess.run([sys.executable, "-c", CHURN, str(k)], check=False)
            k += 1

    workers = [threading.Thread(target=churn) for _ in range(2)]
    for worker in workers:
        worker.start()
    checked = 0
    try:
        for _ in range(60):
            for record in s.process_records(["comm", "login", "luid"]):
                command = record.comm
                if command is not None and command.startswith("churn"):
                    expected = 3000000 + int(command[5:])
                    assert (record.luid, record.login) == (expected, None), record
                    assert record.session_id != 0
                    checked += 1
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    if checked == 0:
        pytest.skip("no churning child was caught mid-life in 60 passes")


@windows_only
def test_windows_bulk_lists_this_process() -> None:
    own = s.current_session_id()
    assert s.session_ids()[os.getpid()] == own
    assert os.getpid() in s.processes_in_session(own)
    records = {r.pid: r for r in s.process_records()}
    record = records[os.getpid()]
    assert record.session_id == own
    assert record.comm is not None
    assert record.comm.lower().endswith(".exe")
    info = {i.session_id: i for i in s.sessions()}[own]
    assert info.process_count >= 1
    assert info.is_console == (own == s.active_console_session_id())
    assert info.uid is None
    assert info.leader is None
    assert info.tty == record.tty  # the session's WinStation, for both
    if under_wine():
        # Wine 8 lists no session in WTSEnumerateSessionsW (TRUE, count 0)
        # and refuses WTSSessionInfo (FALSE, last error 0): no station, no
        # logon time. This fails, as a reminder, once Wine answers.
        assert (info.tty, info.since) == (None, None)
    else:
        assert info.tty  # "Console", "RDP-Tcp#0", "Services"...
        assert info.since is not None
        assert info.since <= time.time()


# A Windows child that reports the account it runs as from the inside
# (GetUserNameW: its own token's user), then waits for stdin to close.
WHO_AM_I = r"""
import ctypes, sys
size = ctypes.c_ulong(257)
name = ctypes.create_unicode_buffer(size.value)
assert ctypes.WinDLL("advapi32").GetUserNameW(name, ctypes.byref(size))
print(name.value, flush=True)
sys.stdin.read()
"""


@windows_only
def test_windows_owner_is_the_account_the_process_reports_itself() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", WHO_AM_I],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        reported = child.stdout.readline().strip()  # type: ignore[union-attr]
        assert reported
        owners = {r.pid: r.user for r in s.process_records(["user"])}
        assert owners[child.pid] == reported
        # The owner is looked up only when asked for: a hint, kept.
        assert {r.pid: r.user for r in s.process_records(["comm"])}[child.pid] is None
    finally:
        child.communicate("")


def under_wine() -> bool:
    import ctypes

    return hasattr(ctypes.WinDLL("ntdll"), "wine_get_version")  # type: ignore[attr-defined]


class Listing:
    """A backend with fixed records, for sessions()' aggregation rules."""

    name = "listing"

    def __init__(self, records: list[ProcessRecord]) -> None:
        self.records = records

    def session_id(self, pid: int) -> int:
        return {r.pid: r.session_id for r in self.records}[pid]

    def console_session_id(self) -> int | None:
        return 5

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        return {r.pid: r.session_id for r in self.records}

    def process_records(self, fields: frozenset[str] | None) -> list[ProcessRecord]:
        return list(self.records)


def test_session_leader_is_the_earliest_start_and_on_a_tie_the_one_entered_from_outside() -> None:
    # Start times tick at 10 ms: a login's first process and its child can
    # share one. The leader is the one whose parent is outside the session.
    records = [
        # PIDs wrapped: the child (20) has a lower PID than its parent (30).
        ProcessRecord(20, 5, ppid=30, luid=1000, login="alice", tty=None, started=100.0),
        ProcessRecord(30, 5, ppid=1, luid=1000, login="alice", tty=None, started=100.0),
        ProcessRecord(40, 5, ppid=20, luid=1000, login="alice", tty="pts/7", started=101.0),
        ProcessRecord(10, 5, ppid=2, luid=1000, login="alice", tty="pts/1", started=102.0),
        # Session 0 is nobody's login, whatever a backend says of its first process.
        ProcessRecord(1, 0, ppid=0, luid=0, login="root", started=1.0),
    ]
    with use_backend(Listing(records)):
        assert s.sessions() == [
            SessionInfo(0, None, None, 1, None, 1.0, 1, False),
            # tty: of the earliest-started process that has one.
            SessionInfo(5, 1000, "alice", 30, "pts/7", 100.0, 4, True),
        ]
