"""The ``sessionid`` command: which login session is a process in?

Forms (docs/cli.md has the details and the JSON schema)::

    sessionid [--json] [--backend NAME] [PID ...]
    sessionid [--json] [--backend NAME] ps [--session N] [--user USER]
    sessionid [--json] [--backend NAME] sessions

Exit codes: 0 ok, 1 some PID not found or not inspectable (or the process
table could not be read), 2 usage error (or no backend can answer here).

Startup time is most of what this command costs, so the arguments are
parsed by hand (argparse and its imports cost more than reading every
process of a busy machine) and ``json`` is imported only for ``--json``.
"""

from __future__ import annotations

import sys

from . import (
    current_session_id,
    get_backend,
    make_builtin,
    process_id_to_session_id,
    process_records,
    sessions,
    use_backend,
)
from ._errors import BackendUnavailableError, SessionIdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE = 0, 1, 2

USAGE = """\
usage: sessionid [--json] [--backend NAME] [PID ...]
       sessionid [--json] [--backend NAME] ps [--session N] [--user USER]
       sessionid [--json] [--backend NAME] sessions
"""

HELP = f"""{USAGE}
Print the login session of processes, with the semantics of Win32
ProcessIdToSessionId: the Windows session, or on Linux the kernel audit
login session (0 for system processes and services).

forms:
  sessionid             the session of this command's own process
  sessionid PID ...     one line per PID: PID SESSION
  sessionid ps          every process: PID SESSION USER COMMAND,
                        sorted by session, then PID
  sessionid sessions    every session: SESSION USER PROCESSES CONSOLE
                        (CONSOLE is * for the console session, else -)

options:
  --json                print one JSON object instead (schema: docs/cli.md)
  --backend NAME        answer with backend kernel32, procfs or model
  --session N           ps: only the processes of session N
  --user USER           ps: only the processes whose USER is USER
  -h, --help            print this help and exit
  --version             print the version and exit

On a terminal columns are aligned; piped, they are separated by one tab.
A missing user prints as -.

exit status: 0 ok; 1 some PID not found or not inspectable, or the process
table could not be read; 2 usage error, or no backend can answer here.
"""

_FORMS = ("ps", "sessions")
_VALUED = ("--backend", "--session", "--user")
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


class UsageError(Exception):
    """A command line that does not say what to do (exit code 2)."""


class _Args:
    __slots__ = ("backend", "form", "json", "pids", "session", "user")

    def __init__(self) -> None:
        self.form = "pids"
        self.json = False
        self.backend: str | None = None
        self.session: int | None = None
        self.user: str | None = None
        self.pids: list[int] = []


def _dword(text: str, what: str) -> int:
    if (
        not (text.isascii() and text.isdigit())
        or len(text.lstrip("0")) > 10
        or int(text) > 0xFFFFFFFF
    ):
        raise UsageError(f"not {what}: {text!r} (expected a whole number 0 ... 4294967295)")
    return int(text)


def parse_args(argv: Sequence[str]) -> _Args | str:
    """The parsed command line, or "help"/"version"; UsageError if wrong."""
    args = _Args()
    words: list[str] = []
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
        name, equals, value = arg.partition("=")
        if name == "--json":
            if equals:
                raise UsageError(f"--json takes no value, got {arg!r}")
            args.json = True
            continue
        if name not in _VALUED:
            raise UsageError(f"unknown option {arg!r} (see sessionid --help)")
        if not equals:
            if index >= count:
                raise UsageError(f"{name} needs a value")
            value = argv[index]
            index += 1
        if not value:
            raise UsageError(f"{name} needs a non-empty value")
        if name == "--backend":
            args.backend = value
        elif name == "--session":
            args.session = _dword(value, "a session for --session")
        else:
            args.user = value
    if words and words[0] in _FORMS:
        args.form = words[0]
        if len(words) > 1:
            raise UsageError(f"{args.form} takes no arguments, got {words[1]!r}")
    else:
        args.pids = [_dword(word, "a PID") for word in words]
    if args.form != "ps" and (args.session is not None or args.user is not None):
        raise UsageError("--session and --user go with ps only (sessionid ps --session N)")
    return args


def _one_line(text: str) -> str:
    if _LINE_BREAKS.isdisjoint(text):
        return text
    return "".join(repr(ch)[1:-1] if ch in _LINE_BREAKS else ch for ch in text)


