"""Session details (emulation/details.py) on crafted trees: each test is a
scene the real machine cannot be made to show on demand (a leader whose
PID was reused, a name with parentheses, descriptors in an awkward order,
two network namespaces, logind files with escapes, a procfs file that
answers a page at a time), and each kills the mutants the backends'
mutation gate (tools/mutation.py) would otherwise leave alive.

Truth is the scene the test wrote: which descriptor holds which
connection, which process sshd started, what a state file says. The real
logins (sshd with PAM, login on a console) are in test_session_details.py.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import time
from pathlib import Path

import pytest

from sessionid_cffi import ProcessRecord, SessionInfo

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux procfs")

if sys.platform.startswith("linux"):
    from sessionid_cffi.emulation import details

HEADER = b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when ... inode\n"
ESTABLISHED, LISTEN = "01", "0A"


def hex_address(text: str) -> str:
    """An address as /proc/net/tcp{,6} prints it: each 32-bit word in the
    host's byte order (the kernel prints the raw words)."""
    raw = ipaddress.ip_address(text).packed
    words = [raw[i : i + 4] for i in range(0, len(raw), 4)]
    return b"".join(w[::-1] if sys.byteorder == "little" else w for w in words).hex().upper()


def tcp_line(number: int, inode: int, peer: str, state: str = ESTABLISHED) -> bytes:
    local = hex_address("0.0.0.0" if ":" not in peer else "::")
    return (
        f"{number:4}: {local}:0016 {hex_address(peer)}:D431 {state} 00000000:00000000 "
        f"00:00000000 00000000     0        0 {inode} 1 0000000000000000 20 4 30 10 -1\n"
    ).encode()


def process(
    proc: Path,
    pid: int,
    comm: str | bytes,
    ppid: int = 1,
    *,
    cmdline: bytes = b"",
    fds: dict[str, str | None] | None = None,
    tcp: list[bytes] | None = None,
    tcp6: list[bytes] | None = None,
    netns: str | None = "net:[4026531840]",
    environ: bytes | None = None,
    stat: bytes | None = None,
) -> None:
    """/proc/<pid> as the details read it: stat, cmdline, fd/ (a name ->
    link target, or None for an entry that is no link), net/tcp{,6},
    ns/net, environ."""
    base = proc / str(pid)
    (base / "fd").mkdir(parents=True)
    name = comm if isinstance(comm, bytes) else comm.encode("utf-8", "surrogateescape")
    tail = f" S {ppid} {pid} {pid} 0 -1 4194560" + " 0" * 40 + "\n"
    (base / "stat").write_bytes(
        stat if stat is not None else b"%d (%s)%s" % (pid, name, tail.encode())
    )
    (base / "cmdline").write_bytes(cmdline)
    for fd, target in (fds or {}).items():
        if target is None:
            (base / "fd" / fd).write_text("")  # readlink fails on it
        else:
            os.symlink(target, base / "fd" / fd)
    (base / "net").mkdir()
    (base / "net" / "tcp").write_bytes(HEADER + b"".join(tcp or []))
    (base / "net" / "tcp6").write_bytes(HEADER + b"".join(tcp6 or []))
    if netns is not None:
        (base / "ns").mkdir()
        os.symlink(netns, base / "ns" / "net")
    if environ is not None:
        (base / "environ").write_bytes(environ)


def record(pid: int, session: int, comm: str, ppid: int = 1, uid: int = 0) -> ProcessRecord:
    return ProcessRecord(pid, session, ppid=ppid, uid=uid, comm=comm, started=1.0e9 + pid)


def info(session: int, leader: int | None, *, uid: int = 0, tty: str | None = None) -> SessionInfo:
    return SessionInfo(
        session, uid, "root", leader, tty, 1.0e9, 1, False, True if leader is not None else None
    )


def describe(
    tmp_path: Path, sessions: dict[int, list[ProcessRecord]], audit: bool = True
) -> dict[int, SessionInfo]:
    """describe() as ProcfsBackend.sessions() calls it, over the crafted
    /proc and /run under ``tmp_path``: each session's leader is its first record."""
    infos = [
        info(number, members[0].pid, uid=members[0].uid or 0)
        for number, members in sessions.items()
    ]
    found = details.describe(str(tmp_path / "proc"), str(tmp_path / "run"), infos, sessions, audit)
    return {item.session_id: item for item in found}


