"""Who keeps an exited Windows process: the tests' handle walker.

An exited Windows process lingers, still openable, while any process holds
a handle to it or to one of its threads. When a test finds such a process,
``holders()`` names who keeps it, so a failure says "held by PID 1234
(python.exe)" instead of only "still there". Only the tests use it, so it
lives here, beside them, not in the kit; it builds on the kit's process
identity helpers (``sessionid_cffi.testing._processes``).
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

from sessionid_cffi.testing._processes import WINDOWS, _created, _win32

_QUERY_LIMITED = 0x1000  # PROCESS_QUERY_LIMITED_INFORMATION
_DUP_HANDLE = 0x0040  # PROCESS_DUP_HANDLE
_THREAD_QUERY_LIMITED = 0x0800  # THREAD_QUERY_LIMITED_INFORMATION


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

    kernel32, ntdll = _handle_api()
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
                    owners[owner],
                    value,
                    kernel32.GetCurrentProcess(),
                    ctypes.byref(copy),
                    access,
                    False,
                    0,
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


def _image_name(handle: int | None) -> str:
    """The executable's file name of a process handle ("this process" for None)."""
    import ctypes
    from ctypes import wintypes

    if handle is None:
        return os.path.basename(sys.executable)
    size = wintypes.DWORD(1024)
    buffer = ctypes.create_unicode_buffer(size.value)
    if not _handle_api()[0].QueryFullProcessImageNameW(handle, 0, buffer, ctypes.byref(size)):
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
def _handle_api() -> tuple[Any, Any]:
    """kernel32 (the kit's, with the handle calls typed too) and ntdll."""
    import ctypes
    from ctypes import wintypes

    kernel32 = _win32()
    kernel32.GetCurrentProcess.restype = wintypes.HANDLE
    kernel32.DuplicateHandle.argtypes = [
        wintypes.HANDLE,
        wintypes.HANDLE,
        wintypes.HANDLE,
        ctypes.POINTER(ctypes.c_void_p),
        wintypes.DWORD,
        wintypes.BOOL,
        wintypes.DWORD,
    ]
    kernel32.GetProcessId.argtypes = [wintypes.HANDLE]
    kernel32.GetProcessId.restype = wintypes.DWORD
    kernel32.GetProcessIdOfThread.argtypes = [wintypes.HANDLE]
    kernel32.GetProcessIdOfThread.restype = wintypes.DWORD
    kernel32.OpenThread.restype = wintypes.HANDLE
    kernel32.OpenThread.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    kernel32.QueryFullProcessImageNameW.argtypes = [
        wintypes.HANDLE,
        wintypes.DWORD,
        wintypes.LPWSTR,
        ctypes.POINTER(wintypes.DWORD),
    ]
    ntdll = ctypes.WinDLL("ntdll")  # type: ignore[attr-defined,unused-ignore]
    ntdll.NtQuerySystemInformation.argtypes = [
        wintypes.ULONG,
        ctypes.c_void_p,
        wintypes.ULONG,
        ctypes.POINTER(wintypes.ULONG),
    ]
    ntdll.NtQuerySystemInformation.restype = ctypes.c_long
    return kernel32, ntdll
