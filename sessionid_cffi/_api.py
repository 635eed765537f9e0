"""The Pythonic API: checked arguments in, a session number or an exception out."""

from __future__ import annotations

import os
from _operator import index as _index

from ._backend import get_backend

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

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


def current_session_id() -> int:
    """Session of the calling process."""
    return get_backend().session_id(os.getpid())


def active_console_session_id() -> int | None:
    """Session attached to the physical console, or None when there is none.

    Windows: ``WTSGetActiveConsoleSessionId`` (0xFFFFFFFF becomes None).
    Linux: the active session of seat0 in systemd-logind's state files.
    """
    return get_backend().console_session_id()


def session_ids(pids: Iterable[object] | None = None) -> dict[int, int]:
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
