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
