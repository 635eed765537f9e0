"""Exceptions and Win32 error codes shared by every backend.

Every failure carries the PID asked about, the Win32 error code that
``ProcessIdToSessionId`` would leave in ``GetLastError()`` and, where an
operating-system call failed, its errno.
"""

import errno as _errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

# The Win32 codes the library's errors carry (the public package exports each).
ERROR_TOO_MANY_OPEN_FILES = 4
ERROR_ACCESS_DENIED = 5
ERROR_NOT_ENOUGH_MEMORY = 8
ERROR_INVALID_DATA = 13
ERROR_GEN_FAILURE = 31
ERROR_NOT_SUPPORTED = 50
ERROR_INVALID_PARAMETER = 87


class SessionIdError(OSError):
    """Root of the library's errors: catch it to handle every failure.

    Raised itself, with one of these ``winerror`` codes, for failures that
    are neither "not found" nor "access denied":
    ``ERROR_TOO_MANY_OPEN_FILES`` (4: no file descriptor left),
    ``ERROR_NOT_ENOUGH_MEMORY`` (8), ``ERROR_INVALID_DATA`` (13: a procfs
    file with unexpected content), ``ERROR_GEN_FAILURE`` (31: any other
    operating-system error), or any code kernel32 reports on Windows.

    Attributes: ``pid`` (the PID asked about, or None), ``winerror`` (the
    Win32 error code), ``errno`` (the underlying errno, or None) and
    ``strerror`` (the message).
    """

    pid: int | None
    winerror: int

    def __init__(
        self, pid: int | None, winerror: int, message: str, errno: int | None = None
    ) -> None:
        super().__init__(errno, message)
        self.pid = pid
        self.winerror = winerror

    def __str__(self) -> str:
        return f"[WinError {self.winerror}] {self.strerror}"

    def __repr__(self) -> str:
        # The public class name and every field, so a log line says it all.
        return (
            f"{type(self).__name__}(pid={self.pid!r}, winerror={self.winerror}, "
            f"message={self.strerror!r}, errno={self.errno!r})"
        )

    def __reduce__(self) -> "tuple[type[SessionIdError], tuple[object, ...]]":
        # OSError's default pickling replays OSError's own arguments, which
        # do not match this signature.
        return (type(self), (self.pid, self.winerror, self.strerror, self.errno))


class ProcessNotFoundError(SessionIdError, ProcessLookupError):
    """The PID names no process the caller can see, or names a thread:
    ``winerror`` is always ``ERROR_INVALID_PARAMETER`` (87).

    ``ProcessNotFoundError(pid)`` is enough (a backend of your own may
    raise it so); ``message`` and ``errno`` are optional. The long form
    ``ProcessNotFoundError(pid, 87, message, errno)`` still works."""

    def __init__(
        self,
        pid: "int | None",
        winerror: "int | str | None" = None,
        message: "str | None" = None,
        errno: "int | None" = None,
    ) -> None:
        winerror, message = _code_and_message(
            winerror, message, ERROR_INVALID_PARAMETER, f"process {pid} not found"
        )
        super().__init__(pid, winerror, message, errno)


class AccessDeniedError(SessionIdError, PermissionError):
    """The process exists but the caller may not inspect it: ``winerror``
    is always ``ERROR_ACCESS_DENIED`` (5).

    ``AccessDeniedError(pid)`` is enough; ``message`` and ``errno`` are
    optional, and the long form ``AccessDeniedError(pid, 5, message, errno)``
    still works."""

    def __init__(
        self,
        pid: "int | None",
        winerror: "int | str | None" = None,
        message: "str | None" = None,
        errno: "int | None" = None,
    ) -> None:
        winerror, message = _code_and_message(
            winerror, message, ERROR_ACCESS_DENIED, f"access to process {pid} denied"
        )
        super().__init__(pid, winerror, message, errno)


