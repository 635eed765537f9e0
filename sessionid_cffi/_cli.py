"""The ``sessionid`` command: which login session is a process in?

Forms (docs/cli.md has the details; ``schema.json`` in this package the JSON)::

    sessionid [--json] [--backend NAME] [PID ...]
    sessionid [--json] [--backend NAME] ps [-o COLUMNS] [--no-header]
              [-p PID[,PID...]] [--session N[,N...]] [--user USER[,USER...]]
    sessionid [--json] [--backend NAME] sessions [--no-header]

Exit codes: 0 ok; 1 some PID not found or not inspectable, a selection that
matches no process, or the process table could not be read or the output
not written; 2 usage error (an unknown user too), or no backend here.

Startup time is most of what this command costs, so the arguments are
parsed by hand (argparse and its imports cost more than reading every
process of a busy machine), ``json`` is imported only for ``--json`` and
only the files the chosen columns need are read.
"""

import os  # loaded by every interpreter at start: importing it costs nothing
import sys

# _operator, not operator: operator.py adds ~0.24 ms of import (-X importtime)
# to every `sessionid ps`, whose budget is 0.5x ps (benchmarks: sessionid_ps).
from _operator import itemgetter

from . import current_session_id, process_id_to_session_id, process_records, sessions, use_backend
from ._backend import make_builtin
from ._errors import BackendUnavailableError, SessionIdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

    from ._records import ProcessRecord

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_NOT_FOUND = EXIT_FAILED  # the name older code and tests use

USAGE = """\
usage: sessionid [--json] [--backend NAME] [PID ...]
       sessionid [--json] [--backend NAME] ps [-o COLUMNS] [--no-header]
                 [-p PID,...] [--session N,...] [--user USER,...]
       sessionid [--json] [--backend NAME] sessions [--no-header]
"""

HELP = f"""{USAGE}
Print the login session of processes, with the semantics of Win32
ProcessIdToSessionId: the Windows session, or on Linux the kernel audit
login session (0 for system processes and services).

forms:
  sessionid             the session of this command's own process
  sessionid PID ...     one line per PID: PID SESSION
  sessionid ps          processes, sorted by session, then PID; columns
                        PID SESSION USER LOGIN COMMAND unless -o says
  sessionid sessions    every session: SESSION UID USER LEADER TTY SINCE
                        PROCESSES CONSOLE (CONSOLE: * for the console session)

options:
  --json                print one JSON object instead (its JSON Schema:
                        schema.json in the sessionid_cffi package)
  --backend NAME        answer with backend kernel32, procfs or model
  -o, --format COLUMNS  ps: comma-separated columns, any of
                        pid ppid session uid user luid login tty comm args
  --no-header           ps, sessions: print no header line
  -p, --pid PID,...     ps: only these processes
  --session N,...       ps: only the processes of these sessions
  --user USER,...       ps: only the processes these users own (name or uid)
  -h, --help            print this help and exit
  --version             print the version and exit

USER is the owner (effective uid, as in ps); LOGIN the user of the login
session; a uid without a passwd name prints as the number. Columns are
aligned with spaces; a missing value prints as -.
Options that take lists may repeat; a process is kept when it matches
each option given.

exit status: 0 ok; 1 some PID not found or not inspectable, nothing
matched the selection, or the process table could not be read or the
output could not be written; 2 usage error or unknown user, or no backend
can answer here.
"""

_FORMS = ("ps", "sessions")
_VALUED = ("--backend", "--session", "--user", "--format", "--pid", "-o", "-p")
_SHORT = {"-o": "--format", "-p": "--pid"}
_PS_ONLY = ("--format", "--pid", "--session", "--user")
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")

#: ps column -> (header, record field, right-aligned)
COLUMNS = {
    "pid": ("PID", "pid", True),
    "ppid": ("PPID", "ppid", True),
    "session": ("SESSION", "session_id", True),
    "uid": ("UID", "uid", True),
    "user": ("USER", "user", False),
    "luid": ("LUID", "luid", True),
    "login": ("LOGIN", "login", False),
    "tty": ("TTY", "tty", False),
    "comm": ("COMMAND", "comm", False),
    "args": ("COMMAND", "args", False),
}
# A name column shows its uid where passwd has no name for it, as ps does
# (in JSON the name is null and the uid field holds the number).
_NUMBER_FOR = {"user": "uid", "login": "luid"}
DEFAULT_COLUMNS = ("pid", "session", "user", "login", "comm")
# Record fields by position (ProcessRecord's order): a tuple index is the
# cheapest way to read one field of a thousand records.
_FIELD_INDEX = {
    field: index
    for index, field in enumerate(
        ("pid", "session_id", "ppid", "uid", "user", "luid", "login", "tty", "comm", "args")
    )
}

