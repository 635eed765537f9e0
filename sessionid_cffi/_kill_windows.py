"""kill_session on Windows (the kernel32 backend): process handles pin each member.

Loaded by ``sessionid_cffi._kill`` on the first ``kill_session`` call with
the kernel32 backend. For each process of the session in the listing
(WTSEnumerateProcessesW):

1. pin: ``OpenProcess(PROCESS_TERMINATE | PROCESS_QUERY_LIMITED_INFORMATION
   | SYNCHRONIZE)``. While a handle is open the process object lives, and
   Windows gives its PID to no other process;
2. re-check: ``GetProcessId`` names the listed PID, the session is asked
   again (``ProcessIdToSessionId``, which now can only name the pinned
   process), and a process that has already exited (its handle is
   signalled) runs nothing and is left out;
3. ``TerminateProcess(handle, signal number)`` at once;
4. wait for the ended members to be gone, then scan again until a scan
   finds no new member, so a member that started a child before it ended
   cannot outrun the call; bounded by ``timeout``.

Windows has no signals: every signal ends the process, with the signal's
number as its exit code, as ``os.kill`` does on Windows (SIGTERM: 15,
SIGKILL: 9). Signal 0 only checks: the pin asks for PROCESS_TERMINATE, so
a member the caller may not end is named in AccessDeniedError.

Test seam: the Win32 calls go through this module's global ``kernel32``,
looked up at call time (a test wraps it to deny what Wine never denies).
"""

import os
import time

from ._errors import (
    ERROR_ACCESS_DENIED,
    ERROR_INVALID_PARAMETER,
    AccessDeniedError,
    ProcessNotFoundError,
    SessionIdError,
)
from ._generated_ffi import ffi
from ._kernel32 import Kernel32Backend, kernel32
from ._kill import ERROR_TIMEOUT, KillTimeoutError
from ._kill import _denied as _shared_denied

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PROCESS_TERMINATE = 0x0001
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
SYNCHRONIZE = 0x00100000
PIN_ACCESS = PROCESS_TERMINATE | PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE
WAIT_OBJECT_0 = 0
WAIT_TIMEOUT = 258


def kill_in_windows(
    backend: Kernel32Backend,
    session: int,
    sig: int,
    dry_run: bool,
    include_self: bool,
    timeout: float,
) -> list[int]:
    """``kill_session`` on the kernel32 backend (arguments already checked)."""
    return _Terminator(backend, session, sig, include_self, timeout).run(dry_run)


def _denied(denied: list[int], signalled: list[int]) -> AccessDeniedError:
    return _shared_denied(
        denied, signalled, verb="end", past="ended", admin="an administrator", errno=None
    )


class _Terminator:
    def __init__(
        self, backend: Kernel32Backend, session: int, sig: int, include_self: bool, timeout: float
    ) -> None:
        self.backend = backend
        self.session = session
        self.sig = sig
        self.include_self = include_self
        self.own = os.getpid()
        self.timeout = timeout
        self.pinned: dict[int, Any] = {}  # pid -> handle of the member it named when pinned
        self.ended: list[int] = []  # TerminateProcess succeeded
        self.gone: set[int] = set()  # ended and seen gone (handle signalled)
        self.denied: list[int] = []

    def run(self, dry_run: bool) -> list[int]:
        ends = not dry_run and self.sig != 0
        deadline = time.monotonic() + self.timeout
        try:
            while self._pin_new_members(ends):
                if not ends:
                    break  # nothing ended: one pass is all a listing can promise
                self._wait_until_gone(deadline)
                if time.monotonic() > deadline:
                    raise KillTimeoutError(
                        None,
                        ERROR_TIMEOUT,
                        f"session {self.session} kept gaining new processes for "
                        f"{self.timeout} s; gave up after ending {len(self.ended)} of them "
                        "(pass a longer timeout)",
                    )
            members = sorted(pid for pid in self.pinned if pid not in self.denied)
            if dry_run:
                return members
            signalled = sorted(self.ended) if ends else members
            if ends and self.own in self.pinned:
                # The caller is a member and asked to be included: last.
                kernel32.TerminateProcess(self.pinned[self.own], self.sig)
            if self.denied:
                raise _denied(sorted(self.denied), signalled)
            return signalled
        finally:
            for handle in self.pinned.values():
                kernel32.CloseHandle(handle)

    def _pin_new_members(self, ends: bool) -> bool:
        """Pin (and end, with ``ends``) members not pinned yet; whether any was new."""
        table = self.backend.session_ids(None)
        new = False
        for pid in sorted(table):
            if table[pid] != self.session or pid in self.pinned or pid in self.denied:
                continue
            if pid == self.own and not self.include_self:
                continue
            handle = self._pin(pid)
            if handle is None:
                continue
            self.pinned[pid] = handle
            new = True
            if ends and pid != self.own:
                self._terminate(pid, handle)
        return new

    def _pin(self, pid: int) -> "Any":
        """A handle of the member ``pid`` names now, or None when it left
        the session, exited, or the caller may not end it (then denied)."""
        handle = kernel32.OpenProcess(PIN_ACCESS, False, pid)
        if handle == ffi.NULL:
            code, message = ffi.getwinerror()
            if code == ERROR_ACCESS_DENIED:
                self.denied.append(pid)
                return None
            if code == ERROR_INVALID_PARAMETER:
                return None  # exited since the scan
            raise SessionIdError(pid, code, f"OpenProcess({pid}) failed: {message}", None)
        try:
            # The handle pins the process, so from here on the PID names it
            # and nothing else: the session asked now is the pinned one's.
            member = (
                int(kernel32.GetProcessId(handle)) == pid
                and kernel32.WaitForSingleObject(handle, 0) == WAIT_TIMEOUT
                and self.backend.session_id(pid) == self.session
            )
        except ProcessNotFoundError:
            member = False
        except BaseException:
            kernel32.CloseHandle(handle)
            raise
        if not member:
            kernel32.CloseHandle(handle)
            return None
        return handle

    def _terminate(self, pid: int, handle: "Any") -> None:
        if kernel32.TerminateProcess(handle, self.sig):
            self.ended.append(pid)
            return
        code, message = ffi.getwinerror()
        # TerminateProcess fails with ERROR_ACCESS_DENIED on a process that
        # is already exiting: that one ended by itself, it is not denied.
        if kernel32.WaitForSingleObject(handle, 0) == WAIT_OBJECT_0:
            return
        if code == ERROR_ACCESS_DENIED:
            self.denied.append(pid)
            return
        raise SessionIdError(pid, code, f"TerminateProcess({pid}) failed: {message}", None)

    def _wait_until_gone(self, deadline: float) -> None:
        """Wait (until ``deadline``) for each ended member's handle to be
        signalled: once it is, the process runs nothing and can start no
        child the next scan would miss."""
        for pid in self.ended:
            if pid in self.gone:
                continue
            left = max(0, int((deadline - time.monotonic()) * 1000))
            if kernel32.WaitForSingleObject(self.pinned[pid], left) == WAIT_OBJECT_0:
                self.gone.add(pid)
