"""The procfs backend's corners that mutation testing found unexamined.

Each test here was written against a mutant that survived the rest of the
fast suite (tools/mutation.py, docs/reliability.md). They judge through the
backend's public methods, on crafted procfs trees (truth: what the test
wrote) and on real processes (truth: the kernel's own files). Where a
failure cannot be made real here (ENOMEM, a kernel without pidfd_open), the
test says so and patches only the one system call.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _private_run import as_pid_one, in_private_run, logind_files

from sessionid_cffi import (
    BackendUnavailableError,
    ProcessNotFoundError,
    ProcessRecord,
    SessionIdError,
)

from conftest import LINUX, needs_root

pytestmark = pytest.mark.skipif(not LINUX, reason="the procfs backend reads Linux procfs trees")

if LINUX:  # pwd and resource are POSIX-only modules
    import pwd
    import resource

    from sessionid_cffi.emulation.procfs import ProcfsBackend

UNSET = 2**32 - 1
# The boot time every crafted tree's /stat gives (btime), and each crafted
# process's parent and start (clock ticks after boot): the truth that records
# are judged against.
BTIME = 1_700_000_000
PPID = 1


def ticks_of(pid: int) -> int:
    return pid * 7


def tree(root: Path, audit: bool = True, **processes: dict[str, bytes | str]) -> None:
    """A procfs-like tree: ``p42={"sessionid": "5\\n"}`` makes /42 with a
    status whose Tgid is 42 (unless given) and the named files. A process
    given a ``comm`` is whole, as the records read it: a ``stat`` line with
    that name, parent PPID, no tty and start ``ticks_of(pid)``, and an empty
    ``cmdline`` (unless given). One without is what a process that exited
    mid-pass looks like. The root gets a ``stat`` with ``btime BTIME``."""
    (root / "self").mkdir(parents=True, exist_ok=True)
    if not (root / "stat").exists():
        (root / "stat").write_text(f"cpu  1 2 3 4\nbtime {BTIME}\nprocesses 9\n")
    if audit:
        (root / "self" / "sessionid").write_text(f"{UNSET}\n")
    for key, files in processes.items():
        pid = int(key[1:])
        base = root / str(pid)
        base.mkdir()
        files.setdefault("status", f"Name:\tx\nUmask:\t0022\nState:\tS\nTgid:\t{pid}\n")
        if "comm" in files:
            comm = files["comm"]
            name = (comm.encode() if isinstance(comm, str) else comm).rstrip(b"\n")
            # pid (comm) state ppid pgrp session tty_nr tpgid flags ... starttime (22nd)
            tail = f" S {PPID} {pid} {pid} 0 -1 4194560" + " 0" * 12 + f" {ticks_of(pid)} 0 0\n"
            files.setdefault("stat", b"%d (" % pid + name + b")" + tail.encode())
            files.setdefault("cmdline", b"")
        for name, content in files.items():
            (base / name).write_bytes(content.encode() if isinstance(content, str) else content)


def record(
    root: Path, pid: int, session: int, comm: str, luid: int | None = None, args: str | None = None
) -> ProcessRecord:
    """The record of crafted process ``pid``, from what ``tree`` wrote and the
    owner of its folder (whoever runs the test)."""
    uid = (root / str(pid)).stat().st_uid
    return ProcessRecord(
        pid,
        session,
        ppid=PPID,
        uid=uid,
        user=pwd.getpwuid(uid).pw_name,
        luid=luid,
        login=None if luid is None else pwd.getpwuid(luid).pw_name,
        comm=comm,
        args=args,
        started=BTIME + ticks_of(pid) / os.sysconf("SC_CLK_TCK"),
    )


def malformed(
    caught: pytest.ExceptionInfo[SessionIdError], pid: int, path: str, data: bytes
) -> None:
    """A file with content that is no session: winerror 13 (ERROR_INVALID_DATA),
    no errno (no system call failed), the PID asked, and a message naming the
    file and showing its first 40 bytes ("..." when there is more)."""
    err = caught.value
    assert type(err) is SessionIdError, repr(err)
    assert (err.winerror, err.errno, err.pid) == (13, None, pid)
    shown = repr(data[:40] + (b"..." if len(data) > 40 else b""))
    assert f"{path} holds {shown}," in str(err), str(err)
    assert "\n" not in str(err)


def os_error(err: SessionIdError, pid: int | None, code: int, path: str) -> None:
    """An OSError from procfs keeps its errno and names the PID and the file."""
    assert (err.pid, err.errno) == (pid, code), repr(err)
    assert path in str(err), str(err)


# -- content that is not a session: every refusal names PID, file and bytes ----

BAD_SESSIONID = [
    b"12abc\n",
    b"4294967296\n",  # one past a DWORD
    b"00000000001\n",  # 11 digits: the kernel prints %u, never padded
    "\u0663\n".encode(),  # an Arabic-Indic digit: isdigit(), not a session
    b"1" * 40,  # exactly 40 bytes: shown whole
    b"1" * 41,  # 41: shown cut, with "..."
    b"",
]


@pytest.mark.parametrize("data", BAD_SESSIONID)
def test_a_malformed_sessionid_is_refused_naming_the_file(tmp_path: Path, data: bytes) -> None:
    tree(tmp_path, p42={"sessionid": data})
    with pytest.raises(SessionIdError) as caught:
        ProcfsBackend(str(tmp_path) + "/", live=False).session_id(42)  # trailing "/" is dropped
    malformed(caught, 42, f"{tmp_path}/42/sessionid", data)


@pytest.mark.parametrize("data", BAD_SESSIONID[:4])
def test_bulk_passes_refuse_a_malformed_sessionid_naming_its_process(
    tmp_path: Path, data: bytes
) -> None:
    tree(
        tmp_path,
        p7={"sessionid": "3\n", "comm": "a\n", "loginuid": "0\n"},
        p42={"sessionid": data, "comm": "b\n", "loginuid": "0\n"},
    )
    with pytest.raises(SessionIdError) as caught:
        ProcfsBackend(str(tmp_path), live=False).session_ids(None)
    malformed(caught, 42, "42/sessionid", data)


def test_records_refuse_a_malformed_sessionid_as_invalid_data(tmp_path: Path) -> None:
    tree(
        tmp_path,
        p7={"sessionid": "3\n", "comm": "a\n", "loginuid": "0\n"},
        p42={"sessionid": b"12abc\n", "comm": "b\n", "loginuid": "0\n"},
    )
    with pytest.raises(SessionIdError) as caught:
        ProcfsBackend(str(tmp_path), live=False).process_records()
    malformed(caught, 42, "42/sessionid", b"12abc\n")


def test_records_refuse_a_malformed_stat_naming_it(tmp_path: Path) -> None:
    tree(tmp_path, p42={"sessionid": "5\n", "comm": "x\n", "stat": b"42 (x) S 1 2\n"})
    with pytest.raises(SessionIdError) as caught:
        ProcfsBackend(str(tmp_path), live=False).process_records()
    malformed(caught, 42, "42/stat", b"42 (x) S 1 2\n")


def test_records_refuse_a_malformed_loginuid_naming_it(tmp_path: Path) -> None:
    tree(tmp_path, p42={"sessionid": "5\n", "loginuid": "-1\n", "comm": "x\n"})
    with pytest.raises(SessionIdError) as caught:
        ProcfsBackend(str(tmp_path), live=False).process_records()
    malformed(caught, 42, "42/loginuid", b"-1\n")


# logind's place for a session scope: /user.slice/user-UID.slice/session-N.scope.
PLACE = b"/user.slice/user-1000.slice/"
BAD_CGROUP = [
    b"x::/user.slice\n",  # the hierarchy id is no number
    "\u0663::/user.slice\n".encode(),  # nor is a non-ASCII digit
    b"1:/user.slice\n",  # one colon: no controllers field
    b"1:cpu:user.slice\n",  # not an absolute path
    b"",  # procfs lists at least one hierarchy
    # At logind's place, only a whole session-N.scope / session-cN.scope:
    b"0::" + PLACE + b"session-x.scope\n",
    b"0::" + PLACE + "session-\u0663.scope\n".encode(),
    b"0::" + PLACE + b"session-4294967295.scope\n",  # the unset value is no session
    b"0::" + PLACE + b"session-04294967294.scope\n",  # 11 digits
    b"0::" + PLACE + b"session-1234567\n",  # not a .scope
    b"0::" + PLACE + b"session-cc3.scope\n",
    b"0::" + PLACE + b"session-.scope\n",
    b"0::" + PLACE + b"session-c.scope\n",
    b"0::" + PLACE + b"session- 3.scope\n",
]


@pytest.mark.parametrize("data", BAD_CGROUP)
def test_without_audit_a_malformed_cgroup_is_refused_naming_the_file(
    tmp_path: Path, data: bytes
) -> None:
    tree(tmp_path, audit=False, p42={"cgroup": data})
    with pytest.raises(SessionIdError) as caught:
        ProcfsBackend(str(tmp_path), live=False).session_id(42)
    malformed(caught, 42, f"{tmp_path}/42/cgroup", data)


@pytest.mark.parametrize(
    ("data", "session"),
    [
        (b"0::/user.slice/user-0.slice/session-4294967294.scope\n", UNSET - 1),  # the largest
        (b"0::/user.slice/user-4294967294.slice/session-1.scope\n", 1),  # a 10-digit uid
        (b"0::" + PLACE + b"session-c9.scope", 9),  # no final newline; c: no audit id
        # a colon inside the path (systemd escapes little): the path is everything
        # after the second colon
        (b"2:cpu:/system.slice/dev-a:b.device\n1:name=systemd:" + PLACE + b"session-3.scope\n", 3),
        # the first line at logind's place decides
        (
            b"3:cpu:/\n2:memory:"
            + PLACE
            + b"session-5.scope\n1:name=systemd:"
            + PLACE
            + b"session-6.scope\n",
            5,
        ),
        (b"0::/init.scope\n", 0),
    ],
)
def test_without_audit_the_first_session_scope_decides(
    tmp_path: Path, data: bytes, session: int
) -> None:
    tree(
        tmp_path,
        audit=False,
        p42={"cgroup": data, "comm": "x\n"},
        p43={"cgroup": b"0::" + PLACE + b"session-8.scope\n", "comm": "y\n"},
    )
    backend = ProcfsBackend(str(tmp_path), live=False)
    assert backend.session_id(42) == session
    # The bulk passes read the same files the same way.
    assert backend.session_ids(None) == {42: session, 43: 8}
    assert sorted(r[:2] for r in backend.process_records()) == [(42, session), (43, 8)]


# Session-like names anywhere but logind's place: no login (a user makes them
# under its delegated user@UID.service), so session 0, never malformed.
ELSEWHERE = [
    b"/user.slice/user-1000.slice/user@1000.service/app.slice/session-7.scope",
    b"/user.slice/user-1000.slice/user@1000.service/session-x",
    b"/user.slice/user-1000.slice/user@1000.service/session-7.scope",
    b"/session-3.scope",
    b"/user.slice/session-3.scope",
    b"/user.slice/user-1000.slice/session-3.scope/sub",  # below the scope
    b"/user.slice/user-1000.slice/session-3.scope/",
    b"/user.slice/user-x.slice/session-3.scope",
    b"/user.slice/user-.slice/session-3.scope",
    b"/user.slice/user-10000000000.slice/session-3.scope",  # 11 digits: no uid
    b"/user.slice/user-1000.slicex/session-3.scope",
    b"/user.slice/xuser-1000.slice/session-3.scope",
    b"/user.slicex/user-1000.slice/session-3.scope",
    b"/system.slice/user-1000.slice/session-3.scope",
    b"/user.slice/user-1000.slice/xsession-3.scope",
    b"//user.slice/user-1000.slice/session-3.scope",
]


@pytest.mark.parametrize("where", ELSEWHERE)
def test_without_audit_session_names_elsewhere_are_session_0(tmp_path: Path, where: bytes) -> None:
    tree(tmp_path, audit=False, p42={"cgroup": b"0::" + where + b"\n", "comm": "x\n"})
    backend = ProcfsBackend(str(tmp_path), live=False)
    assert backend.session_id(42) == 0
    assert backend.session_ids(None) == {42: 0}
    assert [r[:2] for r in backend.process_records()] == [(42, 0)]


def test_without_audit_a_malformed_cgroup_fails_only_its_own_process(tmp_path: Path) -> None:
    bad = b"0::" + PLACE + b"session-x.scope\n"
    tree(
        tmp_path,
        audit=False,
        p41={"cgroup": b"0::" + PLACE + b"session-2.scope\n", "comm": "a\n"},
        p42={"cgroup": bad, "comm": "b\n"},
        p43={"cgroup": b"0::/user.slice/user-7.slice/session-c5.scope\n", "comm": "c\n"},
    )
    backend = ProcfsBackend(str(tmp_path), live=False)
    # The listing and the records go on with the rest...
    assert backend.session_ids(None) == {41: 2, 43: 5}
    for fields in (None, frozenset({"comm"}), frozenset({"luid"})):
        assert sorted(r[:2] for r in backend.process_records(fields)) == [(41, 2), (43, 5)]
    # ...while the query for that PID still says what is wrong.
    with pytest.raises(SessionIdError) as caught:
        backend.session_id(42)
    malformed(caught, 42, f"{tmp_path}/42/cgroup", bad)


def test_a_cgroup_file_of_exactly_one_mebibyte_is_still_read(tmp_path: Path) -> None:
    last = b"1:name=systemd:" + PLACE + b"session-c4.scope\n"
    line = b"2:pids:/" + b"x" * 90 + b"\n"
    filler = line * ((2**20 - len(last) - 8) // len(line))
    data = filler + b"3:cpu:/" + b"y" * (2**20 - len(filler) - len(last) - 8) + b"\n" + last
    assert len(data) == 2**20
    tree(tmp_path, audit=False, p42={"cgroup": data}, p43={"cgroup": data + b"4::/\n"})
    backend = ProcfsBackend(str(tmp_path), live=False)
    assert backend.session_id(42) == 4
    with pytest.raises(SessionIdError) as caught:
        backend.session_id(43)
    malformed(caught, 43, f"{tmp_path}/43/cgroup", data + b"4::/\n")


# -- the thread check through status (live=False) --------------------------------


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (b"\nTgid:\t42\n", 8),  # Tgid right after a first (empty) line
        (b"Name:\tx\nTgid:42\nPid:\t42\n", 8),  # no tab after the colon
        (b"Name:\tx\nTgid:\t42\nNgid:\t0\nTgid:\t41\n", 8),  # the first Tgid decides
        (b"Name:\tx\nTgid:\t41\nTgid:\t42\n", "thread"),
        (b"Name:42\nState:\tS\n", "malformed"),  # no Tgid line at all
        (b"Name:\tx\nTgid:\t4x\n", "malformed"),
    ],
)
def test_status_tgid_decides_process_or_thread(
    tmp_path: Path, status: bytes, answer: object
) -> None:
    tree(tmp_path, p42={"sessionid": "8\n", "status": status})
    backend = ProcfsBackend(str(tmp_path), live=False)
    if answer == "thread":
        with pytest.raises(ProcessNotFoundError, match="thread id of process 41") as caught:
            backend.session_id(42)
        assert (caught.value.pid, caught.value.winerror) == (42, 87)
    elif answer == "malformed":
        with pytest.raises(SessionIdError) as bad:
            backend.session_id(42)
        malformed(bad, 42, f"{tmp_path}/42/status", status)
    else:
        assert backend.session_id(42) == answer


def test_a_crafted_tree_checks_the_callers_pid_too(tmp_path: Path) -> None:
    # In a tree that is not this kernel's view (live=False), our own PID is
    # just a number: its status decides like any other's.
    own = os.getpid()
    tree(tmp_path, **{f"p{own}": {"sessionid": "8\n", "status": "Name:\tx\nTgid:\t1\n"}})
    with pytest.raises(ProcessNotFoundError, match="thread id of process 1"):
        ProcfsBackend(str(tmp_path), live=False).session_id(own)


def test_unreadable_status_or_sessionid_keep_their_errno(tmp_path: Path) -> None:
    tree(tmp_path, p42={"sessionid": "8\n"}, p43={"sessionid": "8\n"}, p44={}, p45={})
    (tmp_path / "42" / "status").unlink()
    (tmp_path / "43" / "status").unlink()
    (tmp_path / "43" / "status").mkdir()  # opens, but read() fails EISDIR
    (tmp_path / "44" / "sessionid").mkdir()
    (tmp_path / "45" / "sessionid").symlink_to("../44/status")  # O_NOFOLLOW: ELOOP
    backend = ProcfsBackend(str(tmp_path), live=False)
    with pytest.raises(ProcessNotFoundError) as missing:
        backend.session_id(42)
    os_error(missing.value, 42, errno.ENOENT, f"{tmp_path}/42/status")
    for pid, code, name in (
        (43, errno.EISDIR, "status"),
        (44, errno.EISDIR, "sessionid"),
        (45, errno.ELOOP, "sessionid"),
    ):
        with pytest.raises(SessionIdError) as caught:
            backend.session_id(pid)
        assert caught.value.winerror == 31, repr(caught.value)
        os_error(caught.value, pid, code, f"{tmp_path}/{pid}/{name}")


def test_bulk_passes_keep_the_errno_of_an_unreadable_sessionid(tmp_path: Path) -> None:
    tree(tmp_path, p7={"sessionid": "3\n", "comm": "a\n", "loginuid": "0\n"}, p44={"comm": "b\n"})
    (tmp_path / "44" / "sessionid").mkdir()  # read() fails EISDIR
    backend = ProcfsBackend(str(tmp_path), live=False)
    for bulk in (lambda: backend.session_ids(None), backend.process_records):
        with pytest.raises(SessionIdError) as caught:
            bulk()
        os_error(caught.value, 44, errno.EISDIR, f"{tmp_path}/44")
    (tmp_path / "44" / "sessionid").rmdir()
    (tmp_path / "44" / "sessionid").symlink_to("../7/sessionid")  # open() fails ELOOP
    for bulk in (lambda: backend.session_ids(None), backend.process_records):
        with pytest.raises(SessionIdError) as caught:
            bulk()
        os_error(caught.value, 44, errno.ELOOP, f"{tmp_path}/44/sessionid")


# -- bulk passes: processes that vanish mid-pass are left out, the rest stays ----


def test_bulk_passes_skip_vanished_processes_and_keep_the_others(tmp_path: Path) -> None:
    # /N without a sessionid: what a process that exited after the listing
    # looks like. Several, so that one is listed before a live one in any order.
    live = {pid: pid % 5 + 1 for pid in range(100, 112)}
    tree(
        tmp_path,
        p99={},
        **{
            f"p{pid}": {"sessionid": f"{s}\n", "comm": f"c{pid}\n", "loginuid": "0\n"}
            for pid, s in live.items()
        },
        p150={},
        p200={},
    )
    backend = ProcfsBackend(str(tmp_path), live=False)
    assert backend.session_ids(None) == live
    assert {r[0]: r[1] for r in backend.process_records()} == live
    # Gone between opening its sessionid and its comm: left out of the records.
    for pid in (98, 160, 210):
        tree(tmp_path, **{f"p{pid}": {"sessionid": "9\n"}})
    assert {r[0]: r[1] for r in backend.process_records()} == live


def test_without_audit_the_bulk_passes_read_cgroups(tmp_path: Path) -> None:
    tree(
        tmp_path,
        audit=False,
        p7={"cgroup": b"0::" + PLACE + b"session-c2.scope\n", "comm": "sh\n"},
        p8={"cgroup": "0::/system.slice/cron.service\n", "comm": "cron\n"},
    )
    (tmp_path / "notapid").mkdir()
    backend = ProcfsBackend(str(tmp_path), live=False)
    assert backend.session_ids(None) == {7: 2, 8: 0}
    # No audit: no loginuid to name a user.
    assert sorted(backend.process_records()) == [
        record(tmp_path, 7, 2, "sh"),
        record(tmp_path, 8, 0, "cron"),
    ]


def test_session_ids_for_given_pids_leaves_missing_and_threads_out(thread_id: int) -> None:
    backend = ProcfsBackend()
    own = os.getpid()
    truth = int(Path("/proc/self/sessionid").read_text())
    assert backend.session_ids([own, thread_id, 0, 2**32 - 1]) == {
        own: 0 if truth == UNSET else truth
    }


# -- process_records: users and command names -----------------------------------


def test_records_name_users_from_loginuid_as_documented(tmp_path: Path) -> None:
    free_uid = next(uid for uid in range(60000, 70000) if not _has_passwd(uid))
    tree(
        tmp_path,
        # session 0 has no user: its (malformed) loginuid is never read
        p10={"sessionid": f"{UNSET}\n", "loginuid": "x\n", "comm": "init\n"},
        p11={"sessionid": "5\n", "loginuid": "0\n", "comm": "a\xffb\n".encode("latin-1")},
        p12={"sessionid": "6\n", "loginuid": f"{UNSET}\n", "comm": "x\n"},  # unset: None
        p13={"sessionid": "7\n", "loginuid": f"{free_uid}\n", "comm": "y"},
        p14={"sessionid": "5\n", "loginuid": "1\n", "comm": "z\n"},  # session 5's user: first seen
        p15={"sessionid": "8\n", "loginuid": "0\n", "comm": "w\n", "cmdline": b"sh\0-c\0a b\0"},
    )
    records = sorted(ProcfsBackend(str(tmp_path), live=False).process_records())
    first_of_5 = records[[r.pid for r in records].index(11)].luid
    assert first_of_5 in (0, 1)
    assert records == [
        record(tmp_path, 10, 0, "init"),
        # a byte that is no UTF-8 kept as a lone surrogate, never lost or mistaken for text
        record(tmp_path, 11, 5, "a\udcffb", luid=first_of_5),
        record(tmp_path, 12, 6, "x"),
        # no passwd entry: the number says who, the name is None (never a number in a string)
        record(tmp_path, 13, 7, "y")._replace(luid=free_uid),
        record(tmp_path, 14, 5, "z", luid=first_of_5),
        record(tmp_path, 15, 8, "w", luid=0, args="sh -c a b"),  # NULs become spaces
    ]


def test_records_without_a_boot_time_leave_only_started_unknown(tmp_path: Path) -> None:
    # A tree laid out like procfs may lack /stat (a real procfs always has
    # it): start times are then unknown, and every other field still answers.
    tree(tmp_path, p7={"sessionid": "3\n", "comm": "a\n", "loginuid": "0\n"})
    (tmp_path / "stat").unlink()
    backend = ProcfsBackend(str(tmp_path), live=False)
    assert backend.process_records() == [record(tmp_path, 7, 3, "a", luid=0)._replace(started=None)]
    # A /stat that is there but holds no usable boot time is malformed (13):
    # never a start time counted from 1970.
    for text in ("cpu  1 2\n", "btime 0\n", "btime -5\n", "btime 1e9\n", "btimes 5\n"):
        (tmp_path / "stat").write_text(text)
        with pytest.raises(SessionIdError) as caught:
            backend.process_records()
        err = caught.value
        assert (type(err), err.winerror, err.errno, err.pid) == (SessionIdError, 13, None, None)
        assert f"no boot time (btime) in {tmp_path}/stat" in str(err)
        # Without "started" the boot time is not needed, and not read.
        assert backend.process_records(frozenset({"comm"})) == [ProcessRecord(7, 3, comm="a")]
    # A FIFO where /stat should be: read without waiting for a writer (empty: no btime).
    (tmp_path / "stat").unlink()
    os.mkfifo(tmp_path / "stat")
    with pytest.raises(SessionIdError, match="no boot time"):
        backend.process_records()
    (tmp_path / "stat").unlink()
    # Back to a whole /stat: the start again; an unreadable /stat keeps its errno.
    (tmp_path / "stat").write_text(f"intr 1\nbtime {BTIME}\n")
    assert backend.process_records() == [record(tmp_path, 7, 3, "a", luid=0)]
    (tmp_path / "stat").unlink()
    (tmp_path / "stat").mkdir()
    with pytest.raises(SessionIdError) as caught:
        backend.process_records()
    assert (caught.value.errno, caught.value.pid) == (errno.EISDIR, None)
    assert f"cannot read {tmp_path}/stat" in str(caught.value)


def test_records_read_only_what_the_fields_need_and_fill_them_alike(tmp_path: Path) -> None:
    tree(
        tmp_path, p7={"sessionid": "3\n", "comm": "sh\n", "loginuid": "0\n", "cmdline": b"sh\0-i\0"}
    )
    backend = ProcfsBackend(str(tmp_path), live=False)
    whole = backend.process_records()
    assert whole == [record(tmp_path, 7, 3, "sh", luid=0, args="sh -i")]
    for field in ProcessRecord._fields:
        (only,) = backend.process_records(frozenset({field}))
        assert getattr(only, field) == getattr(whole[0], field), field
    # What is not asked is not read: a process whose stat and cmdline are
    # gone still lists with its comm (its own file), session and login.
    (tmp_path / "7" / "stat").unlink()
    (tmp_path / "7" / "cmdline").unlink()
    assert backend.process_records(frozenset({"comm", "login"})) == [
        ProcessRecord(7, 3, luid=0, login=pwd.getpwuid(0).pw_name, comm="sh")
    ]
    assert backend.process_records(frozenset({"ppid"})) == []  # stat needed: gone
    # From its own file, a comm loses its newline, never its spaces (prctl may end
    # a name with a space, or any byte).
    for comm in ("sh ", "shX"):
        (tmp_path / "7" / "comm").write_text(comm + "\n")
        assert [r.comm for r in backend.process_records(frozenset({"comm"}))] == [comm]


@pytest.mark.parametrize("size", [131071, 131072, 131073, 300_000])
def test_args_are_cut_at_exactly_128_kib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """A command line holds up to ARG_MAX (megabytes); records keep its first
    128 KiB (131072 bytes) exactly, as docs/linux.md says, in order, and
    never read a byte past them. The words are 9 bytes and a NUL, so the cut
    falls inside a word: a cut one byte early or late shows."""
    from sessionid_cffi.emulation import procfs

    assert procfs._ARGS_LIMIT == 131072  # the figure docs/linux.md states
    cmdline = b"".join(b"w%08d\0" % i for i in range(size // 10 + 1))[:size]
    assert cmdline[131070:131073].count(b"\0") == 0 or size < 131073
    tree(tmp_path, p7={"sessionid": "3\n", "comm": "sh\n", "cmdline": cmdline})
    cmdline_fds: set[int] = set()
    reads: list[tuple[int, int]] = []  # (bytes asked, bytes got) of cmdline's reads

    class Reads:
        """Test seam (the module's ``os``): records the reads of cmdline."""

        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

        @staticmethod
        def open(path: str | bytes, flags: int, dir_fd: int | None = None) -> int:
            fd = os.open(path, flags, dir_fd=dir_fd)
            if os.fsencode(path).endswith(b"/cmdline"):
                cmdline_fds.add(fd)
            return fd

        @staticmethod
        def read(fd: int, count: int) -> bytes:
            data = os.read(fd, count)
            if fd in cmdline_fds:
                reads.append((count, len(data)))
            return data

        @staticmethod
        def close(fd: int) -> None:
            cmdline_fds.discard(fd)
            os.close(fd)

    monkeypatch.setattr(procfs, "os", Reads())
    (only,) = ProcfsBackend(str(tmp_path), live=False).process_records(frozenset({"args"}))
    kept = cmdline[:131072]
    assert only.args == kept.rstrip(b"\0").replace(b"\0", b" ").decode()
    # Memory stays bounded: no read asks past the limit, given what came before.
    got = 0
    for asked, answered in reads:
        assert 0 < asked <= 131072 - got, reads
        got += answered
    assert got == min(size, 131072), reads


# (major, minor) -> the name ps shows; the device numbers are encoded by the C
# library (os.makedev), as the kernel writes them into stat's tty_nr.
TTYS = [
    ((136, 0), "pts/0"),
    ((136, 300), "pts/300"),
    ((137, 5), "pts/261"),
    ((143, 1023), "pts/2815"),
    ((4, 1), "tty1"),
    ((4, 63), "tty63"),
    ((4, 64), "ttyS0"),
    ((4, 65), "ttyS1"),
    ((5, 1), "console"),
    ((5, 0), "tty"),  # one-minor drivers: the device itself
    ((188, 0), "ttyUSB0"),
    ((188, 511), "ttyUSB511"),
    ((188, 512), "188:512"),
    ((201, 0), "201:0"),  # its line names no /dev/ device: ignored
    ((202, 1), "202:1"),
    ((203, 1), "203:1"),
    ((144, 2), "144:2"),
    ((1, 0), "1:0"),  # no driver: its numbers, whatever the table's own markers
    ((204, 2), "ttyF2"),  # a line of four fields (no type) still names a driver
]
DRIVERS = (
    b"/dev/tty             /dev/tty        5       0 system:/dev/tty\n"
    b"short line\n"  # too few fields: skipped, the rest still read
    b"bad /dev/bad x 0-3 serial\n"  # a major that is no number
    b"/dev/console         /dev/console    5       1 system:console\n"
    b"y /notdev/y 201 0-3 serial\n"
    b"z /dev/ttyZ 202 x-3 serial\n"
    b"w /dev/ttyW 203 1-x serial\n"
    b"usbserial            /dev/ttyUSB   188 0-511 serial\n"
    b"four /dev/ttyF 204 0-3\n"
)


@pytest.mark.parametrize(("device", "name"), TTYS)
def test_records_name_terminals_as_ps_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, device: tuple[int, int], name: str
) -> None:
    from sessionid_cffi.emulation import procfs

    # The driver table is read once per process (it is the kernel's, and
    # rarely changes): start each crafted tree with an empty one.
    monkeypatch.setattr(procfs, "_tty_drivers", [])
    tree(tmp_path, p7={"sessionid": "3\n", "comm": "sh\n"})
    stat = (tmp_path / "7" / "stat").read_text().split(" ")
    stat[6] = str(os.makedev(*device))  # tty_nr, the 7th field
    (tmp_path / "7" / "stat").write_text(" ".join(stat))
    (tmp_path / "tty").mkdir()
    (tmp_path / "tty" / "drivers").write_bytes(DRIVERS)
    backend = ProcfsBackend(str(tmp_path), live=False)
    assert [r.tty for r in backend.process_records(frozenset({"tty"}))] == [name]
    # Read once: a later change of the file is not seen by this process.
    (tmp_path / "tty" / "drivers").write_bytes(b"")
    assert [r.tty for r in backend.process_records(frozenset({"tty"}))] == [name]


