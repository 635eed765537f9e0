"""Process identity for the kit's checks, asked of the OS without the library.

A PID alone does not name a process for good: Windows (and Wine) reuse
freed PIDs, and an exited Windows process lingers, still openable, while
any process holds a handle to it. So the checks name a process by its PID
*and* its start time, wait for it to be gone, and, when it lingers, can
tell who holds it.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

WINDOWS = sys.platform == "win32"

_QUERY_LIMITED = 0x1000  # PROCESS_QUERY_LIMITED_INFORMATION
_DUP_HANDLE = 0x0040  # PROCESS_DUP_HANDLE
_SYNCHRONIZE = 0x00100000
_THREAD_QUERY_LIMITED = 0x0800  # THREAD_QUERY_LIMITED_INFORMATION


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
    with _opened(pid, _QUERY_LIMITED) as handle:
        return None if handle is None else _created(handle)


def wait_until_gone(pid: int, started_at: int | None, timeout: float = 30.0) -> bool:
    """Wait until ``pid`` no longer names the process started at ``started_at``
    (from :func:`process_started_at` while it ran; None: until it names none).
    True once it is gone (or a newcomer has its PID); False if it is still
    there after ``timeout`` seconds, held by someone (see :func:`holders`).

    Wine tears an exited process down asynchronously: after its last handle
    is closed it stays openable for about half a second (measured here), so
    a check that expects 87 must wait for that. Elsewhere a reaped PID is
    gone at once and this returns True immediately.
    """
    if not WINDOWS:
        return True
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
    with _opened(pid, _SYNCHRONIZE | _QUERY_LIMITED) as handle:
        if handle is None:
            return True
        if started_at is not None and _created(handle) != started_at:
            return True
        return bool(_win32()[0].WaitForSingleObject(handle, 0) == 0)  # WAIT_OBJECT_0


def holders(pid: int, started_at: int | None) -> dict[int, str]:
    """Windows: the processes that hold a handle to the process ``pid``
    started at ``started_at``, or to one of its threads (a thread keeps its
    process), as {PID: image name}; ``os.getpid()`` among them means the
    caller itself holds it. The process's own handles are left out. Empty
    elsewhere, and where the system's handle table cannot be read.

    Read from ``NtQuerySystemInformation(SystemExtendedHandleInformation)``:
    each process or thread handle of another process is duplicated into
    this one and asked which process it belongs to.
    """
    if not WINDOWS:
        return {}
    import ctypes

    kernel32, ntdll = _win32()
    own = os.getpid()
    # Handles of known types: they show the Process and Thread type indexes.
    probes = {
        kernel32.OpenProcess(_QUERY_LIMITED, False, own): "process",
        kernel32.OpenThread(_THREAD_QUERY_LIMITED, False, kernel32.GetCurrentThreadId()): "thread",
    }
    found: dict[int, str] = {}
    owners: dict[int, Any] = {}
    try:
        entries = _system_handles(ntdll)
        kinds = {
            e.ObjectTypeIndex: probes[e.HandleValue]
            for e in entries
            if e.UniqueProcessId == own and e.HandleValue in probes
        }
        for entry in entries:
            owner, value = entry.UniqueProcessId, entry.HandleValue
            kind = kinds.get(entry.ObjectTypeIndex)
            # A process's handles to itself and its own threads die with it.
            if kind is None or owner == pid or (owner == own and value in probes):
                continue
            if owner == own:
                target = value
            else:
                if owner not in owners:
                    owners[owner] = kernel32.OpenProcess(_DUP_HANDLE | _QUERY_LIMITED, False, owner)
                if not owners[owner]:
                    continue
                copy = ctypes.c_void_p()
                access = _QUERY_LIMITED if kind == "process" else _THREAD_QUERY_LIMITED
                if not kernel32.DuplicateHandle(
                    owners[owner], value, kernel32.GetCurrentProcess(), ctypes.byref(copy),
                    access, False, 0,
                ):
                    continue
                target = copy.value
            try:
                if kind == "thread":
                    same = kernel32.GetProcessIdOfThread(target) == pid
                else:
                    same = kernel32.GetProcessId(target) == pid and (
                        started_at is None or _created(target) == started_at
                    )
                if same:
                    found[owner] = _image_name(None if owner == own else owners[owner])
            finally:
                if owner != own:
                    kernel32.CloseHandle(target)
    finally:
        for handle in [*probes, *owners.values()]:
            if handle:
                kernel32.CloseHandle(handle)
    return found


def describe_holders(held: dict[int, str]) -> str:
    """A phrase saying who keeps a process (from :func:`holders`), for messages."""
    if not held:
        return "no process holds a handle to it (the OS keeps it)"
    return "held by " + ", ".join(f"PID {p} ({name})" for p, name in sorted(held.items()))


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


@contextmanager
def _opened(pid: int, access: int) -> Iterator[int | None]:
    """Windows: a handle to process ``pid`` with ``access``, closed on exit;
    None if it cannot be opened."""
    kernel32 = _win32()[0]
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
    if not _win32()[0].GetProcessTimes(handle, *(ctypes.byref(t) for t in times)):
        return None
    return (times[0].dwHighDateTime << 32) | times[0].dwLowDateTime


def _image_name(handle: int | None) -> str:
    """The executable's file name of a process handle ("this process" for None)."""
    import ctypes
    from ctypes import wintypes

    if handle is None:
        return os.path.basename(sys.executable)
    size = wintypes.DWORD(1024)
    buffer = ctypes.create_unicode_buffer(size.value)
    if not _win32()[0].QueryFullProcessImageNameW(handle, 0, buffer, ctypes.byref(size)):
        return "?"
    return buffer.value.rsplit("\\", 1)[-1]


