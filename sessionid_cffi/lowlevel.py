"""The raw, Win32-shaped API: BOOL results, out-pointers, GetLastError.

These calls behave the same on every backend. With the kernel32 backend
they go straight to kernel32.dll; with the others the backend answers and
the Win32 code of its error becomes the last error. The last error lives in
a per-thread slot, as in Win32 (C9). Out-pointers are checked before any
backend sees them: NULL (or an address in the never-mapped first 64 KiB,
or, on 64-bit systems, in the kernel's upper half) gives FALSE with
ERROR_INVALID_PARAMETER, as ReactOS does, instead of Wine's access
violation; anything that is not a pointer to a 32-bit unsigned integer
raises TypeError.
"""

from __future__ import annotations

from _thread import _local

from . import checked_pid, get_backend
from ._errors import ERROR_INVALID_PARAMETER, SessionIdError
from ._generated_ffi import ffi

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    CData = Any

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
_last = _local()


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


def ProcessIdToSessionId(dwProcessId: object, pSessionId: CData) -> int:  # noqa: N802,N803
    """``BOOL ProcessIdToSessionId(DWORD dwProcessId, DWORD *pSessionId)``.

    Returns 1 (TRUE) and stores the session in ``pSessionId[0]``, or 0
    (FALSE) with the reason in ``GetLastError()``, leaving ``pSessionId``
    untouched. ``dwProcessId`` is checked like ``process_id_to_session_id``
    does (TypeError, ValueError).
    """
    if type(dwProcessId) is int and 0 <= dwProcessId <= _DWORD_MAX:
        pid = dwProcessId
    else:
        pid = checked_pid(dwProcessId)
    out = pSessionId
    if type(out) is not _OWNED or ffi.typeof(out) is not _DWORD_P:
        # Anything but a fresh ffi.new("DWORD *") gets the full check.
        if not _dword_slot(out):
            return _fail(ERROR_INVALID_PARAMETER)
        # As DWORD *: cffi refuses a 'uint32_t *' for an 'unsigned int *'
        # parameter, though both are checked to be 32-bit unsigned above.
        out = ffi.cast(_DWORD_P, out)
    backend = get_backend()
    native = getattr(backend, "native_process_id_to_session_id", None)
    if native is not None:
        # The kernel32 backend: the real call, and the real last error.
        error = native(pid, out)
        return _fail(error) if error else 1
    try:
        session = backend.session_id(pid)
    except SessionIdError as err:
        return _fail(err.winerror)
    out[0] = session
    return 1


def WTSGetActiveConsoleSessionId() -> int:  # noqa: N802 - the Win32 name
    """``DWORD WTSGetActiveConsoleSessionId(void)``: 0xFFFFFFFF when no
    session is attached to the console."""
    session = get_backend().console_session_id()
    return 0xFFFFFFFF if session is None else session


def _process_id_to_session_id_on(backend: object, dwProcessId: object, pSessionId: CData) -> int:  # noqa: N803
    """``ProcessIdToSessionId`` answered by ``backend`` itself, whatever
    backend the process has installed: for ``check_contract``, which must
    never swap the process-wide backend (another thread would see the swap).
    The same checks and results as ``ProcessIdToSessionId``; kept apart from
    it so that the public call keeps its one lookup of the active backend.
    """
    pid = checked_pid(dwProcessId)
    out = pSessionId
    if type(out) is not _OWNED or ffi.typeof(out) is not _DWORD_P:
        if not _dword_slot(out):
            return _fail(ERROR_INVALID_PARAMETER)
        out = ffi.cast(_DWORD_P, out)
    native = getattr(backend, "native_process_id_to_session_id", None)
    if native is not None:
        error = native(pid, out)
        return _fail(error) if error else 1
    try:
        session = backend.session_id(pid)  # type: ignore[attr-defined]
    except SessionIdError as err:
        return _fail(err.winerror)
    out[0] = session
    return 1


def _set_last_error(code: int) -> None:
    """Put back this thread's last error (``check_contract`` leaves the
    caller's thread as it found it)."""
    _last.error = code
