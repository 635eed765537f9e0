"""Untrusted procfs content: the procfs backend parses files it does not control.

Hypothesis builds fake procfs trees (``ProcfsBackend(proc_root=tree,
live=False)``) holding garbage, empty, huge, negative, non-ASCII and
truncated ``sessionid``/``loginuid``/``cgroup``/``status`` files, symlinks
(to other processes, dangling, loops), FIFOs, missing entries and
directories where files should be. An oracle written here from the procfs
format (not from the backend's code) says what each tree means; the backend
must give exactly that session, or raise a SessionIdError subclass, never a
bare ValueError/UnicodeError/OSError, never another session, never hang.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from sessionid_cffi import ProcessNotFoundError, SessionIdError

from conftest import LINUX

pytestmark = pytest.mark.skipif(
    not LINUX, reason="the procfs backend parses Linux procfs trees (FIFOs, symlinks)"
)

if LINUX:  # the emulation package imports fine anywhere, but keep Windows lean
    from sessionid_cffi.emulation.procfs import PID_MAX_LIMIT, ProcfsBackend
else:  # pragma: no cover
    PID_MAX_LIMIT = 4194304

UNSET = 2**32 - 1
# How many trees and answers the tests in this module looked at (docs/reliability.md).
FIGURES = {"trees": 0, "sessions": 0, "errors": 0}

# -- what an entry of the tree can be ----------------------------------------
# ("file", bytes) | ("missing",) | ("dir",) | ("fifo",) | ("symlink", target)
# | ("loop",) (a symlink to itself) | ("dangling",)

SESSION_TEXT = st.one_of(
    st.integers(0, UNSET).map(lambda n: str(n).encode()),
    st.integers(1, 5000).map(lambda n: f"{n}\n".encode()),
    st.integers(1, 5000).map(lambda n: f"{n}\n".encode()),
    st.integers(0, UNSET).map(lambda n: f"{n}\n".encode()),
    st.just(b"4294967295\n"),
    st.integers(UNSET + 1, 10**30).map(lambda n: f"{n}\n".encode()),  # beyond a DWORD
    st.integers(-(10**12), -1).map(lambda n: f"{n}\n".encode()),  # negative
    st.integers(0, 10**6).map(lambda n: f"{n:08d}\n".encode()),  # leading zeros
    st.sampled_from(
        [
            b"",
            b"\n",
            b" 7\n",
            b"7 \n",
            b"7\n\n",
            b"+7\n",
            b"0x10\n",
            b"1e3\n",
            b"\xd9\xa3\n",
            "\uff13\n".encode(),
            "٣".encode(),
            b"7\x00",
            b"\xff\xfe",
            b"1_000\n",
            b"nan\n",
            b"\t5\n",
            b"5\r\n",
        ]
    ),
    st.binary(max_size=80),
    st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(65, 300).map(lambda n: b"1" * n),  # huge: more digits than any DWORD
    st.integers(1, 20).map(lambda n: b"7\n" + b"\x00" * n),  # valid, then junk
)

CGROUP_COMPONENT = st.one_of(
    st.sampled_from(
        [
            "user.slice",
            "user-1000.slice",
            "system.slice",
            "init.scope",
            "app.slice",
            "user@1000.service",
            "ssh.service",
            "docker-3.scope",
            "xsession-4.scope",
            "session-.scope",
            "session-c.scope",
            "session-x.scope",
            "session-3.scopes",
            "session-3",
            "session-3.service",
            "session--3.scope",
            "session-c-3.scope",
            "session-٣.scope",
            "session-99999999999.scope",
            "session-4294967295.scope",
            "session-4294967294.scope",
        ]
    ),
    st.integers(0, 2**32).map(lambda n: f"session-{n}.scope"),
    st.integers(0, 10**6).map(lambda n: f"session-c{n}.scope"),
    st.text(st.characters(blacklist_characters="/\n\x00"), min_size=1, max_size=12),
    st.integers(40, 300).map(lambda n: "a" * n),  # long names push later lines out
)
CGROUP_PATH = st.one_of(
    st.lists(CGROUP_COMPONENT, max_size=6),
    # logind's place (user.slice/user-UID.slice/session-*), or near it
    st.builds(
        lambda uid, scope, below: ["user.slice", uid, scope, *below],
        st.sampled_from(["user-1000.slice", "user-0.slice", "user-x.slice", "user-.slice"]),
        CGROUP_COMPONENT,
        st.lists(CGROUP_COMPONENT, max_size=1),
    ),
    # a user's delegated subtree, where any name can be made
    st.builds(
        lambda parts: ["user.slice", "user-1000.slice", "user@1000.service", *parts],
        st.lists(CGROUP_COMPONENT, min_size=1, max_size=3),
    ),
)
CGROUP_LINE = st.builds(
    lambda hid, ctl, parts: f"{hid}:{ctl}:/{'/'.join(parts)}",
    st.integers(0, 13),
    st.sampled_from(["", "name=systemd", "cpu,cpuacct", "memory", "pids"]),
    CGROUP_PATH,
)
CGROUP_TEXT = st.one_of(
    st.lists(CGROUP_LINE, max_size=14).map(lambda ls: "".join(f"{line}\n" for line in ls)),
    st.lists(CGROUP_LINE, min_size=1, max_size=4).map("\n".join),  # no final newline
    st.lists(CGROUP_LINE, max_size=14).map(
        lambda ls: "".join(f"{line}\n" for line in ls).encode("utf-8", "surrogatepass")
    ),
    st.binary(max_size=200),
).map(lambda t: t if isinstance(t, bytes) else t.encode("utf-8", "surrogatepass"))


def status_text(tgid: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    real = tgid.map(
        lambda t: (
            b"Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t"
            + t
            + b"\nNgid:\t0\nPid:\t1\nPPid:\t0\n"
        )
    )
    return st.one_of(
        real,
        real,
        real,
        real,
        st.binary(max_size=120),
        st.just(b""),
        st.just(b"Name:\tx\nState:\tR\n"),  # no Tgid line
        tgid.map(lambda t: b"Tgid:\t" + t + b"\n"),  # Tgid on the first line: not a status
        tgid.map(lambda t: b"Name:\t" + b"x" * 1100 + b"\nTgid:\t" + t + b"\n"),  # huge
    )


def entry(content: st.SearchStrategy[bytes]) -> st.SearchStrategy[tuple[object, ...]]:
    return st.one_of(
        *[content.map(lambda c: ("file", c))] * 4,  # four times as likely as the odd kinds
        st.sampled_from(
            [
                ("missing",),
                ("dir",),
                ("fifo",),
                ("loop",),
                ("dangling",),
                ("symlink", "../other/sessionid"),
                ("symlink", "/dev/zero"),
                ("symlink", "/dev/null"),
            ]
        ),
    )


@dataclass
class Tree:
    pid: int
    other: int  # a well-formed second process, in session OTHER_SESSION
    audit: bool  # self/sessionid exists: the kernel has audit sessions
    pid_entry: str  # "dir", "missing", "file", "symlink-other", "loop"
    sessionid: tuple[object, ...]
    status: tuple[object, ...]
    cgroup: tuple[object, ...]
    loginuid: tuple[object, ...]


OTHER_SESSION = 4242


@st.composite
def trees(draw: st.DrawFn) -> Tree:
    pid = draw(st.one_of(st.integers(1, 400), st.integers(1, PID_MAX_LIMIT - 1)))
    other = draw(st.integers(1, PID_MAX_LIMIT).filter(lambda n: n != pid))
    own_tgid = str(pid).encode()
    tgid = st.one_of(
        *[st.just(own_tgid)] * 6,
        st.just(str(other).encode()),
        st.integers(1, PID_MAX_LIMIT).map(lambda n: str(n).encode()),
        st.sampled_from([b"", b"-1", b"abc", b"\xff", own_tgid + b"x", b"0x10", "٣".encode()]),
    )
    return Tree(
        pid=pid,
        other=other,
        audit=draw(st.booleans()),
        pid_entry=draw(
            st.sampled_from(["dir"] * 12 + ["missing", "file", "symlink-other", "loop"])
        ),
        sessionid=draw(entry(SESSION_TEXT)),
        status=draw(entry(status_text(tgid))),
        cgroup=draw(entry(CGROUP_TEXT)),
        loginuid=draw(entry(SESSION_TEXT)),
    )


def _write_entry(path: Path, spec: tuple[object, ...]) -> None:
    kind = spec[0]
    if kind == "file":
        path.write_bytes(spec[1])  # type: ignore[arg-type]
    elif kind == "dir":
        path.mkdir()
        (path / "sessionid").write_bytes(b"1\n")  # a directory with plausible content
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "loop":
        path.symlink_to(path.name)
    elif kind == "dangling":
        path.symlink_to("does-not-exist")
    elif kind == "symlink":
        path.symlink_to(spec[1])  # type: ignore[arg-type]


def build(root: Path, tree: Tree) -> None:
    (root / "self").mkdir()
    if tree.audit:
        (root / "self" / "sessionid").write_bytes(b"4294967295\n")
    other = root / "other"
    other.mkdir()
    (other / "sessionid").write_bytes(f"{OTHER_SESSION}\n".encode())
    (other / "cgroup").write_bytes(
        f"0::/user.slice/user-1000.slice/session-{OTHER_SESSION}.scope\n".encode()
    )
    (other / "status").write_bytes(f"Name:\tx\nState:\tS\nTgid:\t{tree.other}\n".encode())
    (root / str(tree.other)).symlink_to("other")
    target = root / str(tree.pid)
    if tree.pid_entry == "missing":
        return
    if tree.pid_entry == "file":
        target.write_bytes(b"1\n")
        return
    if tree.pid_entry == "symlink-other":
        target.symlink_to("other")  # /proc/P -> another process's directory
        return
    if tree.pid_entry == "loop":
        target.symlink_to(target.name)
        return
    target.mkdir()
    for name in ("sessionid", "status", "cgroup", "loginuid"):
        _write_entry(target / name, getattr(tree, name))


# -- the oracle ----------------------------------------------------------------
# An answer is ("session", n), "notfound" (ProcessNotFoundError) or "error"
# (any SessionIdError; never a session).

SESSIONID_FORMAT = re.compile(rb"([0-9]{1,10})\n?\Z")
SCOPE = re.compile(rb"session-c?([0-9]+)\.scope\Z")
# logind's place for a session: nothing else is a login (users name cgroups freely).
LOGIND_PLACE = re.compile(rb"/user\.slice/user-[0-9]{1,10}\.slice/(session-[^/]*)\Z")


def _regular(spec: tuple[object, ...]) -> bytes | None:
    """Content of an entry a procfs reader may trust: a regular file, not a link."""
    return spec[1] if spec[0] == "file" else None  # type: ignore[return-value]


def oracle_sessionid(data: bytes) -> int | None:
    """The kernel prints an audit session id as "%u\\n" (4294967295: unset)."""
    match = SESSIONID_FORMAT.match(data)
    if match is None or int(match.group(1)) > UNSET:
        return None
    value = int(match.group(1))
    return 0 if value == UNSET else value


CGROUP_LINE_FORMAT = re.compile(rb"[0-9]+:[^:\n]*:/[^\n]*\Z")


def oracle_cgroup(data: bytes) -> int | None:
    """One or more lines ``id:controllers:/path`` (anything else is not a
    cgroup file); the first path that is logind's place
    (``/user.slice/user-UID.slice/session-*``) decides: ``session-N.scope``
    or ``session-cN.scope`` is session N (below 2**32-1), anything else
    named so there is malformed; none: 0."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if not lines or not all(CGROUP_LINE_FORMAT.match(line) for line in lines):
        return None
    for line in lines:
        place = LOGIND_PLACE.match(line.split(b":", 2)[2])
        if place is None:
            continue
        match = SCOPE.match(place.group(1))
        if match is None or len(match.group(1)) > 10:
            return None
        value = int(match.group(1))
        return value if value < UNSET else None
    return 0


