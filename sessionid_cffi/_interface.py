"""The one small interface every backend implements.

A backend answers for PIDs that the public API has already checked to be
DWORDs (0 ... 2**32-1); it raises the library's errors, never bare OSError.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._records import ProcessRecord


@runtime_checkable
class Backend(Protocol):
    """What ``get_backend()`` returns and ``use_backend()`` accepts."""

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