_BY_SESSION_THEN_PID = itemgetter(1, 0)
SESSION_HEADER = ("SESSION", "UID", "USER", "LEADER", "TTY", "SINCE", "PROCESSES", "CONSOLE")


class UsageError(Exception):
    """A command line that does not say what to do (exit code 2)."""


class _Args:
    __slots__ = (
        "backend",
        "columns",
        "form",
        "header",
        "json",
        "pids",
        "select_pids",
        "sessions",
        "users",
    )

    def __init__(self) -> None:
        self.form = "pids"
        self.json = False
        self.header = True
        self.backend: str | None = None
        self.columns: list[str] = []
        self.select_pids: set[int] | None = None
        self.sessions: set[int] | None = None
        self.users: list[str] | None = None
        self.pids: list[int] = []


def _dword(text: str, what: str) -> int:
    if (
        not (text.isascii() and text.isdigit())
        or len(text.lstrip("0")) > 10
        or int(text) > 0xFFFFFFFF
    ):
        raise UsageError(f"not {what}: {text!r} (expected a whole number 0 ... 4294967295)")
    return int(text)


def _list(value: str, name: str) -> list[str]:
    items = value.split(",")
    if not all(items):
        raise UsageError(f"{name} needs a comma-separated list without empty items, got {value!r}")
    return items


def parse_args(argv: "Sequence[str]") -> "_Args | str":
    """The parsed command line, or "help"/"version"; UsageError if wrong."""
    args = _Args()
    words: list[str] = []
    given: set[str] = set()
    index, count, options_done = 0, len(argv), False
    while index < count:
        arg = argv[index]
        index += 1
        if options_done or arg[:1] != "-" or arg == "-" or arg[1:].isdigit():
            words.append(arg)
            continue
        if arg == "--":
            options_done = True
            continue
        if arg in ("-h", "--help"):
            return "help"
        if arg == "--version":
            return "version"
        if arg[:2] in _SHORT and len(arg) > 2:  # -opid,comm and -p42, as ps takes them
            name, equals, value = arg[:2], "=", arg[2:]
        else:
            name, equals, value = arg.partition("=")
        if name in ("--json", "--no-header"):
            if equals:
                raise UsageError(f"{name} takes no value, got {arg!r}")
            if name == "--json":
                args.json = True
            else:
                args.header = False
            continue
        if name not in _VALUED:
            raise UsageError(f"unknown option {arg!r} (see sessionid --help)")
        name = _SHORT.get(name, name)
        if not equals:
            if index >= count:
                raise UsageError(f"{name} needs a value")
            value = argv[index]
            index += 1
        if not value:
            raise UsageError(f"{name} needs a non-empty value")
        given.add(name)
        if name == "--backend":
            args.backend = value
        elif name == "--format":
            for column in _list(value, name):
                if column not in COLUMNS:
                    raise UsageError(
                        f"unknown column {column!r} for -o; choose from: {', '.join(COLUMNS)}"
                    )
                args.columns.append(column)
        elif name == "--pid":
            found = {_dword(item, "a PID for --pid") for item in _list(value, name)}
            args.select_pids = found | (args.select_pids or set())
        elif name == "--session":
            found = {_dword(item, "a session for --session") for item in _list(value, name)}
            args.sessions = found | (args.sessions or set())
        else:
            args.users = _list(value, name) + (args.users or [])
    if words and words[0] in _FORMS:
        args.form = words[0]
        if len(words) > 1:
            raise UsageError(f"{args.form} takes no arguments, got {words[1]!r}")
    else:
        args.pids = [_dword(word, "a PID") for word in words]
    misplaced = sorted(given.intersection(_PS_ONLY)) if args.form != "ps" else []
    if misplaced:
        raise UsageError(f"{misplaced[0]} goes with ps only (sessionid ps {misplaced[0]} ...)")
    return args


def _one_line(text: str) -> str:
    if _LINE_BREAKS.isdisjoint(text):
        return text
    return "".join(repr(ch)[1:-1] if ch in _LINE_BREAKS else ch for ch in text)


def _printable(text: str | None) -> str:
    """A table cell: - for None or empty, control characters as ?."""
    if text is None:
        return "-"
    if text.isprintable() and text:
        return text
    return "".join(ch if ch.isprintable() else "?" for ch in text) or "-"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if type(value) is int:
        return str(value)
    return _printable(str(value))


def _width(text: str) -> int:
    """Columns a cell takes on a terminal: East Asian wide characters take
    two, combining marks none (unicodedata is loaded only for non-ASCII)."""
    if text.isascii():
        return len(text)
    from unicodedata import combining, east_asian_width

    return sum(0 if combining(ch) else 2 if east_asian_width(ch) in "WF" else 1 for ch in text)


