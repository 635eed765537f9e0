"""The ``sessionid`` command: which login session is a process in?

Forms (docs/cli.md has the details; ``schema.json`` in this package the JSON)::

    sessionid [--json] [--backend NAME] [-w] [PID ...]
    sessionid [--json] [--backend NAME] [-w] ps [-o COLUMNS] [--no-header]
              [-p PID[,PID...]] [--session N[,N...]] [--user USER[,USER...]]
    sessionid [--json] [--backend NAME] [-w] sessions [--no-header]
    sessionid [--json] [--backend NAME] kill [-s SIGNAL] [--dry-run] [--force] SESSION ...

Exit codes: 0 ok; 1 some PID not found or not inspectable, a selection that
matches no process, or the process table could not be read or the output
not written; 2 usage error (an unknown user too), or no backend here.
kill: 0 it signalled a process; 1 the sessions held none (or some member
could not be signalled); 2 usage error (session 0 without --force, an
unknown signal).

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
from ._commands import BY_NAME, COUNT, FLAG, GLUED, LIST, REPEATED, TEXT, Option
from ._errors import BackendUnavailableError, SessionIdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import Any, NoReturn

    from ._records import ProcessRecord, SessionInfo

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_NOT_FOUND = EXIT_FAILED  # the name older code and tests use

_FORMS = ("ps", "sessions", "kill")
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# Printable to Python, drawn as nothing by terminals: the Hangul fillers
# and the braille blank (letters and a symbol, so no category catches them).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Marks that draw nothing alone or stack on their neighbour (combining and
# enclosing marks, variation selectors such as U+FE0F, U+034F) and format
# characters (zero-width space, joiners, bidi controls, tags).
_ZERO_WIDTH_CATEGORIES = frozenset(("Mn", "Me", "Cf"))
# Rows are made in batches of this many, and written once their text
# reaches _BATCH_CHARS: one write per batch, not per row, and a bounded one.
_BATCH = 256
_BATCH_CHARS = 1 << 20
# -w once: at least this wide (as procps).
_WIDE_COLUMNS = 132

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
        (
            "pid",
            "session_id",
            "ppid",
            "uid",
            "user",
            "luid",
            "login",
            "tty",
            "comm",
            "args",
            "started",
        )
    )
}

_BY_SESSION_THEN_PID = itemgetter(1, 0)
#: sessions column -> (header, SessionInfo field, right-aligned); the
#: table shows them all, in this order, unless -o picks some.
SESSION_COLUMNS = {
    "session": ("SESSION", "session_id", True),
    "uid": ("UID", "uid", True),
    "user": ("USER", "user", False),
    "leader": ("LEADER", "leader", True),
    "tty": ("TTY", "tty", False),
    "since": ("SINCE", "since", False),
    "processes": ("PROCESSES", "process_count", True),
    "console": ("CONSOLE", "is_console", False),
    "verified": ("VERIFIED", "verified", False),
    "from": ("FROM", "host", False),
    "service": ("SERVICE", "service", False),
    "idle": ("IDLE", "idle", True),
}
SESSION_HEADER = tuple(header for header, _, _ in SESSION_COLUMNS.values())
# NO in capitals: a session whose login uid a non-root process could have set.
_VERIFIED_MARK = {True: "yes", False: "NO", None: "-"}


class UsageError(Exception):
    """A command line that does not say what to do (exit code 2)."""


class _Args:
    """The parsed command line: one attribute per ``Option.dest`` of the
    table in _commands.py, and the form with its operands."""

    __slots__ = (
        "backend",
        "columns",
        "dry_run",
        "force",
        "forest",
        "form",
        "header",
        "json",
        "logins",
        "pids",
        "select_pids",
        "sessions",
        "signal",
        "sort",
        "users",
        "wide",
    )

    def __init__(self) -> None:
        self.form = "pids"
        self.json = False
        self.header = True
        self.backend: str | None = None
        self.wide = 0
        self.columns: list[str] = []
        self.select_pids: set[int] | None = None
        self.sessions: set[int] | None = None
        self.users: list[str] | None = None
        self.logins: list[str] | None = None
        self.sort: list[str] | None = None
        self.forest = False
        self.pids: list[int] = []
        self.signal: str | None = None
        self.dry_run = False
        self.force = False


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


def _help_form(argv: "Sequence[str]") -> str:
    """``help`` for ``sessionid --help``; ``help FORM`` when a command word
    is on the line too (``sessionid ps --help``, ``sessionid --help kill``)."""
    form = next((word for word in argv if word in _FORMS), None)
    return f"help {form}" if form else "help"


def parse_args(argv: "Sequence[str]") -> "_Args | str":
    """The parsed command line, or "help" ("help FORM" for a command's own
    page) or "version"; UsageError if wrong. Options are those of the table
    in _commands.py."""
    args = _Args()
    words: list[str] = []
    given: dict[str, Option] = {}
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
            return _help_form(argv)
        if arg == "--version":
            return "version"
        if arg[:2] in GLUED and len(arg) > 2:  # -opid,comm and -p42, as ps takes them
            spelled, equals, value = arg[:2], "=", arg[2:]
        else:
            spelled, equals, value = arg.partition("=")
        option, times = REPEATED.get(spelled) or (BY_NAME.get(spelled), 1)
        if option is None:
            hint = _ps_habit(arg) if "ps" in words else None
            raise UsageError(hint or f"unknown option {arg!r} (see sessionid --help)")
        name = option.name
        kind = option.kind
        if kind in (FLAG, COUNT):
            if equals:
                raise UsageError(f"{spelled} takes no value, got {arg!r}")
            given[name] = option
            if option.dest == "header":
                args.header = False
            elif kind == FLAG:
                setattr(args, option.dest, True)
            else:
                setattr(args, option.dest, getattr(args, option.dest) + times)
            continue
        if not equals:
            if index >= count:
                raise UsageError(f"{name} needs a value")
            value = argv[index]
            index += 1
        if not value:
            raise UsageError(f"{name} needs a non-empty value")
        given[name] = option
        if kind == TEXT:
            setattr(args, option.dest, value)
        elif kind == LIST:  # columns are checked once the command is known
            setattr(args, option.dest, (getattr(args, option.dest) or []) + _list(value, name))
        else:
            found = {_dword(item, f"{option.item} for {name}") for item in _list(value, name)}
            setattr(args, option.dest, found | (getattr(args, option.dest) or set()))
    if words and words[0] == "kill":
        args.form = "kill"
        if len(words) < 2:
            raise UsageError("kill needs at least one SESSION (sessionid kill [-s SIGNAL] N ...)")
        args.pids = [_dword(word, "a session") for word in words[1:]]
        if 0 in args.pids and not args.force:
            raise UsageError(
                "session 0 holds every process outside a login (init, daemons); "
                "refusing to signal it without --force"
            )
    elif words and words[0] in _FORMS:
        args.form = words[0]
        if len(words) > 1:
            hint = _ps_habit(words[1]) if args.form == "ps" else None
            raise UsageError(hint or f"{args.form} takes no arguments, got {words[1]!r}")
    else:
        args.pids = [_dword(word, "a PID") for word in words]
    known = SESSION_COLUMNS if args.form == "sessions" else COLUMNS
    for column in args.columns:
        if column not in known:
            raise UsageError(f"unknown column {column!r} for -o; choose from: {', '.join(known)}")
    for key in args.sort or ():
        if key.lstrip("+-") not in COLUMNS or len(key) - len(key.lstrip("+-")) > 1:
            raise UsageError(
                f"unknown sort key {key!r} for --sort; choose from: {', '.join(COLUMNS)}"
                " (-KEY descending)"
            )
    for name in sorted(given):
        option = given[name]
        if args.form not in option.commands and not option.tolerated:
            where = " or ".join(option.commands)
            raise UsageError(
                f"{name} goes with {where} only (sessionid {option.commands[0]} {name} ...)"
            )
    return args


# ps's own habits: what a user of procps types, and the nearest form here.
# BSD letters (ps aux) and UNIX options (ps -ef) ps here does not take.
_PS_LETTERS = frozenset("aAdeEfFgGHjlLmMnNrsStTuUvVxXyZ")


def _ps_habit(word: str) -> str | None:
    """For ``sessionid ps aux`` (or ``-ef``, ``ax``, ``axjf`` ...): one line
    saying ps here takes options, with the nearest form; None for a word
    that is no such habit."""
    letters = word[1:] if word[:1] == "-" else word
    if not letters or len(letters) > 8 or not _PS_LETTERS.issuperset(letters):
        return None
    dash = word[:1] == "-"
    if "u" in letters and not dash:  # ps aux: user-oriented
        nearest = "-o user,pid,session,tty,args"
    elif "u" in letters or "U" in letters:  # ps -u alice
        nearest = "--user USER"
    elif "l" in letters:  # long: F S UID PID PPID ...
        nearest = "-o uid,pid,ppid,session,tty,comm"
    elif "j" in letters:  # jobs: PPID PID PGID SID TTY ...
        nearest = "-o ppid,pid,session,tty,comm"
    elif ("f" in letters and dash) or "F" in letters:  # ps -ef: full
        nearest = "-o user,pid,ppid,session,tty,args"
    else:  # ps ax, -e, -A: every process, which ps here lists anyway
        nearest = "-o pid,tty,session,args"
    if "H" in letters or ("f" in letters and not dash):
        nearest += " --forest"
    return (
        f"ps here takes options, not ps's letters ({word!r}); it lists every process"
        f" already: the nearest form is sessionid ps {nearest} (see sessionid ps --help)"
    )


def signal_number(text: str) -> int:
    """A signal as kill -s takes it: a number, or a name with or without
    SIG in any case (TERM, SIGTERM, kill). UsageError for others."""
    import signal

    # KILL is 9 everywhere kill_session runs: Windows' signal module lacks
    # it, and there it ends the process with exit code 9 (docs/windows.md).
    if text.isascii() and text.isdigit():
        number = int(text)
        if number in (0, 9) or number in signal.valid_signals():
            return number
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        if name == "SIGKILL":
            return 9
        member = getattr(signal.Signals, "__members__", {}).get(name)
        if member is not None:
            return int(member)
    raise UsageError(f"unknown signal {text!r} (a name such as TERM or KILL, or a number)")


def _one_line(text: str) -> str:
    if _LINE_BREAKS.isdisjoint(text):
        return text
    return "".join(repr(ch)[1:-1] if ch in _LINE_BREAKS else ch for ch in text)


#: The output encoding when it is not UTF-8 (main() sets it): cells are
#: mapped to it before their widths are counted, ? for what it cannot carry.
_narrow_encoding: str | None = None


def _printable(text: str | None) -> str:
    """A table cell: - for None or empty; ? for each character that is not
    printable (controls, bytes that were not UTF-8, held as surrogates),
    draws nothing (_BLANK_LETTERS, _ZERO_WIDTH_CATEGORIES: canonical
    composition first, so that a decomposed é stays é), or that the output
    encoding cannot carry."""
    if text is None:
        return "-"
    if text.isascii():
        if text.isprintable() and text:
            return text
        return "".join(ch if ch.isprintable() else "?" for ch in text) or "-"
    from unicodedata import category, normalize

    shown = "".join(
        "?"
        if not ch.isprintable() or ch in _BLANK_LETTERS or category(ch) in _ZERO_WIDTH_CATEGORIES
        else ch
        for ch in normalize("NFC", text)
    )
    if _narrow_encoding is not None:
        shown = shown.encode(_narrow_encoding, "replace").decode(_narrow_encoding)
    return shown


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if type(value) is int:
        return str(value)
    return _printable(str(value))


def _char_width(ch: str) -> int:
    from unicodedata import category, east_asian_width

    if ch.isascii():
        return 1
    if category(ch) in _ZERO_WIDTH_CATEGORIES:
        return 0
    return 2 if east_asian_width(ch) in "WF" else 1


def _width(text: str) -> int:
    """Columns a cell takes on a terminal: East Asian wide characters take
    two, marks and format characters (U+FE0F, U+200B) none (unicodedata is
    loaded only for non-ASCII)."""
    if text.isascii():
        return len(text)
    return sum(map(_char_width, text))


def _cut(line: str, limit: int) -> str:
    """``line`` cut to ``limit`` terminal columns (a wide character that
    would straddle the edge is left out)."""
    if len(line) <= limit and (line.isascii() or _width(line) <= limit):
        return line
    if line.isascii():
        return line[:limit]
    used = 0
    for index, ch in enumerate(line):
        used += _char_width(ch)
        if used > limit:
            return line[:index]
    return line


def _error(message: str) -> None:
    if sys.stderr is None:
        return  # stderr closed as well: the exit status is all that is left
    try:
        sys.stderr.write(f"sessionid: {_one_line(message)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _pad(columns: list[list[str]], right: "Sequence[bool]") -> list[list[str]]:
    """Each column's cells padded to the column's width (in terminal
    columns), numbers (``right``) right-aligned. Built a column at a time:
    this runs for every process of the machine."""
    padded = []
    for i, column in enumerate(columns):
        if "".join(column).isascii():
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
    return padded


def _table(
    header: "Sequence[str] | None", columns: list[list[str]], right: "Sequence[bool]"
) -> "list[str]":
    """Columns of cells as lines aligned with spaces, ps style: ``right``
    columns (numbers) right-aligned, the last column never padded, so that
    a long or wide last cell (COMMAND) cannot shift the others."""
    if header is not None:
        columns = [[title, *column] for title, column in zip(header, columns, strict=True)]
    if not columns or not columns[0]:
        return []
    last = len(columns) - 1
    padded = _pad(columns[:last], right) if right[last] is False else _pad(columns, right)
    if right[last] is False:
        padded.append(columns[last])
    return ["  ".join(row).rstrip(" ") for row in zip(*padded, strict=True)]


def help_text(form: str | None) -> str:
    """``sessionid --help``, or ``sessionid FORM --help``: made from the
    table in _commands.py, as the man page and the completions are."""
    from ._commands import help_page

    return help_page(form, {"ps": tuple(COLUMNS), "sessions": tuple(SESSION_COLUMNS)})


def _dump(document: object) -> str:
    import json

    return json.dumps(document) + "\n"


def _run(args: _Args) -> int:
    if args.form == "ps":
        return _ps(args)
    if args.form == "sessions":
        return _sessions(args)
    if args.form == "kill":
        return _kill(args)
    return _pids(args)


def _kill(args: _Args) -> int:
    from . import kill_session

    number = signal_number(args.signal or "TERM")
    done: list[tuple[int, int]] = []
    errors: list[SessionIdError] = []
    for session in dict.fromkeys(args.pids):  # each once, in the order given
        try:
            pids = kill_session(
                session, number, dry_run=args.dry_run, allow_session_zero=args.force
            )
        except PermissionError as err:  # AccessDeniedError: the others were signalled
            pids = list(getattr(err, "signalled", []))
            errors.append(err)  # type: ignore[arg-type]
            _error(str(err.strerror))
        done.extend((pid, session) for pid in pids)
    status = EXIT_OK if done and not errors else EXIT_FAILED
    if args.json:
        document = {
            "signal": number,
            "dry_run": args.dry_run,
            "processes": [{"pid": pid, "session_id": session} for pid, session in done],
            "errors": [
                {"pid": err.pid, "winerror": err.winerror, "message": err.strerror}
                for err in errors
            ],
        }
        return _write(_dump(document)) or status
    if not done:
        return status
    columns = [[str(pid) for pid, _ in done], [str(session) for _, session in done]]
    return _write_lines(_table(None, columns, (True, True)), args) or status


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
        return _write_lines(_table(None, columns, (True, True)), args) or status
    return _write(out) or status


def _user_ids(users: list[str], option: str = "--user") -> tuple[set[int], set[str]]:
    """``--user`` (or ``--login``) items as uids (a name through the passwd
    database, a number as itself) and, where there is no passwd database
    (Windows), as names. UsageError names a user the passwd database does
    not know."""
    try:
        import pwd
    except ImportError:
        return set(), set(users)
    uids = set()
    for user in users:
        if user.isascii() and user.isdigit():
            uids.add(_dword(user, f"a uid for {option}"))
            continue
        try:
            uids.add(pwd.getpwnam(user).pw_uid)
        except KeyError:
            raise UsageError(
                f"unknown user {user!r} for {option} (no such name in passwd)"
            ) from None
    return uids, set()


def _ps(args: _Args) -> int:
    columns = args.columns or list(DEFAULT_COLUMNS)
    fields = {COLUMNS[column][1] for column in columns}
    sort_keys = [key.lstrip("+-") for key in args.sort or ()]
    fields.update(COLUMNS[key][1] for key in sort_keys)
    if args.forest:
        fields.add("ppid")
        if args.sort is None:
            fields.add("started")  # siblings by start time, as procps
    fields.update(_NUMBER_FOR[field] for field in fields.intersection(_NUMBER_FOR))
    uids: set[int] = set()
    names: set[str] = set()
    if args.users is not None:
        uids, names = _user_ids(args.users)
        fields.update(("uid", "user", "login"))
    login_uids: set[int] = set()
    login_names: set[str] = set()
    if args.logins is not None:
        login_uids, login_names = _user_ids(args.logins, "--login")
        fields.update(("luid", "login"))
    records = process_records(fields)
    if args.select_pids is not None:
        wanted_pids = args.select_pids
        records = [r for r in records if r.pid in wanted_pids]
    if args.sessions is not None:
        wanted_sessions = args.sessions
        records = [r for r in records if r.session_id in wanted_sessions]
    if args.users is not None:
        records = [r for r in records if _owned_by(r, uids, names)]
    if args.logins is not None:
        records = [r for r in records if _logged_in_as(r, login_uids, login_names)]
    if args.sort is not None:
        _sort(records, args.sort)
    elif args.forest:
        records.sort(key=_PID)
        records.sort(key=_started)
    else:
        records.sort(key=_BY_SESSION_THEN_PID)
    tree = None
    if args.forest:
        records, tree = _forest(records)
    selected = any(
        given is not None for given in (args.select_pids, args.sessions, args.users, args.logins)
    )
    status = EXIT_FAILED if selected and not records else EXIT_OK
    spec = [COLUMNS[column] for column in columns]
    if args.json:
        keys = list(dict.fromkeys(field for _, field, _ in spec))
        return _write_chunks(_json_processes(records, keys)) or status
    return _write_chunks(_ps_rows(records, spec, args, tree)) or status


_PID = itemgetter(0)
# A missing number sorts first, as procps sorts - (an unset login uid too:
# procps holds it as -1, not as the kernel's 4294967295).
_NO_VALUE = -1


def _started(record: "ProcessRecord") -> float:
    started = record[_FIELD_INDEX["started"]]
    return -1.0 if started is None else started  # type: ignore[return-value]


def _sort(records: "list[ProcessRecord]", keys: list[str]) -> None:
    """Sort ``records`` in place by ``keys`` (ps column names, ``-KEY``
    descending), the first key first; ties keep PID order (stable sorts,
    the last key first, as procps applies them)."""
    records.sort(key=_PID)
    for key in reversed(keys):
        records.sort(key=_sort_key(key.lstrip("+-")), reverse=key[:1] == "-")


def _sort_key(column: str) -> "Callable[[ProcessRecord], Any]":
    """What --sort compares for a ps column: numbers as numbers (missing:
    -1), names as the text the table shows (a uid where passwd has no name)."""
    _, field, is_number = COLUMNS[column]
    index = _FIELD_INDEX[field]
    if is_number:
        return lambda r: _NO_VALUE if r[index] is None else r[index]
    number = _FIELD_INDEX.get(_NUMBER_FOR.get(field, ""), -1)

    def text(r: "ProcessRecord") -> str:
        value = r[index]
        if value is None and number >= 0 and r[number] is not None:
            return str(r[number])
        return "" if value is None else str(value)

    return text


def _forest(records: "list[ProcessRecord]") -> "tuple[list[ProcessRecord], list[str]]":
    """``records`` (already in the order siblings take) with each child
    right under its parent, and each one's prefix, as procps draws it:
    `` \\_ `` before a child, then for each ancestor below the root
    `` |  `` while it has later siblings, else four spaces. A process whose
    parent is not listed is a root; roots show in the reverse order."""
    listed = {r.pid for r in records}
    children: dict[int, list[ProcessRecord]] = {}
    roots = []
    for r in records:
        parent = r.ppid
        if parent is not None and parent in listed and parent != r.pid:
            children.setdefault(parent, []).append(r)
        else:
            roots.append(r)
    ordered: list[ProcessRecord] = []
    prefixes: list[str] = []
    seen: set[int] = set()
    # (record, its ancestors' marks, its own prefix, the mark its
    # descendants inherit from it); a stack, not recursion: a chain of
    # processes can be deeper than Python's recursion limit.
    # Roots come out last first, as procps shows them (it walks its sorted
    # table from the end looking for them); children in the sort's order.
    stack = [(r, "", "", "") for r in roots]
    while stack:
        record, marks, own, mark = stack.pop()
        if record.pid in seen:
            continue
        seen.add(record.pid)
        ordered.append(record)
        prefixes.append(own)
        kids = children.get(record.pid, ())
        inherited = marks + mark
        for position in range(len(kids) - 1, -1, -1):
            later = " |  " if position < len(kids) - 1 else "    "
            stack.append((kids[position], inherited, inherited + " \\_ ", later))
    if len(ordered) < len(records):  # a parent loop no root reaches: shown as roots
        for r in records:
            if r.pid not in seen:
                seen.add(r.pid)
                ordered.append(r)
                prefixes.append("")
    return ordered, prefixes


def _ps_cells(records: "Sequence[ProcessRecord]", field: str, is_number: bool) -> list[str]:
    """One column's cells for ``records``."""
    index = _FIELD_INDEX[field]
    if is_number:
        return ["-" if r[index] is None else str(r[index]) for r in records]
    if field in _NUMBER_FOR:
        number = _FIELD_INDEX[_NUMBER_FOR[field]]
        return [
            _printable(r[index]) if r[index] is not None else _cell(r[number])  # type: ignore[arg-type]
            for r in records
        ]
    # Text fields hold str or None (mypy sees the union of all fields).
    return [_printable(r[index]) for r in records]  # type: ignore[arg-type]


