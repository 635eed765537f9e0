"""The one small interface every backend implements, and its extension points.

A backend answers for PIDs that the public API has already checked to be
DWORDs (0 ... 2**32-1); it raises the library's errors, never bare OSError.

Three members are optional: a backend that has them gets faster or richer
answers, one without them still keeps the whole contract. Each is declared
by a protocol below and read in exactly one place (named here), which
treats a backend without it as the protocol says:

- ``process_records(fields)`` (:class:`RecordingBackend`): whole
  ``ProcessRecord`` rows for listings (read by ``process_records()``, which
  ``sessions()`` and ``sessionid ps`` use), and ``session_infos()`` for a
  backend that knows sessions with no process (Windows);
- ``session_is_fixed`` (:class:`FixedSessionBackend`): the caller's own
  session can never change, so ``current_session_id()`` may keep it (read
  there);
- ``native_process_id_to_session_id()`` (:class:`NativeBackend`): the raw
  ``ProcessIdToSessionId`` goes straight to the OS, with the OS's last error
  (read there, in ``sessionid_cffi.lowlevel``).

This module imports ``typing``; the query paths never import it, so the
optional members are read with ``getattr`` where they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from typing import Any

    from ._records import ProcessRecord


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

    #: True: ``current_session_id()`` may keep its first answer for as long
    #: as this backend is the default one.
    session_is_fixed: bool


class NativeBackend(Backend, Protocol):
    """A backend that calls the OS's own ``ProcessIdToSessionId``. Optional:
    without it the raw API asks ``session_id`` and sets the last error from
    the Win32 code of the error it raises."""

    def native_process_id_to_session_id(self, pid: int, out: Any) -> int:
        """Call the OS with ``pid`` and ``out`` (a checked ``DWORD *``):
        0 on success (the session is in ``out[0]``), else the OS's last
        error, with ``out`` untouched."""


# Their public home, for help() and reprs: sessionid_cffi.lowlevel (the
# package re-exports Backend).
for _protocol in (Backend, RecordingBackend, FixedSessionBackend, NativeBackend):
    _protocol.__module__ = "sessionid_cffi.lowlevel"
del _protocol
