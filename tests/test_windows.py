"""Windows-only rules, run for real in the Windows lane (Windows CPython
under Wine, the real kernel32.dll through the cffi ABI-mode binding).

Linux cannot have these: they check what reaches kernel32 and compare the
binding with an independent one (pywin32's win32ts, written by others).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from _handles import describe_holders, holders
from hypothesis import given
from hypothesis import strategies as st

import sessionid_cffi as s
from sessionid_cffi.testing._processes import process_started_at, wait_until_gone

pytestmark = pytest.mark.skipif(
    sys.platform != "win32", reason="Windows-only: calls kernel32.dll (run by tox -e wine)"
)

DWORD_MAX = 2**32 - 1


def pywin32_answer(pid: int) -> int | tuple[str, int]:
    """pywin32's answer: a session, or ("error", Win32 code)."""
    import pywintypes
    import win32ts

    try:
        return int(win32ts.ProcessIdToSessionId(pid))
    except pywintypes.error as err:
        return ("error", err.winerror)


def our_answer(pid: int) -> int | tuple[str, int]:
    try:
        return s.process_id_to_session_id(pid)
    except s.SessionIdError as err:
        return ("error", err.winerror)


def test_backend_is_kernel32() -> None:
    assert s.get_backend().name == "kernel32"
    assert type(s.get_backend()).__module__ == "sessionid_cffi._kernel32"


def test_own_pid_agrees_with_pywin32_and_aliases() -> None:
    own = os.getpid()
    assert our_answer(own) == pywin32_answer(own)
    for offset in (1, 2, 3):
        assert our_answer(own + offset) == pywin32_answer(own + offset) == our_answer(own)


def test_children_share_the_callers_session(child: subprocess.Popen[bytes]) -> None:
    assert s.process_id_to_session_id(child.pid) == s.current_session_id()
    assert our_answer(child.pid) == pywin32_answer(child.pid)


def test_exited_child_answers_while_its_handle_is_held(child: subprocess.Popen[bytes]) -> None:
    session = s.process_id_to_session_id(child.pid)
    started_at = process_started_at(child.pid)
    child.kill()
    child.wait()  # exited; Popen still holds the process handle
    assert s.process_id_to_session_id(child.pid) == session
    assert our_answer(child.pid) == pywin32_answer(child.pid)
    child._handle.Close()  # type: ignore[attr-defined]
    if not wait_until_gone(child.pid, started_at):
        held = describe_holders(holders(child.pid, started_at))
        pytest.skip(f"PID {child.pid} is still kept by the OS, {held}: 87 cannot be asked")
    if process_started_at(child.pid) is not None:
        pytest.skip(f"PID {child.pid} was reused by a new process before it could be asked")
    assert our_answer(child.pid) == pywin32_answer(child.pid) == ("error", 87)


def test_thread_id_fails_with_87_and_leaves_the_pointer_untouched(thread_id: int) -> None:
    out = s.ffi.new("DWORD *", 0xDEADBEEF)
    assert s.ProcessIdToSessionId(thread_id, out) == 0
    assert s.GetLastError() == 87
    assert out[0] == 0xDEADBEEF
    assert our_answer(thread_id) == pywin32_answer(thread_id) == ("error", 87)


@pytest.mark.parametrize(
    "make_pointer",
    [lambda: s.ffi.NULL, lambda: s.ffi.cast("DWORD *", 0), lambda: s.ffi.cast("DWORD *", 4)],
    ids=["ffi.NULL", "NULL DWORD*", "low address"],
)
def test_null_out_pointers_never_reach_kernel32(make_pointer: object) -> None:
    # Wine's kernel32 writes through the pointer for the own PID and would
    # crash the interpreter; reaching this line at all is part of the test.
    assert s.ProcessIdToSessionId(os.getpid(), make_pointer()) == 0  # type: ignore[operator]
    assert s.GetLastError() == 87


@pytest.mark.parametrize("ctype", ["int *", "unsigned short *", "char[4]", "void *"])
def test_wrongly_typed_out_pointers_never_reach_kernel32(ctype: str) -> None:
    pointer = s.ffi.new(ctype) if ctype != "void *" else s.ffi.cast("void *", 0x12345678)
    with pytest.raises(TypeError, match="DWORD"):
        s.ProcessIdToSessionId(os.getpid(), pointer)


