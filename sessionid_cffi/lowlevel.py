"""The Win32-shaped layer: the call exactly as Windows declares it, on every backend.

Use it to port code written against the Win32 API, to check a binding of
your own against the real one, or to write a backend of your own. Anything
else is simpler and safer with the package's Pythonic functions
(``sessionid_cffi.process_id_to_session_id`` and friends), which raise
exceptions instead of returning FALSE.

What is here:

- ``ffi``: the cffi ``FFI`` of the binding. Its cdef declares
  ``BOOL ProcessIdToSessionId(DWORD, DWORD *)``,
  ``DWORD WTSGetActiveConsoleSessionId(void)`` and their types, with
  ``DWORD`` 32 bits wide on every platform. Make out-pointers with
  ``ffi.new("DWORD *")``.
- ``ProcessIdToSessionId(pid, out)``: TRUE (1) with the session in
  ``out[0]``, or FALSE (0) with the reason in ``GetLastError()`` and
  ``out`` untouched.
- ``WTSGetActiveConsoleSessionId()``: the console's session, 0xFFFFFFFF when
  none is attached.
- ``GetLastError()``: the last error of a raw call, per thread (C9).
- ``Backend``: the protocol ``use_backend()`` accepts, and the optional
  members a custom backend may implement, each declared by its own
  protocol: ``process_records()`` (:class:`RecordingBackend`, user and
  command for listings), ``session_is_fixed`` (:class:`FixedSessionBackend`,
  lets ``current_session_id()`` keep its answer) and
  ``native_process_id_to_session_id()`` (:class:`NativeBackend`, the raw
  call straight to the OS).

What can go wrong:

- A failed call does not raise: it returns 0 and only ``GetLastError()``
  says why, in the same thread, until the next raw call there. Check the
  result every time.
- Out-pointers are checked before any backend sees them: NULL (or an
  address in the never-mapped first 64 KiB, or, on 64-bit systems, in the
  kernel's upper half) gives FALSE with ERROR_INVALID_PARAMETER (87), as
  ReactOS does, instead of Wine's access violation; anything that is not a
  pointer to a 32-bit unsigned integer raises TypeError. A pointer into
  memory you freed, or a cast from a wrong address that passes these
  checks, is still written to: as in C, that corrupts memory.
- The PID is checked like the Pythonic API checks it: TypeError for
  non-integers, ValueError outside 0 ... 2**32-1.
- With the kernel32 backend the call goes straight to kernel32.dll and the
  last error is Windows' own; with the others the backend answers and the
  Win32 code of its error becomes the last error.
- Touching this module (or ``sessionid_cffi.Backend``) loads cffi's
  runtime (``_cffi_backend``, not its parser), ``threading`` and
  ``typing``: a few milliseconds, once. On Linux the package's Pythonic
  functions load none of them.
"""

from __future__ import annotations

from threading import local
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ._backend import checked_pid, get_backend
from ._errors import ERROR_INVALID_PARAMETER, SessionIdError
from ._generated_ffi import ffi

if TYPE_CHECKING:
    from typing import Any, SupportsIndex

    from ._records import ProcessRecord

    CData = Any

__all__ = [
    "Backend",
    "FixedSessionBackend",
    "GetLastError",
    "NativeBackend",
    "ProcessIdToSessionId",
    "RecordingBackend",
    "WTSGetActiveConsoleSessionId",
    "ffi",
]


def __dir__() -> list[str]:
    return sorted(__all__)


# -- the interface every backend implements, and its extension points ----
# Defined here, in their public home, so that help(), reprs and
# inspect.getsource() all find them. A backend answers for PIDs that the
# public API has already checked to be DWORDs (0 ... 2**32-1); it raises
# the library's errors, never bare OSError. The three optional members are
# each read in exactly one place, with getattr (the query paths never
# import typing): process_records() by sessionid_cffi.process_records(),
# session_is_fixed by current_session_id(), and
# native_process_id_to_session_id() by ProcessIdToSessionId() below.


@runtime_checkable
class Backend(Protocol):
    """What ``get_backend()`` returns and ``use_backend()`` accepts.

    Required: ``name``, ``session_id``, ``console_session_id`` and
    ``session_ids``. Optional extension points: ``process_records``
    (see :class:`RecordingBackend`), ``session_is_fixed``
    (:class:`FixedSessionBackend`) and ``native_process_id_to_session_id``
    (:class:`NativeBackend`).
    """

    #: "kernel32", "procfs", "model", or a name of your own.
    name: str

    def session_id(self, pid: int) -> int:
        """Session of process ``pid``; raise ProcessNotFoundError (87),
        AccessDeniedError (5) or another SessionIdError."""

    def console_session_id(self) -> int | None:
        """Session attached to the console, or None when there is none."""

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        """Session of each PID in ``pids`` (every process when None); PIDs
        that fail are left out."""


class RecordingBackend(Backend, Protocol):
    """A backend that can also list whole records. Optional: listings
    (``process_records()``, ``sessions()``, ``sessionid ps``) use
    ``session_ids(None)`` with only ``pid`` and ``session_id`` for a backend
    without it. A backend may also have ``session_infos()`` returning
    ``list[SessionInfo]`` (Windows does: it lists sessions with no process);
    without it ``sessions()`` aggregates the records."""

    def process_records(self, fields: frozenset[str] | None) -> list[ProcessRecord]:
        """A ``ProcessRecord`` for every process the caller may inspect, each
        read from one process (never mixed with a newcomer that reused the
        PID); processes that vanish are left out. ``fields`` names the
        fields the caller needs (None: all); the backend may leave the
        others None to save work, and fills None what it cannot tell."""


