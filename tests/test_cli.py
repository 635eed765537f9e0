"""The ``sessionid`` tool, run as a real process (``python -m sessionid_cffi``,
which is also how it runs under Wine), checked against the library and,
for real login sessions, against what the processes themselves read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import sessionid_cffi as s

from conftest import Login, linux_only, needs_root

if TYPE_CHECKING:
    from collections.abc import Iterator

COMMAND = [sys.executable, "-m", "sessionid_cffi"]
# Commands run from tests/, never from the checkout's root: `python -m` puts
# the working folder first on sys.path, and the source tree's package (with
# emulation/ beside it, mapped in only by the installer) is not what runs.
NEUTRAL = str(Path(__file__).resolve().parent)


def run(*args: str, backend: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SESSIONID_CFFI_BACKEND"}
    if backend is not None:
        env["SESSIONID_CFFI_BACKEND"] = backend
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=120, env=env, cwd=NEUTRAL
    )


SCHEMA = json.loads((Path(s.__file__).parent / "schema.json").read_text(encoding="utf-8"))


def valid(document: object) -> object:
    """``document``, checked against the schema shipped in the package."""
    try:
        import jsonschema
    except ImportError:
        if sys.platform == "win32":
            return document  # the Wine lane's wheel set has no jsonschema
        raise
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    return document


def ok_json(*args: str) -> dict[str, object]:
    document = json.loads(ok("--json", *args))
    valid(document)
    assert isinstance(document, dict)
    return document


def name_of(uid: int) -> str | None:
    import pwd  # not at the top: Windows has no pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def own_account() -> str | None:
    """This process's user name as the system tells it to the process
    itself: the effective uid's passwd name, or on Windows GetUserNameW."""
    if sys.platform != "win32":
        return name_of(os.geteuid())
    import ctypes

    size = ctypes.c_ulong(257)
    name = ctypes.create_unicode_buffer(size.value)
    assert ctypes.WinDLL("advapi32").GetUserNameW(name, ctypes.byref(size))  # type: ignore[attr-defined]
    return name.value


def width(text: str) -> int:
    """Display columns, as a terminal draws them."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


@pytest.fixture
def child() -> Iterator[int]:
    """PID of a second process of ours (os.getppid() aborts under Wine 8)."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()
        assert process.stdin is not None
        process.stdin.close()


def ok(*args: str) -> str:
    done = run(*args)
    assert (done.returncode, done.stderr) == (0, ""), done
    return done.stdout


def usage_error(*args: str) -> str:
    done = run(*args)
    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("sessionid: ")
    return lines[0]


def test_no_argument_prints_the_own_session() -> None:
    # The child is in the caller's session (C2), so it prints ours.
    assert ok() == f"{s.current_session_id()}\n"


def test_pids_print_aligned_pid_and_session_when_piped(child: int) -> None:
    own, parent = os.getpid(), child
    lines = ok(str(own), str(parent)).splitlines()
    assert "\t" not in "".join(lines)
    assert [line.split() for line in lines] == [
        [str(own), str(s.current_session_id())],
        [str(parent), str(s.process_id_to_session_id(parent))],
    ]
    assert len({len(line) for line in lines}) == 1  # right-aligned: same length


def test_a_missing_pid_fails_with_1_and_one_line_per_pid() -> None:
    own = os.getpid()
    missing = 4294967292
    done = run(str(own), str(missing))
    assert done.returncode == 1
    assert done.stdout.split() == [str(own), str(s.current_session_id())]
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("sessionid: ")
    assert str(missing) in lines[0]


def test_pids_json_schema() -> None:
    own, missing = os.getpid(), 4294967292
    done = run("--json", str(own), str(missing))
    assert done.returncode == 1
    document = valid(json.loads(done.stdout))
    assert isinstance(document, dict)
    assert document["processes"] == [{"pid": own, "session_id": s.current_session_id()}]
    [error] = document["errors"]
    assert (error["pid"], error["winerror"]) == (missing, 87)
    assert str(missing) in error["message"]