def logind(tmp_path: Path, name: str, text: str | bytes) -> None:
    folder = tmp_path / "run" / "systemd" / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode())


# -- the service: what started the login ---------------------------------------


@pytest.mark.parametrize(
    ("comm", "cmdline", "service"),
    [
        ("sshd", b"sshd: root@pts/0\0", "sshd"),
        ("sshd-session", b"sshd-session: root@pts/0\0", "sshd"),
        ("login", b"/bin/login\0-p\0--\0root\0", "login"),
        # cron's own -l (LSB names) is not a login flag: only su and runuser take one.
        ("cron", b"/usr/sbin/cron\0-f\0-l\0", "cron"),
        ("atd", b"/usr/sbin/atd\0-f\0", "atd"),
        ("systemd", b"/lib/systemd/systemd\0--user\0", "systemd-user"),
        ("su", b"su\0-l\0nobody\0", "su-l"),
        ("su", b"su\0-\0nobody\0", "su-l"),
        ("su", b"su\0nobody\0", "su"),
        ("runuser", b"runuser\0--login\0nobody\0", "runuser-l"),
        ("runuser", b"runuser\0-u\0nobody\0--\0true\0", "runuser"),
        # The flag is looked for in the first 4096 bytes of the command line:
        # here "--login" starts at byte 4090 and is cut to "--logi".
        ("su", b"su\0" + b"x" * 4086 + b"\0--login\0", "su"),
        ("bash", b"-bash\0", None),
    ],
)
def test_the_service_is_named_from_the_leaders_program_and_login_flag(
    tmp_path: Path, comm: str, cmdline: bytes, service: str | None
) -> None:
    process(tmp_path / "proc", 42, comm, cmdline=cmdline)
    assert describe(tmp_path, {7: [record(42, 7, comm)]})[7].service == service


def test_an_unverified_login_gets_no_service_and_session_0_no_details(tmp_path: Path) -> None:
    process(tmp_path / "proc", 42, "sshd", cmdline=b"sshd: root@pts/0\0")
    forged = info(7, 42)._replace(verified=False)
    zero = info(0, None)._replace(tty="pts/0")  # session 0 is never described
    found = details.describe(
        str(tmp_path / "proc"),
        str(tmp_path / "run"),
        [zero, forged],
        {0: [], 7: [record(42, 7, "sshd")]},
        True,
    )
    assert found == [zero, forged._replace(idle=None)]


# -- the host of an ssh login: the leader's connection ---------------------------


def test_the_host_is_the_peer_of_the_leaders_first_established_connection(tmp_path: Path) -> None:
    """Descriptors in numeric order (4 before 10), skipping one that is no
    link, a pipe whose inode text ends like a socket's, and a listening
    socket; the first established connection gives the host."""
    process(
        tmp_path / "proc",
        42,
        "sshd",
        fds={
            "0": None,
            "2": "pipe:[12777]",
            "3": "socket:[500]",
            "10": "socket:[600]",
            "4": "socket:[700]",
        },
        tcp=[
            tcp_line(0, 500, "0.0.0.0", LISTEN),
            tcp_line(1, 600, "198.51.100.10"),
            tcp_line(2, 700, "192.0.2.4"),
            tcp_line(3, 777, "203.0.113.77"),
        ],
    )
    assert describe(tmp_path, {7: [record(42, 7, "sshd")]})[7].host == "192.0.2.4"


def test_an_ipv6_client_is_found_in_tcp6(tmp_path: Path) -> None:
    process(
        tmp_path / "proc",
        42,
        "sshd",
        fds={"3": "socket:[900]", "4": "socket:[901]"},
        tcp6=[tcp_line(0, 900, "2001:db8::9"), tcp_line(1, 901, "::ffff:192.0.2.9")],
    )
    assert describe(tmp_path, {7: [record(42, 7, "sshd")]})[7].host == "2001:db8::9"
    os.unlink(tmp_path / "proc" / "42" / "fd" / "3")
    assert describe(tmp_path, {7: [record(42, 7, "sshd")]})[7].host == "192.0.2.9"


def test_only_ssh_logins_get_a_host(tmp_path: Path) -> None:
    """A cron job's leader holding a TCP connection is no remote login."""
    process(
        tmp_path / "proc",
        42,
        "cron",
        fds={"3": "socket:[500]"},
        tcp=[tcp_line(0, 500, "192.0.2.5")],
    )
    assert describe(tmp_path, {7: [record(42, 7, "cron")]})[7].host is None


