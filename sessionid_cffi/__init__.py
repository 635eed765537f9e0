"""Which login session is process N in? One answer on every platform.

The contract is Win32 ``ProcessIdToSessionId``. On Windows it is called in
kernel32.dll through a cffi ABI-mode binding; on Linux the ``procfs``
backend answers from the kernel audit login session; the ``model`` backend
is an in-memory table for tests.

The raw, Win32-shaped names (``ffi``, ``ProcessIdToSessionId``,
``WTSGetActiveConsoleSessionId``, ``GetLastError``) load cffi's runtime on
first use, so importing the package stays cheap.
"""

from ._api import (
    SessionInfo,
    active_console_session_id,
    current_session_id,
    process_id_to_session_id,
    processes_in_session,
    session_ids,
    sessions,
)
from ._backend import get_backend, use_backend
from ._errors import (
    ERROR_ACCESS_DENIED,
    ERROR_INVALID_PARAMETER,
    AccessDeniedError,
    BackendUnavailableError,
    ProcessNotFoundError,
    SessionIdError,
)

# The one place the version is written (pyproject reads it from here).
__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._interface import Backend
    from ._kernel32_ffi import ffi
    from ._raw import GetLastError, ProcessIdToSessionId, WTSGetActiveConsoleSessionId

__all__ = [
    "ERROR_ACCESS_DENIED",
    "ERROR_INVALID_PARAMETER",
    "AccessDeniedError",
    "Backend",
    "BackendUnavailableError",
    "GetLastError",
    "ProcessIdToSessionId",
    "ProcessNotFoundError",
    "SessionIdError",
    "SessionInfo",
    "WTSGetActiveConsoleSessionId",
    "__version__",
    "active_console_session_id",
    "current_session_id",
    "ffi",
    "get_backend",
    "process_id_to_session_id",
    "processes_in_session",
    "session_ids",
    "sessions",
    "use_backend",
]

_LAZY = {
    "ffi": "._kernel32_ffi",
    "GetLastError": "._raw",
    "ProcessIdToSessionId": "._raw",
    "WTSGetActiveConsoleSessionId": "._raw",
    "Backend": "._interface",
}


def _load_lazy(package: str, table: "dict[str, str]", name: str) -> object:
    """Import ``name`` of ``package`` on first use, from the module that
    ``table`` names for it, and keep it in the package's namespace."""
    module = table.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, package), name)
    setattr(import_module(package), name, value)
    return value


def __getattr__(name: str) -> object:
    return _load_lazy(__name__, _LAZY, name)


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(__all__))
