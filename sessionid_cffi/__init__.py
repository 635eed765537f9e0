"""Which login session is process N in? One answer on every platform.

The answer keeps the contract of Win32 ``ProcessIdToSessionId``: on Windows
kernel32.dll answers; on Linux the kernel's audit login session does (the
one every login starts and every child inherits; 0 outside any login, like
Windows' services session)::

    import sessionid_cffi as sid

    me = sid.current_session_id()
    try:
        same = sid.process_id_to_session_id(pid) == me
    except sid.ProcessNotFoundError:      # winerror 87: no such process
        same = False
    except sid.AccessDeniedError:         # winerror 5: not yours to inspect
        same = False

    sid.session_ids()                     # {pid: session} of every process
    sid.processes_in_session(me)          # PIDs in my session, ascending
    sid.processes_in_my_login()           # the same, but NotInLoginError in
                                          # session 0 (services: not a login)
    sid.sessions()                        # one SessionInfo per session
    sid.users()                           # psutil.users()' view, without utmp

Every failure is a ``SessionIdError`` (an ``OSError``) carrying ``pid``,
``winerror`` and ``errno``; a PID that is not an integer in 0 ... 2**32-1
raises TypeError or ValueError.

The Win32-shaped API (``ffi``, ``ProcessIdToSessionId``, ``GetLastError``,
...) lives in ``sessionid_cffi.lowlevel`` and is re-exported here. Tests of
your own code swap in a fake world with ``use_backend()`` or the kit in
``sessionid_cffi.testing``.
"""

# Backend choice, the swap stack and argument checking live in ._backend,
# which the package's other modules import from: this module only faces.
# BACKEND_ATTRIBUTES, checked_pid and _load_lazy stay importable from here
# for code that imported them from the package (the kit did).
from ._backend import BACKEND_ATTRIBUTES as BACKEND_ATTRIBUTES
from ._backend import (
    check_backend,
    checked_pid,
    checked_session,
    get_backend,
    load_emulation_module,
    load_lazy,
    own_session_id,
    pop_swap,
    publish,
    push_swap,
)
from ._errors import (
    ERROR_ACCESS_DENIED,
    ERROR_GEN_FAILURE,
    ERROR_INVALID_DATA,
    ERROR_INVALID_PARAMETER,
    ERROR_NOT_ENOUGH_MEMORY,
    ERROR_NOT_SUPPORTED,
    ERROR_TOO_MANY_OPEN_FILES,
    AccessDeniedError,
    BackendUnavailableError,
    ProcessNotFoundError,
    SessionIdError,
    error_from_oserror,
)

_load_lazy = load_lazy

# The one place the version is written (pyproject reads it from here).
__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import ModuleType, TracebackType
    from typing import Generic as _Generic
    from typing import SupportsIndex, TypeVar

    from ._generated_ffi import ffi
    from ._kill import KillTimeoutError, kill_session
    from ._records import ProcessRecord, SessionInfo
    from ._users import users
    from .lowlevel import Backend, GetLastError, ProcessIdToSessionId, WTSGetActiveConsoleSessionId

    # The type of backend a ``use_backend(...)`` block hands back.
    _BackendT = TypeVar("_BackendT", bound=Backend)
else:
    # Generic for type checkers only: importing typing costs ~3.9 ms, a third
    # of a bare interpreter start (import plus one query may cost 15 % more).
    class _Generic:
        def __class_getitem__(cls, item: object) -> type:
            return object

    _BackendT = None


# The public face of the swap stack (its machinery is in ._backend): defined
# here, where help() and inspect.getsource() look for a sessionid_cffi class.
class use_backend(_Generic[_BackendT]):  # noqa: N801 - used like a function: with use_backend(b)
    """Context manager that makes ``backend`` answer every query inside it;
    ``with use_backend(b) as same:`` hands ``b`` back, typed as given.

    Process-wide, like ``unittest.mock.patch``: every thread sees the swap
    while it is open. Swaps nest, and may be opened and closed by several
    threads in any order (each removes its own); the most recently entered
    swap that is still open answers for all threads, so threads of one
    process cannot each have a backend of their own at the same time.
    TypeError if ``backend`` lacks a member every Backend has.
    """

    def __init__(self, backend: "_BackendT") -> None:
        check_backend(backend)
        self._backend = backend

    def __enter__(self) -> "_BackendT":
        push_swap(self._backend)
        return self._backend

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: "TracebackType | None",
    ) -> None:
        pop_swap(self._backend)


