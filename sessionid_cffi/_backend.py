"""Which backend answers, and the checks every argument passes first.

The package's public functions (``sessionid_cffi``), the raw API
(``lowlevel``), the command (``_cli``) and the kit (``testing``) all import
from here, never from the package's ``__init__``, which only faces users.

The default backend is picked at the first query, not at import, so that
an unsupported platform or a missing procfs only fails when asked
something. ``use_backend`` (in the package) keeps one process-wide stack of
swaps (like mock.patch: worker threads of the code under test see the swap
too).

Free-threaded CPython (no GIL): the state here is the swap stack, the
default backend and the own-session cache. Each is one module global that
holds an immutable value (a tuple, or an object built before it is
published) and is only ever replaced whole: a reader takes it once and
sees either the old value or the new one, never a half-made one. Writers
of the stack hold ``_lock``, so two swaps opened at once both land; the
default backend is built under the same lock, once.
"""

import os
import sys

# _thread, not threading: importing threading costs ~1.2 ms (-X importtime
# here), a tenth of a bare interpreter start (~11 ms), and import plus one
# query may cost 15 % more than that start (benchmarks: import_and_query).
from _thread import allocate_lock

from ._errors import (
    ERROR_NOT_SUPPORTED,
    BackendUnavailableError,
    SessionIdError,
    error_from_oserror,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._interface import Backend
    from ._records import ProcessRecord

ENV_VAR = "SESSIONID_CFFI_BACKEND"
BUILTIN_NAMES = ("kernel32", "procfs", "model")
# What every backend has (see sessionid_cffi.Backend).
BACKEND_ATTRIBUTES = ("name", "session_id", "console_session_id", "session_ids")
DWORD_MAX = 0xFFFFFFFF

_lock = allocate_lock()
# The open swaps, newest last. A tuple replaced whole under _lock: a reader
# that checked it is non-empty can still index it (a list could be emptied
# by another thread between the check and the index, GIL or not).
_swaps: "tuple[Backend, ...]" = ()
_default: "Backend | None" = None


def make_builtin(name: str) -> "Backend":
    """Build a built-in backend by name (the only names the env var accepts)."""
    if name == "kernel32":
        if sys.platform != "win32":
            raise BackendUnavailableError(
                None,
                ERROR_NOT_SUPPORTED,
                f"the kernel32 backend needs Windows, this is {sys.platform!r}; "
                "use 'procfs' on Linux or 'model' anywhere",
            )
        from ._kernel32 import Kernel32Backend

        return Kernel32Backend()
    if name == "procfs":
        from .emulation.procfs import ProcfsBackend

        return ProcfsBackend()
    if name == "model":
        from .emulation.model import ModelBackend

        # A model holding only the caller, in interactive session 1: enough
        # for current_session_id() while debugging with the env var.
        return ModelBackend({os.getpid(): 1})
    raise BackendUnavailableError(
        None,
        ERROR_NOT_SUPPORTED,
        f"unknown backend {name!r} (in ${ENV_VAR} or --backend); "
        f"choose one of: {', '.join(BUILTIN_NAMES)}",
    )


class _Unsupported:
    """Stands in on platforms with no backend; fails on use, naming the platform."""

    name = "unsupported"

    def _fail(self) -> BackendUnavailableError:
        return BackendUnavailableError(
            None,
            ERROR_NOT_SUPPORTED,
            f"sessionid-cffi has no backend for platform {sys.platform!r} "
            "(supported: Windows through kernel32, Linux through procfs); "
            f"set {ENV_VAR}=model or use use_backend() to run on a model",
        )

    def session_id(self, pid: int) -> int:
        raise self._fail()

    def console_session_id(self) -> int | None:
        raise self._fail()

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        raise self._fail()

    def process_records(self, fields: "frozenset[str] | None") -> "list[ProcessRecord]":
        raise self._fail()


def _platform_name() -> str | None:
    """The built-in backend this platform (or $SESSIONID_CFFI_BACKEND) asks for."""
    name = os.environ.get(ENV_VAR)
    if name:
        return name
    if sys.platform == "win32":
        return "kernel32"
    if sys.platform.startswith("linux"):
        return "procfs"
    return None


def _platform_default() -> "Backend":
    name = _platform_name()
    return _Unsupported() if name is None else make_builtin(name)


def load_emulation_module() -> None:
    """Import the platform's emulation backend module now, at import time.

    A process that imports the library as root and then drops privileges
    or chroots may no longer read the install (a venv in a 0700 home): the
    first query must still answer. The module is pure Python (~0.2 ms of the
    import+query budget, which pays for it at the first query anyway).
    kernel32 stays lazy: it loads cffi's runtime and kernel32.dll, which
    importing the package (and the pytest plugin) must not, and Windows
    has no setuid or chroot to lose the install under a running process.
    """
    name = _platform_name()
    try:
        if name == "procfs":
            from .emulation import procfs  # noqa: F401
        elif name == "model":
            from .emulation import model  # noqa: F401
    except (ImportError, OSError):
        pass  # not fatal at import: get_backend() reports it at the first query


def get_backend() -> "Backend":
    """Return the backend that answers queries now.

    Raises BackendUnavailableError when $SESSIONID_CFFI_BACKEND names no
    built-in backend or its module cannot be loaded, SessionIdError with
    winerror 4 or 8 when no descriptor or no memory was left to load it.
    """
    swaps = _swaps  # read once: another thread may replace it meanwhile
    if swaps:
        return swaps[-1]
    default = _default
    if default is None:
        return _load_default()
    return default


def _load_default() -> "Backend":
    global _default
    with _lock:
        if _default is None:
            try:
                _default = _platform_default()
            except SessionIdError:
                raise
            except OSError as err:
                # Loading the backend module itself failed, for example
                # with no file descriptor (4) or memory (8) left: say so, in kind.
                raise error_from_oserror(None, err, "load the sessionid-cffi backend") from err
            except ImportError as err:
                # Its module is gone or unreadable (an install that this
                # process, after dropping privileges, may not read).
                raise BackendUnavailableError(
                    None,
                    ERROR_NOT_SUPPORTED,
                    f"cannot load the sessionid-cffi backend: {err}{_checkout_hint()}",
                ) from err
        return _default


def _checkout_hint() -> str:
    """The fix, when this package is a source checkout's (its emulation/ is a
    sibling folder, mapped in as sessionid_cffi.emulation only at install)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if not os.path.isfile(os.path.join(here, os.pardir, "emulation", "procfs.py")):
        return ""
    return f" ({here} is a source checkout's: run `python -m pip install -e .` there)"


def is_default(backend: object) -> bool:
    """True if ``backend`` is the default backend and no swap is open."""
    return not _swaps and backend is _default


def check_backend(backend: object) -> None:
    """TypeError unless ``backend`` has every required member of a Backend."""
    for attribute in BACKEND_ATTRIBUTES:
        if not hasattr(backend, attribute):
            raise TypeError(
                f"use_backend() needs a backend with .{attribute}; "
                f"got {type(backend).__name__} (see sessionid_cffi.Backend)"
            )


def push_swap(backend: "Backend") -> None:
    """Make ``backend`` answer for every thread until ``pop_swap(backend)``."""
    global _swaps
    with _lock:
        _swaps = (*_swaps, backend)


def pop_swap(backend: "Backend") -> None:
    """Close the newest open swap of ``backend``, wherever other threads'
    swaps left it in the stack (a no-op when none is open)."""
    global _swaps
    with _lock:
        swaps = _swaps
        for index in range(len(swaps) - 1, -1, -1):
            if swaps[index] is backend:
                _swaps = swaps[:index] + swaps[index + 1 :]
                break


# -- argument checking: the same for the Pythonic and the raw API ----------


def checked_pid(pid: object) -> int:
    """``pid`` as an int in the DWORD range (C7, C8).

    Raises TypeError for anything that is not an integer (bool, float, str,
    None, ...; objects with ``__index__`` are accepted) and ValueError for
    integers outside 0 ... 2**32-1.
    """
    if type(pid) is not int:
        if isinstance(pid, bool):
            raise TypeError("pid must be an integer, not bool")
        from operator import index  # only here: exact ints need no import

        try:
            pid = index(pid)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(f"pid must be an integer, not {type(pid).__name__}") from None
        except Exception as err:  # a hostile __index__; the caller gets a documented error
            raise TypeError(f"pid.__index__() failed: {err!r}") from err
    if not 0 <= pid <= DWORD_MAX:
        raise ValueError(f"pid must be a DWORD (0 ... 4294967295), got {pid}")
    return pid


def checked_session(session_id: object) -> int:
    """``session_id`` as an int in the DWORD range, checked like a PID."""
    try:
        return checked_pid(session_id)
    except (TypeError, ValueError) as err:
        raise type(err)(str(err).replace("pid", "session_id", 1)) from None


# -- the public modules' lazy names -----------------------------------------


def load_lazy(package: str, table: "dict[str, str]", name: str) -> object:
    """Import ``name`` of ``package`` on first use, from the module that
    ``table`` names for it, and keep it in the package's namespace."""
    module = table.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, package), name)
    publish(package, value)
    setattr(import_module(package), name, value)
    return value


def publish(package: str, value: object) -> None:
    """Make ``value``, exported by ``package``, report that public module
    (for help(), reprs and tracebacks) instead of the private module that
    defines it, as trio's fixup_module_metadata does."""
    module = getattr(value, "__module__", None)
    if isinstance(module, str) and module.startswith("sessionid_cffi.") and "._" in module:
        value.__module__ = package


# -- the own-session cache ---------------------------------------------------
# The library's one own-session cache: (default backend, its answer), kept
# only where the own session can never change (Windows). Linux asks every
# time: writing /proc/self/loginuid starts a new session.
_own_session: "tuple[Backend, int] | None" = None


def own_session_id() -> int:
    """The caller's session, from the cache while the default backend that
    filled it answers (see ``sessionid_cffi.current_session_id``)."""
    global _own_session
    cached = _own_session  # read once, like _swaps
    if cached is not None and not _swaps and cached[0] is _default:
        return cached[1]
    backend = get_backend()
    session = backend.session_id(os.getpid())
    # session_is_fixed: the optional member of lowlevel.FixedSessionBackend.
    if backend is _default and getattr(backend, "session_is_fixed", False) is True:
        _own_session = (backend, session)
    return session