def test_ps_json_lists_this_process_sorted_by_session_then_pid() -> None:
    processes = ok_json("ps")["processes"]
    assert isinstance(processes, list)
    assert all(set(p) == {"pid", "session_id", "user", "login", "comm"} for p in processes)
    keys = [(p["session_id"], p["pid"]) for p in processes]
    assert keys == sorted(keys)
    assert len({p["pid"] for p in processes}) == len(processes)
    mine = {p["pid"]: p for p in processes}[os.getpid()]
    assert mine["session_id"] == s.current_session_id()
    assert mine["user"] == own_account()


def test_ps_plain_is_a_header_and_space_aligned_rows() -> None:
    lines = ok("ps").splitlines()
    assert lines[0].split() == ["PID", "SESSION", "USER", "LOGIN", "COMMAND"]
    assert "\t" not in "".join(lines)
    by_pid = {int(line.split()[0]): line.split() for line in lines[1:]}
    assert int(by_pid[os.getpid()][1]) == s.current_session_id()
    # PID and SESSION end in the same column on every line; USER starts in one.
    pid_end = len(lines[0]) - len(lines[0].lstrip(" ")) + 3
    for line in lines:
        assert line[pid_end - 1] != " "
        assert line[pid_end] == " "


@linux_only
def test_ps_columns_match_what_this_process_knows_of_itself() -> None:
    columns = "pid,ppid,session,uid,user,luid,login,tty,comm,args"
    [row] = ok_json("ps", "-o", columns, "-p", str(os.getpid()))["processes"]  # type: ignore[misc]
    with open("/proc/self/loginuid") as file:
        luid = int(file.read())
    with open("/proc/self/comm") as file:
        comm = file.read().rstrip("\n")
    try:
        tty: str | None = os.ttyname(0).removeprefix("/dev/")
    except OSError:
        tty = None  # no terminal on stdin; a controlling one elsewhere is not expected here
    assert row == {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "session_id": s.current_session_id(),
        "uid": os.geteuid(),
        "user": name_of(os.geteuid()),
        "luid": None if luid == 4294967295 else luid,
        "login": None if luid == 4294967295 else name_of(luid),
        "tty": row["tty"] if tty is None else tty,
        "comm": comm,
        "args": " ".join(sys.orig_argv),
    }
    # Plain text: the same values, in -o order, one header.
    lines = ok("ps", f"-o{columns}", f"--pid={os.getpid()}").splitlines()
    assert lines[0].split() == [
        "PID",
        "PPID",
        "SESSION",
        "UID",
        "USER",
        "LUID",
        "LOGIN",
        "TTY",
        "COMMAND",
        "COMMAND",
    ]
    assert lines[1].split()[:3] == [str(os.getpid()), str(os.getppid()), str(row["session_id"])]
    assert lines[1].endswith(" ".join(sys.orig_argv))


def test_no_header_drops_only_the_header() -> None:
    own = str(os.getpid())
    assert ok("ps", "--no-header", "-p", own).split()[:2] == [own, str(s.current_session_id())]
    assert len(ok("ps", "--no-header", "-p", own).splitlines()) == 1
    # Other sessions come and go while the suite runs: compare the own one.
    own = str(s.current_session_id())
    assert ok("sessions").splitlines()[0].split()[0] == "SESSION"
    rows = [line.split() for line in ok("sessions", "--no-header").splitlines()]
    assert all(row[0].isdigit() for row in rows)
    assert own in {row[0] for row in rows}


