"""The Pythonic API: checked arguments in, a session number or an exception out."""

import os
from _operator import index as _index

from . import _backend as _backend_module
from ._backend import _swaps, get_backend

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._interface import Backend

DWORD_MAX = 0xFFFFFFFF


def checked_pid(pid: object) -> int:
    """``pid`` as an int in the DWORD range (C7, C8).

    Raises TypeError for anything that is not an integer (bool, float, str,
    None, ...; objects with ``__index__`` are accepted) and ValueError for
    integers outside 0 ... 2**32-1.
    """
    if type(pid) is not int:
        if isinstance(pid, bool):
            raise TypeError("pid must be an integer, not bool")
        try:
            pid = _index(pid)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(f"pid must be an integer, not {type(pid).__name__}") from None
        except Exception as err:  # a hostile __index__; the caller gets a documented error
            raise TypeError(f"pid.__index__() failed: {err!r}") from err
    if not 0 <= pid <= DWORD_MAX:
        raise ValueError(f"pid must be a DWORD (0 ... 4294967295), got {pid}")
    return pid


def process_id_to_session_id(pid: object) -> int:
    """Session of process ``pid``, like Win32 ``ProcessIdToSessionId``.

    Raises ProcessNotFoundError (winerror 87) if ``pid`` names no process
    (or a thread), AccessDeniedError (winerror 5) if the caller may not
    inspect it, another SessionIdError for other failures, TypeError or
    ValueError for a ``pid`` that is not a DWORD.
    """
    return get_backend().session_id(checked_pid(pid))


# [backend, session], kept where the own session can never change (Windows);
# Linux must ask every time: writing /proc/self/loginuid starts a new session.
_fixed_session: "list[object]" = []


def current_session_id() -> int:
    """Session of the calling process."""
    if _fixed_session and not _swaps and _fixed_session[0] is _backend_module._default:
        return _fixed_session[1]  # type: ignore[return-value]
    backend = get_backend()
    session = backend.session_id(os.getpid())
    if getattr(backend, "session_is_fixed", False) and not _swaps:
        _fixed_session[:] = [backend, session]
    return session


def active_console_session_id() -> int | None:
    """Session attached to the physical console, or None when there is none.

    Windows: ``WTSGetActiveConsoleSessionId`` (0xFFFFFFFF becomes None).
    Linux: the active session of seat0 in systemd-logind's state files.
    """
    return get_backend().console_session_id()


def session_ids(pids: "Iterable[object] | None" = None) -> dict[int, int]:
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


def _checked_session(session_id: object) -> int:
    """``session_id`` as an int in the DWORD range, checked like a PID."""
    try:
        return checked_pid(session_id)
    except (TypeError, ValueError) as err:
        raise type(err)(str(err).replace("pid", "session_id", 1)) from None


def processes_in_session(session_id: object) -> list[int]:
    """PIDs of every process in session ``session_id`` that the caller may
    inspect, in ascending order (empty when the session has none).

    TypeError or ValueError for a ``session_id`` that is not a DWORD.
    """
    wanted = _checked_session(session_id)
    table = get_backend().session_ids(None)
    return sorted(pid for pid, session in table.items() if session == wanted)


class SessionInfo:
    """One login session, as ``sessions()`` lists it (read-only).

    ``session_id``: the session (0 is the system/services session);
    ``user``: its user name, or None where unknown (Linux: the sessions's
    ``loginuid`` resolved with the passwd database, the number when it has
    no entry; Windows: ``WTSQuerySessionInformationW(WTSUserName)``);
    ``process_count``: how many of its processes the caller may inspect;
    ``is_console``: whether it is ``active_console_session_id()``.
    """

    __slots__ = ("is_console", "process_count", "session_id", "user")

    session_id: int
    user: str | None
    process_count: int
    is_console: bool

    def __init__(
        self, session_id: int, user: str | None, process_count: int, is_console: bool
    ) -> None:
        setter = object.__setattr__
        setter(self, "session_id", session_id)
        setter(self, "user", user)
        setter(self, "process_count", process_count)
        setter(self, "is_console", is_console)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"SessionInfo is read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"SessionInfo is read-only: cannot delete {name!r}")

    def _key(self) -> tuple[int, str | None, int, bool]:
        return (self.session_id, self.user, self.process_count, self.is_console)

    def __eq__(self, other: object) -> bool:
        if type(other) is not SessionInfo:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"SessionInfo(session_id={self.session_id}, user={self.user!r}, "
            f"process_count={self.process_count}, is_console={self.is_console})"
        )

    def __reduce__(self) -> "tuple[type[SessionInfo], tuple[int, str | None, int, bool]]":
        return (SessionInfo, self._key())


def process_records(backend: "Backend") -> list[tuple[int, int, str | None, str | None]]:
    """``(pid, session, user, command)`` rows from ``backend``; a backend
    without ``process_records`` (it is optional) gives no user or command."""
    records = getattr(backend, "process_records", None)
    if records is not None:
        rows: list[tuple[int, int, str | None, str | None]] = records()
        return rows
    return [(pid, session, None, None) for pid, session in backend.session_ids(None).items()]


def sessions() -> "list[SessionInfo]":
    """Every session that has a process the caller may inspect, in
    ascending order of ``session_id``."""
    backend = get_backend()
    counts: dict[int, int] = {}
    users: dict[int, str | None] = {}
    for _pid, session, user, _command in process_records(backend):
        counts[session] = counts.get(session, 0) + 1
        if users.get(session) is None:
            users[session] = user
    console = backend.console_session_id()
    return [
        SessionInfo(session, users[session], counts[session], session == console)
        for session in sorted(counts)
    ]
