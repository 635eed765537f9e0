"""The ``sessionid`` command line, written once: its commands and options.

This table drives the parser (``_cli.parse_args``), ``--help`` and each
command's own ``--help``, the man page ``sessionid(1)`` and the bash and zsh
completions (``tools/cli_docs.py`` writes those three from it; ``tox -e
lint`` checks they are current). An option is added here, and only here.

Plain tuples and a slotted class, no ``typing``, ``argparse`` or
``dataclasses``: ``sessionid ps`` is a whole process whose budget is counted
in milliseconds, and this module is part of every run. The text renderers
(help pages) are below it and run only for ``--help``.
"""

#: The command words, in the order help shows them. "pids" is the form
#: without a word: ``sessionid [PID ...]``.
FORMS = ("pids", "ps", "sessions", "kill")
ALL = FORMS

# What an option's value is, for the parser:
FLAG = "flag"  # no value: set to True
COUNT = "count"  # no value: counted (-w, -ww)
TEXT = "text"  # one value; the last one given wins
LIST = "list"  # comma-separated words, repeatable: all kept, in order
NUMBERS = "numbers"  # comma-separated numbers 0 ... 4294967295, repeatable: a set

# What completes an option's value (the completion scripts): a fixed list,
# or one of these sources.
COMPLETE_COLUMNS = "columns"  # the command's -o columns, comma-separated
COMPLETE_SORT = "sort"  # ps columns, each with an optional + or -
COMPLETE_USERS = "users"
COMPLETE_PIDS = "pids"
COMPLETE_SESSIONS = "sessions"
COMPLETE_SIGNALS = "signals"


class Option:
    """One option: its spellings, where its value goes and what it is,
    its help line, and the commands that take it."""

    __slots__ = (
        "commands",
        "complete",
        "dest",
        "help",
        "item",
        "kind",
        "metavar",
        "names",
        "tolerated",
    )

    def __init__(
        self,
        names: "tuple[str, ...]",
        dest: str,
        kind: str,
        help: str,
        commands: "tuple[str, ...]" = ALL,
        *,
        metavar: str = "",
        item: str = "",
        complete: "str | tuple[str, ...]" = (),
        tolerated: bool = False,
    ) -> None:
        self.names = names  # short first; the last one is the name errors use
        self.dest = dest  # the _Args attribute
        self.kind = kind
        self.help = help
        self.commands = commands
        self.metavar = metavar
        self.item = item  # NUMBERS: what one item is, for errors ("a PID")
        self.complete = complete
        # Given to a command outside ``commands``: ignored, not an error
        # (it changes nothing there; older command lines keep working).
        self.tolerated = tolerated

    @property
    def name(self) -> str:
        return self.names[-1]


OPTIONS = (
    Option(
        ("--json",),
        "json",
        FLAG,
        "print one JSON object instead (its JSON Schema: schema.json in the"
        " sessionid_cffi package)",
    ),
    Option(
        ("--backend",),
        "backend",
        TEXT,
        "answer with backend kernel32, procfs or model",
        metavar="NAME",
        complete=("kernel32", "procfs", "model"),
    ),
    Option(
        ("-w", "--wide"),
        "wide",
        COUNT,
        "on a terminal, rows are cut at its width (as in ps): once, at 132"
        " columns at least; twice (-ww), never cut (rows to a pipe or a file"
        " are never cut)",
    ),
    Option(
        ("-o", "--format"),
        "columns",
        LIST,
        "the columns to show, comma-separated, in that order (COLUMNS)",
        ("ps", "sessions"),
        metavar="COLUMNS",
        complete=COMPLETE_COLUMNS,
    ),
    Option(
        ("--no-header",),
        "header",
        FLAG,
        "print no header line",
        ("ps", "sessions"),
        tolerated=True,
    ),
    Option(
        ("-p", "--pid"),
        "select_pids",
        NUMBERS,
        "only these processes",
        ("ps",),
        metavar="PID,...",
        item="a PID",
        complete=COMPLETE_PIDS,
    ),
    Option(
        ("--session",),
        "sessions",
        NUMBERS,
        "only the processes of these sessions",
        ("ps",),
        metavar="N,...",
        item="a session",
        complete=COMPLETE_SESSIONS,
    ),
    Option(
        ("--user",),
        "users",
        LIST,
        "only the processes these users own (name or uid)",
        ("ps",),
        metavar="USER,...",
        complete=COMPLETE_USERS,
    ),
    Option(
        ("--login",),
        "logins",
        LIST,
        "only the processes of these users' logins (LOGIN: name or uid)",
        ("ps",),
        metavar="USER,...",
        complete=COMPLETE_USERS,
    ),
    Option(
        ("--sort",),
        "sort",
        LIST,
        "order by these columns, the first one first; -KEY descending,"
        " +KEY ascending (as procps); ties keep PID order",
        ("ps",),
        metavar="KEY,...",
        complete=COMPLETE_SORT,
    ),
    Option(
        ("--forest",),
        "forest",
        FLAG,
        "children under their parents, COMMAND indented as procps draws it",
        ("ps",),
    ),
    Option(
        ("-s", "--signal"),
        "signal",
        TEXT,
        "the signal, a name (TERM, SIGTERM, KILL, ...) or a number, as kill -s"
        " takes it; default TERM",
        ("kill",),
        metavar="SIGNAL",
        complete=COMPLETE_SIGNALS,
    ),
    Option(
        ("--dry-run",),
        "dry_run",
        FLAG,
        "print the PIDs it would signal, signal nothing",
        ("kill",),
    ),
    Option(
        ("--force",),
        "force",
        FLAG,
        "allow session 0 (every process outside a login)",
        ("kill",),
    ),
)