def test_pid_and_session_lists_repeat_and_combine(child: int) -> None:
    own, parent = os.getpid(), child
    wanted = {own, parent}
    listed = ok_json("ps", "-p", f"{own},{parent}")["processes"]
    assert {p["pid"] for p in listed} == wanted  # type: ignore[index]
    listed = ok_json("ps", "-p", str(own), f"--pid={parent}")["processes"]
    assert {p["pid"] for p in listed} == wanted  # type: ignore[index]
    session = s.current_session_id()
    listed = ok_json("ps", "--session", f"4294967290,{session}", "-p", str(own))["processes"]
    assert [p["pid"] for p in listed] == [own]  # type: ignore[index]
    listed = ok_json("ps", "--session", str(session), "--session", "4294967290")["processes"]
    assert own in {p["pid"] for p in listed}  # type: ignore[index]
    assert {p["session_id"] for p in listed} == {session}  # type: ignore[index]
    if not (sys.platform.startswith("linux") and os.geteuid() == 0):
        return
    # A session only this test's child is in (it reports the session from
    # the inside): repeated --session lists exactly it, whatever other jobs'
    # processes come and go meanwhile (a whole-machine count cannot be pinned).
    login = Login(uid=4242)
    try:
        args = ("ps", "--session", str(login.session), "--session", "4294967290")
        listed = ok_json(*args)["processes"]
    finally:
        login.close()
    rows = [(p["pid"], p["session_id"]) for p in listed]  # type: ignore[index]
    assert rows == [(login.pid, login.session)]


@linux_only
def test_user_selects_owners_by_name_or_uid_lists() -> None:
    root_processes = {
        int(name)
        for name in os.listdir("/proc")
        if name.isdigit() and os.stat(f"/proc/{name}").st_uid == 0
    }
    by_name = ok_json("ps", "--user", "root")["processes"]
    assert {p["user"] for p in by_name} == {"root"}  # type: ignore[index]
    assert os.getpid() in {p["pid"] for p in by_name} or os.geteuid() != 0  # type: ignore[index]
    # Processes root owned before and after the listing are all in it.
    still = {pid for pid in root_processes if os.path.exists(f"/proc/{pid}")}
    assert still - {p["pid"] for p in by_name} <= still - set(s.session_ids())  # type: ignore[index]
    by_uid = ok_json("ps", "--user", "0,nobody")["processes"]
    assert {p["user"] for p in by_uid} <= {"root", "nobody"}  # type: ignore[index]


def test_selection_matching_nothing_exits_1_with_the_header_only() -> None:
    for args in (["-p", "4294967292"], ["--session", "4294967290"]):
        done = run("ps", *args)
        assert (done.returncode, done.stderr) == (1, "")
        assert done.stdout.split() == ["PID", "SESSION", "USER", "LOGIN", "COMMAND"]
        done = run("ps", "--json", *args)
        assert done.returncode == 1
        assert valid(json.loads(done.stdout)) == {"processes": []}


@linux_only
def test_unknown_user_is_a_one_line_usage_error() -> None:
    line = usage_error("ps", "--user", "root,no-such-user-here")
    assert "no-such-user-here" in line


HOSTILE = """
import sys
name = sys.argv[1].encode()
with open("/proc/self/comm", "wb") as comm:
    comm.write(name)
print(flush=True)
sys.stdin.read()
"""