# -- the Pythonic API: checked arguments in, a session number or an exception out


def process_id_to_session_id(pid: "SupportsIndex") -> int:
    """Session of process ``pid``, like Win32 ``ProcessIdToSessionId``.

    Raises ProcessNotFoundError (winerror 87) if ``pid`` names no process
    (or a thread), AccessDeniedError (winerror 5) if the caller may not
    inspect it, another SessionIdError for other failures, TypeError or
    ValueError for a ``pid`` that is not a DWORD.
    """
    return get_backend().session_id(checked_pid(pid))


def current_session_id() -> int:
    """Session of the calling process.

    Raises like ``process_id_to_session_id``, for example
    BackendUnavailableError where no backend can answer.
    """
    return own_session_id()


def active_console_session_id() -> int | None:
    """Session attached to the physical console, or None when there is none.

    Windows: ``WTSGetActiveConsoleSessionId`` (0xFFFFFFFF becomes None).
    Linux: the active session of seat0 in systemd-logind's state files.
    """
    return get_backend().console_session_id()


def session_ids(pids: "Iterable[SupportsIndex] | None" = None) -> dict[int, int]:
    """``{pid: session}`` for each PID in ``pids`` that names a process the
    caller may inspect, or for every process when ``pids`` is None."""
    if pids is None:
        return get_backend().session_ids(None)
    if isinstance(pids, (str, bytes)):
        raise TypeError("pids must be an iterable of integers, not a string")
    try:
        iterator = iter(pids)
    except TypeError:
        raise TypeError(
            f"pids must be an iterable of integers or None, not {type(pids).__name__}"
        ) from None
    return get_backend().session_ids([checked_pid(pid) for pid in iterator])


def processes_in_session(session_id: "SupportsIndex") -> list[int]:
    """PIDs of every process in session ``session_id`` that the caller may
    inspect, in ascending order (empty when the session has none).

    TypeError or ValueError for a ``session_id`` that is not a DWORD.
    """
    wanted = checked_session(session_id)
    table = get_backend().session_ids(None)
    return sorted(pid for pid, session in table.items() if session == wanted)


#: The Win32 code of NotInLoginError ("a specified logon session does not exist").
ERROR_NO_SUCH_LOGON_SESSION = 1312


class NotInLoginError(SessionIdError):
    """The caller is in session 0, so it has no login of its own: a service,
    a daemon, a container whose processes no login started, a cron job, or
    anything started by one of them. Session 0 holds every such process of
    the machine (init included), so "the processes of my login" must not
    mean session 0. ``winerror`` is ``ERROR_NO_SUCH_LOGON_SESSION`` (1312),
    ``pid`` the caller's PID."""


def processes_in_my_login() -> list[int]:
    """PIDs of the processes in the caller's login session, the caller
    included, in ascending order: the safe set for "only touch processes of
    my own login".

    Raises NotInLoginError when the caller is in session 0 (see there),
    where ``processes_in_session(current_session_id())`` would list every
    system process; else raises like ``current_session_id()``.
    """
    own = current_session_id()
    if own == 0:
        from os import getpid  # os is loaded at start; its import costs nothing

        raise NotInLoginError(
            getpid(),
            ERROR_NO_SUCH_LOGON_SESSION,
            "the calling process is in session 0 (a service, a container or a cron "
            "job, not a login), which every system process shares: it has no "
            "processes of its own login",
        )
    return processes_in_session(own)