def _with_tree(cells: list[str], field: str, tree: "list[str] | None") -> list[str]:
    """COMMAND cells with the --forest prefixes before them (as procps
    draws them, in the comm or args column only)."""
    if tree is None or field not in ("comm", "args"):
        return cells
    return [prefix + cell for prefix, cell in zip(tree, cells, strict=True)]


def _ps_rows(
    records: "list[ProcessRecord]",
    spec: "list[tuple[str, str, bool]]",
    args: _Args,
    tree: "list[str] | None" = None,
) -> "Iterator[str]":
    """The ps table, a batch of rows at a time. Every column but the last
    is made first, for all rows, to know its width (the records are all in
    memory anyway: they are sorted); the last one, never padded and where
    COMMAND goes with its long arguments, is turned into text a batch at a
    time as the rows are written, so a table of large command lines is held
    once, as the records, not several times over."""
    limit = _line_limit(args.wide)
    titles = [title for title, _, _ in spec]
    *fixed, (last_title, last_field, last_right) = spec
    if last_right:  # a number last: padded like the others, all at once
        fixed.append((last_title, last_field, last_right))
    columns = [
        _with_tree(_ps_cells(records, field, right), field, tree) for _, field, right in fixed
    ]
    if args.header:
        columns = [[title, *column] for title, column in zip(titles, columns, strict=False)]
    rows = len(records) + args.header
    prefixes = (
        ["  ".join(row) for row in zip(*_pad(columns, [r for _, _, r in fixed]), strict=True)]
        if columns
        else [""] * rows
    )
    if last_right:
        yield _lines_text([prefix.rstrip(" ") for prefix in prefixes], limit)
        return
    glue = "  " if fixed else ""
    if args.header:
        yield _lines_text([f"{prefixes[0]}{glue}{last_title}".rstrip(" ")], limit)
        del prefixes[0]
    # A batch is pieces, joined once when it reaches _BATCH_CHARS: a row is
    # never copied whole on its own, however long its command line.
    parts: list[str] = []
    size = 0
    for start in range(0, len(records), _BATCH):
        cells = _ps_cells(records[start : start + _BATCH], last_field, False)
        if tree is not None:
            cells = _with_tree(cells, last_field, tree[start : start + _BATCH])
        for prefix, cell in zip(prefixes[start : start + _BATCH], cells, strict=True):
            if limit is not None:  # a terminal: never more than it shows
                parts.append(_cut(f"{prefix}{glue}{cell[:limit]}".rstrip(" "), limit))
            else:
                tail = cell.rstrip(" ")  # the cell itself, not a copy, unless it ends in spaces
                parts += (prefix, glue, tail) if tail else (prefix.rstrip(" "),)
            parts.append("\n")
            size += len(cell)
            if size >= _BATCH_CHARS:
                yield "".join(parts)
                parts.clear()
                size = 0
    yield "".join(parts)