#: Every spelling -> its option.
BY_NAME = {name: option for option in OPTIONS for name in option.names}
#: -w twice in one word, as ps takes it.
REPEATED = {"-ww": (BY_NAME["-w"], 2)}
#: Short options whose value may be glued on: -opid,comm and -p42, as ps takes them.
GLUED = tuple(
    name
    for option in OPTIONS
    if option.kind not in (FLAG, COUNT)
    for name in option.names
    if len(name) == 2
)


class Command:
    """One form of the command: its word, operands, and what it prints."""

    __slots__ = ("description", "exit_status", "name", "operands", "summary", "word")

    def __init__(
        self,
        name: str,
        word: str,
        operands: str,
        summary: str,
        description: str,
        exit_status: str,
    ) -> None:
        self.name = name
        self.word = word  # what the user types ("" for the PID form)
        self.operands = operands
        self.summary = summary  # one line, for the list of forms
        self.description = description
        self.exit_status = exit_status


_EXIT_LISTING = (
    "0 ok; 1 some PID not found or not inspectable, nothing matched the"
    " selection, or the process table could not be read or the output could"
    " not be written; 2 usage error or unknown user, or no backend can answer here."
)

COMMANDS = {
    "pids": Command(
        "pids",
        "",
        "[PID ...]",
        "the session of this command's own process, or one line per PID: PID SESSION",
        "Without PIDs, print the session of this command's own process (so of"
        " the shell that ran it): one number, for $(sessionid) in scripts. With"
        " PIDs, print PID SESSION for each PID that answers, without a header; a"
        " PID that fails gets one line on stderr.",
        _EXIT_LISTING,
    ),
    "ps": Command(
        "ps",
        "ps",
        "",
        "processes, sorted by session, then PID; columns PID SESSION USER LOGIN"
        " COMMAND unless -o says",
        "List processes with their login session, as ps does, sorted by session,"
        " then PID, unless --sort says. USER is the owner (effective uid, as in"
        " ps); LOGIN the user of the login session: a root shell inside alice's"
        " login shows USER root LOGIN alice. A uid without a passwd name prints"
        " as the number. Options that take lists may repeat; a process is kept"
        " when it matches each option given. ps here takes options, not BSD"
        " letters (ps aux): it lists every process already.",
        _EXIT_LISTING,
    ),
    "sessions": Command(
        "sessions",
        "sessions",
        "",
        "every session: SESSION UID USER LEADER TTY SINCE PROCESSES CONSOLE"
        " VERIFIED FROM SERVICE IDLE unless -o says",
        "List every login session, as loginctl list-sessions does, without"
        " systemd. CONSOLE: * for the console session. VERIFIED: yes when a"
        " root-owned process started the login, NO when a process not owned by"
        " root could have forged it, - when it cannot be told.",
        _EXIT_LISTING,
    ),
    "kill": Command(
        "kill",
        "kill",
        "SESSION ...",
        "signal every process of these login sessions and print one line per"
        " PID signalled: PID SESSION",
        "Signal every process of these login sessions, not this command itself"
        " (Linux: race-free through pidfds, so a PID reused by another process is"
        " never signalled; members that keep forking are stopped first), and"
        " print one line per PID signalled: PID SESSION. Session 0 holds every"
        " process outside a login (init, daemons): it needs --force.",
        "0 it signalled at least one process; 1 the sessions held none, or some"
        " member could not be signalled (named on stderr); 2 usage error:"
        " session 0 without --force, an unknown signal.",
    ),
}

DESCRIPTION = (
    "Print the login session of processes, with the semantics of Win32"
    " ProcessIdToSessionId: the Windows session, or on Linux the kernel audit"
    " login session (0 for system processes and services)."
)

OUTPUT_NOTES = (
    "Columns are aligned with spaces; a missing value prints as -. Control,"
    " invisible and zero-width characters, bytes that are not UTF-8 and"
    " characters the output encoding cannot carry print as ?."
)