def _system_handles(ntdll: Any) -> list[Any]:
    """Every handle of every process (SystemExtendedHandleInformation, 64)."""
    import ctypes

    class Entry(ctypes.Structure):
        _fields_ = [
            ("Object", ctypes.c_void_p),
            ("UniqueProcessId", ctypes.c_size_t),
            ("HandleValue", ctypes.c_size_t),
            ("GrantedAccess", ctypes.c_uint32),
            ("CreatorBackTraceIndex", ctypes.c_uint16),
            ("ObjectTypeIndex", ctypes.c_uint16),
            ("HandleAttributes", ctypes.c_uint32),
            ("Reserved", ctypes.c_uint32),
        ]

    header = 2 * ctypes.sizeof(ctypes.c_size_t)  # NumberOfHandles, Reserved
    size = 1 << 16
    while True:
        buffer = ctypes.create_string_buffer(size)
        needed = ctypes.c_ulong()
        status = ntdll.NtQuerySystemInformation(64, buffer, size, ctypes.byref(needed)) & 0xFFFFFFFF
        if status == 0xC0000004 and size < 1 << 28:  # STATUS_INFO_LENGTH_MISMATCH
            size = max(size * 2, needed.value + 4096)
            continue
        if status:
            return []
        count = ctypes.c_size_t.from_buffer(buffer).value
        count = min(count, (size - header) // ctypes.sizeof(Entry))
        return list((Entry * count).from_buffer(buffer, header))


@functools.cache
def _win32() -> tuple[Any, Any]:
    """kernel32 and ntdll through ctypes, typed for this module (the kit
    checks the library against the OS, so it does not ask the library)."""
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    kernel32.GetProcessTimes.argtypes = [wintypes.HANDLE] + [ctypes.POINTER(wintypes.FILETIME)] * 4
    kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
    kernel32.WaitForSingleObject.argtypes = [wintypes.HANDLE, wintypes.DWORD]
    kernel32.WaitForSingleObject.restype = wintypes.DWORD
    kernel32.GetCurrentProcess.restype = wintypes.HANDLE
    kernel32.DuplicateHandle.argtypes = [
        wintypes.HANDLE, wintypes.HANDLE, wintypes.HANDLE, ctypes.POINTER(ctypes.c_void_p),
        wintypes.DWORD, wintypes.BOOL, wintypes.DWORD,
    ]
    kernel32.GetProcessId.argtypes = [wintypes.HANDLE]
    kernel32.GetProcessId.restype = wintypes.DWORD
    kernel32.GetProcessIdOfThread.argtypes = [wintypes.HANDLE]
    kernel32.GetProcessIdOfThread.restype = wintypes.DWORD
    kernel32.OpenThread.restype = wintypes.HANDLE
    kernel32.OpenThread.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    kernel32.QueryFullProcessImageNameW.argtypes = [
        wintypes.HANDLE, wintypes.DWORD, wintypes.LPWSTR, ctypes.POINTER(wintypes.DWORD),
    ]
    ntdll = ctypes.WinDLL("ntdll")  # type: ignore[attr-defined,unused-ignore]
    ntdll.NtQuerySystemInformation.argtypes = [
        wintypes.ULONG, ctypes.c_void_p, wintypes.ULONG, ctypes.POINTER(wintypes.ULONG),
    ]
    ntdll.NtQuerySystemInformation.restype = ctypes.c_long
    return kernel32, ntdll