def _json_processes(records: "list[ProcessRecord]", keys: list[str]) -> "Iterator[str]":
    """The ps JSON document, written once its text reaches _BATCH_CHARS."""
    import json

    dumps = json.dumps
    parts = ['{"processes": [']
    size = 0
    for index, r in enumerate(records):
        text = dumps({key: getattr(r, key) for key in keys})
        parts += (", ", text) if index else (text,)
        size += len(text)
        if size >= _BATCH_CHARS:
            yield "".join(parts)
            parts.clear()
            size = 0
    parts.append("]}\n")
    yield "".join(parts)


def _logged_in_as(record: "ProcessRecord", uids: set[int], names: set[str]) -> bool:
    """Is ``record`` in a login of one of these users (its login uid; on
    Windows, where there is none, its session's user name)?"""
    if record.luid is not None:
        return record.luid in uids
    return record.login is not None and record.login in names


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
                    "verified": info.verified,
                    "host": info.host,
                    "service": info.service,
                    "idle": info.idle,
                }
                for info in listed
            ]
        }
        return _write(_dump(document))
    names = args.columns or list(SESSION_COLUMNS)
    columns = [[_session_cell(info, name) for info in listed] for name in names]
    header = [SESSION_COLUMNS[name][0] for name in names] if args.header else None
    right = [SESSION_COLUMNS[name][2] for name in names]
    return _write_lines(_table(header, columns, right), args)


