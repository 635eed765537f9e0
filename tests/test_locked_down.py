"""Locked-down /proc: C6's mapping holds and nothing more is revealed than
procfs allows; with no procfs at all, a clear error at call time.

Each scene runs in a private mount namespace (``unshare -m``, root), so the
machine's own /proc is never touched. There, procfs is mounted with
``hidepid=1``/``noaccess`` (other users' processes are listed but their
files denied) or ``hidepid=2``/``invisible`` (they are not there at all),
and a child that dropped to user nobody queries root's processes through
``ProcfsBackend(proc_root=<that mount>, live=True)``: 5 where procfs denies,
87 where it hides, and the bulk walk lists none of root's processes. The
same child reads the files directly, so the test compares the library with
what procfs itself lets nobody see.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs_root

pytestmark = needs_root

SCENE = r"""
import errno, json, os, sys, tempfile, threading, subprocess
option = sys.argv[1]
import sessionid_cffi as s
from sessionid_cffi import SessionIdError, ffi, use_backend
from sessionid_cffi.emulation.procfs import ProcfsBackend
import sessionid_cffi.lowlevel  # everything imported while still root

mount = tempfile.mkdtemp(prefix="procmount-")
os.chmod(mount, 0o755)
subprocess.run(["mount", "-t", "proc", "-o", option, "proc", mount], check=True)
root_pid = os.getpid()
hold = threading.Event()
thread = threading.Thread(target=hold.wait)
thread.start()
root_tid = thread.native_id
read_end, write_end = os.pipe()
child = os.fork()
if child == 0:
    os.close(read_end)
    result = {}
    try:
        os.setgroups([]); os.setgid(65534); os.setuid(65534)
        backend = ProcfsBackend(proc_root=mount, live=True)
        def answer(pid):
            try:
                return backend.session_id(pid)
            except SessionIdError as err:
                return [type(err).__name__, err.winerror, err.errno]
        def direct(pid):
            try:
                with open(f"{mount}/{pid}/sessionid", "rb") as f:
                    return int(f.read())
            except OSError as err:
                return errno.errorcode[err.errno]
        targets = {"root": root_pid, "root_thread": root_tid, "init": 1, "self": os.getpid()}
        result["answers"] = {k: answer(p) for k, p in targets.items()}
        result["direct"] = {k: direct(p) for k, p in targets.items()}
        result["targets"] = targets
        result["listed"] = sorted(int(n) for n in os.listdir(mount) if n.isdigit())
        result["bulk"] = {str(k): v for k, v in backend.session_ids(None).items()}
        result["bulk_list"] = {str(k): v for k, v in
                               backend.session_ids([root_pid, 1, root_tid, os.getpid()]).items()}
        with use_backend(backend):
            raw = {}
            for k, p in targets.items():
                out = ffi.new("DWORD *", 0xDEADBEEF)
                raw[k] = [s.ProcessIdToSessionId(p, out), s.GetLastError(), int(out[0])]
            result["raw"] = raw
        result["uid"] = os.getuid()
    except BaseException as err:
        result["crash"] = f"{type(err).__name__}: {err}"
    os.write(write_end, json.dumps(result).encode())
    os._exit(0)
os.close(write_end)
data = b""
while chunk := os.read(read_end, 65536):
    data += chunk
os.waitpid(child, 0)
hold.set(); thread.join()
subprocess.run(["umount", mount], check=True)
os.rmdir(mount)
print(data.decode())
"""

NO_PROCFS = r"""
import json, os, io, contextlib
result = {"mounted": os.path.exists("/proc/self")}
import sessionid_cffi as s  # must import without procfs
from sessionid_cffi import BackendUnavailableError, ffi
def outcome(call):
    try:
        return ["ok", call()]
    except BackendUnavailableError as err:
        return ["BackendUnavailableError", err.winerror, str(err)]
    except Exception as err:
        return [type(err).__name__, str(err)]
result["current"] = outcome(s.current_session_id)
result["pid1"] = outcome(lambda: s.process_id_to_session_id(1))
result["bulk"] = outcome(s.session_ids)
out = ffi.new("DWORD *", 0xDEADBEEF)
result["raw"] = outcome(lambda: [s.ProcessIdToSessionId(1, out), s.GetLastError(), int(out[0])])
from sessionid_cffi._cli import main
err = io.StringIO()
with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    try:
        code = main([])
    except SystemExit as exit_:
        code = exit_.code