def oracle_tgid(data: bytes) -> int | None:
    """The Tgid field of a status file: procfs prints ``Name:`` first (at
    most 64 bytes of escaped name), then Umask, State and Tgid."""
    lines = data.split(b"\n")
    if not lines[0].startswith(b"Name:") or len(lines[0]) > 80:
        return None
    for line in lines[1:5]:
        if line.startswith(b"Tgid:"):
            value = line[5:].strip(b" \t")
            return int(value) if value.isdigit() and value.isascii() else None
    return None


def oracle(tree: Tree) -> tuple[str, int] | str:
    if tree.pid_entry in ("missing", "file"):
        return "notfound"
    if tree.pid_entry == "symlink-other":
        return "notfound"  # another process's files: Tgid says so; never its session
    if tree.pid_entry == "loop":
        return "error"
    if tree.sessionid == ("missing",) and tree.audit:
        return "notfound"
    if tree.sessionid == ("missing",):
        if tree.cgroup == ("missing",):
            return "notfound"
        data, parse = _regular(tree.cgroup), oracle_cgroup
    else:
        data, parse = _regular(tree.sessionid), oracle_sessionid
    session = None if data is None else parse(data)
    status = _regular(tree.status)
    tgid = None if status is None else oracle_tgid(status)
    if session is None or tgid is None:
        return "error"
    if tgid != tree.pid:
        return "notfound"  # a thread id (or a process that is not P)
    return ("session", session)