def _error(message: str) -> None:
    if sys.stderr is None:
        return  # stderr closed as well: the exit status is all that is left
    try:
        sys.stderr.write(f"sessionid: {_one_line(message)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _table(
    header: "Sequence[str] | None", columns: list[list[str]], right: "Sequence[bool]"
) -> str:
    """Columns of cells as text aligned with spaces, ps style: ``right``
    columns (numbers) right-aligned, the last column never padded, so that
    a long or wide last cell (COMMAND) cannot shift the others. Built a
    column at a time: this runs for every process of the machine."""
    if header is not None:
        columns = [[title, *column] for title, column in zip(header, columns, strict=True)]
    if not columns or not columns[0]:
        return ""
    last = len(columns) - 1
    padded = []
    for i, column in enumerate(columns):
        if i == last and not right[i]:
            padded.append(column)
        elif "".join(column).isascii():
            size = max(map(len, column))
            padded.append(
                [c.rjust(size) for c in column] if right[i] else [c.ljust(size) for c in column]
            )
        else:
            widths = [_width(cell) for cell in column]
            size = max(widths)
            padded.append(
                [
                    " " * (size - w) + c if right[i] else c + " " * (size - w)
                    for c, w in zip(column, widths, strict=True)
                ]
            )
    return "".join("  ".join(row).rstrip(" ") + "\n" for row in zip(*padded, strict=True))


def _dump(document: object) -> str:
    import json

    return json.dumps(document) + "\n"


def _run(args: _Args) -> int:
    if args.form == "ps":
        return _ps(args)
    if args.form == "sessions":
        return _sessions(args)
    return _pids(args)


def _pids(args: _Args) -> int:
    status = EXIT_OK
    found: list[tuple[int, int]] = []
    errors: list[SessionIdError] = []
    if not args.pids:
        found.append((os.getpid(), current_session_id()))
    for pid in args.pids:
        try:
            found.append((pid, process_id_to_session_id(pid)))
        except SessionIdError as err:
            if not isinstance(err, (ProcessLookupError, PermissionError)):
                raise
            errors.append(err)
            _error(str(err.strerror))
            status = EXIT_FAILED
    if args.json:
        out = _dump(
            {
                "processes": [{"pid": pid, "session_id": session} for pid, session in found],
                "errors": [
                    {"pid": err.pid, "winerror": err.winerror, "message": err.strerror}
                    for err in errors
                ],
            }
        )
    elif not args.pids:
        out = f"{found[0][1]}\n"
    else:
        columns = [[str(pid) for pid, _ in found], [str(session) for _, session in found]]
        out = _table(None, columns, (True, True))
    return _write(out) or status


def _user_ids(users: list[str]) -> tuple[set[int], set[str]]:
    """``--user`` items as uids (a name through the passwd database, a number
    as itself) and, where there is no passwd database (Windows), as names.
    UsageError names a user the passwd database does not know."""
    try:
        import pwd
    except ImportError:
        return set(), set(users)
    uids = set()
    for user in users:
        if user.isascii() and user.isdigit():
            uids.add(_dword(user, "a uid for --user"))
            continue
        try:
            uids.add(pwd.getpwnam(user).pw_uid)
        except KeyError:
            raise UsageError(f"unknown user {user!r} for --user (no such name in passwd)") from None
    return uids, set()


def _ps(args: _Args) -> int:
    columns = args.columns or list(DEFAULT_COLUMNS)
    fields = {COLUMNS[column][1] for column in columns}
    fields.update(_NUMBER_FOR[field] for field in fields.intersection(_NUMBER_FOR))
    uids: set[int] = set()
    names: set[str] = set()
    if args.users is not None:
        uids, names = _user_ids(args.users)
        fields.update(("uid", "user", "login"))
    records = process_records(fields)
    if args.select_pids is not None:
        wanted_pids = args.select_pids
        records = [r for r in records if r.pid in wanted_pids]
    if args.sessions is not None:
        wanted_sessions = args.sessions
        records = [r for r in records if r.session_id in wanted_sessions]
    if args.users is not None:
        records = [r for r in records if _owned_by(r, uids, names)]
    records.sort(key=_BY_SESSION_THEN_PID)
    selected = args.select_pids is not None or args.sessions is not None or args.users is not None
    status = EXIT_FAILED if selected and not records else EXIT_OK
    spec = [COLUMNS[column] for column in columns]
    if args.json:
        keys = list(dict.fromkeys(field for _, field, _ in spec))
        document = {"processes": [{key: getattr(r, key) for key in keys} for r in records]}
        return _write(_dump(document)) or status
    cells = []
    for _, field, is_number in spec:
        index = _FIELD_INDEX[field]
        if is_number:
            cells.append(["-" if r[index] is None else str(r[index]) for r in records])
        elif field in _NUMBER_FOR:
            number = _FIELD_INDEX[_NUMBER_FOR[field]]
            cells.append(
                [
                    _printable(r[index]) if r[index] is not None else _cell(r[number])  # type: ignore[arg-type]
                    for r in records
                ]
            )
        else:
            # Text fields hold str or None (mypy sees the union of all fields).
            cells.append([_printable(r[index]) for r in records])  # type: ignore[arg-type]
    header = [title for title, _, _ in spec] if args.header else None
    return _write(_table(header, cells, [right for _, _, right in spec])) or status