@pytest.mark.parametrize("drivers", ["missing", "fifo", "directory"])
def test_without_a_driver_table_terminals_show_their_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drivers: str
) -> None:
    from sessionid_cffi.emulation import procfs

    monkeypatch.setattr(procfs, "_tty_drivers", [])
    tree(tmp_path, p7={"sessionid": "3\n", "comm": "sh\n"})
    stat = (tmp_path / "7" / "stat").read_text().split(" ")
    stat[6] = str(os.makedev(5, 1))
    (tmp_path / "7" / "stat").write_text(" ".join(stat))
    (tmp_path / "tty").mkdir()
    if drivers == "fifo":
        os.mkfifo(tmp_path / "tty" / "drivers")  # no writer: must not wait for one
    elif drivers == "directory":
        (tmp_path / "tty" / "drivers").mkdir()
    backend = ProcfsBackend(str(tmp_path), live=False)
    assert [r.tty for r in backend.process_records(frozenset({"tty"}))] == ["5:1"]
    # Unreadable is remembered as such (the sentinel), not read again.
    if drivers == "missing":
        (tmp_path / "tty" / "drivers").write_bytes(DRIVERS)
    assert [r.tty for r in backend.process_records(frozenset({"tty"}))] == ["5:1"]


def test_a_procfs_of_another_pid_namespace_is_refused(tmp_path: Path) -> None:
    # What /proc looks like after `unshare -pf` without a procfs of its own:
    # "self" names the caller by another number (here 1) than os.getpid().
    # The kernel's own case needs a namespace (tests/test_procfs.py, root);
    # this one runs the check in this process.
    own = os.getpid()
    tree(tmp_path, p42={"sessionid": "5\n", "comm": "x\n"})
    (tmp_path / "self" / "sessionid").write_text("9\n")
    (tmp_path / "self").rename(tmp_path / "1")
    (tmp_path / "self").symlink_to("1")  # readlink(self) == "1"
    backend = ProcfsBackend(str(tmp_path), live=True)
    for _ in range(2):  # refused again: a refusal is no verdict to keep
        with pytest.raises(BackendUnavailableError) as caught:
            backend.session_id(42)
        err = caught.value
        assert (type(err), err.pid, err.winerror, err.errno) == (
            BackendUnavailableError,
            42,
            50,
            None,
        )
        assert f"cannot answer for process 42: {tmp_path} belongs to another PID namespace" in str(
            err
        )
        assert f"it shows this process as 1, os.getpid() is {own}" in str(err)
        assert "unshare --pid --fork --mount-proc" in str(err)
        for bulk in (lambda: backend.session_ids(None), backend.process_records):
            with pytest.raises(BackendUnavailableError) as listing:
                bulk()
            assert (listing.value.pid, listing.value.winerror) == (None, 50)
            assert f"cannot answer for any process but itself: {tmp_path} belongs" in str(
                listing.value
            )
    # The caller itself is "self" in any namespace: it still answers.
    assert backend.session_id(own) == 9
    # Not live: the tree is not this kernel's view, and nothing is checked.
    assert ProcfsBackend(str(tmp_path), live=False).session_id(42) == 5