def ask(backend: ProcfsBackend, pid: int) -> tuple[str, int] | SessionIdError:
    """The backend's answer, in a thread so that a hang fails the test."""
    box: list[object] = []

    def run() -> None:
        try:
            box.append(("session", backend.session_id(pid)))
        except BaseException as err:
            box.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        _unblock_fifos(Path(backend.proc_root))
        thread.join(5)
        pytest.fail(f"session_id({pid}) hung on {backend.proc_root}")
    answer = box[0]
    if isinstance(answer, BaseException) and not isinstance(answer, SessionIdError):
        raise AssertionError(
            f"session_id({pid}) raised {type(answer).__name__}: {answer}; "
            "only SessionIdError subclasses may escape"
        ) from answer
    return answer  # type: ignore[return-value]


def _unblock_fifos(root: Path) -> None:
    """Open every FIFO of ``root`` for writing: a reader blocked in open() returns."""
    for path in root.rglob("*"):
        if path.is_fifo():
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def check(tree: Tree, answer: tuple[str, int] | SessionIdError) -> None:
    expected = oracle(tree)
    note(f"tree={tree!r} expected={expected!r} answer={answer!r}")
    if isinstance(answer, SessionIdError):
        FIGURES["errors"] += 1
        assert isinstance(answer.winerror, int)
        assert answer.pid == tree.pid, f"the error names PID {answer.pid}"
        assert answer.strerror
        assert "\n" not in str(answer), "error messages are one line"
        assert expected != ("session", OTHER_SESSION) or tree.pid_entry != "symlink-other"
        if isinstance(expected, tuple):
            raise AssertionError(f"expected session {expected[1]}, got error {answer!r}")
        if expected == "notfound":
            assert isinstance(answer, ProcessNotFoundError), answer
            assert answer.winerror == 87
        return
    FIGURES["sessions"] += 1
    assert expected == answer, f"backend answered {answer}, the tree means {expected}"


