"""The public record types of the listings: one process, one session.

Both behave as ``typing.NamedTuple`` classes (type checkers see exactly
that): they unpack, compare, hash, pickle, turn into a dict with
``._asdict()``, take ``._replace()``, and encode with ``json.dumps`` like
any tuple. Times are POSIX timestamps (float seconds), so they encode too;
the ``sessionid`` command prints them as ISO 8601 with the zone.

At run time the classes are built here by hand, the way
``collections.namedtuple`` builds them but without importing ``typing``
(~4 ms) or ``collections`` (~1.5 ms): ``sessionid ps`` is a whole process
whose budget is counted in milliseconds.
"""

# _operator, not operator: operator.py adds ~0.24 ms of import (-X importtime)
# to every `sessionid ps`, whose budget is 0.5x ps (benchmarks: sessionid_ps).
from _operator import itemgetter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, NamedTuple

    class ProcessRecord(NamedTuple):
        pid: int
        session_id: int
        ppid: int | None = None
        uid: int | None = None
        user: str | None = None
        luid: int | None = None
        login: str | None = None
        tty: str | None = None
        comm: str | None = None
        args: str | None = None
        started: float | None = None

    class SessionInfo(NamedTuple):
        session_id: int
        uid: int | None = None
        user: str | None = None
        leader: int | None = None
        tty: str | None = None
        since: float | None = None
        process_count: int = 0
        is_console: bool = False
        verified: bool | None = None
        host: str | None = None
        service: str | None = None
        idle: float | None = None


_PROCESS_DOC = """One process, as ``process_records()`` lists it (the ``ps`` columns).

Fields a backend cannot tell, or that were not asked for (see
``process_records(fields=...)``), are None; ``pid`` and ``session_id`` are
always filled. Construct with the two required fields and keywords for the
rest: ``ProcessRecord(pid, session_id, comm="sshd")``.
"""

_PROCESS_FIELDS = (
    ("pid", "The process id."),
    ("session_id", "Its login session, as ``process_id_to_session_id(pid)`` answers."),
    ("ppid", "The parent's PID (Linux; None on Windows)."),
    ("uid", "The owner, that is the effective uid, as ``ps -o uid`` shows it (Linux)."),
    (
        "user",
        "The owner's name, None where passwd has no entry (``uid`` still says who);"
        " on Windows the account name of the process's user SID, without the domain.",
    ),
    ("luid", "The login uid of its session (Linux ``loginuid``; None where unset)."),
    ("login", "The name of ``luid``, or None; on Windows the user of its session."),
    ("tty", "Controlling terminal (``pts/3``), or None."),
    ("comm", "The process name, ``comm`` on Linux (15 bytes at most), the image name on Windows."),
    ("args", "Command line, arguments joined by spaces (Linux ``cmdline``), or None."),
    ("started", "When it started, as a POSIX timestamp, or None."),
)

_SESSION_DOC = """One login session, as ``sessions()`` lists it (the ``loginctl`` view).

Linux: ``uid``/``user`` are the session's login uid and its name;
``leader`` is the earliest-started process of the session (the one PAM's
``pam_loginuid`` ran in, such as sshd's per-login process); ``since`` is its
start time; ``tty`` the terminal of the earliest-started process of the
session that has one. Windows: ``tty`` is the WinStation name (``Console``,
``RDP-Tcp#0``, ``Services``), ``since`` the logon time where Windows tells
it, ``uid`` and ``leader`` are None. Session 0 has no user.

Construct with ``session_id`` and keywords for the rest:
``SessionInfo(3, user="alice")``; ``process_count`` defaults to 0,
``is_console`` to False, the other fields to None.
"""

_SESSION_FIELDS = (
    ("session_id", "The session; 0 is the system and services session."),
    ("uid", "The login uid (Linux), or None."),
    ("user", "The user's name, or None (no user, or no passwd entry for ``uid``)."),
    ("leader", "PID of the session's earliest-started process, or None."),
    ("tty", "Terminal of the session (``pts/3``, ``Console``), or None."),
    ("since", "When the session started, as a POSIX timestamp, or None."),
    ("process_count", "How many of its processes the caller may inspect."),
    ("is_console", "Whether it is ``active_console_session_id()``."),
    (
        "verified",
        "True when a process owned by root started the login, as every PAM login"
        " service is (Linux); False when a process not owned by root could have set the"
        " login uid itself (a forged login); None when it cannot be told, for session 0"
        " and on Windows (docs/linux.md, 'Forged logins').",
    ),
    (
        "host",
        "Where the login came from (``w``'s FROM, loginctl's RemoteHost): the remote"
        " address or name of an ssh login (Linux), the client address of a remote"
        " desktop session (Windows); None for a local login or where it cannot be told.",
    ),
    (
        "service",
        "What started the login, in loginctl's terms (``sshd``, ``login``, ``cron``,"
        " ``su``, ...; on Windows the WinStation's protocol), or None when unknown.",
    ),
    (
        "idle",
        "Seconds since the session's terminal last saw input (as ``w`` computes IDLE),"
        " or None for a session without a terminal or where it cannot be told.",
    ),
)