def _record_types() -> "ModuleType":
    """The record types' module, imported at the first listing (a single
    query need not pay its ~0.2 ms). An import opens a file: with no
    descriptor or memory left that is the listing's error (4 or 8), never
    a bare OSError."""
    try:
        from . import _records
    except OSError as err:
        raise error_from_oserror(None, err, "load sessionid_cffi's record types") from err
    return _records


def _checked_fields(fields: "Iterable[str] | None") -> "frozenset[str] | None":
    if fields is None:
        return None
    if isinstance(fields, (str, bytes)):
        raise TypeError("fields must be an iterable of field names, not a string")
    known = _record_types().RECORD_FIELDS
    wanted = frozenset(fields)
    unknown = wanted.difference(known)
    if unknown:
        raise ValueError(
            f"unknown record fields {sorted(map(str, unknown))}; choose from: {', '.join(known)}"
        )
    return wanted


def process_records(fields: "Iterable[str] | None" = None) -> "list[ProcessRecord]":
    """A ``ProcessRecord`` for every process the caller may inspect (the
    ``ps`` view), in no particular order.

    ``fields`` names the fields to fill (``pid`` and ``session_id`` always
    are); the others are None, which saves reading them (on Linux each
    costs a file per process). None fills every field the backend knows.
    Each record is read from one process, never mixed with a newcomer that
    reused its PID; processes that exit meanwhile are left out. A backend
    without ``process_records`` (it is optional) gives ``pid`` and
    ``session_id`` only. ValueError names an unknown field.
    """
    record_type = _record_types().ProcessRecord
    wanted = _checked_fields(fields)
    backend = get_backend()
    records = getattr(backend, "process_records", None)
    if records is not None:
        listed: list[ProcessRecord] = records(wanted)
        return listed
    return [record_type(pid, session) for pid, session in backend.session_ids(None).items()]


#: What sessions() reads of each process.
_SESSION_FIELDS = frozenset(("uid", "luid", "login", "tty", "started", "ppid", "comm"))


def sessions() -> "list[SessionInfo]":
    """A ``SessionInfo`` for every session (the ``loginctl list-sessions``
    view), in ascending order of ``session_id``: each session that has a
    process the caller may inspect, and on Windows also those that
    ``WTSEnumerateSessionsW`` lists with no visible process."""
    info_type = _record_types().SessionInfo

    backend = get_backend()
    own = getattr(backend, "session_infos", None)
    if own is not None:
        infos: list[SessionInfo] = own()
        return infos

    by_session: dict[int, list[ProcessRecord]] = {}
    by_pid: dict[int, ProcessRecord] = {}
    for record in process_records(_SESSION_FIELDS):
        by_session.setdefault(record.session_id, []).append(record)
        by_pid[record.pid] = record
    console = backend.console_session_id()
    listed = []
    for session in sorted(by_session):
        members = by_session[session]
        pids = {record.pid for record in members}
        # Earliest start first; on a tie (start times tick at 10 ms) the one
        # whose parent is outside the session, then the lowest PID.
        members.sort(
            key=lambda r: (
                r.started is None,
                r.started or 0.0,
                r.ppid in pids,
                r.pid,
            )
        )
        first = members[0]
        parent = by_pid.get(first.ppid) if first.ppid not in pids else None  # type: ignore[arg-type]
        tty = next((record.tty for record in members if record.tty is not None), None)
        known = first.started is not None
        listed.append(
            info_type(
                session,
                None if session == 0 else first.luid,
                None if session == 0 else first.login,
                first.pid if known else None,
                tty,
                first.started,
                len(members),
                session == console,
                None if session == 0 or not known else _verified(backend, first, parent),
            )
        )
    # Host, service and idle, where the backend can tell them (optional).
    details = getattr(backend, "session_details", None)
    if details is not None:
        described: list[SessionInfo] = details(listed, by_session)
        return described
    return listed