_counter = itertools.count()


@given(tree=trees())
def test_generated_trees_give_the_right_session_or_a_clear_error(tree: Tree) -> None:
    root = Path(tempfile.mkdtemp(prefix=f"fakeproc{next(_counter)}-"))
    try:
        build(root, tree)
        FIGURES["trees"] += 1
        check(tree, ask(ProcfsBackend(str(root), live=False), tree.pid))
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- hand-picked trees: the cases the generator could take long to find --------


def make_tree(tmp_path: Path, pid: int, **files: bytes | str) -> ProcfsBackend:
    (tmp_path / "self").mkdir(exist_ok=True)
    (tmp_path / str(pid)).mkdir()
    files.setdefault("status", f"Name:\tx\nState:\tS\nTgid:\t{pid}\n")
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (tmp_path / str(pid) / name).write_bytes(data)
    return ProcfsBackend(str(tmp_path), live=False)


def test_a_cgroup_file_longer_than_one_small_read_is_read_whole(tmp_path: Path) -> None:
    # cgroup v1 lists a dozen hierarchies; the name=systemd line, which holds
    # the session, may come last, far beyond the first 64 bytes.
    lines = [f"{n}:cpu{n}:/system.slice/a-long-unit-name-{n}.service" for n in range(12, 1, -1)]
    lines.append("1:name=systemd:/user.slice/user-1000.slice/session-7.scope")
    backend = make_tree(tmp_path, 42, cgroup="\n".join(lines) + "\n")
    assert backend.session_id(42) == 7


