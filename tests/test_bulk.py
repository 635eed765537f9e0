"""Bulk queries: processes_in_session(), sessions(), SessionInfo and the
backends' process_records(), on the model (any OS) and on real processes
(Linux procfs, with real login sessions as root; Windows kernel32)."""

from __future__ import annotations

import collections
import os
import pickle
import subprocess
import sys
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sessionid_cffi as s
from sessionid_cffi import SessionInfo, use_backend
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
            SessionInfo(0, None, 2, False),
            SessionInfo(1, "alice", 2, True),
            SessionInfo(2, "bob", 1, False),
        ]
        model.console_session = None
        assert [info.is_console for info in s.sessions()] == [False, False, False]


def test_process_records_follow_spawn_and_reap() -> None:
    model, _ = model_world()
    model.spawn(400, 2, command="vim")
    assert (400, 2, "bob", "vim") in model.process_records()
    model.exit(400)
    assert (400, 2, "bob", "vim") in model.process_records()  # a zombie answers
    model.reap(400)
    assert all(record[0] != 400 for record in model.process_records())
    model.spawn(400, 1)  # PID reused: nothing of the old process is left
    assert (400, 1, "alice", None) in model.process_records()


@pytest.mark.parametrize("bad", ["1", 1.0, None, True, b"1"])
def test_processes_in_session_refuses_non_integers(bad: object) -> None:
    with pytest.raises(TypeError, match="session_id"):
        s.processes_in_session(bad)


@pytest.mark.parametrize("bad", [-1, 2**32, 2**64])
def test_processes_in_session_refuses_non_dwords(bad: int) -> None:
    with pytest.raises(ValueError, match="session_id"):
        s.processes_in_session(bad)


TABLES = st.dictionaries(
    st.integers(1, 5000).map(lambda n: n * 4), st.integers(0, 6), max_size=40
)


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
        assert info.user == users.get(info.session_id)
        assert info.is_console == (info.session_id == console)


def test_session_info_is_a_read_only_value() -> None:
    info = SessionInfo(3, "alice", 2, True)
    assert (info.session_id, info.user, info.process_count, info.is_console) == (
        3,
        "alice",
        2,
        True,
    )
    assert info == SessionInfo(3, "alice", 2, True)
    assert info != SessionInfo(3, "alice", 3, True)
    assert hash(info) == hash(SessionInfo(3, "alice", 2, True))
    assert pickle.loads(pickle.dumps(info)) == info
    assert eval(repr(info), {"SessionInfo": SessionInfo}) == info
    with pytest.raises(AttributeError):
        info.user = "mallory"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        info.extra = 1  # type: ignore[attr-defined]


def test_new_names_are_exported() -> None:
    for name in ("SessionInfo", "processes_in_session", "sessions"):
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


def user_of(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


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


@linux_only
def test_records_match_independent_reads() -> None:
    records = {record[0]: record for record in s.get_backend().process_records()}
    own = records[os.getpid()]
    with open("/proc/self/comm") as file:
        assert own[3] == file.read().rstrip("\n")
    with open("/proc/self/loginuid") as file:
        uid = int(file.read())
    assert own[2] == (None if uid == AUDIT_UNSET else user_of(uid))
    assert own[1] == s.current_session_id()


@linux_only
def test_own_session_is_listed_with_this_process() -> None:
    own = s.current_session_id()
    assert os.getpid() in s.processes_in_session(own)
    info = {i.session_id: i for i in s.sessions()}[own]
    assert info.process_count >= 1
    assert info.is_console == (own == s.active_console_session_id())


@needs_root
def test_login_sessions_show_up_as_their_own_sessions(login: Login) -> None:
    other = Login(uid=4242424)  # no passwd entry: the user is the number
    try:
        assert {login.session, other.session}.isdisjoint({0})
        assert login.session != other.session
        scanned = s.session_ids()
        assert scanned[login.pid] == login.session
        assert scanned[other.pid] == other.session
        assert s.processes_in_session(login.session) == [login.pid]
        assert s.processes_in_session(other.session) == [other.pid]
        listed = {info.session_id: info for info in s.sessions()}
        console = s.active_console_session_id()
        assert listed[login.session] == SessionInfo(
            login.session, user_of(1000), 1, login.session == console
        )
        assert listed[other.session] == SessionInfo(
            other.session, "4242424", 1, other.session == console
        )
        records = {r[0]: r for r in s.get_backend().process_records()}
        with open(f"/proc/{login.pid}/comm") as file:
            comm = file.read().rstrip("\n")
        assert records[login.pid] == (login.pid, login.session, user_of(1000), comm)
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
            for pid, session, user, command in s.get_backend().process_records():
                if command is not None and command.startswith("churn"):
                    assert user == str(3000000 + int(command[5:])), (pid, user, command)
                    assert session != 0
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
    records = {r[0]: r for r in s.get_backend().process_records()}
    _pid, session, _user, command = records[os.getpid()]
    assert session == own
    assert command is not None
    assert command.lower().endswith(".exe")
    info = {i.session_id: i for i in s.sessions()}[own]
    assert info.process_count >= 1
    assert info.is_console == (own == s.active_console_session_id())