def _owned_by(record: "ProcessRecord", uids: set[int], names: set[str]) -> bool:
    if record.uid is not None:
        return record.uid in uids
    return record.user in names or (record.user is None and record.login in names)


def _iso(timestamp: float | None) -> str | None:
    """A POSIX time as ISO 8601 with the local zone, to the second."""
    if timestamp is None:
        return None
    from datetime import datetime

    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def _sessions(args: _Args) -> int:
    listed = sessions()
    if args.json:
        document = {
            "sessions": [
                {
                    "session_id": info.session_id,
                    "uid": info.uid,
                    "user": info.user,
                    "leader": info.leader,
                    "tty": info.tty,
                    "since": _iso(info.since),
                    "process_count": info.process_count,
                    "is_console": info.is_console,
                }
                for info in listed
            ]
        }
        return _write(_dump(document))
    rows = [
        [
            str(info.session_id),
            _cell(info.uid),
            _cell(info.user if info.user is not None else info.uid),
            _cell(info.leader),
            _cell(info.tty),
            _cell(_iso(info.since)),
            str(info.process_count),
            "*" if info.is_console else "-",
        ]
        for info in listed
    ]
    header = SESSION_HEADER if args.header else None
    right = (True, True, False, True, False, False, True, False)
    columns = [list(column) for column in zip(*rows, strict=True)] or [[] for _ in right]
    return _write(_table(header, columns, right))


def _write(text: str) -> int:
    """Write ``text`` to stdout; EXIT_OK, or EXIT_FAILED after one line on
    stderr when stdout is closed or cannot take it (``>/dev/full``)."""
    stdout = sys.stdout
    if stdout is None:
        _error("cannot write the output: standard output is closed")
        return EXIT_FAILED
    try:
        stdout.write(text)
        stdout.flush()
        return EXIT_OK
    except BrokenPipeError:
        # The reader left (sessionid ps | head): stop quietly.
        failure = None
    except (OSError, ValueError) as err:  # ValueError: stdout was closed in-process
        failure = err
    # Keep the interpreter from failing again when it flushes stdout at exit
    # (a try, not contextlib.suppress: that would cost an import).
    try:  # noqa: SIM105
        os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
    except (OSError, ValueError):
        pass
    if failure is not None:
        reason = failure.strerror if isinstance(failure, OSError) else None
        _error(f"cannot write the output: {reason or failure}")
    return EXIT_FAILED


def main(argv: "Sequence[str] | None" = None) -> int:
    """Run the command; returns the exit code."""
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as err:
        _error(str(err))
        return EXIT_USAGE
    if args == "help":
        return _write(HELP)
    if args == "version":
        from . import __version__

        return _write(f"sessionid-cffi {__version__}\n")
    assert isinstance(args, _Args)
    try:
        if args.backend is None:
            return _run(args)
        with use_backend(make_builtin(args.backend)):
            return _run(args)
    except UsageError as err:
        _error(str(err))
        return EXIT_USAGE
    except BackendUnavailableError as err:
        _error(str(err.strerror))
        return EXIT_USAGE
    except SessionIdError as err:
        what = "cannot list the processes" if args.form != "pids" else "cannot answer"
        _error(f"{what}: {err.strerror}")
        return EXIT_FAILED


def run() -> "NoReturn":
    """The console script: ``main()``, then exit without finalizing the
    interpreter. Tearing it down (module dicts, a last collection) costs
    about 2 ms of a ~30 ms ``sessionid ps`` (docs/performance.md) and does
    nothing a finished command needs: the output is written and flushed,
    and the command opens no other file. An exception leaves the normal
    way, with its traceback and status 1. The cyclic garbage collector
    stays off: the command makes no cycles worth collecting, and passes over
    every record of a busy machine cost ~0.3 ms."""
    import gc

    gc.disable()
    status = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            status = status or EXIT_FAILED  # main() already said why, where it could
    os._exit(status)


if __name__ == "__main__":
    run()