def _printable(text: str | None) -> str:
    """A table cell: - for None, control characters as ?."""
    if text is None:
        return "-"
    if text.isprintable() and text:
        return text
    return "".join(ch if ch.isprintable() else "?" for ch in text) or "-"


def _error(message: str) -> None:
    sys.stderr.write(f"sessionid: {_one_line(message)}\n")


def _table(
    header: tuple[str, ...] | None, rows: list[tuple[str, ...]], right: tuple[int, ...]
) -> str:
    """Rows as text: aligned on a terminal (columns ``right`` right-aligned,
    numbers), tab-separated otherwise. Header first when given."""
    if header is not None:
        rows.insert(0, header)
    if not rows:
        return ""
    if not sys.stdout.isatty():
        return "".join("\t".join(row) + "\n" for row in rows)
    widths = [max(map(len, column)) for column in zip(*rows, strict=True)]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip() + "\n")
    return "".join(lines)


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
        import os

        found.append((os.getpid(), current_session_id()))
    for pid in args.pids:
        try:
            found.append((pid, process_id_to_session_id(pid)))
        except SessionIdError as err:
            if not isinstance(err, (ProcessLookupError, PermissionError)):
                raise
            errors.append(err)
            _error(str(err.strerror))
            status = EXIT_NOT_FOUND
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
        out = _table(None, [(str(pid), str(session)) for pid, session in found], (0, 1))
    _write(out)
    return status


def _user_names(user: str) -> set[str]:
    """``--user`` matches a user name, or a numeric uid through its name
    (listings show the name where the passwd database has one)."""
    names = {user}
    if user.isdigit() and user.isascii():
        try:
            import pwd

            names.add(pwd.getpwuid(int(user)).pw_name)
        except (ImportError, KeyError, OverflowError):
            pass  # no passwd database (Windows) or no entry: the number itself
    return names


def _ps(args: _Args) -> int:
    records = process_records(get_backend())
    if args.session is not None:
        records = [r for r in records if r[1] == args.session]
    if args.user is not None:
        names = _user_names(args.user)
        records = [r for r in records if r[2] in names]
    records.sort(key=lambda record: (record[1], record[0]))
    if args.json:
        keys = ("pid", "session_id", "user", "command")
        _write(_dump({"processes": [dict(zip(keys, record, strict=True)) for record in records]}))
        return EXIT_OK
    if not sys.stdout.isatty():
        # The common piped case, written directly: one tab between fields.
        text = "".join(
            f"{pid}\t{session}\t{_printable(user)}\t{_printable(command)}\n"
            for pid, session, user, command in records
        )
        _write("PID\tSESSION\tUSER\tCOMMAND\n" + text)
        return EXIT_OK
    rows: list[tuple[str, ...]] = [
        (str(pid), str(session), _printable(user), _printable(command))
        for pid, session, user, command in records
    ]
    _write(_table(("PID", "SESSION", "USER", "COMMAND"), rows, (0, 1)))
    return EXIT_OK


def _sessions(args: _Args) -> int:
    listed = sessions()
    if args.json:
        document = {
            "sessions": [
                {
                    "session_id": info.session_id,
                    "user": info.user,
                    "process_count": info.process_count,
                    "is_console": info.is_console,
                }
                for info in listed
            ]
        }
        _write(_dump(document))
        return EXIT_OK
    rows: list[tuple[str, ...]] = [
        (
            str(info.session_id),
            _printable(info.user),
            str(info.process_count),
            "*" if info.is_console else "-",
        )
        for info in listed
    ]
    _write(_table(("SESSION", "USER", "PROCESSES", "CONSOLE"), rows, (0, 2)))
    return EXIT_OK


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader left (sessionid ps | head): stop quietly, and keep the
        # interpreter from complaining when it flushes stdout at exit.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as err:
        _error(str(err))
        return EXIT_USAGE
    if args == "help":
        _write(HELP)
        return EXIT_OK
    if args == "version":
        from . import __version__

        _write(f"sessionid-cffi {__version__}\n")
        return EXIT_OK
    assert isinstance(args, _Args)
    try:
        if args.backend is None:
            return _run(args)
        with use_backend(make_builtin(args.backend)):
            return _run(args)
    except BackendUnavailableError as err:
        _error(str(err.strerror))
        return EXIT_USAGE
    except SessionIdError as err:
        what = "cannot list the processes" if args.form != "pids" else "cannot answer"
        _error(f"{what}: {err.strerror}")
        return EXIT_NOT_FOUND


if __name__ == "__main__":
    sys.exit(main())