SORT_NOTES = (
    "--sort takes the ps column names; a missing value (-) sorts first, as in"
    " procps (an unset login uid too). With"
    " --forest, siblings follow the sort (by start time when --sort is not"
    " given, as procps) and each child is drawn under its parent with the"
    " prefixes procps draws ( \\_ , and  |  for a parent whose later siblings"
    " are still to come); a process whose parent is not listed is a root."
)


def options_for(form: str) -> "list[Option]":
    """The options ``form`` takes, in table order."""
    return [option for option in OPTIONS if form in option.commands]


# -- help pages (run only for --help) -------------------------------------------


def _usage_item(option: Option) -> str:
    spelled = option.names[0]
    return f"[{spelled} {option.metavar}]" if option.metavar else f"[{spelled}]"


def usage_words(form: str) -> "list[str]":
    """The synopsis of ``form`` as words: global options, the command word,
    its own options, its operands."""
    command = COMMANDS[form]
    shared = [_usage_item(o) for o in OPTIONS if o.commands == ALL]
    own = [_usage_item(o) for o in OPTIONS if o.commands != ALL and form in o.commands]
    return [*shared, *([command.word] if command.word else []), *own, command.operands]


def usage(forms: "tuple[str, ...]" = FORMS, width: int = 80) -> str:
    """``usage: sessionid ...`` lines, one form each, wrapped at ``width``."""
    lines = []
    for index, form in enumerate(forms):
        lead = "usage: sessionid" if index == 0 else "       sessionid"
        indent = " " * (len(lead) + 1)
        line = lead
        for word in usage_words(form):
            if not word:
                continue
            if len(line) + 1 + len(word) > width and line.strip() != lead.strip():
                lines.append(line)
                line = indent + word
            else:
                line = f"{line} {word}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int, indent: str = "", first: str = "") -> "list[str]":
    from textwrap import wrap

    return wrap(
        text,
        width,
        initial_indent=first or indent,
        subsequent_indent=indent,
        break_on_hyphens=False,
        break_long_words=False,
    )


def _two_columns(rows: "list[tuple[str, str]]", width: int = 80, left: int = 24) -> "list[str]":
    """argparse's layout: the term, and its text from column ``left``."""
    lines = []
    for term, text in rows:
        term = f"  {term}"
        if len(term) <= left - 2:
            lines += _wrap(text, width, " " * left, term.ljust(left))
        else:
            lines.append(term)
            lines += _wrap(text, width, " " * left)
    return lines


def _spelled(form: str) -> str:
    """``kill SESSION ...``, ``[PID ...]``: a form as typed."""
    command = COMMANDS[form]
    return " ".join(part for part in (command.word, command.operands) if part)


def option_term(option: Option) -> str:
    """``-o, --format COLUMNS``."""
    spelled = ", ".join(option.names)
    return f"{spelled} {option.metavar}" if option.metavar else spelled


def help_page(form: "str | None", columns: "dict[str, tuple[str, ...]]") -> str:
    """The text of ``sessionid --help`` (``form`` None) or of
    ``sessionid FORM --help``. ``columns``: each command's -o names."""
    lines: list[str] = []
    if form is None:
        lines.append(usage())
        lines += _wrap(DESCRIPTION, 80)
        lines += ["", "forms:"]
        rows = [
            (f"sessionid {COMMANDS[f].word or '[PID ...]'}", COMMANDS[f].summary) for f in FORMS
        ]
        lines += _two_columns(rows)
        options = list(OPTIONS)
    else:
        command = COMMANDS[form]
        lines.append(usage((form,)))
        lines += _wrap(command.description, 80)
        options = options_for(form)
    lines += ["", "options:"]
    rows = []
    for option in options:
        where = (
            "" if form is not None or option.commands == ALL else f"{', '.join(option.commands)}: "
        )
        rows.append((option_term(option), where + option.help))
    rows += [
        ("-h, --help", "print this help and exit"),
        ("--version", "print the version and exit"),
    ]
    lines += _two_columns(rows)
    shown = [f for f in columns if form in (None, f)]
    if shown:
        lines += ["", "columns (-o):"]
        lines += _two_columns([(f, " ".join(columns[f])) for f in shown], left=12)
    lines.append("")
    if form in (None, "ps"):
        lines += [*_wrap(SORT_NOTES, 80), ""]
    lines += [*_wrap(OUTPUT_NOTES, 80), ""]
    if form is None:
        lines.append("exit status:")
        by_text: dict[str, list[str]] = {}
        for f in FORMS:
            by_text.setdefault(COMMANDS[f].exit_status, []).append(COMMANDS[f].word or "PID ...")
        for text, words in by_text.items():
            lines += _wrap(f"{', '.join(words)}: {text}", 80, "  ", "  ")
        lines += ["", "Each command has its own page: sessionid ps --help (sessions, kill)."]
    else:
        lines += _wrap(f"exit status: {COMMANDS[form].exit_status}", 80)
    return "\n".join(lines) + "\n"
