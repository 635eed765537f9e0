"""The habits of ``sessionid`` that ps and loginctl users expect (issue 19),
tried on the installed command: each command's own ``--help``, ``ps
--sort``, ``ps --forest``, ``ps --login``, the hint for ``ps aux``, the man
page and the bash and zsh completions.

The oracle is what the test did or a program the code did not write:
procps' own ``ps`` on a tree of real processes started here (with their own
names, owners and logins), ``man`` rendering the page, bash running the
completion, and the parser's verdict on what the help, the man page and the
completions offer.

"Installed": under tox the package is a wheel installed in the test
environment, and its data files are under ``sys.prefix``; from an editable
checkout (whose install has no data files) a wheel of the working tree's
tracked files is built and installed into a venv once per run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import IS_ROOT, LINUX, Login, linux_only, needs_root

MAN_PAGE = Path("share/man/man1/sessionid.1")
BASH = Path("share/bash-completion/completions/sessionid")
ZSH = Path("share/zsh/site-functions/_sessionid")


class Installed:
    def __init__(self, prefix: Path, script: Path) -> None:
        self.prefix = prefix
        self.script = script

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONID_")}
        return subprocess.run(
            [str(self.script), *args], capture_output=True, text=True, timeout=120, env=env
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert (done.returncode, done.stderr) == (0, ""), (args, done)
        return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    if not LINUX:
        pytest.skip("the installed-wheel checks use POSIX venv paths and procfs")
    prefix = Path(sys.prefix)
    script = Path(sys.executable).with_name("sessionid")
    if (prefix / MAN_PAGE).is_file() and script.is_file():
        return Installed(prefix, script)
    from test_install import REPO, borrow_runner_tools, build, clone, venv_with

    if not shutil.which("git"):
        pytest.skip("needs git to build a wheel of this checkout")
    work = tmp_path_factory.mktemp("habits")
    builder = venv_with(work / "builder", "setuptools>=77")
    # The working tree as it is (tracked files, edits included: `git stash
    # create` makes a commit of them and touches nothing), else HEAD.
    tree_commit = subprocess.run(
        ["git", "-C", str(REPO), "stash", "create"], capture_output=True, text=True, check=True
    ).stdout.strip()
    source = clone(work / "clone")
    if tree_commit:
        subprocess.run(["git", "-C", str(source), "checkout", "-q", tree_commit], check=True)
    wheel = build(builder, source, "wheel", work / "dist")
    python = venv_with(work / "venv", "--no-deps", "--no-index", str(wheel))
    borrow_runner_tools(python)  # cffi
    return Installed(work / "venv", work / "venv" / "bin" / "sessionid")


# -- each command's own help, against the parser ---------------------------------------

OPTION = re.compile(r"^  (?:(-\w), )?(--[\w-]+)", re.M)


def listed_options(page: str) -> set[str]:
    """The long options a help page lists (its options: section)."""
    section = page.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    return {long for _, long in OPTION.findall(section)} - {"--help", "--version"}


def sample_value(form: str, option: str) -> list[str]:
    """A value the option takes, chosen here, not by the code."""
    values = {
        "--format": "session" if form == "sessions" else "pid",
        "--backend": "procfs",
        "--pid": "1",
        "--session": "0",
        "--user": "0",
        "--login": "0",
        "--sort": "pid",
        "--signal": "TERM",
    }
    return [values[option]] if option in values else []


def command_line(form: str, option: str) -> list[str]:
    # kill: a session no process holds, and --dry-run: nothing is signalled.
    tail = ["--dry-run", "4294967294"] if form == "kill" else []
    head = [form] if form != "pids" else []
    return [*head, option, *sample_value(form, option), *tail]


@pytest.mark.parametrize("form", ["ps", "sessions", "kill"])
def test_each_command_has_its_own_page_listing_what_it_takes(
    installed: Installed, form: str
) -> None:
    page = installed.ok(form, "--help")
    assert page.startswith("usage: sessionid ")
    assert f" {form} " in page.splitlines()[0]
    assert installed.ok("--help", form) == page
    assert installed.ok(form, "-h") == page
    assert page != installed.ok("--help")
    own = listed_options(page)
    every = listed_options(installed.ok("--help"))
    assert own < every
    for option in sorted(own):
        done = installed.run(*command_line(form, option))
        assert done.returncode in (0, 1), (form, option, done.stderr)
    # What the page leaves out, the command refuses, naming where it goes;
    # --no-header alone is let through (it changes nothing there).
    for option in sorted(every - own - {"--no-header"}):
        done = installed.run(*command_line(form, option))
        assert done.returncode == 2, (form, option, done)
        assert f"{option} goes with " in done.stderr, done.stderr


def test_the_global_page_lists_every_option_the_commands_take(installed: Installed) -> None:
    every = listed_options(installed.ok("--help"))
    pages = set().union(
        *(listed_options(installed.ok(f, "--help")) for f in ("ps", "sessions", "kill"))
    )
    assert every == pages
    # Each is known to the parser (a misplaced option is named, not unknown).
    for option in sorted(every):
        assert "unknown option" not in installed.run("ps", option, "x").stderr


# -- a tree of real processes: names, owners, logins -------------------------------------

NOBODY, DAEMON = 65534, 1

# (name, login uid it writes, uid it switches to, children) - siblings are
# started in order, each after the one before.
TREE = (
    "habit-top",
    None,
    None,
    (
        (
            "habit-a",
            NOBODY,
            None,
            (
                ("habit-a1", None, NOBODY, (("habit-a1x", None, None, ()),)),
                ("habit-a2", None, None, ()),
            ),
        ),
        ("habit-b", DAEMON, NOBODY, (("habit-b1", None, None, ()),)),
        ("habit-c", None, None, ()),
    ),
)

SPAWN = r"""
import ctypes, json, os, sys
tree = json.loads(sys.argv[1])