@linux_only
@pytest.mark.parametrize("name", ["ev\til\n\x1b[2J", "名前テスト"])
def test_hostile_or_wide_command_names_keep_columns_aligned(name: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOSTILE, name, "two\nlines"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        child.stdout.readline()
        pids = f"{child.pid},{os.getpid()}"
        # COMMAND last (the default): every row stays one line, control
        # characters as ?, and the columns before it are untouched.
        lines = ok("ps", "-p", pids, "-o", "pid,user,comm,args").splitlines()
        assert len(lines) == 3
        row = next(line for line in lines if line.split()[0] == str(child.pid))
        shown = name.encode()[:15].decode("utf-8", "ignore")
        shown = "".join(ch if ch.isprintable() else "?" for ch in shown)
        assert f" {shown} " in row
        assert row.endswith("two?lines")
        # COMMAND first: PID (right-aligned) still ends in one display column.
        lines = ok("ps", "-p", pids, "-o", "comm,pid,user").splitlines()
        ends = set()
        for line in lines:
            pid = line.split()[-2]
            ends.add(width(line[: line.rindex(" " + pid + " ") + 1 + len(pid)]))
        assert len(ends) == 1, lines
    finally:
        child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


def test_sessions_lists_the_own_session() -> None:
    listed = ok_json("sessions")["sessions"]
    assert isinstance(listed, list)
    own = {row["session_id"]: row for row in listed}[s.current_session_id()]
    assert own["process_count"] >= 1
    lines = ok("sessions").splitlines()
    assert lines[0].split() == [
        "SESSION",
        "UID",
        "USER",
        "LEADER",
        "TTY",
        "SINCE",
        "PROCESSES",
        "CONSOLE",
        "VERIFIED",
        "FROM",
        "SERVICE",
        "IDLE",
    ]
    rows = {int(line.split()[0]): line.split() for line in lines[1:]}
    assert s.current_session_id() in rows
    assert all(len(row) == 12 and row[7] in ("*", "-") for row in rows.values())
    assert all(row[8] in ("yes", "NO", "-") for row in rows.values())


# Run in a private mount namespace with a tmpfs on /run that holds what
# systemd-logind writes (seat0's ACTIVE session, that session's AUDIT id),
# as the procfs backend reads it. The shell first opens a login of its own
# (root writes its loginuid) and names, as the console's, the session the
# kernel gave it (or another one): the truth is what the test set up.
UNSHARE = ["unshare", "-m", "--propagation", "private"]
PRIVATE_RUN = r"""
set -e
echo 1000 > /proc/self/loginuid
own=$(cat /proc/self/sessionid)
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/seats /run/systemd/sessions
echo "ACTIVE=login7" > /run/systemd/seats/seat0
if [ "$1" = own ]; then echo "AUDIT=$own"; else echo "AUDIT=$1"; fi > /run/systemd/sessions/login7
echo "$own"
exec "$2" -m sessionid_cffi "$3" sessions
"""


@linux_only
@needs_root
@pytest.mark.parametrize("console", ["own", "4294967294"])
def test_sessions_marks_the_console_session_that_logind_names(console: str) -> None:
    if not os.path.exists("/proc/self/loginuid") or shutil.which("unshare") is None:
        pytest.skip("needs audit login sessions and unshare(1)")
    done = {}
    for form in ("--json", "--no-header"):
        result = subprocess.run(
            [*UNSHARE, "sh", "-c", PRIVATE_RUN, "sh", console, sys.executable, form],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=NEUTRAL,
        )
        assert (result.returncode, result.stderr) == (0, ""), result
        own, _, output = result.stdout.partition("\n")
        done[form] = (int(own), output)
    own, output = done["--json"]
    listed = json.loads(output)["sessions"]
    valid({"sessions": listed})
    consoles = [row["session_id"] for row in listed if row["is_console"]]
    # 4294967294: a session number no process holds, so no row is the console.
    assert consoles == ([own] if console == "own" else [])
    assert own in [row["session_id"] for row in listed]
    own, output = done["--no-header"]
    stars = [line.split()[0] for line in output.splitlines() if line.split()[7] == "*"]
    assert stars == ([str(own)] if console == "own" else [])


def test_backend_option_answers_with_that_backend() -> None:
    # The model built for --backend holds only the caller, in session 1.
    [process] = ok_json("--backend", "model", "ps")["processes"]  # type: ignore[misc]
    assert process["session_id"] == 1
    assert ok("--backend=model") == "1\n"
    [session] = ok_json("--backend", "model", "sessions")["sessions"]  # type: ignore[misc]
    assert session == {
        "session_id": 1,
        "uid": None,
        "user": None,
        "leader": None,
        "tty": None,
        "since": None,
        "process_count": 1,
        "is_console": False,
        "verified": None,
        "host": None,
        "service": None,
        "idle": None,
    }


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--bogus"], "--bogus"),
        (["abc"], "abc"),
        (["-1"], "-1"),
        (["4294967296"], "4294967296"),
        (["ps", "5"], "5"),
        (["ps", "--session", "x"], "x"),
        (["ps", "--session", "1,,2"], "1,,2"),
        (["ps", "-o", "pid,command"], "command"),
        (["ps", "-o"], "--format"),
        (["ps", "-p", "1,x"], "x"),
        (["--session", "1"], "--session"),
        (["sessions", "--user", "root"], "--user"),
        (["-o", "pid"], "--format"),
        (["--backend"], "--backend"),
        (["--backend", "nope"], "nope"),
        (["--json=1"], "--json"),
        (["--no-header=1"], "--no-header"),
        (["--x\ny"], "--x\\ny"),
    ],
)
def test_usage_errors_exit_2_with_one_line_naming_the_culprit(args: list[str], named: str) -> None:
    assert named in usage_error(*args)


