"""The ``sessionid`` tool, run as a real process (``python -m sessionid_cffi``,
which is also how it runs under Wine), checked against the library and,
for real login sessions, against what the processes themselves read."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import sessionid_cffi as s

from conftest import Login, linux_only, needs_root

COMMAND = [sys.executable, "-m", "sessionid_cffi"]


def run(*args: str, backend: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SESSIONID_CFFI_BACKEND"}
    if backend is not None:
        env["SESSIONID_CFFI_BACKEND"] = backend
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=120, env=env
    )


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


def test_pids_print_pid_tab_session_when_piped() -> None:
    own = os.getpid()
    assert ok(str(own)) == f"{own}\t{s.current_session_id()}\n"


def test_a_missing_pid_fails_with_1_and_one_line_per_pid() -> None:
    own = os.getpid()
    missing = 4294967292
    done = run(str(own), str(missing))
    assert done.returncode == 1
    assert done.stdout == f"{own}\t{s.current_session_id()}\n"
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("sessionid: ")
    assert str(missing) in lines[0]


def test_pids_json_schema() -> None:
    own, missing = os.getpid(), 4294967292
    done = run("--json", str(own), str(missing))
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert document["processes"] == [{"pid": own, "session_id": s.current_session_id()}]
    [error] = document["errors"]
    assert (error["pid"], error["winerror"]) == (missing, 87)
    assert str(missing) in error["message"]


def test_ps_json_lists_this_process_sorted_by_session_then_pid() -> None:
    document = json.loads(ok("ps", "--json"))
    processes = document["processes"]
    assert all(set(p) == {"pid", "session_id", "user", "command"} for p in processes)
    keys = [(p["session_id"], p["pid"]) for p in processes]
    assert keys == sorted(keys)
    assert len({p["pid"] for p in processes}) == len(processes)
    by_pid = {p["pid"]: p for p in processes}
    assert by_pid[os.getpid()]["session_id"] == s.current_session_id()


def test_ps_plain_is_a_header_and_tab_separated_rows() -> None:
    lines = ok("ps").splitlines()
    assert lines[0] == "PID\tSESSION\tUSER\tCOMMAND"
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(row) == 4 for row in rows)
    by_pid = {int(row[0]): row for row in rows}
    assert int(by_pid[os.getpid()][1]) == s.current_session_id()


def test_ps_session_filter_keeps_only_that_session() -> None:
    own = s.current_session_id()
    processes = json.loads(ok("ps", "--json", "--session", str(own)))["processes"]
    assert {p["session_id"] for p in processes} == {own}
    assert os.getpid() in {p["pid"] for p in processes}
    assert json.loads(ok("ps", "--json", "--session=4294967290"))["processes"] == []


def test_sessions_lists_the_own_session() -> None:
    listed = json.loads(ok("sessions", "--json"))["sessions"]
    assert all(
        set(row) == {"session_id", "user", "process_count", "is_console"} for row in listed
    )
    own = {row["session_id"]: row for row in listed}[s.current_session_id()]
    assert own["process_count"] >= 1
    assert own["is_console"] == (s.current_session_id() == s.active_console_session_id())
    lines = ok("sessions").splitlines()
    assert lines[0] == "SESSION\tUSER\tPROCESSES\tCONSOLE"
    rows = {int(line.split("\t")[0]): line.split("\t") for line in lines[1:]}
    assert s.current_session_id() in rows
    assert all(row[3] in ("*", "-") for row in rows.values())


def test_backend_option_answers_with_that_backend() -> None:
    # The model built for --backend holds only the caller, in session 1.
    document = json.loads(ok("--backend", "model", "ps", "--json"))
    [process] = document["processes"]
    assert process["session_id"] == 1
    assert ok("--backend=model") == "1\n"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--bogus"], "--bogus"),
        (["abc"], "abc"),
        (["-1"], "-1"),
        (["4294967296"], "4294967296"),
        (["ps", "5"], "5"),
        (["ps", "--session", "x"], "x"),
        (["--session", "1"], "--session"),
        (["--backend"], "--backend"),
        (["--backend", "nope"], "nope"),
        (["--json=1"], "--json"),
        (["--x\ny"], "--x\\ny"),
    ],
)
def test_usage_errors_exit_2_with_one_line_naming_the_culprit(
    args: list[str], named: str
) -> None:
    assert named in usage_error(*args)


def test_help_and_version() -> None:
    assert ok("--help").startswith("usage: sessionid")
    assert ok("-h") == ok("--help")
    assert ok("--version") == f"sessionid-cffi {s.__version__}\n"


@linux_only
def test_columns_are_aligned_on_a_terminal() -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [*COMMAND, "ps"], stdout=follower, stderr=subprocess.PIPE, timeout=120
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
    assert "\t" not in "".join(lines)
    header = lines[0]
    assert header.split() == ["PID", "SESSION", "USER", "COMMAND"]
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
def test_login_sessions_show_up_in_ps_and_sessions(login: Login) -> None:
    processes = json.loads(ok("ps", "--json"))["processes"]
    by_pid = {p["pid"]: p for p in processes}
    assert by_pid[login.pid]["session_id"] == login.session
    with open(f"/proc/{login.pid}/comm") as file:
        assert by_pid[login.pid]["command"] == file.read().rstrip("\n")
    user = by_pid[login.pid]["user"]
    import pwd

    try:
        assert user == pwd.getpwuid(login.uid).pw_name
    except KeyError:
        assert user == str(login.uid)
    only = json.loads(ok("ps", "--json", "--session", str(login.session)))["processes"]
    assert [p["pid"] for p in only] == [login.pid]
    by_user = json.loads(ok("ps", "--json", "--user", user))["processes"]
    assert login.pid in {p["pid"] for p in by_user}
    assert {p["user"] for p in by_user} == {user}
    by_uid = json.loads(ok("ps", "--json", "--user", str(login.uid)))["processes"]
    assert by_uid == by_user  # a numeric uid selects the same processes as the name
    listed = {r["session_id"]: r for r in json.loads(ok("sessions", "--json"))["sessions"]}
    assert listed[login.session]["process_count"] == 1
    assert listed[login.session]["user"] == user
    plain = {line.split("\t")[0]: line.split("\t") for line in ok("sessions").splitlines()}
    assert plain[str(login.session)][1:3] == [user, "1"]