def _verified(
    backend: object, leader: "ProcessRecord", parent: "ProcessRecord | None"
) -> "bool | None":
    """Whether a root-owned process started the login of ``leader``'s
    session (docs/linux.md, "Forged logins"). The kernel lets a process
    whose loginuid is unset set it once to any uid without privilege, and
    the session's earliest process is the one that wrote it (or, once it
    exited, a process it started). Every PAM login service (sshd, login,
    gdm, cron, systemd's user@.service) writes as root, from a root parent.

    False: the leader is owned by a non-root uid and holds another uid's
    login (or root's); or the leader or its parent is not root while the
    leader runs with root's rights only through a setuid program (its real
    uid is not 0); or its parent is not owned by root. None: what decides
    is not visible (owners unknown, the parent gone or not inspectable), or
    a non-root leader holds its own uid as login uid under a root parent,
    which both systemd's user manager and a service forging its own login
    look like. True: the leader (real and effective uid) and its parent
    are owned by root."""
    if leader.uid is None or parent is None or parent.uid is None:
        return None
    if leader.uid != 0:
        if leader.luid is not None and leader.luid not in (0, leader.uid):
            return False
        if leader.luid == 0 or parent.uid != 0:
            return False
        return None
    if parent.uid != 0:
        return False
    real = _real_uid(backend, leader)
    if real is None:
        return None
    return real == 0


def _real_uid(backend: object, record: "ProcessRecord") -> "int | None":
    """The real uid of ``record``'s process where the backend reads procfs
    (a setuid-root program runs with effective uid 0 but keeps the real
    uid of whoever ran it); the record's owner for other backends, which
    know no more. None when the process is gone or its PID now names
    another process (a different parent or owner)."""
    proc_root = getattr(backend, "proc_root", None)
    if not isinstance(proc_root, str):
        return record.uid
    try:
        with open(f"{proc_root}/{record.pid}/status", "rb") as file:
            status = file.read(4096)
    except OSError:
        return None
    fields = {}
    for line in status.split(b"\n"):
        key, _, value = line.partition(b":")
        if key in (b"PPid", b"Uid"):
            fields[key] = value.split()
    try:
        ppid = int(fields[b"PPid"][0])
        real, effective = (int(value) for value in fields[b"Uid"][:2])
    except (KeyError, IndexError, ValueError):
        return None
    return real if (ppid, effective) == (record.ppid, record.uid) else None


__all__ = [
    "ERROR_ACCESS_DENIED",
    "ERROR_GEN_FAILURE",
    "ERROR_INVALID_DATA",
    "ERROR_INVALID_PARAMETER",
    "ERROR_NOT_ENOUGH_MEMORY",
    "ERROR_NOT_SUPPORTED",
    "ERROR_NO_SUCH_LOGON_SESSION",
    "ERROR_TOO_MANY_OPEN_FILES",
    "AccessDeniedError",
    "Backend",
    "BackendUnavailableError",
    "GetLastError",
    "KillTimeoutError",
    "NotInLoginError",
    "ProcessIdToSessionId",
    "ProcessNotFoundError",
    "ProcessRecord",
    "SessionIdError",
    "SessionInfo",
    "WTSGetActiveConsoleSessionId",
    "__version__",
    "active_console_session_id",
    "current_session_id",
    "ffi",
    "get_backend",
    "kill_session",
    "process_id_to_session_id",
    "process_records",
    "processes_in_my_login",
    "processes_in_session",
    "session_ids",
    "sessions",
    "use_backend",
    "users",
]

_LAZY = {
    "ffi": "._generated_ffi",
    "GetLastError": ".lowlevel",
    "ProcessIdToSessionId": ".lowlevel",
    "WTSGetActiveConsoleSessionId": ".lowlevel",
    "Backend": ".lowlevel",
    "ProcessRecord": "._records",
    "SessionInfo": "._records",
    "kill_session": "._kill",
    "KillTimeoutError": "._kill",
    "users": "._users",
}


for _name in __all__:
    publish(__name__, globals().get(_name))  # the lazy ones when they load
del _name


def __getattr__(name: str) -> object:
    return load_lazy(__name__, _LAZY, name)


def __dir__() -> "list[str]":
    # The public names only: helpers such as checked_pid or make_builtin stay
    # importable for the package's own modules but are not offered.
    return sorted(__all__)


load_emulation_module()