def test_help_and_version() -> None:
    text = ok("--help")
    assert text.startswith("usage: sessionid")
    for column in ("pid", "ppid", "session", "uid", "user", "luid", "login", "tty", "comm", "args"):
        assert f" {column}" in text
    assert ok("-h") == text
    assert ok("--version") == f"sessionid-cffi {s.__version__}\n"


@linux_only
@pytest.mark.parametrize("args", [[], ["1"], ["ps"], ["sessions"], ["--help"], ["ps", "--json"]])
def test_output_errors_are_one_line_and_exit_1(args: list[str]) -> None:
    command = " ".join([*COMMAND, *args])
    for redirect in (">/dev/full", ">&-"):
        done = subprocess.run(
            ["sh", "-c", f"exec {command} {redirect}"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=NEUTRAL,
        )
        assert done.returncode == 1, (redirect, done)
        lines = done.stderr.splitlines()
        assert len(lines) == 1, (redirect, lines)
        assert lines[0].startswith("sessionid: cannot write the output: "), lines


@linux_only
def test_a_reader_that_leaves_early_is_not_an_error_message() -> None:
    # `true` reads nothing and exits long before the interpreter has started:
    # the write meets a closed pipe (EPIPE), as `sessionid ps | head` can.
    done = subprocess.run(
        ["bash", "-c", f"{' '.join(COMMAND)} ps -o pid,args | true; echo ${{PIPESTATUS[0]}}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=NEUTRAL,
    )
    assert (done.stdout, done.stderr) == ("1\n", "")


@linux_only
@pytest.mark.parametrize("into", ["pipe", "file"])
def test_the_console_script_writes_everything_before_it_ends_the_process(
    into: str, tmp_path: Path
) -> None:
    # The installed `sessionid` ends with os._exit (no interpreter teardown):
    # every byte must be out first. A child whose one argument is 100 KB (more
    # than a pipe or the io buffers hold) must show up whole, as written here,
    # and a line that fits in the buffers (which only a flush sends) too.
    script = Path(sys.executable).with_name("sessionid")
    # Buffered, as by default: PYTHONUNBUFFERED would write through and hide a lost flush.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    out_file = tmp_path / "out.txt"

    def sessionid(*args: str) -> tuple[int, str]:
        with out_file.open("w") as sink:
            done = subprocess.run(
                [str(script), *args],
                stdout=subprocess.PIPE if into == "pipe" else sink,
                env=env,
                text=True,
                timeout=120,
                cwd=NEUTRAL,
            )
        return done.returncode, done.stdout if into == "pipe" else out_file.read_text()

    argument = "x" * 100_000
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", argument], stdin=subprocess.PIPE
    )
    try:
        status, text = sessionid("ps", "-o", "pid,args", "--no-header", "-p", str(child.pid))
        assert status == 0
        pid, args = text.split(None, 1)
        assert int(pid) == child.pid
        assert args == f"{sys.executable} -c import sys; sys.stdin.read() {argument}\n"
        short = sessionid("ps", "-o", "pid", "--no-header", "-p", str(child.pid))
        assert short == (0, f"{child.pid}\n")
        # ... and the status survives too: a selection that matches nothing is 1.
        child.communicate(b"")
        assert sessionid("ps", "-p", str(child.pid))[0] == 1
    finally:
        child.kill()
        child.wait()


@linux_only
def test_columns_are_aligned_on_a_terminal() -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [*COMMAND, "ps"], stdout=follower, stderr=subprocess.PIPE, timeout=120, cwd=NEUTRAL
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert done.returncode == 0
    lines = b"".join(chunks).decode().replace("\r\n", "\n").splitlines()
    assert lines == ok("ps").splitlines()[: len(lines)] or len(lines) > 1
    header = lines[0]
    assert header.split() == ["PID", "SESSION", "USER", "LOGIN", "COMMAND"]
    # Right-aligned numbers end under their headers; USER starts under USER.
    pid_end = header.index("PID") + 3
    session_end = header.index("SESSION") + 7
    user_start = header.index("USER")
    for line in lines[1:]:
        assert line[pid_end - 1].isdigit()
        assert line[pid_end] == " "
        assert line[session_end - 1].isdigit()
        assert line[user_start - 1] == " "
        assert line[user_start] != " "


@needs_root
@pytest.mark.parametrize("login", ["named"], indirect=True)
def test_login_sessions_show_up_in_ps_and_sessions(login: Login) -> None:
    processes = ok_json("ps")["processes"]
    by_pid = {p["pid"]: p for p in processes}  # type: ignore[index, union-attr]
    assert by_pid[login.pid]["session_id"] == login.session
    with open(f"/proc/{login.pid}/comm") as file:
        assert by_pid[login.pid]["comm"] == file.read().rstrip("\n")
    # USER is the owner (the child runs as root), LOGIN the login's user.
    login_name = name_of(login.uid)
    assert (by_pid[login.pid]["user"], by_pid[login.pid]["login"]) == ("root", login_name)
    only = ok_json("ps", "--session", str(login.session))["processes"]
    assert [p["pid"] for p in only] == [login.pid]  # type: ignore[index, union-attr]
    listed = {r["session_id"]: r for r in ok_json("sessions")["sessions"]}  # type: ignore[index, union-attr]
    row = listed[login.session]
    assert (row["uid"], row["user"], row["leader"], row["process_count"]) == (
        login.uid,
        login_name,
        login.pid,
        1,
    )
    plain = {line.split()[0]: line.split() for line in ok("sessions").splitlines()}
    assert plain[str(login.session)][1:4] == [str(login.uid), login_name, str(login.pid)]


@needs_root
def test_a_uid_without_a_name_is_a_number_in_tables_and_null_in_json() -> None:
    nameless = Login(uid=4242424)  # no passwd entry
    try:
        assert name_of(4242424) is None
        [row] = ok_json("ps", "-p", str(nameless.pid), "-o", "pid,luid,login")["processes"]  # type: ignore[misc]
        assert row == {"pid": nameless.pid, "luid": 4242424, "login": None}
        lines = ok("ps", "-p", str(nameless.pid), "-o", "pid,login").splitlines()
        assert lines[1].split() == [str(nameless.pid), "4242424"]
        listed = {r["session_id"]: r for r in ok_json("sessions")["sessions"]}  # type: ignore[index, union-attr]
        session = listed[nameless.session]
        assert (session["uid"], session["user"]) == (4242424, None)
        plain = {line.split()[0]: line.split() for line in ok("sessions").splitlines()}
        assert plain[str(nameless.session)][1:3] == ["4242424", "4242424"]
    finally:
        nameless.close()


def named_child(name: bytes, *args: str) -> subprocess.Popen[str]:
    """A real process whose comm is ``name`` (written to /proc/self/comm)
    and whose other arguments are ``args``; started once it has renamed."""
    code = (
        "import sys\n"
        "open('/proc/self/comm', 'wb').write(bytes.fromhex(sys.argv[1]))\n"
        "print(flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, name.hex(), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    child.stdout.readline()
    return child


def ended(child: subprocess.Popen[str]) -> None:
    child.kill()
    child.wait()
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            stream.close()


# Output encodings that cannot carry 漢: latin-1 by PYTHONIOENCODING, and
# ASCII by the C locale with Python's UTF-8 mode and locale coercion off.
NARROW_OUTPUTS = {
    "utf-8": {"PYTHONIOENCODING": "utf-8"},
    "latin-1": {"PYTHONIOENCODING": "latin-1"},
    "C": {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"},
}


@linux_only
@pytest.mark.parametrize("output", list(NARROW_OUTPUTS))
def test_every_row_prints_whatever_the_output_encoding(output: str) -> None:
    # Issue 20: one name outside the output encoding wiped the whole table.
    name = "漢字漢字漢"
    child = named_child(name.encode())
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SESSIONID_CFFI_BACKEND", "PYTHONIOENCODING", "LC_ALL", "LANG")
    }
    env.update(NARROW_OUTPUTS[output])
    try:

        def sessionid(*args: str) -> tuple[int, bytes, bytes]:
            done = subprocess.run(
                [*COMMAND, *args], capture_output=True, timeout=120, env=env, cwd=NEUTRAL
            )
            return done.returncode, done.stdout, done.stderr

        status, table, errors = sessionid("ps")
        assert (status, errors) == (0, b"")
        encoding = "utf-8" if output == "utf-8" else "latin-1"
        rows = table.decode(encoding).splitlines()
        shown = name if output == "utf-8" else "?????"
        [row] = [r for r in rows if r.split()[0] == str(child.pid)]
        assert row.endswith(f"  {shown}")
        # Every process is a row: PID 1 and this test's own process too.
        assert {"1", str(os.getpid())} <= {r.split()[0] for r in rows[1:]}
        # The columns before COMMAND stay aligned when ? stands for a wide character.
        status, table, errors = sessionid("ps", "-p", f"{child.pid},1", "-o", "comm,pid")
        assert (status, errors) == (0, b"")
        lines = table.decode(encoding).splitlines()
        assert len({width(line) for line in lines}) == 1, lines
        # JSON is ASCII whatever the encoding, and keeps the name.
        status, document, errors = sessionid("--json", "ps", "-p", str(child.pid))
        assert (status, errors) == (0, b"")
        assert document.isascii()
        assert json.loads(document)["processes"][0]["comm"] == name
    finally:
        ended(child)


@linux_only
@pytest.mark.parametrize(
    ("name", "shown"),
    [
        # Hangul fillers, braille blank: letters and a symbol that draw nothing.
        ("a\u3164b".encode(), "a?b"),
        ("a\u115fb".encode(), "a?b"),
        ("a\u2800b".encode(), "a?b"),
        # Combining grapheme joiner, variation selector 16: marks.
        ("a\u034fb".encode(), "a?b"),
        ("a\ufe0fb".encode(), "a?b"),
        # Zero-width space, right-to-left override: format characters.
        ("a\u200bb".encode(), "a?b"),
        ("a\u202eb".encode(), "a?b"),
        # A decomposed é is é, not e and a lone mark.
        ("e\u0301t\u00e9".encode(), "\u00e9t\u00e9"),
        # A byte that is not UTF-8 is ?, never the text \xff ...
        (b"a\xffb", "a?b"),
        # ... which a name may hold as four characters of its own.
        (b"a\\xffb", "a\\xffb"),
    ],
    ids=repr,
)
def test_invisible_characters_and_invalid_bytes_print_as_question_marks(
    name: bytes, shown: str
) -> None:
    child = named_child(name)
    try:
        [row] = ok("ps", "--no-header", "-p", str(child.pid), "-o", "comm,pid").splitlines()
        assert row.split() == [shown, str(child.pid)]
        [process] = ok_json("ps", "-p", str(child.pid), "-o", "comm")["processes"]  # type: ignore[misc]
        # JSON: the text itself, a byte that is not UTF-8 as a lone surrogate
        # escape (\udcff) that no valid text holds: the bytes come back whole.
        assert os.fsencode(process["comm"]) == name
    finally:
        ended(child)


def on_terminal(*args: str, columns: int = 80) -> tuple[int, list[str]]:
    """The command's output lines on a pseudo-terminal ``columns`` wide."""
    import fcntl
    import pty
    import struct
    import termios

    env = {k: v for k, v in os.environ.items() if k not in ("SESSIONID_CFFI_BACKEND", "COLUMNS")}
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    process = subprocess.Popen(
        [*COMMAND, *args], stdout=follower, stderr=subprocess.DEVNULL, env=env, cwd=NEUTRAL
    )
    os.close(follower)
    chunks = []
    while True:  # read as it comes: a full terminal buffer would stop the writer
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the writer closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    status = process.wait(timeout=120)
    return status, b"".join(chunks).decode().replace("\r\n", "\n").splitlines()


# Issue 20: in an 80-column terminal this argv wrapped into a line that
# looks like a row for PID 1.
FAKE_ROW = "1  0  root  -  /sbin/init"


@linux_only
def test_rows_are_cut_at_the_terminal_width_so_none_poses_as_a_row() -> None:
    child = named_child(b"vim", "notes.txt" + " " * 120 + FAKE_ROW)
    real_init = "/sbin/init" in Path("/proc/1/cmdline").read_bytes().decode(errors="replace")
    try:
        columns = "pid,session,user,luid,args"
        status, lines = on_terminal("ps", "-o", columns)
        assert status == 0
        assert all(width(line) <= 80 for line in lines), max(lines, key=width)
        [row] = [line for line in lines if line.split()[0] == str(child.pid)]
        assert width(row) == 80
        assert sum("/sbin/init" in line for line in lines) == real_init
        # -w: at least 132 columns; -ww and a pipe: whole rows.
        status, lines = on_terminal("ps", "-w", "-o", columns)
        [row] = [line for line in lines if line.split()[0] == str(child.pid)]
        assert width(row) == 132
        assert all(width(line) <= 132 for line in lines)
        for whole in (
            on_terminal("ps", "-ww", "-o", columns)[1],
            ok("ps", "-o", columns).splitlines(),
        ):
            [row] = [line for line in whole if line.split()[0] == str(child.pid)]
            assert row.endswith(" " * 120 + FAKE_ROW)
        # The sessions table is cut the same way.
        status, lines = on_terminal("sessions", columns=40)
        assert status == 0
        assert lines
        assert all(width(line) <= 40 for line in lines)
    finally:
        ended(child)


def test_widths_count_what_terminals_draw() -> None:
    from sessionid_cffi._cli import _cut, _width

    # U+FE0F (a variation selector) and U+0301 (a combining accent) draw
    # nothing of their own; 漢 takes two columns.
    assert [_width(t) for t in ("a\ufe0f", "e\u0301", "漢字", "a\u200bb")] == [1, 1, 4, 2]
    # A wide character that would straddle the edge is left out.
    assert _cut("ab漢字", 3) == "ab"
    assert _cut("ab漢字", 4) == "ab漢"


PLANTED_JSON = """
import pathlib
pathlib.Path(__file__).with_name("ran").write_text("a planted json.py ran")
from_planted = True
"""


@pytest.mark.parametrize("form", [["-P"], ["-I"], []], ids=["-P", "-I", "plain -m"])
def test_the_recommended_forms_import_nothing_from_the_working_folder(
    tmp_path: Path, form: list[str]
) -> None:
    # docs/cli.md: as root in a folder others can write, `python -m` would
    # import their json.py; `python -P -m` (3.11+) and `python -I -m` do not.
    if form == ["-P"] and sys.version_info < (3, 11):
        pytest.skip("-P is new in Python 3.11")
    if not form and list(Path(sys.base_prefix).glob("*._pth")):
        pytest.skip("the embeddable CPython's ._pth keeps the working folder off sys.path")
    (tmp_path / "json.py").write_text(PLANTED_JSON)
    done = subprocess.run(
        [sys.executable, *form, "-m", "sessionid_cffi", "--json", "ps", "-p", str(os.getpid())],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "SESSIONID_CFFI_BACKEND"},
    )
    planted_ran = (tmp_path / "ran").exists()
    if form:
        assert (done.returncode, done.stderr) == (0, ""), done
        assert not planted_ran
        [process] = json.loads(done.stdout)["processes"]
        assert process["pid"] == os.getpid()
    else:
        # The plain form does run it: what the recommendation avoids.
        assert planted_ran


def test_kill_takes_kill_and_9_on_every_platform() -> None:
    # Windows' signal module has no SIGKILL; kill_session ends the process
    # with exit code 9 there, so `sessionid kill -s KILL` must parse.
    from sessionid_cffi._cli import UsageError, signal_number

    assert [signal_number(word) for word in ("KILL", "kill", "SIGKILL", "9")] == [9, 9, 9, 9]
    assert signal_number("0") == 0
    with pytest.raises(UsageError, match="unknown signal"):
        signal_number("SIGNOPE")