def test_the_pid_namespace_verdict_is_kept_per_process(tmp_path: Path) -> None:
    own = os.getpid()
    tree(tmp_path, p42={"sessionid": "5\n", "comm": "x\n"})
    (tmp_path / "self").rename(tmp_path / str(own))
    (tmp_path / "self").symlink_to(str(own))  # this namespace's procfs
    backend = ProcfsBackend(str(tmp_path), live=True)
    backend._pidfd = False  # 42 is no process of this kernel: the tree's status decides
    assert backend.session_id(42) == 5
    # Once seen as ours, it is not looked at again by this process...
    (tmp_path / "self").unlink()
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "sessionid").write_text("9\n")
    (tmp_path / "self").symlink_to("1")
    assert backend.session_id(42) == 5
    assert backend.session_ids(None) == {42: 5, own: 0, 1: 9}  # every entry of the tree
    # ...while a fresh backend looks, and refuses.
    with pytest.raises(BackendUnavailableError):
        ProcfsBackend(str(tmp_path), live=True).session_id(42)


def _has_passwd(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


# -- construction, missing procfs, listing errors ---------------------------------


def test_construction_rules(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="proc_root"):
        ProcfsBackend("")
    with pytest.raises(TypeError, match="proc_root"):
        ProcfsBackend(b"/proc")  # type: ignore[arg-type]
    assert ProcfsBackend().live is True
    assert ProcfsBackend("/proc", live=False).live is False
    assert ProcfsBackend(str(tmp_path)).live is False
    assert ProcfsBackend(str(tmp_path), live=True).live is True
    assert repr(ProcfsBackend("/")) == "ProcfsBackend(proc_root='/', live=False)"
    for root in (tmp_path, tmp_path / "procX"):  # only "/" is stripped from the end
        trailing = ProcfsBackend(f"{root}//")
        assert repr(trailing) == f"ProcfsBackend(proc_root='{root}', live=False)"


def test_no_procfs_keeps_enoent(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError) as caught:
        ProcfsBackend(str(tmp_path)).session_id(1)
    assert (caught.value.errno, caught.value.pid) == (errno.ENOENT, None)
    assert f"no procfs at {tmp_path}" in str(caught.value)


def test_impossible_pids_say_esrch(tmp_path: Path) -> None:
    for pid in (0, 4194305):
        with pytest.raises(ProcessNotFoundError, match="no such process") as caught:
            ProcfsBackend(str(tmp_path)).session_id(pid)
        assert (caught.value.pid, caught.value.errno) == (pid, errno.ESRCH)


def test_missing_sessionid_under_audit_keeps_enoent(tmp_path: Path) -> None:
    tree(tmp_path, p42={})
    tree(tmp_path / "noaudit", audit=False, p42={})
    for root, name in ((tmp_path, "sessionid"), (tmp_path / "noaudit", "cgroup")):
        with pytest.raises(ProcessNotFoundError) as caught:
            ProcfsBackend(str(root), live=False).session_id(42)
        os_error(caught.value, 42, errno.ENOENT, f"{root}/42/{name}")


def test_a_root_that_cannot_be_listed_is_no_procfs(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    standard = [os.fstat(fd).st_ino for fd in (0, 1, 2)]
    with pytest.raises(BackendUnavailableError) as caught:
        ProcfsBackend(str(tmp_path / "file")).session_ids(None)
    # The failed open closed nothing (no descriptor of ours was taken for its result).
    assert [os.fstat(fd).st_ino for fd in (0, 1, 2)] == standard
    assert (caught.value.winerror, caught.value.errno) == (50, errno.ENOTDIR)
    assert f"cannot list {tmp_path / 'file'}" in str(caught.value)


@pytest.fixture
def descriptors_left() -> Iterator[object]:
    """``fill(n)``: use up every file descriptor but ``n`` (a real EMFILE)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
    held: list[int] = []

    def fill(n: int) -> None:
        while True:
            try:
                held.append(os.open("/dev/null", os.O_RDONLY))
            except OSError as err:
                if err.errno != errno.EMFILE:
                    raise
                break
        for _ in range(n):
            os.close(held.pop())

    try:
        yield fill
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_no_descriptor_left_for_the_listing(descriptors_left) -> None:  # type: ignore[no-untyped-def]
    backend = ProcfsBackend()
    for left in (0, 1):  # 0: open(/proc) fails; 1: it opens, listing it needs one more
        descriptors_left(left)
        for bulk in (lambda: backend.session_ids(None), backend.process_records):
            with pytest.raises(SessionIdError) as caught:
                bulk()
            err = caught.value
            assert (err.winerror, err.errno, err.pid) == (4, errno.EMFILE, None), repr(err)
            assert "cannot list /proc" in str(err)
            assert "file descriptors" in str(err)
    os.close(os.open("/dev/null", os.O_RDONLY))  # the failed passes left nothing open


def test_no_descriptor_left_for_the_thread_check(descriptors_left) -> None:  # type: ignore[no-untyped-def]
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        descriptors_left(1)  # sessionid opens; pidfd_open then fails EMFILE
        with pytest.raises(SessionIdError) as caught:
            ProcfsBackend().session_id(child.pid)
        assert caught.value.winerror == 4
        os_error(caught.value, child.pid, errno.EMFILE, f"process {child.pid}: pidfd_open: ")
    finally:
        child.kill()
        child.wait()


def test_a_listing_out_of_memory_is_said_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Mock: ENOMEM from listing a directory cannot be provoked safely here.
    def no_memory(_: object) -> list[str]:
        raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))

    tree(tmp_path, p42={"sessionid": "1\n"})
    monkeypatch.setattr(os, "listdir", no_memory)
    backend = ProcfsBackend(str(tmp_path), live=False)
    for bulk in (lambda: backend.session_ids(None), backend.process_records):
        with pytest.raises(SessionIdError) as caught:
            bulk()
        err = caught.value
        assert (type(err), err.winerror, err.errno, err.pid) == (
            SessionIdError,
            8,
            errno.ENOMEM,
            None,
        )
        assert f"cannot list {tmp_path}: {os.strerror(errno.ENOMEM)}" in str(err)


# -- the live thread check (pidfd_open) --------------------------------------------


def test_a_thread_id_keeps_pidfd_opens_errno(thread_id: int) -> None:
    with pytest.raises(ProcessNotFoundError, match="thread id") as caught:
        ProcfsBackend().session_id(thread_id)
    assert caught.value.pid == thread_id
    assert caught.value.errno in (errno.ENOENT, errno.EINVAL)  # older kernels: EINVAL


def test_a_process_gone_before_pidfd_open_is_not_found(tmp_path: Path) -> None:
    # A tree entry for a PID the kernel does not have (live=True asks the real
    # kernel): what a process reaped between opening its file and the check sees.
    taken = {int(n) for n in os.listdir("/proc") if n.isdigit()}
    free = next(pid for pid in range(30000, 1, -1) if pid not in taken)
    tree(tmp_path, **{f"p{free}": {"sessionid": "5\n"}})
    with pytest.raises(ProcessNotFoundError, match="exited") as caught:
        ProcfsBackend(str(tmp_path), live=True).session_id(free)
    assert (caught.value.pid, caught.value.errno, caught.value.winerror) == (free, errno.ESRCH, 87)


@pytest.mark.parametrize("how", ["ENOSYS", "EPERM", "missing"])
def test_without_pidfd_open_the_status_check_takes_over(
    how: str, thread_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Mock: a kernel without pidfd_open (or a seccomp filter refusing it, or a
    # Python without os.pidfd_open) cannot be had here; only that call is faked.
    if how == "missing":
        monkeypatch.delattr(os, "pidfd_open")
    else:
        code = getattr(errno, how)

        def refuse(pid: int, flags: int = 0) -> int:
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(os, "pidfd_open", refuse)
    backend = ProcfsBackend()
    with pytest.raises(ProcessNotFoundError, match=f"thread id of process {os.getpid()}"):
        backend.session_id(thread_id)
    # It stays on the status check from now on: pidfd_open is not asked again.
    asked: list[int] = []

    def counting(pid: int, flags: int = 0) -> int:
        asked.append(pid)
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

    monkeypatch.setattr(os, "pidfd_open", counting, raising=False)
    with pytest.raises(ProcessNotFoundError, match=f"thread id of process {os.getpid()}"):
        backend.session_id(thread_id)
    parent = os.getppid()
    truth = int(Path(f"/proc/{parent}/sessionid").read_text())
    assert backend.session_id(parent) == (0 if truth == UNSET else truth)
    assert asked == []
    assert backend.live is True  # still this kernel's procfs: only the thread check changed


# -- the console session (systemd-logind state) -------------------------------------


@pytest.mark.parametrize(
    ("active", "sessions", "expected"),
    [
        ("1", {"1": "AUDIT=1\n"}, 1),  # the smallest session id
        ("c3", {"c3": "AUDIT=0\n"}, 3),  # AUDIT=0 is no session: the name decides
        ("c4", {"c4": f"AUDIT={UNSET}\n"}, 4),  # unset is no session either
        ("x7", {"x7": ""}, None),  # only a leading "c" is dropped
        (".5", {".5": "AUDIT=5\n"}, None),  # a hidden name is refused...
        ("a/../../seats/seat0", {"a/": ""}, None),  # ...and so is any "/"
        ("x=5", {"x=5": "AUDIT=5\nNOTE=a=b\n"}, 5),  # a value may hold "="
    ],
)
def test_console_session_rules(
    tmp_path: Path, active: str, sessions: dict[str, str], expected: int | None
) -> None:
    seats, folder = tmp_path / "systemd" / "seats", tmp_path / "systemd" / "sessions"
    seats.mkdir(parents=True)
    folder.mkdir()
    (seats / "seat0").write_text(f"IS_SEAT0=1\nACTIVE={active}\nAUDIT=5\n")
    for name, text in sessions.items():
        if name.endswith("/"):
            (folder / name).mkdir()
        else:
            (folder / name).write_text(text)
    assert ProcfsBackend(run_root=str(tmp_path)).console_session_id() == expected


def test_console_state_files_tolerate_bad_bytes_and_stop_at_64k(tmp_path: Path) -> None:
    seats, folder = tmp_path / "systemd" / "seats", tmp_path / "systemd" / "sessions"
    seats.mkdir(parents=True)
    folder.mkdir()
    backend = ProcfsBackend(run_root=str(tmp_path))
    (seats / "seat0").write_bytes(b"NAME=\xff\xfe\nACTIVE=c6\n")
    assert backend.console_session_id() == 6
    # A state file is read up to 65536 characters, never further (a huge
    # file costs no more): a value running past the limit is read as cut there.
    head = b"X=" + b"y" * (65535 - len(b"X=\nACTIVE=c")) + b"\nACTIVE=c"
    assert len(head) == 65536 - 1
    (seats / "seat0").write_bytes(head + b"8")  # "8" is the 65536th character
    assert backend.console_session_id() == 8
    (seats / "seat0").write_bytes(head + b"89")  # "9" is beyond the limit
    assert backend.console_session_id() == 8


# -- scenes that need root: a private /run, PID 1, a login changed mid-pass --------


@needs_root
def test_the_default_run_root_is_where_logind_keeps_its_state() -> None:
    # A private mount namespace with a tmpfs on /run holding logind's files:
    # the backend made with its defaults reads them there (and only there).
    backend = ProcfsBackend()  # made here: the scene runs this process's code
    cases = [
        (logind_files("7", {"7": 7}), 7),
        (logind_files("c5", {"c5": None}), 5),  # no audit: logind's own counter
        (logind_files(None, {"7": 7}), None),  # no active session on seat0
        ({}, None),  # no logind at all
    ]
    for files, expected in cases:
        assert in_private_run(files, backend.console_session_id) == expected, files


@needs_root
def test_as_pid_one_a_procfs_of_the_parent_namespace_is_refused() -> None:
    # `unshare --pid --fork python ...` without --mount-proc, the usual
    # container init: the caller is PID 1 of its namespace, /proc still the
    # host's, where any other number names a host process. It must refuse
    # (50), never answer for that process. The real scene: a grandchild in a
    # new PID namespace, PID 1 there (tests/_private_run.py).
    backend = ProcfsBackend()  # fresh: nothing checked yet
    other = os.getppid()  # a host PID, listed in the host's /proc

    def scene() -> tuple[object, ...]:
        answers: list[object] = []
        for query in (lambda: backend.session_id(other), lambda: backend.session_ids(None)):
            try:
                answers.append(("answered", query()))
            except BackendUnavailableError as err:
                answers.append((err.winerror, err.pid, "another PID namespace" in str(err)))
        # Its own PID is "self" in any namespace: that still answers, truly.
        with open("/proc/self/sessionid") as file:
            truth = int(file.read())
        answers.append((backend.session_id(1), 0 if truth == UNSET else truth))
        return tuple(answers)

    refused_one, refused_all, (own, truth) = as_pid_one(scene)
    assert refused_one == (50, other, True)
    assert refused_all == (50, None, True)
    assert own == truth


class _Seam:
    """Test seam: stands in for procfs.py's ``os`` (see its docstring) and
    runs ``on_open(path)`` before each ``open``; every other name is os's."""

    def __init__(self, on_open: Callable[[str], None]) -> None:
        self.on_open = on_open

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def open(self, path: str | bytes, flags: int, **kwargs: object) -> int:
        self.on_open(os.fsdecode(path))
        return os.open(path, flags, **kwargs)  # type: ignore[arg-type]


@needs_root
def test_a_login_changed_mid_pass_leaves_only_that_process_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The target logs in (a fresh session A), then logs in again (session B)
    # at the moment the records pass opens its loginuid file: between the
    # pass's read of its session and the check of it. Its record is left out
    # (no consistent one exists); every other process is still listed.
    from sessionid_cffi.emulation import procfs

    script = (
        "echo 4241 > /proc/self/loginuid && read s < /proc/self/sessionid; echo $s; "
        "read go; echo 4242 > /proc/self/loginuid && read s < /proc/self/sessionid; echo $s; "
        "exec cat"
    )
    target = subprocess.Popen(
        ["sh", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    later = subprocess.Popen(
        ["sh", "-c", "read s < /proc/self/sessionid; echo $s; exec cat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert target.stdout is not None
        assert later.stdout is not None
        first = int(target.stdout.readline())
        later_session = int(later.stdout.readline())
        assert later.pid > target.pid  # listed after it (readdir lists /proc by PID)
        relogged: list[int] = []

        def relogin(path: str) -> None:
            if path == f"{target.pid}/loginuid" and not relogged:
                assert target.stdin is not None
                assert target.stdout is not None
                target.stdin.write("go\n")
                target.stdin.flush()
                relogged.append(int(target.stdout.readline()))

        monkeypatch.setattr(procfs, "os", _Seam(relogin))
        records = {r.pid: r for r in ProcfsBackend().process_records()}
        monkeypatch.undo()
        assert relogged
        assert relogged[0] != first
        assert target.pid not in records
        mine = records[later.pid]
        assert (mine.session_id, mine.ppid) == (
            0 if later_session == UNSET else later_session,
            os.getpid(),
        )
        assert os.getpid() in records
        # Asked again, the target is there, in its new session, with its new login.
        again = {r.pid: r for r in ProcfsBackend().process_records()}[target.pid]
        assert (again.session_id, again.luid) == (relogged[0], 4242)
    finally:
        for child in (target, later):
            child.kill()
            child.wait()


def _denied_for(pids: set[int]) -> Callable[[str], None]:
    """An ``open`` that fails EACCES for the files of ``pids``, as a procfs
    mounted hidepid=1 (or =2) denies another user's: the rest opens."""

    def check(path: str) -> None:
        if any(path.startswith(f"/proc/{pid}/") for pid in pids):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

    return check


def test_hidepid_still_tells_thread_ids_apart(
    thread_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # hidepid=1 denies every file of another user's process, status too; a
    # thread id must still answer 87 (pidfd_open is no procfs file), a
    # process 5. Mock: only the denial of open() (tests/test_locked_down.py
    # mounts a real hidepid procfs, with the installed package).
    from sessionid_cffi.emulation import procfs

    from sessionid_cffi import AccessDeniedError

    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        monkeypatch.setattr(procfs, "os", _Seam(_denied_for({thread_id, child.pid})))
        backend = ProcfsBackend()
        for _ in range(2):  # and again, now that the denial was seen once
            with pytest.raises(ProcessNotFoundError, match="thread id") as caught:
                backend.session_id(thread_id)
            assert (caught.value.pid, caught.value.winerror) == (thread_id, 87)
            with pytest.raises(AccessDeniedError) as denied:
                backend.session_id(child.pid)
            assert (denied.value.pid, denied.value.winerror, denied.value.errno) == (
                child.pid,
                5,
                errno.EACCES,
            )
            assert backend.session_ids([child.pid, thread_id, os.getpid()]) == {
                os.getpid(): backend.session_id(os.getpid())
            }
    finally:
        child.kill()
        child.wait()


# -- bounds on what a crafted tree can make the backend read ---------------------


def test_the_driver_table_is_read_to_64_kib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessionid_cffi.emulation import procfs

    monkeypatch.setattr(procfs, "_tty_drivers", [])
    tree(tmp_path, p7={"sessionid": "3\n", "comm": "sh\n"}, p8={"sessionid": "3\n", "comm": "x\n"})
    for pid, device in ((7, (205, 1)), (8, (206, 1))):
        stat = (tmp_path / str(pid) / "stat").read_text().split(" ")
        stat[6] = str(os.makedev(*device))
        (tmp_path / str(pid) / "stat").write_text(" ".join(stat))
    (tmp_path / "tty").mkdir()
    first = b"a /dev/ttyA 205 0-3 serial\n"
    late = b"b /dev/ttyB 206 0-3 serial\n"
    filler = b"#" * (65536 - len(first) - 1) + b"\n"
    assert len(first + filler) == 65536
    (tmp_path / "tty" / "drivers").write_bytes(first + filler + late)  # late starts past 64 KiB
    backend = ProcfsBackend(str(tmp_path), live=False)
    assert sorted(r.tty for r in backend.process_records(frozenset({"tty"}))) == ["206:1", "ttyA1"]


@pytest.mark.parametrize("beyond", [False, True])
def test_the_boot_time_is_read_from_the_first_mebibyte_of_stat(
    tmp_path: Path, beyond: bool
) -> None:
    tree(tmp_path, p7={"sessionid": "3\n", "comm": "sh\n"})
    filler = b"intr" + b" 0" * ((2**20 - 40) // 2) + b"\n"
    head = filler + (b"#" * 40 if beyond else b"") + b"\n"
    (tmp_path / "stat").write_bytes(head + b"btime %d\n" % BTIME)
    assert (len(head) + 6 > 2**20) is beyond  # "btime " starts within the first MiB, or not
    backend = ProcfsBackend(str(tmp_path), live=False)
    if not beyond:
        [only] = backend.process_records(frozenset({"started"}))
        assert only.started == BTIME + ticks_of(7) / os.sysconf("SC_CLK_TCK")
        return
    with pytest.raises(SessionIdError, match="no boot time"):
        backend.process_records(frozenset({"started"}))


@pytest.mark.parametrize(("size", "answer"), [(1024, "5"), (1025, "malformed")])
def test_status_is_read_to_1024_bytes(tmp_path: Path, size: int, answer: str) -> None:
    # A Tgid line that ends (its newline) at byte 1024 is seen; one byte later is not.
    status = b"Name:\t" + b"x" * (size - 16) + b"\nTgid:\t42\n"
    assert len(status) == size
    tree(tmp_path, p42={"sessionid": "5\n", "status": status})
    backend = ProcfsBackend(str(tmp_path), live=False)
    if answer == "5":
        assert backend.session_id(42) == 5
        return
    with pytest.raises(SessionIdError) as caught:
        backend.session_id(42)
    malformed(caught, 42, f"{tmp_path}/42/status", status[:1024])


def test_comm_and_stat_are_read_to_their_bounds(tmp_path: Path) -> None:
    # comm: 64 bytes (the kernel's are 16); stat: 1024 (the kernel's a few hundred).
    tree(tmp_path, p7={"sessionid": "3\n", "comm": "c" * 100 + "\n"})
    backend = ProcfsBackend(str(tmp_path), live=False)
    assert [r.comm for r in backend.process_records(frozenset({"comm"}))] == ["c" * 64]
    # A stat line whose start time ends at byte 1024 is read whole; its digits
    # past byte 1024 would be cut.
    line = (tmp_path / "7" / "stat").read_bytes()
    name_at = line.index(b"(") + 1
    for extra, ticks in ((0, 49), (1, 4)):
        # comm long enough that the 22nd field's last digit is byte 1024 (+ extra)
        tail = line[line.index(b")") :].replace(b" 49 0 0\n", b" 49")
        comm = b"n" * (1024 + extra - name_at - len(tail))
        (tmp_path / "7" / "stat").write_bytes(line[:name_at] + comm + tail)
        [only] = backend.process_records(frozenset({"started"}))
        assert only.started == BTIME + ticks / os.sysconf("SC_CLK_TCK")


def test_own_session_answers_with_one_descriptor_left(descriptors_left) -> None:  # type: ignore[no-untyped-def]
    # The caller is never a thread id: its query opens only its sessionid
    # (no pidfd_open), so it answers where any other PID's query needs two.
    with open("/proc/self/sessionid") as file:
        raw = int(file.read())
    backend = ProcfsBackend()
    descriptors_left(1)
    assert backend.session_id(os.getpid()) == (0 if raw == UNSET else raw)


def test_a_failed_listing_closes_descriptor_0_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With stdin closed, the listing's descriptor of the root is 0: a failed
    # listing must close it as any other. Mock: listdir's ENOMEM only.
    def no_memory(_: object) -> list[str]:
        raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))

    tree(tmp_path, p42={"sessionid": "1\n"})
    backend = ProcfsBackend(str(tmp_path), live=False)
    monkeypatch.setattr(os, "listdir", no_memory)
    saved = os.dup(0)
    try:
        os.close(0)
        with pytest.raises(SessionIdError):
            backend.session_ids(None)
        with pytest.raises(OSError, match="Bad file descriptor") as closed:
            os.fstat(0)  # the root's descriptor (0) was closed again
        assert closed.value.errno == errno.EBADF
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def test_errors_say_it_in_these_words(tmp_path: Path, thread_id: int) -> None:
    # What a user reads (the CLI prints it): the words, not only the facts.
    backend = ProcfsBackend()
    messages = {
        0: "[WinError 87] process 0 not found: no such process",
        thread_id: (
            f"[WinError 87] process {thread_id} not found: it is a thread id, not a process id"
        ),
    }
    for pid, message in messages.items():
        with pytest.raises(SessionIdError) as caught:
            backend.session_id(pid)
        assert str(caught.value) == message
    missing = tmp_path / "none"
    with pytest.raises(SessionIdError) as caught:
        ProcfsBackend(str(missing)).session_id(5)
    assert str(caught.value) == (
        f"[WinError 50] no procfs at {missing} (nothing at {missing}/self); "
        "mount it with: mount -t proc proc /proc"
    )
    taken = {int(n) for n in os.listdir("/proc") if n.isdigit()}
    free = next(pid for pid in range(30000, 1, -1) if pid not in taken)
    tree(tmp_path, **{f"p{free}": {"sessionid": "5\n"}})
    with pytest.raises(SessionIdError) as caught:
        ProcfsBackend(str(tmp_path), live=True).session_id(free)
    assert str(caught.value) == f"[WinError 87] process {free} not found: the process exited"
    # Another PID namespace's procfs: what it is, and how to mount one.
    (tmp_path / "self").rename(tmp_path / "1")
    (tmp_path / "self").symlink_to("1")
    with pytest.raises(SessionIdError) as caught:
        ProcfsBackend(str(tmp_path), live=True).session_id(free)
    assert str(caught.value) == (
        f"[WinError 50] cannot answer for process {free}: {tmp_path} belongs to another PID "
        f"namespace (it shows this process as 1, os.getpid() is {os.getpid()}); mount a procfs "
        "for this namespace, for example with unshare --pid --fork --mount-proc"
    )


def test_logind_files_are_utf8_whatever_the_locale(tmp_path: Path) -> None:
    # logind writes UTF-8; under a non-UTF-8 locale (LANG=C at run time, or
    # an ISO-8859 one) the files must still be decoded as UTF-8. U+0085 (NEL)
    # encoded in UTF-8 is a line break to str.splitlines; decoded as ASCII its
    # two bytes are two replacement characters, which are not.
    import locale

    if sys.flags.utf8_mode:
        pytest.skip("UTF-8 mode: Python opens every file as UTF-8 anyway")
    seats = tmp_path / "systemd" / "seats"
    seats.mkdir(parents=True)
    (seats / "seat0").write_bytes("NOTE=x\u0085ACTIVE=c7\n".encode())
    backend = ProcfsBackend(run_root=str(tmp_path))
    before = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C")
        assert locale.getpreferredencoding(False) != "UTF-8"
        assert backend.console_session_id() == 7
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


@pytest.mark.parametrize("seat", ["IS_SEAT0=1\n", "ACTIVE=\n", "ACTIVE=a/b\n", "ACTIVE=.x\n"])
def test_no_session_file_is_read_without_an_active_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seat: str
) -> None:
    # seat0 without a usable ACTIVE name: None, and no file of sessions/ is
    # even opened (whatever files lie there, whatever they say).
    from sessionid_cffi.emulation import procfs

    folder = tmp_path / "systemd" / "sessions"
    folder.mkdir(parents=True)
    (tmp_path / "systemd" / "seats").mkdir()
    (tmp_path / "systemd" / "seats" / "seat0").write_text(seat)
    opened: list[str] = []
    monkeypatch.setattr(procfs, "os", _Seam(opened.append))
    assert ProcfsBackend(run_root=str(tmp_path)).console_session_id() is None
    assert opened == [f"{tmp_path}/systemd/seats/seat0"]


# -- stat lines as ps reads them: comm ends at the last ")" ----------------------

_STAT_FIELDS = " S 1 42 42 0 -1 4194560" + " 0" * 12 + " 49"  # 20 fields, starttime last


@pytest.mark.parametrize(
    ("line", "comm"),
    [
        (b"42 (a) (b)" + _STAT_FIELDS.encode() + b" 0 0\n", "a) (b"),  # parentheses in comm
        (b"42 (x)" + _STAT_FIELDS.encode() + b"\n", "x"),  # exactly the 20 fields read
        (b"(x)" + _STAT_FIELDS.encode() + b"\n", "x"),  # the PID before "(" is not read
        (b"42 x)" + _STAT_FIELDS.encode() + b"\n", None),  # no "(": malformed
        (b"42 (x)" + _STAT_FIELDS.encode()[:-3] + b"\n", None),  # 19 fields
        (b"42 (x)" + _STAT_FIELDS.replace(" 1 ", " one ", 1).encode() + b"\n", None),
    ],
)
def test_stat_lines_are_read_as_ps_reads_them(
    tmp_path: Path, line: bytes, comm: str | None
) -> None:
    tree(tmp_path, p42={"sessionid": "5\n", "comm": "unused\n", "stat": line})
    backend = ProcfsBackend(str(tmp_path), live=False)
    if comm is None:
        with pytest.raises(SessionIdError) as caught:
            backend.process_records(frozenset({"ppid"}))
        malformed(caught, 42, "/42/stat", line)
        return
    [only] = backend.process_records(frozenset({"ppid", "comm", "started"}))
    assert (only.comm, only.ppid) == (comm, 1)
    assert only.started == BTIME + 49 / os.sysconf("SC_CLK_TCK")


# -- the cgroup fallback: every line is looked at, every process listed ----------


@pytest.mark.parametrize(
    "before",
    [
        b"3:cpu:/user.slice/user-x.slice/session-3.scope\n",  # no uid: not logind's place
        b"3:cpu:/user.slice/user-1000.slice/user@1000.service\n",  # no session scope
        b"3:cpu:/system.slice/ssh.service\n",
    ],
)
def test_without_audit_a_later_line_at_loginds_place_still_decides(
    tmp_path: Path, before: bytes
) -> None:
    data = before + b"0::" + PLACE + b"session-5.scope\n"
    tree(tmp_path, audit=False, p42={"cgroup": data, "comm": "x\n"})
    assert ProcfsBackend(str(tmp_path), live=False).session_id(42) == 5


def test_without_audit_the_listing_goes_on_past_a_vanished_process(tmp_path: Path) -> None:
    # Process 41 has no cgroup file (it exited between the listing and the
    # read, as procfs shows it then): it is left out, and 42 and 43 are listed.
    tree(
        tmp_path,
        audit=False,
        p41={},
        p42={"cgroup": b"0::" + PLACE + b"session-2.scope\n"},
        p43={"cgroup": b"0::/init.scope\n"},
    )
    assert ProcfsBackend(str(tmp_path), live=False).session_ids(None) == {42: 2, 43: 0}


def test_without_audit_records_read_a_long_cgroup_file_whole(tmp_path: Path) -> None:
    # cgroup v1 lists a path per hierarchy: a file can exceed one 64 KiB read.
    # The records read it whole, as session_id does, and agree with it.
    noise = b"".join(b"%d:pids:/%s\n" % (n, b"x" * 200) for n in range(400))  # ~82 KB
    data = noise + b"1:name=systemd:" + PLACE + b"session-5.scope"
    tree(tmp_path, audit=False, p42={"cgroup": data, "comm": "x\n"})
    backend = ProcfsBackend(str(tmp_path), live=False)
    assert len(data) > 65536
    assert backend.session_id(42) == 5
    assert [r[:2] for r in backend.process_records()] == [(42, 5)]
    # Past the 1 MiB a cgroup file can plausibly hold: that record fails, only it.
    (tmp_path / "42" / "cgroup").write_bytes(noise * 13 + b"0::/\n")
    tree(tmp_path, audit=False, p43={"cgroup": b"0::/init.scope\n", "comm": "y\n"})
    assert [r[:2] for r in backend.process_records()] == [(43, 0)]
    with pytest.raises(SessionIdError):
        backend.session_id(42)


def test_args_drop_the_nuls_that_pad_a_rewritten_title(tmp_path: Path) -> None:
    # setproctitle writes the new title over argv and pads the rest with NULs.
    tree(tmp_path, p7={"sessionid": "3\n", "comm": "sh\n", "cmdline": b"worker: idle\0\0\0\0\0"})
    backend = ProcfsBackend(str(tmp_path), live=False)
    (only,) = backend.process_records(frozenset({"args"}))
    assert only.args == "worker: idle"
    # Only NULs: an argument that ends in another byte keeps it.
    (tmp_path / "7" / "cmdline").write_bytes(b"startX\0-X\0")
    (only,) = backend.process_records(frozenset({"args"}))
    assert only.args == "startX -X"


def test_sessions_take_details_from_this_backends_own_roots_and_audit(tmp_path: Path) -> None:
    """sessions() on a crafted tree with its own run_root: host and service
    come from the logind state under *that* run_root, keyed by AUDIT= because
    that tree has kernel audit (a state file named 3 records audit session
    17). Kills session_details passing no backend (the default /run would be
    read) or no audit flag (the file would key session 3)."""
    import sessionid_cffi

    proc, run = tmp_path / "proc", tmp_path / "run"
    tree(proc, p42={"sessionid": "17\n", "loginuid": "0\n", "comm": "sshd"})
    folder = run / "systemd" / "sessions"
    folder.mkdir(parents=True)
    (folder / "3").write_text("UID=0\nSERVICE=sshd\nREMOTE_HOST=192.0.2.9\nAUDIT=17\n")
    with sessionid_cffi.use_backend(ProcfsBackend(str(proc), live=False, run_root=str(run))):
        [info] = [i for i in sessionid_cffi.sessions() if i.session_id == 17]
    assert (info.service, info.host) == ("sshd", "192.0.2.9")
