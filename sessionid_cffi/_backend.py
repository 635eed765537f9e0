"""Choosing the backend: once, lazily, and swappable for tests.

The default backend is picked at the first query, not at import, so that an
unsupported platform or a missing procfs only fails when asked something.
``use_backend`` keeps a stack of swaps guarded by a lock: each context
removes exactly its own entry, so swaps from several threads never corrupt
each other, and the newest active swap wins.
"""

import os
import sys
from _thread import allocate_lock
from errno import EMFILE, ENFILE

from ._errors import (
    ERROR_NOT_SUPPORTED,
    ERROR_TOO_MANY_OPEN_FILES,
    BackendUnavailableError,
    SessionIdError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType

    from ._interface import Backend

ENV_VAR = "SESSIONID_CFFI_BACKEND"
BUILTIN_NAMES = ("kernel32", "procfs", "model")
# What every backend has (see sessionid_cffi.Backend).
BACKEND_ATTRIBUTES = ("name", "session_id", "console_session_id", "session_ids")

_lock = allocate_lock()
_swaps: "list[Backend]" = []
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

    def process_records(self) -> list[tuple[int, int, str | None, str | None]]:
        raise self._fail()


def _platform_default() -> "Backend":
    name = os.environ.get(ENV_VAR)
    if name:
        return make_builtin(name)
    if sys.platform == "win32":
        return make_builtin("kernel32")
    if sys.platform.startswith("linux"):
        return make_builtin("procfs")
    return _Unsupported()


def get_backend() -> "Backend":
    """Return the backend that answers queries now.

    Raises BackendUnavailableError when $SESSIONID_CFFI_BACKEND names no
    built-in backend.
    """
    if _swaps:
        return _swaps[-1]
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                try:
                    _default = _platform_default()
                except SessionIdError:
                    raise
                except OSError as err:
                    # Loading the backend module itself failed, for example
                    # with no file descriptor left (EMFILE): say so, in kind.
                    raise SessionIdError(
                        None,
                        ERROR_TOO_MANY_OPEN_FILES if err.errno in (EMFILE, ENFILE) else 31,
                        f"cannot load the sessionid-cffi backend: {err}",
                        err.errno,
                    ) from err
    return _default


class use_backend:  # noqa: N801 - used like a function: ``with use_backend(b):``
    """Context manager that makes ``backend`` answer every query inside it.

    Safe to use from several threads at once; the most recently entered
    swap that is still open is the active one.
    """

    def __init__(self, backend: "Backend") -> None:
        for attribute in BACKEND_ATTRIBUTES:
            if not hasattr(backend, attribute):
                raise TypeError(
                    f"use_backend() needs a backend with .{attribute}; "
                    f"got {type(backend).__name__} (see sessionid_cffi.Backend)"
                )
        self._backend = backend

    def __enter__(self) -> "Backend":
        with _lock:
            _swaps.append(self._backend)
        return self._backend

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: "TracebackType | None",
    ) -> None:
        with _lock:
            # Remove this context's own entry, wherever other threads left it.
            for index in range(len(_swaps) - 1, -1, -1):
                if _swaps[index] is self._backend:
                    del _swaps[index]
                    break
