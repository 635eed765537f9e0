"""Process identity for the kit's checks, asked of the OS without the library.

A PID alone does not name a process for good: Windows (and Wine) reuse
freed PIDs, and an exited Windows process lingers, still openable, while
any process holds a handle to it. So the checks name a process by its PID
*and* its start time, wait for it to be gone, and, when it lingers, can
tell who holds it (the tests do that: ``tests/_handles.py``).
"""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

WINDOWS = sys.platform == "win32"

_QUERY_LIMITED = 0x1000  # PROCESS_QUERY_LIMITED_INFORMATION
_SYNCHRONIZE = 0x00100000


#: Win32 ERROR_INTERNAL_ERROR: what CreateProcess gives under Wine when the
#: new process dies before it is initialised.
_START_FAILED = 1359


def start_process(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(command, **options)``, tried up to three times when
    the OS fails to start the process (Win32 error 1359). Wine does that,
    rarely (once in about ten local runs of the Windows lane): not a finding
    about the code under test, so the check starts the process again.
    """
    for attempt in (1, 2, 3):
        try:
            return subprocess.Popen(command, **options)
        except OSError as err:
            if getattr(err, "winerror", None) != _START_FAILED or attempt == 3:
                raise
            time.sleep(0.1 * attempt)
    raise AssertionError("unreachable")


def process_started_at(pid: int) -> int | None:
    """When the process that ``pid`` names now was started, or None if the
    PID names no process that can be opened.

    A PID and its start time together name one process for good, even after
    the PID is reused. Windows: the creation time from ``GetProcessTimes``
    (100 ns ticks); Linux: ``starttime`` of ``/proc/<pid>/stat`` (clock
    ticks since boot).
    """
    if not WINDOWS:
        fields = _stat_fields(pid)
        return None if fields is None else int(fields[19])  # field 22, starttime
    # Windows only: judged by the Wine lane, not by the mutation gate on Linux.
    # pragma: no mutate block
    with _opened(pid, _QUERY_LIMITED) as handle:
        return None if handle is None else _created(handle)


def wait_until_gone(pid: int, started_at: int | None, timeout: float = 30.0) -> bool:
    """Wait until ``pid`` no longer names the process started at ``started_at``
    (from :func:`process_started_at` while it ran; None: until it names none).
    True once it is gone (or a newcomer has its PID); False if it is still
    there after ``timeout`` seconds, held by someone (the tests'
    ``tests/_handles.py`` can name who).

    Wine tears an exited process down asynchronously: after its last handle
    is closed it stays openable for about half a second (measured here), so
    a check that expects 87 must wait for that. Elsewhere a reaped PID is
    gone at once and this returns True immediately.
    """
    if not WINDOWS:
        return True
    # Windows only: judged by the Wine lane, not by the mutation gate on Linux.
    # pragma: no mutate block
    deadline = time.monotonic() + timeout
    while True:
        now = process_started_at(pid)
        if now is None or (started_at is not None and now != started_at):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def has_exited(pid: int, started_at: int | None) -> bool:
    """Whether the process is gone or has exited (Windows: its object is
    signalled; Linux: it is a zombie or gone)."""
    if not WINDOWS:
        fields = _stat_fields(pid)
        if fields is None:
            return True
        if started_at is not None and int(fields[19]) != started_at:
            return True  # a newcomer on the PID
        return fields[0] in (b"Z", b"X")
    # Windows only: judged by the Wine lane, not by the mutation gate on Linux.
    # pragma: no mutate block
    with _opened(pid, _SYNCHRONIZE | _QUERY_LIMITED) as handle:
        if handle is None:
            return True
        if started_at is not None and _created(handle) != started_at:
            return True
        return bool(_win32().WaitForSingleObject(handle, 0) == 0)  # WAIT_OBJECT_0


def _stat_fields(pid: int) -> list[bytes] | None:
    """Linux: the fields of ``/proc/<pid>/stat`` from the state (field 3)
    on, or None if the PID names no process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except OSError:
        return None
    # comm may hold spaces and parentheses: the fields start after the last ")".
    return stat[stat.rindex(b")") + 2 :].split()


# Windows only: judged by the Wine lane, not by the mutation gate on Linux.
# pragma: no mutate block
@contextmanager
def _opened(pid: int, access: int) -> Iterator[int | None]:
    """Windows: a handle to process ``pid`` with ``access``, closed on exit;
    None if it cannot be opened."""
    kernel32 = _win32()
    handle = kernel32.OpenProcess(access, False, pid) if 0 <= pid <= 0xFFFFFFFF else None
    try:
        yield handle or None
    finally:
        if handle:
            kernel32.CloseHandle(handle)


def _created(handle: int) -> int | None:
    import ctypes
    from ctypes import wintypes

    times = [wintypes.FILETIME() for _ in range(4)]
    if not _win32().GetProcessTimes(handle, *(ctypes.byref(t) for t in times)):
        return None
    return (times[0].dwHighDateTime << 32) | times[0].dwLowDateTime


@functools.cache
def _win32() -> Any:
    """kernel32 through ctypes, typed for this module (the kit checks the
    library against the OS, so it does not ask the library)."""
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    kernel32.GetProcessTimes.argtypes = [wintypes.HANDLE] + [ctypes.POINTER(wintypes.FILETIME)] * 4
    kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
    kernel32.WaitForSingleObject.argtypes = [wintypes.HANDLE, wintypes.DWORD]
    kernel32.WaitForSingleObject.restype = wintypes.DWORD
    return kernel32