@pytest.mark.parametrize("lines", [1500, 6000])  # ~310 kB: read whole; ~1.2 MB: refused
def test_a_huge_cgroup_file_is_read_whole_or_refused(tmp_path: Path, lines: int) -> None:
    noise = "".join(f"{n}:pids:/{'x' * 200}/{n}\n" for n in range(lines))
    backend = make_tree(
        tmp_path, 43, cgroup=noise + "1:name=systemd:/user.slice/user-0.slice/session-c9.scope\n"
    )
    if len(noise) < 2**20:
        assert backend.session_id(43) == 9
        return
    # Beyond the 1 MiB a cgroup file can plausibly hold: refused as malformed
    # (ERROR_INVALID_DATA), never read in part and answered 0.
    with pytest.raises(SessionIdError) as caught:
        backend.session_id(43)
    assert caught.value.winerror == 13
    assert not isinstance(caught.value, ProcessNotFoundError)


@pytest.mark.parametrize("name", ["sessionid", "status", "cgroup"])
def test_a_fifo_where_a_file_should_be_does_not_hang(tmp_path: Path, name: str) -> None:
    # Without self/sessionid the tree has no audit: cgroup is the session file.
    backend = make_tree(
        tmp_path, 44, sessionid="5\n", cgroup="0::/user.slice/user-0.slice/session-5.scope\n"
    )
    (tmp_path / "44" / name).unlink()
    if name == "cgroup":
        (tmp_path / "44" / "sessionid").unlink()
    os.mkfifo(tmp_path / "44" / name)
    answer = ask(backend, 44)
    assert isinstance(answer, SessionIdError), answer


def test_a_symlinked_sessionid_is_not_trusted(tmp_path: Path) -> None:
    backend = make_tree(tmp_path, 45)
    (tmp_path / "elsewhere").write_text("77\n")
    (tmp_path / "45" / "sessionid").symlink_to("../elsewhere")
    with pytest.raises(SessionIdError) as caught:
        backend.session_id(45)
    assert caught.value.pid == 45


def test_a_pid_directory_linked_to_another_process_never_gives_its_session(
    tmp_path: Path,
) -> None:
    backend = make_tree(tmp_path, 46, sessionid="8\n")
    (tmp_path / "47").symlink_to("46")  # /proc/47 -> /proc/46
    assert backend.session_id(46) == 8
    with pytest.raises(ProcessNotFoundError):
        backend.session_id(47)


def test_loginuid_garbage_does_not_change_the_session(tmp_path: Path) -> None:
    backend = make_tree(tmp_path, 48, sessionid="12\n", loginuid=b"\xff\xfe-1 junk")
    assert backend.session_id(48) == 12


@pytest.mark.parametrize(
    ("seat0", "session_file", "expected"),
    [
        (b"ACTIVE=3\n", b"AUDIT=3\n", 3),
        (b"ACTIVE=c2\n", b"", 2),
        (b"ACTIVE=a\x00b\n", b"AUDIT=5\n", None),  # an embedded NUL is no file name
        (b"ACTIVE=../seats/seat0\nAUDIT=5\n", b"", None),  # no escaping the folder
        (b"ACTIVE=\xff\xfe\n", b"AUDIT=6\n", None),
        (b"\xff" * 70000, b"", None),
        (b"ACTIVE=4\n", b"AUDIT=-4\nAUDIT=\n", 4),  # the last AUDIT= wins: empty
        (b"ACTIVE=4\n", b"AUDIT=99999999999\n", 4),
        (b"ACTIVE=7\n", "fifo", 7),
        ("fifo", b"", None),
    ],
)
def test_console_session_from_untrusted_logind_state(
    tmp_path: Path, seat0: bytes | str, session_file: bytes | str, expected: int | None
) -> None:
    seats, sessions = tmp_path / "systemd" / "seats", tmp_path / "systemd" / "sessions"
    seats.mkdir(parents=True)
    sessions.mkdir()
    if seat0 == "fifo":
        os.mkfifo(seats / "seat0")
    else:
        (seats / "seat0").write_bytes(seat0)  # type: ignore[arg-type]
    for name in ("3", "c2", "a", "4", "7"):
        if session_file == "fifo":
            os.mkfifo(sessions / name)
        else:
            (sessions / name).write_bytes(session_file)  # type: ignore[arg-type]
    backend = ProcfsBackend(str(tmp_path), live=False, run_root=str(tmp_path))
    box: list[object] = []
    thread = threading.Thread(target=lambda: box.append(_console(backend)), daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        _unblock_fifos(tmp_path)
        pytest.fail("console_session_id() hung on a FIFO")
    assert box == [expected]


def _console(backend: ProcfsBackend) -> object:
    try:
        return backend.console_session_id()
    except BaseException as err:
        return err
