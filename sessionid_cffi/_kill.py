"""kill_session: signal every process of one login session, race-free.

Loaded on the first call of ``sessionid_cffi.kill_session`` (``import
sessionid_cffi`` does not pay for ``signal`` or ``time``).

Linux (the procfs backend on this PID namespace's ``/proc``), per member:

1. pin: ``pidfd_open(pid)`` holds the process the PID names now;
2. re-check: the backend's own single query (``session_id``) reads the
   session again, then ``pidfd_send_signal(pidfd, 0)`` proves the pinned
   process still holds the PID (a reaped one fails with ESRCH), so the
   answer was that process's and not a newcomer's on a reused PID;
3. freeze: SIGSTOP through the pidfd, and the table is scanned again until
   no new member appears, so members that keep forking cannot outrun it;
4. the signal through each pidfd, then SIGCONT where the signal does not
   end a process (everything but SIGKILL and SIGSTOP).

Test seam: the kernel calls go through this module's globals ``os``
(``pidfd_open``, ``close``, ``getpid``) and ``signal``
(``pidfd_send_signal``, imported as ``_signal``), looked up at call time, as procfs.py's ``os``.
"""

import os
import signal as _signal
import time
from errno import ENOSYS, EPERM, ESRCH

from ._errors import (
    ERROR_ACCESS_DENIED,
    ERROR_NOT_SUPPORTED,
    AccessDeniedError,
    BackendUnavailableError,
    SessionIdError,
    error_from_oserror,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import SupportsIndex

    from .emulation.procfs import ProcfsBackend

# Win32 ERROR_TIMEOUT: "the wait operation timed out".
ERROR_TIMEOUT = 1460
# SIGKILL's number: Python's signal module has none on Windows, where
# kill_session takes it too (it ends a process like every other signal).
_SIGKILL = 9
#: Seconds kill_session keeps freezing new members before it gives up.
DEFAULT_TIMEOUT = 10.0


# _Killer._pin: the pinned process was reaped during the re-check.
_RACED = -2


class KillTimeoutError(SessionIdError, TimeoutError):
    """kill_session gave up: the session kept gaining new members for
    ``timeout`` seconds. Members it had stopped are continued (SIGCONT) and
    not signalled (with SIGKILL, those found were already killed).
    ``winerror`` is 1460 (Win32 ERROR_TIMEOUT)."""


def checked_signal(value: object) -> int:
    """``value`` as a signal number this platform knows (0 included: it
    only checks permission), TypeError/ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"signal must be an int or signal.Signals, not {type(value).__name__}")
    number = int(value)
    if number not in (0, _SIGKILL) and number not in _signal.valid_signals():
        raise ValueError(f"unknown signal {number}")
    return number


def kill_session(
    session_id: "SupportsIndex",
    signal: int = _signal.SIGTERM,
    *,
    dry_run: bool = False,
    include_self: bool = False,
    allow_session_zero: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[int]:
    """Send ``signal`` to every process of session ``session_id``; return
    the PIDs signalled, ascending (with ``dry_run``: the PIDs it would
    signal, signalling nothing).

    Linux: each member is pinned with a pidfd, its session read again for
    that same process, and signalled through the pidfd, so a PID reused by
    another process meanwhile is never signalled. Members are stopped
    (SIGSTOP) and the table rescanned until no new member appears, then
    signalled, then continued (SIGCONT) unless the signal is SIGKILL or
    SIGSTOP; SIGKILL is sent at once instead of SIGSTOP. The model backend
    removes the members from its table for any signal. Zombies (exited,
    not yet reaped) run nothing and are left out. Windows (kernel32):
    each member is pinned with a process handle, its session asked again
    while the handle holds its PID, and ended with TerminateProcess (exit
    code: the signal's number; every signal ends the process, 0 only
    checks), then the table rescanned until no new member appears
    (docs/windows.md).

    The calling process is left out unless ``include_self`` (then it is
    signalled last). Session 0 (every process outside a login) raises
    ValueError unless ``allow_session_zero``. Members the caller may not
    signal raise AccessDeniedError (5) naming them (``.denied``), after
    the others were signalled (``.signalled``). KillTimeoutError (1460)
    when the session still gained members after ``timeout`` seconds.
    TypeError or ValueError for a ``session_id`` that is not a DWORD or a
    signal this platform does not know.
    """
    from ._backend import checked_session as _checked_session
    from ._backend import get_backend

    sig = signal
    session = _checked_session(session_id)
    number = checked_signal(sig)
    if session == 0 and not allow_session_zero:
        raise ValueError(
            "session 0 holds every process outside a login (init, daemons, kernel "
            "threads); pass allow_session_zero=True to signal it anyway"
        )
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    backend = get_backend()
    if getattr(backend, "name", None) == "kernel32":
        from ._kill_windows import kill_in_windows

        return kill_in_windows(backend, session, number, dry_run, include_self, timeout)  # type: ignore[arg-type]
    from .emulation.model import ModelBackend
    from .emulation.procfs import ProcfsBackend

    if isinstance(backend, ModelBackend):
        return _kill_in_model(backend, session, dry_run, include_self)
    if not isinstance(backend, ProcfsBackend) or not backend.live:
        raise BackendUnavailableError(
            None,
            ERROR_NOT_SUPPORTED,
            f"kill_session needs the procfs backend on this PID namespace's /proc "
            f"or the model backend; the {getattr(backend, 'name', '?')!r} backend "
            "cannot signal",
        )
    return _Killer(backend, session, number, include_self, timeout).run(dry_run)


def _kill_in_model(backend: "object", session: int, dry_run: bool, include_self: bool) -> list[int]:
    """The model: any signal removes the session's processes from the table
    (reaped); denied PIDs stay and are named by AccessDeniedError."""
    table = backend.processes()  # type: ignore[attr-defined]
    own = os.getpid()
    members = sorted(p for p, s in table.items() if s == session and (include_self or p != own))
    denied = [p for p in members if p in backend.denied]  # type: ignore[attr-defined]
    done = [p for p in members if p not in denied]
    if not dry_run:
        for pid in done:
            backend.reap(pid)  # type: ignore[attr-defined]
    if denied and not dry_run:
        raise _denied(denied, done)
    return done


def _denied(
    denied: list[int],
    signalled: list[int],
    *,
    verb: str = "signal",
    past: str = "signalled",
    admin: str = "root",
    errno: "int | None" = EPERM,
) -> AccessDeniedError:
    """AccessDeniedError (5) naming the members the caller may not
    ``verb`` (``.denied``), after the others were (``.signalled``)."""
    error = AccessDeniedError(
        denied[0],
        ERROR_ACCESS_DENIED,
        f"may not {verb} process(es) {', '.join(map(str, denied))} of the session "
        f"({past} the other {len(signalled)}); {verb} them as their owner or as {admin}",
        errno,
    )
    error.denied = denied  # type: ignore[attr-defined]
    error.signalled = signalled  # type: ignore[attr-defined]
    return error


class _Killer:
    def __init__(
        self, backend: "ProcfsBackend", session: int, sig: int, include_self: bool, timeout: float
    ) -> None:
        self.backend = backend
        self.session = session
        self.sig = sig
        self.own = os.getpid() if not include_self else -1
        self.timeout = timeout
        self.pinned: dict[int, int] = {}  # pid -> pidfd of the member it named when pinned
        self.stopped: list[int] = []  # pids this call stopped (SIGCONT on the way out)
        self.denied: list[int] = []
        self.self_member = False
        self.killed: list[int] = []  # SIGKILL: sent when pinned

    def run(self, dry_run: bool) -> list[int]:
        freeze = not dry_run and self.sig != 0
        deadline = time.monotonic() + self.timeout
        try:
            while self._pin_new_members(freeze):
                if not freeze:
                    break  # nothing stopped: one pass is all a listing can promise
                if time.monotonic() > deadline:
                    self._resume()
                    raise KillTimeoutError(
                        None,
                        ERROR_TIMEOUT,
                        f"session {self.session} kept gaining new processes for "
                        f"{self.timeout} s; gave up"
                        + (
                            f" after killing {len(self.killed)} of them"
                            if self.killed
                            else " and signalled nothing"
                        )
                        + " (pass a longer timeout)",
                    )
            if dry_run:
                return sorted(self.pinned)
            signalled = self._signal_all()
            if self.self_member:
                # The caller is a member and asked to be included: last.
                _signal.pidfd_send_signal(self.pinned[os.getpid()], self.sig)
            if self.denied:
                raise _denied(sorted(self.denied), signalled)
            return signalled
        finally:
            for pidfd in self.pinned.values():
                os.close(pidfd)

    def _pin_new_members(self, freeze: bool) -> bool:
        """Pin (and stop, with ``freeze``) members not pinned yet; whether any was new."""
        backend = self.backend
        table = backend.session_ids(None)
        new = False
        for pid in sorted(table):
            if table[pid] != self.session or pid in self.pinned or pid in self.denied:
                continue
            if pid == self.own:
                continue
            pidfd = self._pin(backend, pid)
            if pidfd == _RACED:
                new = True  # its PID changed hands while pinned: look again
                continue
            if pidfd < 0:
                continue
            self.pinned[pid] = pidfd
            new = True
            if pid == os.getpid():
                self.self_member = True
            elif freeze and self.sig != _signal.SIGKILL:
                self._send(pid, pidfd, _signal.SIGSTOP, self.stopped)
            elif freeze:
                # SIGKILL cannot be caught: no need to stop first, kill now.
                self._send(pid, pidfd, _signal.SIGKILL, self.killed)
        return new

    def _pin(self, backend: "ProcfsBackend", pid: int) -> int:
        """A pidfd of the member ``pid`` names now, or -1 when it left the
        session, exited, or its PID now names another process."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return -1  # exited since the scan
        except (AttributeError, OSError) as err:
            if isinstance(err, OSError) and err.errno not in (ENOSYS, EPERM):
                raise error_from_oserror(pid, err, "pidfd_open") from err
            # No pidfd_open (Linux < 5.3, Python without it, or seccomp):
            # signalling by PID could hit a reused PID, so refuse.
            raise BackendUnavailableError(
                pid,
                ERROR_NOT_SUPPORTED,
                "kill_session needs pidfd_open (Linux 5.3+, Python 3.9+) to signal "
                f"race-free; it is not available here: {err}",
            ) from err
        try:
            # The re-check: the backend's own single query, after pinning.
            session = backend.session_id(pid)
            # A zombie (exited, not reaped) runs nothing: not a member to signal.
            zombie = session == self.session and _is_zombie(backend.proc_root, pid)
            # Still the pinned process? A reaped one fails with ESRCH, and
            # while it is not reaped no newcomer can hold its PID.
            _signal.pidfd_send_signal(pidfd, 0)
        except ProcessLookupError:
            os.close(pidfd)
            return _RACED
        except PermissionError:
            os.close(pidfd)
            self.denied.append(pid)
            return -1
        except BaseException:
            os.close(pidfd)
            raise
        if session != self.session or zombie:
            os.close(pidfd)
            return -1
        return pidfd

    def _send(self, pid: int, pidfd: int, sig: int, done: "list[int] | None") -> bool:
        try:
            _signal.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError:
            return False  # exited (reaped) meanwhile: nothing left to signal
        except PermissionError:
            if pid not in self.denied:
                self.denied.append(pid)
            return False
        except OSError as err:
            if err.errno == ESRCH:
                return False
            raise error_from_oserror(pid, err, "pidfd_send_signal") from err
        if done is not None:
            done.append(pid)
        return True

    def _signal_all(self) -> list[int]:
        signalled = []
        killed = set(self.killed)  # a set: one lookup a member, not a list scan
        for pid in sorted(self.pinned):
            if pid == os.getpid() or pid in self.denied:
                continue
            # SIGKILL members were killed when pinned (no stop needed).
            if self.sig == _signal.SIGKILL:
                if pid in killed:
                    signalled.append(pid)
            elif self._send(pid, self.pinned[pid], self.sig, None):
                signalled.append(pid)
        if self.sig not in (_signal.SIGKILL, _signal.SIGSTOP):
            self._resume()
        return signalled

    def _resume(self) -> None:
        for pid in self.stopped:
            self._send(pid, self.pinned[pid], _signal.SIGCONT, None)
        self.stopped.clear()


def _is_zombie(proc_root: str, pid: int) -> bool:
    """Whether ``stat`` shows state Z (the caller proves afterwards, through
    the pidfd, that the PID still named the pinned process)."""
    fd = os.open(f"{proc_root}/{pid}/stat", os.O_RDONLY)
    try:
        data = os.read(fd, 1024)
    finally:
        os.close(fd)
    return data[data.rfind(b")") + 2 : data.rfind(b")") + 3] == b"Z"