def node(spec):
    name, login, owner, kids = spec
    if login is not None:
        with open("/proc/self/loginuid", "w") as f:
            f.write(str(login))
    # The name first: once it switched owner, /proc/self is no longer its own.
    with open("/proc/self/comm", "w") as f:
        f.write(name)
    if owner is not None:
        os.setgid(owner)
        os.setuid(owner)
        # Switching owner made it not dumpable, which gives its /proc/self
        # to root; its children (which name themselves) need it back.
        ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
    for kid in kids:
        ready_r, ready_w = os.pipe()
        if os.fork() == 0:
            try:
                os.close(ready_r)
                os.dup2(ready_w, 3)
                node(kid)
            finally:
                os._exit(1)  # never back into the parent's loop
        os.close(ready_w)
        os.read(ready_r, 1)  # the next sibling starts after this one is named
        os.close(ready_r)
    os.write(1, f"{name} {os.getpid()}\n".encode())
    try:
        os.write(3, b"x")
    except OSError:
        pass
    while os.read(0, 1):  # until the test closes stdin
        pass
    os._exit(0)

node(tree)
"""


@pytest.fixture(scope="module")
def tree() -> Iterator[dict[str, int]]:
    """The processes of TREE, running: name -> PID."""
    if not IS_ROOT:
        pytest.skip("needs root on Linux: the tree starts logins and switches owners")
    process = subprocess.Popen(
        [sys.executable, "-c", SPAWN, json.dumps(TREE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    pids: dict[str, int] = {}
    said = b""
    try:
        # From the pipe itself: lines written close together arrive in one
        # read, and a buffered readline() would keep the later ones where
        # select() cannot see them (the tree then looked stalled).
        while len(pids) < 8:
            if b"\n" not in said:
                ready, _, _ = select.select([process.stdout], [], [], 60)
                assert ready, f"the tree stalled after {pids}"
                chunk = os.read(process.stdout.fileno(), 4096)
                assert chunk, f"the tree died after {pids}"
                said += chunk
                continue
            line, said = said.split(b"\n", 1)
            name, pid = line.decode().split()
            pids[name] = int(pid)
        yield pids
    finally:
        process.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()


def tree_pids(tree: dict[str, int]) -> str:
    return ",".join(str(pid) for pid in tree.values())


def test_the_tree_is_what_the_test_made(tree: dict[str, int]) -> None:
    # The scene itself, read from procfs: the later checks lean on it.
    def status(pid: int, key: str) -> str:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return line.split()[1]
        raise AssertionError(key)

    assert Path(f"/proc/{tree['habit-a2']}/loginuid").read_text() == str(NOBODY)
    assert Path(f"/proc/{tree['habit-b1']}/loginuid").read_text() == str(DAEMON)
    assert status(tree["habit-a"], "Uid") == "0"
    assert status(tree["habit-a1x"], "Uid") == str(NOBODY)
    assert status(tree["habit-b"], "PPid") == str(tree["habit-top"])


@linux_only
@needs_root
@pytest.mark.parametrize(
    "keys",
    [
        "pid",
        "-pid",
        "comm",
        "-comm",
        "user,comm",
        "-user,-pid",
        "uid,-comm",
        "ppid",
        "-ppid,comm",
        "luid,comm",
        "-luid,pid",
        "+comm",
        "tty,-pid",
        "args",
    ],
)
def test_sort_orders_as_procps(installed: Installed, tree: dict[str, int], keys: str) -> None:
    if shutil.which("ps") is None:
        pytest.skip("needs procps' ps")
    wanted = tree_pids(tree)
    procps = subprocess.run(
        ["ps", "--sort", keys, "-o", "pid=", "-p", wanted],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    ours = installed.ok("ps", "--sort", keys, "-o", "pid", "--no-header", "-p", wanted).split()
    assert ours == procps
    assert len(ours) == len(tree)


# The drawing of TREE, by construction: siblings in start order (by default),
# by name, or newest first; `` |  `` below a process with siblings to come.
DRAWN_IN_START_ORDER = [
    "habit-top",
    " \\_ habit-a",
    " |   \\_ habit-a1",
    " |   |   \\_ habit-a1x",
    " |   \\_ habit-a2",
    " \\_ habit-b",
    " |   \\_ habit-b1",
    " \\_ habit-c",
]
DRAWN_NEWEST_FIRST = [
    "habit-top",
    " \\_ habit-c",
    " \\_ habit-b",
    " |   \\_ habit-b1",
    " \\_ habit-a",
    "     \\_ habit-a2",
    "     \\_ habit-a1",
    "         \\_ habit-a1x",
]


def rows(text: str, separator: str) -> list[tuple[str, str]]:
    """(PID, COMMAND cell) of each row of a ``-o pid,comm`` table."""
    pattern = re.compile(rf"\s*(\d+){separator}(.*)")
    return [pattern.fullmatch(line).groups() for line in text.splitlines()[1:]]  # type: ignore[union-attr]


@linux_only
@needs_root
@pytest.mark.parametrize(
    ("extra", "drawn"),
    [
        ([], DRAWN_IN_START_ORDER),
        (["--sort", "comm"], DRAWN_IN_START_ORDER),
        (["--sort", "-pid"], DRAWN_NEWEST_FIRST),
    ],
)
def test_forest_draws_the_tree_as_procps(
    installed: Installed, tree: dict[str, int], extra: list[str], drawn: list[str]
) -> None:
    wanted = tree_pids(tree)
    # ps separates columns with one space, sessionid with two.
    mine = rows(installed.ok("ps", "--forest", *extra, "-o", "pid,comm", "-p", wanted), "  ")
    assert [cell for _, cell in mine] == drawn
    assert [int(pid) for pid, _ in mine] == [tree[cell.split()[-1]] for cell in drawn]
    if shutil.which("ps") is None:
        pytest.skip("needs procps' ps to compare with")
    procps = subprocess.run(
        ["ps", "--forest", *extra, "-o", "pid,comm", "-p", wanted],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    theirs = rows(procps, " ")
    if extra and len(theirs) < len(tree):
        pytest.skip(
            "this procps loses processes with --forest --sort (procps 4.0.2 and older;"
            " fixed upstream by 'ps: don't lose tasks when --sort used with forest mode')"
        )
    assert mine == theirs


@linux_only
@needs_root
def test_forest_in_json_lists_parents_before_children(
    installed: Installed, tree: dict[str, int]
) -> None:
    document = json.loads(
        installed.ok("--json", "ps", "--forest", "-o", "pid,ppid", "-p", tree_pids(tree))
    )
    order = [row["pid"] for row in document["processes"]]
    assert sorted(order) == sorted(tree.values())
    for row in document["processes"]:
        if row["pid"] != tree["habit-top"]:
            assert order.index(row["ppid"]) < order.index(row["pid"])


@linux_only
@needs_root
@pytest.mark.parametrize(
    ("login", "user", "names"),
    [
        ("nobody", None, {"habit-a", "habit-a1", "habit-a1x", "habit-a2"}),
        (str(NOBODY), None, {"habit-a", "habit-a1", "habit-a1x", "habit-a2"}),
        ("daemon", None, {"habit-b", "habit-b1"}),
        (
            "nobody,daemon",
            None,
            {"habit-a", "habit-a1", "habit-a1x", "habit-a2", "habit-b", "habit-b1"},
        ),
        (None, "nobody", {"habit-a1", "habit-a1x", "habit-b", "habit-b1"}),
        # Both: owned by nobody AND in nobody's login.
        ("nobody", "nobody", {"habit-a1", "habit-a1x"}),
    ],
)
def test_login_selects_by_the_login_and_user_by_the_owner(
    installed: Installed, tree: dict[str, int], login: str | None, user: str | None, names: set[str]
) -> None:
    selection = [*(["--login", login] if login else []), *(["--user", user] if user else [])]
    out = installed.ok("ps", *selection, "-o", "pid", "--no-header")
    listed = {int(pid) for pid in out.split()}
    by_pid = {pid: name for name, pid in tree.items()}
    assert {by_pid[pid] for pid in listed if pid in by_pid} == names


@linux_only
def test_login_errors_and_an_empty_selection(installed: Installed) -> None:
    done = installed.run("ps", "--login", "no-such-user-here")
    assert done.returncode == 2
    assert (
        done.stderr
        == "sessionid: unknown user 'no-such-user-here' for --login (no such name in passwd)\n"
    )
    # A uid no login has: nothing matches, exit 1 (as for --user).
    done = installed.run("ps", "--login", "4000000000", "-p", str(os.getpid()))
    assert (done.returncode, done.stderr) == (1, "")
    done = installed.run("sessions", "--login", "root")
    assert done.returncode == 2
    assert "--login goes with ps only" in done.stderr


@pytest.mark.parametrize(
    "bad",
    [["--sort", "bogus"], ["--sort", "--pid"], ["--sort", "pid,"], ["--sort", "+-pid"], ["--sort"]],
)
def test_sort_usage_errors(installed: Installed, bad: list[str]) -> None:
    done = installed.run("ps", *bad)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("sessionid: ")
    assert "--sort" in done.stderr or "sort key" in done.stderr


# -- ps aux: the hint ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("habit", "nearest"),
    [
        (["aux"], "sessionid ps -o user,pid,session,tty,args"),
        (["ax"], "sessionid ps -o pid,tty,session,args"),
        (["-ef"], "sessionid ps -o user,pid,ppid,session,tty,args"),
        (["-e"], "sessionid ps -o pid,tty,session,args"),
        (["axjf"], "sessionid ps -o ppid,pid,session,tty,comm --forest"),
        (["-ejH"], "sessionid ps -o ppid,pid,session,tty,comm --forest"),
        (["-el"], "sessionid ps -o uid,pid,ppid,session,tty,comm"),
        (["-eLf"], "sessionid ps -o user,pid,ppid,session,tty,args"),
        (["-u", "root"], "sessionid ps --user USER"),
    ],
)
def test_ps_letters_get_the_nearest_form(
    installed: Installed, habit: list[str], nearest: str
) -> None:
    done = installed.run("ps", *habit)
    assert (done.returncode, done.stdout) == (2, "")
    [line] = done.stderr.splitlines()
    assert line.startswith("sessionid: ps here takes options, not ps's letters")
    assert f"the nearest form is {nearest} " in line
    # The form it shows is one the command takes.
    suggested = shlex.split(nearest)[1:]
    suggested = [word if word != "USER" else "root" for word in suggested]
    assert installed.run(*suggested).returncode == 0


def test_words_that_are_no_ps_habit_keep_the_plain_error(installed: Installed) -> None:
    done = installed.run("ps", "5")
    assert done.stderr == "sessionid: ps takes no arguments, got '5'\n"
    done = installed.run("ps", "--bogus")
    assert done.stderr == "sessionid: unknown option '--bogus' (see sessionid --help)\n"


# -- the man page -------------------------------------------------------------------------


def test_the_man_page_is_installed_and_renders_every_option(installed: Installed) -> None:
    page = installed.prefix / MAN_PAGE
    assert page.is_file()
    if shutil.which("man") is None:
        pytest.skip("needs man (apt man-db)")
    env = {**os.environ, "MANWIDTH": "200", "MAN_KEEP_FORMATTING": "", "LC_ALL": "C.UTF-8"}
    done = subprocess.run(
        ["man", "-P", "cat", "-l", str(page)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert warnings == []
    text = re.sub(".\b", "", done.stdout)  # overstrike bold, where man keeps it
    assert text.startswith("SESSIONID(1)")
    for section in ("NAME", "SYNOPSIS", "COMMANDS", "OPTIONS", "EXIT STATUS"):
        assert f"\n{section}\n" in text
    rendered = set(re.findall(r"(?<![\w-])(--[a-z][\w-]+)", text))
    every = listed_options(installed.ok("--help")) | {"--help", "--version"}
    # Its OPTIONS section has an entry for each option --help lists, and no other.
    section = text.split("\nOPTIONS\n", 1)[1]
    section = re.split(r"\n[A-Z][A-Z ]+\n", section, maxsplit=1)[0]  # up to the next heading
    entries = set(re.findall(r"^ {7}(?:-\w, )?(--[\w-]+)", section, re.M))
    assert entries == every
    # And the page names no option the command does not know.
    for option in sorted(rendered - every):
        assert "unknown option" not in installed.run(option).stderr, option


# -- completions ----------------------------------------------------------------------------


def bash_complete(installed: Installed, *words: str) -> list[str]:
    """What the installed bash completion offers for ``words`` (the last
    one being completed), run by bash as a shell would."""
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    quoted = " ".join(shlex.quote(word) for word in ("sessionid", *words))
    script = (
        f"source {shlex.quote(str(installed.prefix / BASH))}\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD={len(words)}\n"
        "_sessionid\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{installed.script.parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_commands_and_each_commands_options(installed: Installed) -> None:
    assert (installed.prefix / BASH).is_file()
    assert set(bash_complete(installed, "")) == {"ps", "sessions", "kill"}
    for form in ("ps", "sessions", "kill"):
        offered = {w for w in bash_complete(installed, form, "--") if w.startswith("--")}
        assert offered - {"--help"} == listed_options(installed.ok(form, "--help")), form


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["ps", "-o", "pid,se"], ["pid,session"]),
        (["ps", "--sort", "-pi"], ["-pid"]),
        (["sessions", "-o", "le"], ["leader"]),
        (["ps", "-o", "le"], []),
        (["kill", "-s", "KIL"], ["KILL"]),
        (["--backend", "pr"], ["procfs"]),
    ],
)
def test_bash_completes_values_the_command_takes(
    installed: Installed, words: list[str], expected: list[str]
) -> None:
    offered = bash_complete(installed, *words)
    assert offered == expected
    # Each one offered is accepted; what is not offered here is refused.
    form = words[0] if words[0] in ("ps", "sessions", "kill") else None
    for value in [*offered, *(["leader"] if words == ["ps", "-o", "le"] else [])]:
        line = [*words[:-1], value]
        if form == "kill":
            line += ["--dry-run", "4294967294"]
        done = installed.run(*line)
        assert done.returncode == (2 if value not in offered else done.returncode), done
        if value in offered:
            assert done.returncode in (0, 1), (line, done.stderr)


@linux_only
def test_bash_completes_users_and_pids(installed: Installed) -> None:
    assert "root" in bash_complete(installed, "ps", "--user", "ro")
    assert "root" in bash_complete(installed, "ps", "--login", "ro")
    me = str(os.getpid())
    assert f"1,{me}" in bash_complete(installed, "ps", "-p", f"1,{me}")


@needs_root
def test_bash_offers_the_sessions_kill_can_end(installed: Installed) -> None:
    login = Login(4242)
    try:
        offered = bash_complete(installed, "kill", "")
        assert str(login.session) in offered  # the number the login read itself
    finally:
        login.close()


def test_zsh_completion_is_installed_and_parses(installed: Installed) -> None:
    path = installed.prefix / ZSH
    assert path.is_file()
    assert path.read_text(encoding="utf-8").startswith("#compdef sessionid\n")
    if shutil.which("zsh") is None:
        pytest.skip("needs zsh (apt zsh)")
    done = subprocess.run(["zsh", "-n", str(path)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")


def test_the_committed_man_page_and_completions_are_current() -> None:
    # What tox -e lint checks, here too: the files the wheel installs were
    # written from today's table (tools/cli_docs.py rewrites them).
    tool = Path(__file__).resolve().parents[1] / "tools" / "cli_docs.py"
    done = subprocess.run(
        [sys.executable, str(tool), "--check"], capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.parametrize("form", [None, "ps", "sessions", "kill"])
def test_the_pages_of_this_checkout_are_the_installed_ones(
    installed: Installed, form: str | None
) -> None:
    # In process (so coverage sees the renderer): the same text the
    # installed command prints.
    import contextlib
    import io

    from sessionid_cffi._cli import main

    out = io.StringIO()
    argv = [form, "--help"] if form else ["--help"]
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    assert out.getvalue() == installed.ok(*argv)


# zsh completes only inside its line editor: a zsh on a pseudo-terminal
# (zpty) loads the installed file through fpath and compinit, is sent the
# line and a TAB, and prints every match the completion hands to compadd.
ZSH_CAPTURE = r"""
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "PS1=''; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
spy='compadd () { builtin compadd -O __hits "$@"; print -r -l -- "<<${^__hits}>>";'
spy+=' builtin compadd "$@" }'
zpty -w z "$spy"
zpty -w z "$2"$'\t'
sleep 2
out=
while zpty -rt z line 2>/dev/null; do out+=$line; done
print -r -- "$out"
zpty -d z
"""


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("sessionid ps --fo", {"--forest", "--format"}),
        ("sessionid ps -o pid,se", {"session"}),
        ("sessionid sessions -o le", {"leader"}),
        ("sessionid kill -s KI", {"KILL"}),
        ("sessionid --backend pr", {"procfs"}),
        ("sessionid kill --", None),  # the long options of `kill --help`
    ],
)
def test_zsh_completes_as_the_parser_takes(
    installed: Installed, line: str, expected: set[str] | None
) -> None:
    if shutil.which("zsh") is None:
        pytest.skip("needs zsh (apt zsh)")
    folder = str((installed.prefix / ZSH).parent)
    done = subprocess.run(
        ["zsh", "-f", "-c", ZSH_CAPTURE, "zsh", folder, line],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode == 3:
        pytest.skip("zsh has no zpty module")
    offered = {
        word for chunk in re.findall(r"<<([^>]*)>>", done.stdout) for word in chunk.split()
    } - {"${^__hits}"}
    if expected is None:
        expected = listed_options(installed.ok("kill", "--help")) | {"--help"}
    assert offered == expected, done.stdout