result["cli"] = [code, err.getvalue()]
print(json.dumps(result))
"""


def in_namespace(*command: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) from util-linux")
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", *command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode and "unshare failed" in done.stderr:
        pytest.skip(f"no private mount namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize(
    ("option", "mode"),
    [
        ("hidepid=1", "denies"),
        ("hidepid=noaccess", "denies"),
        ("hidepid=2", "hides"),
        ("hidepid=invisible", "hides"),
    ],
)
def test_a_locked_down_procfs_reveals_nothing_more_than_it_allows(option: str, mode: str) -> None:
    done = in_namespace(sys.executable, "-c", SCENE, option)
    result = json.loads(done.stdout)
    assert "crash" not in result, result
    assert result["uid"] == 65534
    targets, answers, direct = result["targets"], result["answers"], result["direct"]
    others = ("root", "root_thread", "init")
    # What procfs itself lets nobody see ...
    expected_errno = {"denies": ("EPERM", "EACCES"), "hides": ("ENOENT",)}[mode]
    for key in others:
        assert direct[key] in expected_errno, (key, direct)
    # ... is all the library reveals: 5 where procfs denies, 87 where it hides.
    name, winerror = {"denies": ("AccessDeniedError", 5), "hides": ("ProcessNotFoundError", 87)}[
        mode
    ]
    for key in ("root", "init"):
        assert answers[key][:2] == [name, winerror], (key, answers)
        assert result["raw"][key] == [0, winerror, 0xDEADBEEF], (key, result["raw"])
    # A thread of root's process is no process (C4), denied files or not:
    # the thread check (pidfd_open) is no procfs file, so hidepid cannot turn it into 5.
    assert answers["root_thread"][:2] == ["ProcessNotFoundError", 87], answers
    assert result["raw"]["root_thread"] == [0, 87, 0xDEADBEEF], result["raw"]
    # nobody's own process answers, as procfs lets it read its own file.
    assert answers["self"] == direct["self"] or (
        direct["self"] == 2**32 - 1 and answers["self"] == 0
    )
    # The bulk calls list none of root's processes.
    bulk = {int(k) for k in result["bulk"]}
    assert targets["root"] not in bulk
    assert 1 not in bulk
    assert bulk <= {targets["self"]}, bulk
    assert {int(k) for k in result["bulk_list"]} == {targets["self"]}
    if mode == "hides":
        assert targets["root"] not in result["listed"]
    else:
        assert targets["root"] in result["listed"]  # listed by procfs, still not revealed


def test_no_procfs_at_all_is_a_clear_error_at_call_time() -> None:
    done = in_namespace(
        "sh", "-c", 'umount -l /proc && exec "$0" -c "$1"', sys.executable, NO_PROCFS
    )
    result = json.loads(done.stdout)
    assert result["mounted"] is False
    for key in ("current", "pid1", "bulk"):
        kind, winerror, message = result[key]
        assert (kind, winerror) == ("BackendUnavailableError", 50), result[key]
        assert "procfs" in message or "/proc" in message
    assert result["raw"] == ["ok", [0, 50, 0xDEADBEEF]]
    code, stderr = result["cli"]
    assert code == 2
    assert len(stderr.splitlines()) == 1
    assert stderr.startswith("sessionid: ")
    assert os.path.exists("/proc/self")  # the machine's own /proc was never touched


# -- the install locked away after import ------------------------------------------
DROP = r"""
import json, os, sys
open("/proc/self/loginuid", "w").write("1000")  # a login: a session other than 0
import sessionid_cffi as s
def truth(pid):
    raw = int(open(f"/proc/{pid}/sessionid").read())
    return 0 if raw == 2**32 - 1 else raw
own, parent = os.getpid(), os.getppid()
result = {"own_truth": truth(own), "parent_truth": truth(parent)}
mode = sys.argv[1]
if mode == "chroot":
    os.chroot(sys.argv[2])
    os.chdir("/")
os.setgroups([]); os.setgid(65534); os.setuid(65534)
try:
    open(s.__file__, "rb").close()
    result["install_readable"] = True
except OSError:
    result["install_readable"] = False
if mode == "env":  # a backend whose module was not loaded at import
    os.environ["SESSIONID_CFFI_BACKEND"] = "model"
def outcome(call):
    try:
        return ["ok", call()]
    except s.SessionIdError as err:
        return [type(err).__name__, err.winerror, str(err)]
    except BaseException as err:
        return [type(err).__name__, None, str(err)]
result["current"] = outcome(s.current_session_id)
result["parent"] = outcome(lambda: s.process_id_to_session_id(parent))
result["bulk"] = outcome(lambda: s.session_ids([own, parent]))
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def private_install(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The library installed in a venv inside a 0700 root-owned home (as a
    venv in /root is): only root can read it. Returns the venv's python."""
    import sessionid_cffi.emulation

    home = tmp_path_factory.mktemp("home")
    home.chmod(0o700)
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / "lib" / version / "site-packages"
    ignore = shutil.ignore_patterns("__pycache__")
    # The wheel's layout: emulation/ ships as sessionid_cffi.emulation.
    package = site / "sessionid_cffi"
    shutil.copytree(os.path.dirname(sessionid_cffi.__file__), package, ignore=ignore)
    if not (package / "emulation").exists():  # an editable install keeps it apart
        shutil.copytree(
            os.path.dirname(sessionid_cffi.emulation.__file__), package / "emulation", ignore=ignore
        )
    return str(venv / "bin" / "python")


def drop_after_import(python: str, mode: str, jail: str = "") -> dict[str, object]:
    done = subprocess.run(
        [python, "-I", "-c", DROP, mode, jail],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    assert result["install_readable"] is False  # the scene is real: nobody cannot read it
    return result


def test_dropping_to_nobody_after_import_still_answers(private_install: str) -> None:
    result = drop_after_import(private_install, "drop")
    own, parent = result["own_truth"], result["parent_truth"]
    assert own != 0
    assert result["current"] == ["ok", own]
    assert result["parent"] == ["ok", parent]
    assert result["bulk"][0] == "ok", result["bulk"]
    assert sorted(result["bulk"][1].values()) == sorted([own, parent])  # type: ignore[index]


def test_chroot_after_import_is_a_library_error(private_install: str, tmp_path: Path) -> None:
    jail = tmp_path / "jail"
    jail.mkdir(mode=0o755)
    result = drop_after_import(private_install, "chroot", str(jail))
    for key in ("current", "parent", "bulk"):
        # No procfs in the jail: said by the library, not by the import system.
        assert result[key][:2] == ["BackendUnavailableError", 50], (key, result[key])


def test_a_backend_module_unreadable_at_first_use_is_a_library_error(
    private_install: str,
) -> None:
    result = drop_after_import(private_install, "env")
    for key in ("current", "parent", "bulk"):
        kind, winerror, message = result[key]  # type: ignore[misc]
        assert (kind, winerror) == ("BackendUnavailableError", 50), (key, result[key])
        assert "cannot load" in message