class FixedSessionBackend(Backend, Protocol):
    """A backend on which a process never changes session (Windows).
    Optional: without it ``current_session_id()`` asks the backend every
    time, as it must on Linux (writing ``/proc/self/loginuid`` starts a new
    session)."""

    #: Whether ``current_session_id()`` may keep its first answer (True)
    #: for as long as this backend is the default one.
    session_is_fixed: bool


class NativeBackend(Backend, Protocol):
    """A backend that calls the OS's own ``ProcessIdToSessionId``. Optional:
    without it the raw API asks ``session_id`` and sets the last error from
    the Win32 code of the error it raises."""

    def native_process_id_to_session_id(self, pid: int, out: Any) -> int:
        """Call the OS with ``pid`` and ``out`` (a checked ``DWORD *``):
        0 on success (the session is in ``out[0]``), else the OS's last
        error, with ``out`` untouched."""


_DWORD_NAMES = frozenset({"unsigned int", "unsigned long", "uint32_t"})
_LOWEST_VALID_ADDRESS = 0x10000
# On 64-bit systems the upper half of the address space belongs to the
# kernel (Linux, Windows; x86-64 and arm64): no user pointer lies there, and
# writing there kills the process. ffi.cast("DWORD *", -1) is such a pointer.
_HIGHEST_VALID_ADDRESS = 2**63 - 1 if ffi.sizeof("void *") == 8 else 2**32 - 1
_CData = ffi.CData
_DWORD_P = ffi.typeof("DWORD *")
# What ffi.new() returns: memory cffi allocated itself, so never NULL-like.
_OWNED = type(ffi.new("DWORD *"))
_DWORD_MAX = 0xFFFFFFFF
_last = local()


def GetLastError() -> int:  # noqa: N802 - the Win32 name
    """The last error set by a raw call in this thread (0 before any)."""
    return getattr(_last, "error", 0)


def _fail(code: int) -> int:
    _last.error = code
    return 0


def _dword_slot(pointer: object) -> bool:
    """True if ``pointer`` can receive a DWORD, False if it is NULL-like;
    TypeError if it is not a pointer to a 32-bit unsigned integer."""
    if not isinstance(pointer, _CData):
        raise TypeError(
            f"pSessionId must be a cffi pointer such as ffi.new('DWORD *'), "
            f"not {type(pointer).__name__}"
        )
    ctype = ffi.typeof(pointer)
    if ctype.kind == "pointer" and not (
        _LOWEST_VALID_ADDRESS <= int(ffi.cast("uintptr_t", pointer)) <= _HIGHEST_VALID_ADDRESS
    ):
        return False  # ffi.NULL (a 'void *'), any other NULL-like or kernel-half pointer
    if (
        ctype.kind not in ("pointer", "array")
        or ctype.item.kind != "primitive"
        or ctype.item.cname not in _DWORD_NAMES
        or ffi.sizeof(ctype.item) != 4
    ):
        raise TypeError(f"pSessionId must be a 'DWORD *', not {ctype.cname!r}")
    return ctype.kind == "pointer" or len(pointer) > 0


def ProcessIdToSessionId(dwProcessId: SupportsIndex, pSessionId: CData) -> int:  # noqa: N802,N803
    """``BOOL ProcessIdToSessionId(DWORD dwProcessId, DWORD *pSessionId)``.

    Returns 1 (TRUE) and stores the session in ``pSessionId[0]``, or 0
    (FALSE) with the reason in ``GetLastError()``, leaving ``pSessionId``
    untouched (also when no backend can be loaded here). ``dwProcessId`` is
    checked like ``process_id_to_session_id`` does (TypeError, ValueError).
    """
    return _process_id_to_session_id_on(None, dwProcessId, pSessionId)


def WTSGetActiveConsoleSessionId() -> int:  # noqa: N802 - the Win32 name
    """``DWORD WTSGetActiveConsoleSessionId(void)``: 0xFFFFFFFF when no
    session is attached to the console."""
    session = get_backend().console_session_id()
    return 0xFFFFFFFF if session is None else session


def _process_id_to_session_id_on(backend: object, pid_value: object, pointer: CData) -> int:
    """``ProcessIdToSessionId`` answered by ``backend``, or by the active
    backend when it is None. ``check_contract`` passes the backend it checks,
    so that it never swaps the process-wide one (another thread would see it).
    """
    if type(pid_value) is int and 0 <= pid_value <= _DWORD_MAX:
        pid = pid_value
    else:
        pid = checked_pid(pid_value)
    out = pointer
    if type(out) is not _OWNED or ffi.typeof(out) is not _DWORD_P:
        # Anything but a fresh ffi.new("DWORD *") gets the full check.
        if not _dword_slot(out):
            return _fail(ERROR_INVALID_PARAMETER)
        # As DWORD *: cffi refuses a 'uint32_t *' for an 'unsigned int *'
        # parameter, though both are checked to be 32-bit unsigned above.
        out = ffi.cast(_DWORD_P, out)
    try:
        if backend is None:
            backend = get_backend()
        # The optional member of NativeBackend (read here only).
        native = getattr(backend, "native_process_id_to_session_id", None)
        if native is not None:
            # The kernel32 backend: the real call, and the real last error.
            error = native(pid, out)
            return _fail(error) if error else 1
        session = backend.session_id(pid)  # type: ignore[attr-defined]
    except SessionIdError as err:
        return _fail(err.winerror)
    out[0] = session
    return 1


def _set_last_error(code: int) -> None:
    """Put back this thread's last error (``check_contract`` leaves the
    caller's thread as it found it)."""
    _last.error = code