def _code_and_message(
    winerror: "int | str | None", message: "str | None", fixed: int, default: str
) -> "tuple[int, str]":
    """The code and message of an error class whose code is fixed: a str in
    the code's place is the message (``ProcessNotFoundError(pid, "why")``);
    any other code than the class's is refused (it would lie)."""
    if isinstance(winerror, str):
        if message is not None:
            raise TypeError("give the message once")
        winerror, message = None, winerror
    if winerror is None:
        winerror = fixed
    if winerror != fixed:
        raise ValueError(f"winerror of this error is always {fixed}, not {winerror!r}")
    return fixed, default if message is None else message


class BackendUnavailableError(SessionIdError):
    """No backend can answer here: an unsupported platform, procfs not
    mounted, or an unknown backend name: ``winerror`` is always
    ``ERROR_NOT_SUPPORTED`` (50)."""


def not_found(pid: int, reason: str, errno: int | None = _errno.ESRCH) -> ProcessNotFoundError:
    return ProcessNotFoundError(
        pid, ERROR_INVALID_PARAMETER, f"process {pid} not found: {reason}", errno
    )


def access_denied(pid: int, reason: str, errno: int | None = _errno.EACCES) -> AccessDeniedError:
    return AccessDeniedError(
        pid,
        ERROR_ACCESS_DENIED,
        f"access to process {pid} denied: {reason}; query it as its owner or as root/Administrator",
        errno,
    )


def answers_for(session_id: "Callable[[int], int]", pids: "Iterable[int]") -> "dict[int, int]":
    """``{pid: session_id(pid)}`` for the PIDs that answer: the ones not
    found and the ones denied are left out; any other error propagates.
    The one rule every backend's ``session_ids(pids)`` follows."""
    found = {}
    for pid in pids:
        try:
            found[pid] = session_id(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return found


# errno -> Win32 code, for the errors that are neither "missing" nor "denied".
_WIN32_OF_ERRNO = {
    _errno.EMFILE: ERROR_TOO_MANY_OPEN_FILES,
    _errno.ENFILE: ERROR_TOO_MANY_OPEN_FILES,
    _errno.ENOMEM: ERROR_NOT_ENOUGH_MEMORY,
    _errno.EIO: ERROR_GEN_FAILURE,
}
_MISSING = frozenset({_errno.ENOENT, _errno.ESRCH, _errno.ENOTDIR})
_DENIED = frozenset({_errno.EACCES, _errno.EPERM})


def error_from_oserror(pid: "int | None", err: OSError, where: str) -> SessionIdError:
    """The library error for an OSError: the one translation every backend uses.

    ``where`` names what failed (a path, or an action such as ``list /proc``).
    With a ``pid``: ENOENT/ESRCH/ENOTDIR -> ProcessNotFoundError (87),
    EACCES/EPERM -> AccessDeniedError (5). Without one (nothing was asked
    about a process: listing procfs, loading a backend) those mean that no
    backend can answer here: BackendUnavailableError (50). Either way
    EMFILE/ENFILE -> 4, ENOMEM -> 8, anything else -> 31 with a pid, 50
    without. The errno is kept; raise the result ``from err``.
    """
    code = err.errno
    reason = os.strerror(code) if code else str(err)
    winerror = _WIN32_OF_ERRNO.get(code, ERROR_GEN_FAILURE) if code else ERROR_GEN_FAILURE
    hint = " (free some file descriptors)" if winerror == ERROR_TOO_MANY_OPEN_FILES else ""
    if pid is None:
        message = f"cannot {where}: {reason}{hint}"
        if code in (_errno.EMFILE, _errno.ENFILE, _errno.ENOMEM):
            return SessionIdError(None, winerror, message, code)
        return BackendUnavailableError(None, ERROR_NOT_SUPPORTED, message, code)
    detail = f"{where}: {reason}"
    if code in _MISSING:
        return not_found(pid, detail, code)
    if code in _DENIED:
        return access_denied(pid, detail, code)
    return SessionIdError(
        pid, winerror, f"cannot read the session of process {pid}: {detail}{hint}", code
    )