class _FieldSignature:
    """A record class's ``__signature__`` (its fields, those after the
    required ones defaulting to None) for help(), ``inspect.signature`` and
    the API docs, instead of ``__new__``'s ``(*values, **named)``. Built
    when looked at: importing inspect costs more than a listing may."""

    def __get__(self, record: object, cls: "Any") -> "Any":
        from inspect import Parameter, Signature

        defaults = cls._field_defaults
        return Signature(
            [
                Parameter(field, Parameter.POSITIONAL_OR_KEYWORD, default=defaults[field])
                if field in defaults
                else Parameter(field, Parameter.POSITIONAL_OR_KEYWORD)
                for field in cls._fields
            ]
        )


def _named_tuple(
    name: str,
    doc: str,
    fields: tuple[tuple[str, str], ...],
    required: int,
    defaults: "dict[str, object] | None" = None,
) -> "Any":
    """A tuple subclass with named, read-only fields: what
    ``collections.namedtuple`` makes, for the API these records promise.
    Fields after the first ``required`` ones default to None, or to what
    ``defaults`` says."""
    names = tuple(field for field, _ in fields)
    count = len(names)
    field_defaults = {key: (defaults or {}).get(key) for key in names[required:]}
    blank = [field_defaults.get(key) for key in names]

    def new(cls: type, *values: object, **named: object) -> "Any":
        if len(values) > count:
            raise TypeError(f"{name}() takes at most {count} values, got {len(values)}")
        row = list(values) + blank[len(values) :]
        for key, value in named.items():
            try:
                index = names.index(key)
            except ValueError:
                raise TypeError(f"{name}() got an unexpected field {key!r}") from None
            if index < len(values):
                raise TypeError(f"{name}() got {key!r} twice")
            row[index] = value
        missing = [names[i] for i in range(required) if i >= len(values) and names[i] not in named]
        if missing:
            raise TypeError(f"{name}() is missing {', '.join(missing)}")
        return tuple.__new__(cls, row)

    def _make(cls: type, iterable: "Iterable[object]") -> "Any":
        row = tuple(iterable)
        if len(row) != count:
            raise TypeError(f"{name} takes {count} values, got {len(row)}")
        return tuple.__new__(cls, row)

    def _asdict(self: tuple[object, ...]) -> dict[str, object]:
        return dict(zip(names, self, strict=True))

    def _replace(self: tuple[object, ...], **changes: object) -> "Any":
        row = _asdict(self)
        for key in changes:
            if key not in row:
                raise TypeError(f"{name}._replace() got an unexpected field {key!r}")
        row.update(changes)
        return tuple.__new__(type(self), row.values())

    def show(self: tuple[object, ...]) -> str:
        shown = ", ".join(f"{key}={value!r}" for key, value in zip(names, self, strict=True))
        return f"{name}({shown})"

    def new_args(self: tuple[object, ...]) -> tuple[object, ...]:
        return tuple(self)

    namespace: dict[str, object] = {
        "__doc__": doc,
        "__slots__": (),
        "__module__": "sessionid_cffi",
        "_fields": names,
        "_field_defaults": field_defaults,
        "__match_args__": names,
        "__new__": new,
        "_make": classmethod(_make),
        "_asdict": _asdict,
        "_replace": _replace,
        "__repr__": show,
        "__getnewargs__": new_args,
        "__signature__": _FieldSignature(),
    }
    for index, (field, field_doc) in enumerate(fields):
        namespace[field] = property(itemgetter(index), doc=field_doc)
    return type(name, (tuple,), namespace)


if not TYPE_CHECKING:
    ProcessRecord = _named_tuple("ProcessRecord", _PROCESS_DOC, _PROCESS_FIELDS, 2)
    SessionInfo = _named_tuple(
        "SessionInfo",
        _SESSION_DOC,
        _SESSION_FIELDS,
        1,
        {"process_count": 0, "is_console": False},
    )

#: Every field a record has, in order (``process_records(fields=...)`` names some).
RECORD_FIELDS = tuple(field for field, _ in _PROCESS_FIELDS)