def test_each_network_namespace_has_its_own_table_read_once(tmp_path: Path) -> None:
    """Two leaders in one namespace share the table the first one read (the
    second's own copy is empty here: it is never read); a leader in another
    namespace, or whose namespace cannot be read, reads its own."""
    proc = tmp_path / "proc"
    shared = [tcp_line(0, 501, "192.0.2.1"), tcp_line(1, 502, "192.0.2.2")]
    process(proc, 41, "sshd", fds={"3": "socket:[501]"}, tcp=shared)
    process(proc, 42, "sshd", fds={"3": "socket:[502]"}, tcp=[])
    process(
        proc,
        43,
        "sshd",
        fds={"3": "socket:[501]"},
        tcp=[tcp_line(0, 501, "198.51.100.3")],
        netns="net:[4026532999]",
    )
    process(
        proc,
        44,
        "sshd",
        fds={"3": "socket:[501]"},
        tcp=[tcp_line(0, 501, "198.51.100.4")],
        netns=None,
    )
    process(
        proc,
        45,
        "sshd",
        fds={"3": "socket:[502]"},
        tcp=[tcp_line(0, 502, "198.51.100.5")],
        netns=None,
    )
    sessions = {
        n: [record(pid, n, "sshd")] for n, pid in ((1, 41), (2, 42), (3, 43), (4, 44), (5, 45))
    }
    hosts = {n: found.host for n, found in describe(tmp_path, sessions).items()}
    assert hosts == {
        1: "192.0.2.1",
        2: "192.0.2.2",
        3: "198.51.100.3",
        4: "198.51.100.4",
        5: "198.51.100.5",
    }


@pytest.mark.parametrize(
    ("stat", "comm", "ppid", "found"),
    [
        (b"42 (sshd) S 1 42 42 0 -1", "sshd", 1, True),
        # The PID now names another program, or the same one under another parent.
        (b"42 (bash) S 1 42 42 0 -1", "sshd", 1, False),
        (b"42 (sshd) S 7 42 42 0 -1", "sshd", 1, False),
        # Names may hold parentheses and spaces: the last ")" ends the name.
        (b"42 (a) 7 (b) S 1 42 42 0 -1", "a) 7 (b", 1, True),
        # A name that is not UTF-8 is compared as the records keep it.
        (b"42 (ssh\xff) S 1 42 42 0 -1", "ssh\udcff", 1, True),
        # Cut short after the parent: still enough to tell.
        (b"42 (sshd) S 1", "sshd", 1, True),
        (b"42 (sshd) S", "sshd", 1, False),
        (b"", "sshd", 1, False),
    ],
)
def test_the_leader_is_read_only_while_its_pid_still_names_it(
    tmp_path: Path, stat: bytes, comm: str, ppid: int, found: bool
) -> None:
    process(
        tmp_path / "proc",
        42,
        comm,
        stat=stat,
        fds={"3": "socket:[500]"},
        tcp=[tcp_line(0, 500, "192.0.2.42")],
    )
    host = details._socket_host(str(tmp_path / "proc"), record(42, 7, comm, ppid), {})
    assert host == ("192.0.2.42" if found else None)