def _session_cell(info: "SessionInfo", name: str) -> str:
    """One cell of the sessions table: a missing value prints as -."""
    value = getattr(info, SESSION_COLUMNS[name][1])
    if name == "user" and value is None:
        value = info.uid  # the number where passwd has no name, as ps does
    elif name == "since":
        value = _iso(value)
    elif name == "console":
        return "*" if value else "-"
    elif name == "verified":
        return _VERIFIED_MARK[value]
    elif name == "idle":
        return "-" if value is None else idle_text(value)
    elif name in ("session", "processes"):
        return str(value)
    return _cell(value)


def idle_text(seconds: float) -> str:
    """Idle time as procps' ``w`` prints it (print_time_ival7): ``5.00s``
    up to a minute, ``3:07`` (minutes:seconds) up to an hour, ``2:01m``
    (hours:minutes) up to two days, then ``3days``; whole seconds, as w."""
    whole = int(seconds)
    if whole >= 48 * 3600:
        return f"{whole // 86400}days"
    if whole >= 3600:
        return f"{whole // 3600}:{whole // 60 % 60:02d}m"
    if whole > 60:
        return f"{whole // 60}:{whole % 60:02d}"
    return f"{whole}.00s"


def _line_limit(wide: int) -> int | None:
    """How many terminal columns a row may take: the terminal's width (its
    COLUMNS, as procps honours, else its size; 80 when it tells none) when
    stdout is a terminal, at least 132 with one -w; None (rows whole) with
    -ww or to a pipe or a file."""
    stdout = sys.stdout
    if wide >= 2 or stdout is None:
        return None
    try:  # OSError for a pipe or a file: rows whole
        columns = os.get_terminal_size(stdout.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return None
    given = os.environ.get("COLUMNS", "")
    if given.isascii() and given.isdigit() and 0 < int(given) < 1 << 20:
        columns = int(given)
    columns = columns or 80
    return max(columns, _WIDE_COLUMNS) if wide else columns


def _lines_text(lines: "list[str]", limit: int | None) -> str:
    if limit is not None:
        lines = [_cut(line, limit) for line in lines]
    return "".join(line + "\n" for line in lines)


def _write_lines(lines: "list[str]", args: _Args) -> int:
    return _write(_lines_text(lines, _line_limit(args.wide)))


def _write(text: str) -> int:
    return _write_chunks((text,))


def _write_chunks(chunks: "Iterable[str]") -> int:
    """Write each of ``chunks`` to stdout as it comes; EXIT_OK, or
    EXIT_FAILED after one line on stderr when stdout is closed or cannot
    take it (``>/dev/full``)."""
    stdout = sys.stdout
    if stdout is None:
        _error("cannot write the output: standard output is closed")
        return EXIT_FAILED
    try:
        for text in chunks:
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


def _carry_any_character() -> None:
    """Make stdout replace what its encoding cannot carry with ? (as procps
    does) instead of failing the whole output on one name, and note a
    non-UTF-8 encoding for _printable, which maps cells before it measures
    them. JSON is ASCII (escapes) whatever the encoding."""
    global _narrow_encoding
    stdout = sys.stdout
    encoding = getattr(stdout, "encoding", None)
    if not isinstance(encoding, str):
        return
    try:
        from codecs import lookup

        name = lookup(encoding).name
    except LookupError:
        return
    if name != "utf-8":
        _narrow_encoding = name
    reconfigure = getattr(stdout, "reconfigure", None)
    if reconfigure is not None:
        try:  # noqa: SIM105 - contextlib would cost an import
            reconfigure(errors="replace")
        except (OSError, ValueError):
            pass


def main(argv: "Sequence[str] | None" = None) -> int:
    """Run the command; returns the exit code."""
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as err:
        _error(str(err))
        return EXIT_USAGE
    _carry_any_character()
    if isinstance(args, str) and args.startswith("help"):
        return _write(help_text(args.partition(" ")[2] or None))
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
        what = {"pids": "cannot answer", "kill": "cannot signal"}.get(
            args.form, "cannot list the processes"
        )
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