def test_last_error_is_per_thread_under_load() -> None:
    """8 threads hammer the raw API with valid and invalid PIDs; each one's
    GetLastError always reflects its own last failure."""
    own, bad = os.getpid(), [0, 0xFFFFFFFC, 0x7FFFFFFC]
    wrong: list[str] = []

    def worker(index: int) -> None:
        out = s.ffi.new("DWORD *")
        expected = 0
        for step in range(2000):
            if (step + index) % 3:
                if not s.ProcessIdToSessionId(own, out):
                    wrong.append(f"own PID failed with {s.GetLastError()}")
            else:
                if s.ProcessIdToSessionId(bad[step % 3], out):
                    wrong.append("a missing PID answered")
                expected = 87
            if s.GetLastError() != expected:
                wrong.append(f"thread {index} saw last error {s.GetLastError()}, not {expected}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


@given(pid=st.integers(0, DWORD_MAX))
def test_agrees_with_pywin32_across_the_dword_range(pid: int) -> None:
    """The differential oracle: our binding and pywin32 give the same
    session or the same Win32 error for any PID."""
    assert our_answer(pid) == pywin32_answer(pid)


def test_agrees_with_pywin32_on_every_enumerated_process() -> None:
    import win32ts

    listed = win32ts.WTSEnumerateProcesses(None, 1, 0)
    assert listed, "WTSEnumerateProcesses listed nothing"
    for _session, pid, _name, _sid in listed:
        if pid:
            assert our_answer(pid) == pywin32_answer(pid), pid


NON_ANSI_IMAGE = "漢字.exe"  # outside the ANSI code page (cp1252 here)


def test_redirected_output_carries_an_image_name_outside_the_code_page(tmp_path: Path) -> None:
    # Issue 20: output to a file uses the ANSI code page, and one image name
    # outside it failed the whole table. A copy of this python.exe under a
    # non-ASCII name, its DLLs beside it, its library found by PYTHONHOME
    # (an installed CPython) or in the zip its ._pth names (the embeddable
    # one the Wine lane runs).
    base = Path(sys.base_prefix)
    for path in base.iterdir():
        if path.suffix.lower() in (".dll", ".zip", "._pth", ".pyd"):
            shutil.copy(path, tmp_path / path.name)
    image = tmp_path / NON_ANSI_IMAGE
    shutil.copy(Path(sys.base_prefix) / "python.exe", image)
    env = {**os.environ, "PYTHONHOME": sys.base_prefix}
    child = subprocess.Popen(
        [str(image), "-c", "import sys; print(flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert child.stdout is not None
        child.stdout.readline()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONIO", "PYTHONUTF8"))}
        env["PYTHONUTF8"] = "0"
        out = tmp_path / "table.txt"
        with out.open("wb") as file:
            done = subprocess.run(
                [sys.executable, "-m", "sessionid_cffi", "ps"],
                stdout=file,
                stderr=subprocess.PIPE,
                env=env,
                timeout=120,
            )
        assert (done.returncode, done.stderr) == (0, b"")
        rows = out.read_bytes().decode("mbcs").splitlines()
        [row] = [r for r in rows if r.split()[0] == str(child.pid)]
        assert row.endswith(" ??.exe")
        assert {str(os.getpid())} <= {r.split()[0] for r in rows[1:]}
        # JSON is ASCII and keeps the name.
        done = subprocess.run(
            [sys.executable, "-m", "sessionid_cffi", "--json", "ps", "-p", str(child.pid)],
            capture_output=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done
        assert json.loads(done.stdout)["processes"][0]["comm"] == NON_ANSI_IMAGE
    finally:
        child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


PLANTED = r"""
import ctypes, sys
kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
kernel32.SetDllDirectoryW.argtypes = [ctypes.c_wchar_p]
# A folder Windows searches before System32 for a DLL named without a path.
assert kernel32.SetDllDirectoryW(sys.argv[1])
import sessionid_cffi as s
records = s.process_records()
listed = s.sessions()
kernel32.GetModuleHandleW.restype = ctypes.c_void_p
kernel32.GetModuleHandleW.argtypes = [ctypes.c_wchar_p]
kernel32.GetModuleFileNameW.argtypes = [ctypes.c_void_p, ctypes.c_wchar_p, ctypes.c_uint]
for name in ("wtsapi32.dll", "advapi32.dll"):
    path = ctypes.create_unicode_buffer(1024)
    kernel32.GetModuleFileNameW(kernel32.GetModuleHandleW(name), path, 1024)
    print(path.value)
print(len(records), len(listed))
"""


def test_dlls_are_loaded_from_system32_not_from_a_searched_folder(tmp_path: Path) -> None:
    # Not a DLL at all: loading it by search would fail the listing.
    for name in ("wtsapi32.dll", "advapi32.dll"):
        (tmp_path / name).write_bytes(b"MZ planted, not a DLL")
    done = subprocess.run(
        [sys.executable, "-c", PLANTED, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    *paths, counts = done.stdout.splitlines()
    system32 = (
        s.get_backend().__module__
        and __import__("sessionid_cffi._kernel32", fromlist=["system_directory"]).system_directory()
    )
    assert [os.path.dirname(p).lower() for p in paths] == [system32.lower()] * 2
    assert all(int(n) > 0 for n in counts.split())


def test_each_session_of_a_listing_has_its_own_user() -> None:
    # Against pywin32 (written by others): on a quiet machine each session's
    # user in the listing is the one Windows reports for that session.
    import win32ts

    def user_of(session: int) -> str | None:
        return win32ts.WTSQuerySessionInformation(None, session, win32ts.WTSUserName) or None

    listed = s.sessions()
    assert listed
    for info in listed:
        assert info.user == user_of(info.session_id)
        assert info.verified is None  # Linux's notion: Windows cannot tell
    for record in s.process_records():
        assert record.login == user_of(record.session_id)


def changing_identities(changes: int) -> object:
    """The kernel32 backend, but each session's identity (user, logon time)
    changes on its first ``changes`` asks: a stand-in, since Wine cannot log
    a session off and another on under the same number while a listing
    runs. Everything else is the real API."""
    from sessionid_cffi._kernel32 import Kernel32Backend

    asks: dict[int, int] = {}

    class Changing(Kernel32Backend):
        def _identity(self, session: int) -> tuple[str | None, float | None]:
            count = asks[session] = asks.get(session, 0) + 1
            if count <= changes:
                return f"logon{count}", float(count)
            return super()._identity(session)

    return Changing()


def test_a_listing_is_taken_again_when_a_session_changes_meanwhile() -> None:
    import win32ts

    # Two asks change (one listing's before and after): the second listing is
    # consistent, and each user is the one Windows reports.
    with s.use_backend(changing_identities(2)):  # type: ignore[arg-type]
        for info in s.sessions():
            user = win32ts.WTSQuerySessionInformation(None, info.session_id, win32ts.WTSUserName)
            assert info.user == (user or None)


def test_a_session_that_keeps_changing_gets_no_user_rather_than_another_logons() -> None:
    with s.use_backend(changing_identities(100)):  # type: ignore[arg-type]
        listed = s.sessions()
        records = s.process_records()
    assert listed
    assert all((info.user, info.since) == (None, None) for info in listed)
    assert all(record.login is None for record in records)


# Issue 18: host, service and idle from WTSQuerySessionInformationW.


def wine_version() -> str | None:
    """Wine's version (ntdll's wine_get_version), None on Windows itself."""
    import ctypes

    ntdll = ctypes.WinDLL("ntdll")
    try:
        get = ntdll.wine_get_version
    except AttributeError:
        return None
    get.restype = ctypes.c_char_p
    return str(get().decode())


def kernel32_backend() -> object:
    from sessionid_cffi._kernel32 import Kernel32Backend

    return Kernel32Backend()


def test_wine_answers_exactly_these_session_classes() -> None:
    """What Wine 8's wtsapi32 answers (read in its source, measured here):
    the user and domain names and a protocol type of 0 for any session,
    nothing for the client address and name, the connect state, the
    WinStation name or WTSSessionInfo. Asserted exactly, so this fails once
    Wine answers more (newer Wine answers WTSConnectState): then the
    host/service/idle test below can check real values."""
    version = wine_version()
    if version is None:
        pytest.skip("Windows itself: the Wine answers do not apply")
    import ctypes

    backend = kernel32_backend()
    wts = backend._dll("wtsapi32.dll")  # type: ignore[attr-defined]
    size = ctypes.c_ulong(257)
    name = ctypes.create_unicode_buffer(257)
    assert ctypes.WinDLL("advapi32").GetUserNameW(name, ctypes.byref(size))
    computer = ctypes.create_unicode_buffer(64)
    size = ctypes.c_ulong(64)
    assert ctypes.WinDLL("kernel32").GetComputerNameW(computer, ctypes.byref(size))
    expected = {
        "WTSUserName": (name.value + "\0").encode("utf-16-le"),
        "WTSDomainName": (computer.value + "\0").encode("utf-16-le"),
        "WTSClientProtocolType": b"\0\0",
        "WTSConnectState": None,
        "WTSWinStationName": None,
        "WTSClientName": None,
        "WTSClientAddress": None,
        "WTSSessionInfo": None,
    }
    for session in (s.current_session_id(), 0, 7):
        answers = {cls: backend._query(session, getattr(wts, cls)) for cls in expected}  # type: ignore[attr-defined]
        assert answers == expected, f"Wine {version} answers differently for session {session}"


def test_sessions_fill_host_service_and_idle_from_what_windows_answers() -> None:
    """Each listed session's host, service and idle against what Windows
    says of it through pywin32 (written by others); under Wine 8 every
    class they come from goes unanswered, so all three are None."""
    import pywintypes
    import win32ts

    def ask(session: int, cls: int) -> object:
        try:
            return win32ts.WTSQuerySessionInformation(None, session, cls)
        except pywintypes.error:
            return None

    listed = s.sessions()
    assert listed
    for info in listed:
        address = ask(info.session_id, win32ts.WTSClientAddress)
        name = ask(info.session_id, win32ts.WTSClientName)
        if wine_version() is not None:
            assert (address, name) == (None, None)
            assert (info.host, info.service, info.idle) == (None, None, None), info
            continue
        if not address and not name:
            assert info.host is None
        assert info.service in (None, "console", "services", "rdp") or info.service.islower()
        assert info.idle is None or info.idle >= 0


@pytest.mark.parametrize(
    ("station", "service"),
    [
        ("Console", "console"),
        ("Services", "services"),
        ("RDP-Tcp#0", "rdp"),
        ("RDP-Tcp#12", "rdp"),
        ("ICA-tcp#3", "ica-tcp"),
        ("", None),
        (None, None),
    ],
)
def test_service_comes_from_the_station_name(station: str | None, service: str | None) -> None:
    from sessionid_cffi._kernel32 import station_service

    assert station_service(station) == service


class StandInWts:
    """wtsapi32 answering WTSQuerySessionInformationW with chosen bytes and
    sizes: a stand-in for bad answers (NULL buffer, short or huge sizes) that
    the real API cannot be made to give. It records every buffer it hands
    out and every WTSFreeMemory, so a test sees each answer freed once."""

    def __init__(self, answers: dict[int, tuple[bytes | None, int]], real: object) -> None:
        self.answers = answers
        self.real = real
        self.handed: list[int] = []
        self.freed: list[int] = []
        self.keep: list[object] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)  # enum constants, WTSEnumerate*

    def WTSQuerySessionInformationW(
        self, server: object, session: int, cls: int, buffer: object, size: object
    ) -> int:
        if cls not in self.answers:
            return 0
        data, claimed = self.answers[cls]
        if data is None:
            buffer[0] = s.ffi.NULL  # type: ignore[index]
        else:
            block = s.ffi.new("char[]", max(len(data), 1))
            s.ffi.memmove(block, data, len(data))
            self.keep.append(block)
            buffer[0] = s.ffi.cast("LPWSTR", block)  # type: ignore[index]
            self.handed.append(int(s.ffi.cast("uintptr_t", block)))
        size[0] = claimed  # type: ignore[index]
        return 1

    def WTSFreeMemory(self, pointer: object) -> None:
        self.freed.append(int(s.ffi.cast("uintptr_t", pointer)))


def with_answers(answers: dict[str, tuple[bytes | None, int]]) -> tuple[object, StandInWts]:
    backend = kernel32_backend()
    real = backend._dll("wtsapi32.dll")  # type: ignore[attr-defined]
    stand_in = StandInWts({getattr(real, k): v for k, v in answers.items()}, real)
    backend._dlls["wtsapi32.dll"] = stand_in  # type: ignore[attr-defined]
    return backend, stand_in


def wtsinfo(last_input: int, current: int, logon: int, state: int = 0) -> bytes:
    info = s.ffi.new("WTSINFOW *")
    info.State = state
    info.LastInputTime, info.CurrentTime, info.LogonTime = last_input, current, logon
    return bytes(s.ffi.buffer(info))


def client_address(family: int, address: bytes) -> bytes:
    value = s.ffi.new("WTS_CLIENT_ADDRESS *")
    value.AddressFamily = family
    value.Address = address.ljust(20, b"\0")
    return bytes(s.ffi.buffer(value))


TICKS = 10_000_000  # FILETIME ticks a second
LOGON = (1_700_000_000 + 11644473600) * TICKS  # 2023-11-14 22:13:20 UTC


def test_well_formed_answers_give_host_idle_and_logon_time() -> None:
    backend, wts = with_answers(
        {
            "WTSSessionInfo": (wtsinfo(LOGON + 5 * TICKS, LOGON + 95 * TICKS, LOGON), 216),
            "WTSConnectState": (b"\0\0\0\0", 4),  # WTSActive
            "WTSClientAddress": (client_address(2, b"\0\0\xc0\xa8\x00\x01"), 24),
        }
    )
    assert s.ffi.sizeof("WTSINFOW") == 216
    assert backend.session_host(1) == "192.168.0.1"  # type: ignore[attr-defined]
    assert backend.session_idle(1) == 90.0  # type: ignore[attr-defined]
    assert backend.logon_time(1) == 1_700_000_000  # type: ignore[attr-defined]
    assert wts.handed
    assert sorted(wts.freed) == sorted(wts.handed)


def test_ipv6_client_and_a_client_name_without_an_address() -> None:
    ipv6 = b"\xff\xff" + b"\0" * 13 + b"\x01"
    backend, _ = with_answers({"WTSClientAddress": (client_address(23, ipv6), 24)})
    assert backend.session_host(2) == "ffff::1"  # type: ignore[attr-defined]
    backend, _ = with_answers(
        {
            "WTSClientAddress": (client_address(0, b""), 24),  # AF_UNSPEC: local
            "WTSClientName": ("LAPTOP-7\0".encode("utf-16-le"), 18),
        }
    )
    assert backend.session_host(2) == "LAPTOP-7"  # type: ignore[attr-defined]


def test_a_disconnected_session_has_no_idle_time() -> None:
    backend, _ = with_answers(
        {
            "WTSSessionInfo": (wtsinfo(LOGON, LOGON + 60 * TICKS, LOGON), 216),
            "WTSConnectState": ((4).to_bytes(4, "little"), 4),  # WTSDisconnected
        }
    )
    assert backend.session_idle(3) is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "answer",
    [
        (None, 216),  # TRUE with a NULL buffer
        (b"", 0),  # TRUE with no bytes
        (b"\1" * 3, 3),  # shorter than any of the structures
        (b"\1" * 215, 215),  # one byte short of WTSINFOW
        (b"\xff" * 16, 1 << 31),  # a size far beyond what it holds
    ],
    ids=["NULL", "empty", "3 bytes", "215 bytes", "huge size"],
)
def test_bad_answers_give_none_and_are_freed(answer: tuple[bytes | None, int]) -> None:
    classes = ["WTSSessionInfo", "WTSConnectState", "WTSClientAddress"]
    data, size = answer
    if data is None or not 0 < size <= len(data):
        classes.append("WTSClientName")  # short bytes are a short name: only these are bad
    backend, wts = with_answers(dict.fromkeys(classes, answer))
    assert backend.session_host(1) is None  # type: ignore[attr-defined]
    assert backend.session_idle(1) is None  # type: ignore[attr-defined]
    assert backend.logon_time(1) is None  # type: ignore[attr-defined]
    assert sorted(wts.freed) == sorted(wts.handed)


def test_an_odd_sized_name_without_its_nul_ends_at_the_size() -> None:
    # 7 bytes: three UTF-16 characters and half of a fourth, no NUL.
    backend, _ = with_answers({"WTSUserName": ("abcd".encode("utf-16-le")[:7] + b"XYZ", 7)})
    assert backend.session_user(1) == "abc"  # type: ignore[attr-defined]