def test_a_leader_that_exited_gives_no_host(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    assert details._socket_host(str(tmp_path / "proc"), record(42, 7, "sshd"), {}) is None


# -- the host from the environment (the leader's descriptors unreadable) ---------


def test_the_environment_of_the_process_sshd_started_speaks_not_another(tmp_path: Path) -> None:
    """Members leader first: a process of the session that sshd did not
    start (its variables forged) comes before the shell sshd started."""
    proc = tmp_path / "proc"
    process(proc, 42, "sshd", fds={})  # no connection readable
    process(proc, 50, "bash", ppid=1, environ=b"SSH_CONNECTION=203.0.113.66 1 10.0.0.1 22\0")
    process(
        proc, 60, "bash", ppid=42, environ=b"HOME=/root\0SSH_CONNECTION=192.0.2.60 5 10.0.0.1 22\0"
    )
    members = [record(42, 7, "sshd"), record(50, 7, "bash"), record(60, 7, "bash", ppid=42)]
    assert describe(tmp_path, {7: members})[7].host == "192.0.2.60"
    os.unlink(proc / "60" / "environ")  # exited, or another user's
    assert describe(tmp_path, {7: members})[7].host is None


# -- logind's state files -------------------------------------------------------


def test_a_state_file_is_read_as_systemd_wrote_it(tmp_path: Path) -> None:
    """Comments and lines without "=" are skipped wherever they are; a value
    keeps its spaces and "=" signs; cescape()d bytes come back (an invalid
    escape is kept as written, a byte that is not UTF-8 as a surrogate); a
    key with a stray byte is kept, not fatal."""
    path = tmp_path / "state"
    path.write_bytes(
        b"# This is private data. Do not parse.\n"
        b"# COMMENT=not a field\n"
        b"no equals sign here\n"
        b"UID=0\n"
        b"REMOTE_HOST=host name=with spaces\n"
        b"DESKTOP=A\\x42C\\nD\\\\E\n"
        b"BROKEN=\\x4\n"
        b"RAW=\\xff\n"
        b"K\xffEY=1\n"
    )
    assert details.read_state_file(str(path)) == {
        "UID": "0",
        "REMOTE_HOST": "host name=with spaces",
        "DESKTOP": "ABC\nD\\E",
        "BROKEN": "\\x4",
        "RAW": "\udcff",
        "K\ufffdEY": "1",
    }


def test_logind_sessions_skip_ref_files_and_take_session_1(tmp_path: Path) -> None:
    logind(tmp_path, "1", "UID=0\nSERVICE=login\nAUDIT=1\n")
    logind(tmp_path, "7.ref", "UID=0\nSERVICE=fifo-name\nAUDIT=7\n")  # a FIFO's name, as a file
    assert {
        n: f["SERVICE"] for n, f in details.logind_sessions(str(tmp_path / "run"), True).items()
    } == {1: "login"}


def test_logind_state_speaks_only_for_a_session_of_its_uid(tmp_path: Path) -> None:
    """Session 1 is described like any other; a state file without UID
    is taken; one naming another uid is not (the leader decides)."""
    proc = tmp_path / "proc"
    for pid in (41, 42, 43):
        process(proc, pid, "login", cmdline=b"/bin/login\0--\0root\0")
    logind(tmp_path, "1", "UID=0\nSERVICE=gdm\nREMOTE_HOST=192.0.2.1\nAUDIT=1\n")
    logind(tmp_path, "2", "SERVICE=lightdm\nAUDIT=2\n")
    logind(tmp_path, "3", "UID=1000\nSERVICE=sshd\nREMOTE_HOST=203.0.113.3\nAUDIT=3\n")
    sessions = {n: [record(pid, n, "login")] for n, pid in ((1, 41), (2, 42), (3, 43))}
    found = describe(tmp_path, sessions)
    assert {n: (i.service, i.host) for n, i in found.items()} == {
        1: ("gdm", "192.0.2.1"),
        2: ("lightdm", None),
        3: ("login", None),
    }


# -- idle ----------------------------------------------------------------------


def test_idle_is_zero_for_a_terminal_used_right_now() -> None:
    now = os.stat("/dev/null").st_atime
    assert details.idle_seconds("null", now) == 0.0
    assert details.idle_seconds("null", now - 5) == 0.0  # a clock behind the device's
    assert details.idle_seconds("null", now + 90) == 90.0


def test_idle_never_leaves_the_device_folder_or_follows_a_link(tmp_path: Path) -> None:
    """/dev/null is a character device: reached through "..", or through a
    symbolic link where a terminal should be, it must not count."""
    assert details.idle_seconds("pts/../null", time.time()) is None
    (tmp_path / "pts").mkdir()
    os.symlink("/dev/null", tmp_path / "pts" / "9")
    assert details.idle_seconds("pts/9", time.time(), dev_root=str(tmp_path)) is None
    assert details.idle_seconds("pts/9/../../pts/9", time.time(), dev_root=str(tmp_path)) is None


# -- bounded reads ---------------------------------------------------------------


def test_bounded_reads_stop_exactly_at_their_limit(tmp_path: Path) -> None:
    """A regular file read in several chunks comes back whole up to the
    limit; a procfs file that answers about a page per read (smaps) too."""
    data = bytes(range(256)) * 400  # 102,400 bytes: two chunks of the reader
    (tmp_path / "big").write_bytes(data)
    assert details._read_bounded(str(tmp_path / "big"), 70000) == data[:70000]
    assert details._read_bounded(str(tmp_path / "big"), 1 << 20) == data
    # smaps answers about 4 KiB a read: the bound must hold across short reads.
    assert len(details._read_bounded("/proc/self/smaps", 5000) or b"") == 5000
