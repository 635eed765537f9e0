"""Process forests: real processes that report their own truth, and obey.

``RealForest`` builds trees of real processes. Every process of a forest is
an *agent*: a small stdlib-only Python child (``AGENT`` below) that connects
back to the forest over a loopback TCP socket, reports its own ground truth
(its PID, its parent's PID, the session it reads about itself: Linux
``/proc/self/sessionid``, Windows kernel32 through ctypes) and then obeys
commands: spawn a child agent (directly, or through an intermediary that
exits at once, so that the child is an orphan), start a new login (Linux:
write a uid to ``/proc/self/loginuid``), ``setsid``, ignore SIGHUP (as
``nohup``), start a thread (reporting the thread's own native id), exit,
wait for a child's exit without reaping it, reap a child.

``SimForest`` has the same interface with simulated processes: it runs
anywhere (the project's model-only state machine uses it).

Both keep a ``Proc`` record per process. ``expected_model`` turns the
records into the ModelBackend that must answer like the backend under test.

One piece of machinery for the kit (``check_contract``'s generated live
world, ``_generated.py``) and the project's differential and state-machine
tests. No Linux-only API is touched at import time: it runs on Windows too.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from .. import SessionIdError, get_backend
from ..emulation.model import ModelBackend
from ._processes import has_exited, process_started_at, start_process, wait_until_gone

WINDOWS = sys.platform == "win32"
LINUX = sys.platform.startswith("linux")
AUDIT_UNSET = 0xFFFFFFFF
#: Seconds an agent lives at most, whatever happens to the test process.
AGENT_LIFETIME = 180
#: Seconds to wait for any one reply of an agent.
REPLY_TIMEOUT = 60

# Counters of what the forest tests exercised in this pytest process.
STATS: dict[str, int] = {
    "forests": 0,
    "machine_runs": 0,
    "simulated_runs": 0,
    "processes": 0,
    "logins": 0,
    "threads": 0,
    "exited": 0,
    "reaped": 0,
    "queries": 0,
    "held_elsewhere": 0,
    "orphans": 0,
    "setsid": 0,
}

# The agent: stdlib only, Linux and Windows. It is passed to every child in
# the environment (children inherit it) and started with BOOT.
AGENT = r'''
import json, os, socket, subprocess, sys, threading
WINDOWS = sys.platform == "win32"
host, port, node = sys.argv[1], int(sys.argv[2]), sys.argv[3]
killer = threading.Timer(float(os.environ["SESSIONID_FOREST_LIFETIME"]), os._exit, (3,))
killer.daemon = True
killer.start()

def own_session():
    """The session this process reads about itself (raw, before any mapping)."""
    if WINDOWS:
        import ctypes
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        out = ctypes.c_uint32()
        if not kernel32.ProcessIdToSessionId(kernel32.GetCurrentProcessId(), ctypes.byref(out)):
            raise OSError(ctypes.get_last_error(), "ProcessIdToSessionId(own PID)")
        return out.value
    with open("/proc/self/sessionid") as file:
        return int(file.read())

sock = socket.create_connection((host, port))
reader = sock.makefile("r", encoding="utf-8")
def send(**message):
    sock.sendall((json.dumps(message) + "\n").encode())

children = {}
INTERMEDIARY = (
    "import os, subprocess, sys; subprocess.Popen([sys.executable, '-S', '-c', "
    "os.environ['SESSIONID_FOREST_BOOT']] + sys.argv[1:], stdin=subprocess.DEVNULL); "
    "os._exit(0)"
)
# os.getppid() is not asked on Windows: CPython 3.11/3.12 answer it with
# PssCaptureSnapshot, which Wine 8 lacks (the process aborts).
send(node=node, pid=os.getpid(), ppid=None if WINDOWS else os.getppid(), session=own_session())
for line in reader:
    command = json.loads(line)
    op = command["op"]
    try:
        if op == "spawn":
            # detach: through an intermediary that exits at once (an orphan).
            code = INTERMEDIARY if command.get("detach") else os.environ["SESSIONID_FOREST_BOOT"]
            for attempt in (1, 2, 3):  # as sessionid_cffi.testing._processes.start_process
                try:
                    child = subprocess.Popen(
                        [sys.executable, "-S", "-c", code, host, str(port), command["node"]],
                        stdin=subprocess.DEVNULL,
                    )
                    break
                except OSError as err:
                    if getattr(err, "winerror", None) != 1359 or attempt == 3:
                        raise
            if command.get("detach"):
                child.wait()
                send(pid=None)
            else:
                children[child.pid] = child
                send(pid=child.pid)
        elif op == "setsid":
            send(sid=os.setsid())
        elif op == "nohup":
            import signal
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            send(nohup=True)
        elif op == "login":
            with open("/proc/self/loginuid", "w") as file:
                file.write(str(command["uid"]))
            with open("/proc/self/loginuid") as file:
                loginuid = int(file.read())
            send(session=own_session(), loginuid=loginuid)
        elif op == "thread":
            started = threading.Event()
            box = []
            def run():
                box.append(threading.get_native_id())
                started.set()
                threading.Event().wait()
            threading.Thread(target=run, daemon=True).start()
            started.wait()
            send(tid=box[0])
        elif op == "exit":
            send(bye=os.getpid())
            sock.close()
            os._exit(0)
        elif op == "wait_exit":
            pid = command["pid"]
            if WINDOWS:
                children[pid].wait()  # the Popen object keeps the handle open
            else:
                os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            send(exited=pid)
        elif op == "reap":
            pid = command["pid"]
            child = children.pop(pid)
            child.wait()
            if WINDOWS:
                child._handle.Close()
            send(reaped=pid)
        else:
            send(error="unknown op " + op)
    except Exception as err:
        send(error=repr(err))
os._exit(0)
'''
BOOT = "import os; exec(os.environ['SESSIONID_FOREST_AGENT'])"
#: Starts an agent and exits at once: the agent is an orphan from birth.
INTERMEDIARY = (
    "import os, subprocess, sys; subprocess.Popen([sys.executable, '-S', '-c', "
    "os.environ['SESSIONID_FOREST_BOOT']] + sys.argv[1:], stdin=subprocess.DEVNULL); "
    "os._exit(0)"
)


class ForestError(RuntimeError):
    """The harness could not build the forest (not a finding about a backend)."""


@dataclass(eq=False)
class Proc:
    """One process of a forest and what it reported about itself."""

    node: str
    pid: int
    parent: Proc | None
    #: The session the process read about itself, mapped like the contract
    #: maps it (Linux: unset 4294967295 is session 0).
    session: int
    state: str = "alive"  # "alive", "exited" (zombie / held by a handle), "gone"
    tids: list[int] = field(default_factory=list)
    logins: int = 0
    conn: socket.socket | None = None
    reader: IO[str] | None = None
    popen: subprocess.Popen[bytes] | None = None
    #: Started through an intermediary that exited: an orphan from birth,
    #: adopted by the forest's owner (the subreaper) on Linux.
    orphan: bool = False
    #: Whether this process or an ancestor of it set a loginuid (then,
    #: without CAP_AUDIT_CONTROL, it cannot start a login of its own).
    login_set: bool = False
    #: process_started_at() while it ran: tells it from a later process
    #: that reuses its PID.
    started_at: int | None = None
    #: Set by close() when the process had exited and we had let it go, but
    #: another process still held it (Windows): who, for the record.
    held_by: str | None = None

    def still_exists(self) -> bool:
        """Whether this very process still exists (a newcomer on its PID does not count)."""
        now = process_started_at(self.pid)
        return now is not None and now == self.started_at

    def __repr__(self) -> str:
        parent = self.parent.node if self.parent else "-"
        return f"<{self.node} pid={self.pid} parent={parent} s={self.session} {self.state}>"


def mapped(raw: int) -> int:
    """The Linux emulation's documented mapping: unset audit session is 0."""
    return 0 if raw == AUDIT_UNSET else raw


def own_raw_session() -> int:
    """The session the test process reads about itself (ground truth)."""
    # Windows only: judged by the Wine lane, not by the mutation gate on Linux.
    # pragma: no mutate start
    if WINDOWS:
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
        out = ctypes.c_uint32()
        if not kernel32.ProcessIdToSessionId(kernel32.GetCurrentProcessId(), ctypes.byref(out)):
            raise OSError(ctypes.get_last_error(), "ProcessIdToSessionId")  # type: ignore[attr-defined,unused-ignore]
        return int(out.value)
    # pragma: no mutate end
    with open("/proc/self/sessionid") as file:
        return int(file.read())


_CAN_LOGIN: bool | None = None


def agent_python() -> str:
    """The Python the agents run on: this one where the caller may run it,
    else a ``python3`` on PATH (the agent is stdlib-only: any Python 3
    runs it; a caller that dropped to user nobody may not enter the home
    folder its own interpreter lives in)."""
    import shutil

    if os.access(sys.executable, os.X_OK):
        return sys.executable
    return shutil.which("python3") or sys.executable


def login_uid() -> int:
    """The uid a child writes to start a login: root may write any (4242);
    anyone else only its own, once, while its loginuid is unset."""
    return 4242 if os.geteuid() == 0 else os.getuid()


def can_login() -> bool:
    """Whether a child may start a new audit login here (Linux, audit
    sessions present, loginuid writable: root, or a caller whose loginuid
    is unset); tried once in a throwaway child."""
    global _CAN_LOGIN
    if _CAN_LOGIN is None:
        _CAN_LOGIN = False
        if LINUX and os.path.exists("/proc/self/sessionid"):
            # In a with block: a refused write fails at close, which a bare
            # open().write() would leave to the exit, ignored (exit status 0).
            code = f"with open('/proc/self/loginuid', 'w') as f: f.write('{login_uid()}')"
            probe = subprocess.run(
                [agent_python(), "-S", "-c", code], capture_output=True, timeout=60
            )
            _CAN_LOGIN = probe.returncode == 0
    return _CAN_LOGIN


def root_may_login() -> bool:
    """Whether any process may start a login however its ancestors logged
    in (root: CAP_AUDIT_CONTROL); else only where no loginuid is set yet."""
    return LINUX and os.geteuid() == 0


def _own_login_set() -> bool:
    """Whether the caller's loginuid is set (Linux)."""
    try:
        with open("/proc/self/loginuid") as file:
            return int(file.read()) != AUDIT_UNSET
    except (OSError, ValueError):
        return True


def _set_subreaper(on: bool) -> None:
    """Linux: make orphaned descendants our children (and keep them unreaped),
    so a zombie whose parent exited stays a zombie instead of being reaped
    by whatever PID 1 is."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, int(on), 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def names_process(pid: int) -> bool:
    """Whether ``pid`` names a process or a thread now, asked of the OS
    without the library: Linux looks for ``/proc/<pid>`` (thread ids have one
    too); Windows opens the process (a thread id fails with 87)."""
    # Windows only: judged by the Wine lane, not by the mutation gate on Linux.
    # pragma: no mutate start
    if WINDOWS:
        import _winapi

        try:
            handle = _winapi.OpenProcess(0x00100000, False, pid)  # type: ignore[attr-defined,unused-ignore]  # SYNCHRONIZE
        except OSError as err:
            return getattr(err, "winerror", None) != 87
        _winapi.CloseHandle(handle)  # type: ignore[attr-defined,unused-ignore]
        return True
    # pragma: no mutate end
    return os.path.exists(f"/proc/{pid}")


class Forest:
    """What both forests share: records of processes and the expected model."""

    aliasing = WINDOWS
    #: Real processes (counted in STATS) or simulated ones.
    real = False
    #: Windows: an exited process is held only by its parent's handle, so
    #: when the parent exits too the child is gone. Linux: zombies of an
    #: exited parent are adopted (by us, a subreaper) and stay zombies.
    parent_exit_releases_children = WINDOWS
    #: Windows: an orphan cannot be made to exit and be held (nobody has
    #: its handle), so rules only exit processes whose parent is alive.
    orphans_may_exit = not WINDOWS

    def __init__(self) -> None:
        self.procs: list[Proc] = []
        self.self_pid = os.getpid()
        self.self_session = 0
        self._next = 0

    def _name(self) -> str:
        self._next += 1
        return f"n{self._next}"

    # -- the oracle -------------------------------------------------------
    def expected_model(self) -> ModelBackend:
        """A ModelBackend holding exactly what the forest's processes reported."""
        table = {self.self_pid: self.self_session}
        table.update({p.pid: p.session for p in self.procs if p.state != "gone"})
        threads = {t for p in self.procs if p.state == "alive" for t in p.tids}
        zombies = [p.pid for p in self.procs if p.state == "exited"]
        return ModelBackend(table, threads=threads, zombies=zombies, aliasing=self.aliasing)

    def pids_to_check(self, extra: Iterable[int] = ()) -> list[int]:
        """Forest PIDs (alive, exited, gone), their neighbours PID+1..+3,
        thread ids (also of exited processes) and ``extra`` PIDs; PIDs that
        are none of ours are kept only if they name nothing now."""
        ours = {self.self_pid} | {p.pid for p in self.procs}
        tids = {t for p in self.procs for t in p.tids}
        pids = set(ours) | tids
        for pid in sorted(ours):
            pids.update(pid + n for n in (1, 2, 3))
        pids.update(extra)
        known = ours | tids
        checked = []
        for pid in sorted(pid for pid in pids if 0 <= pid <= 0xFFFFFFFF):
            mine = pid in known or (self.aliasing and (pid & ~3) in known)
            if mine or not self.names_process(pid):
                checked.append(pid)
        return checked

    def names_process(self, pid: int) -> bool:
        return names_process(pid)

    def find(self, pid: int) -> Proc | None:
        return next((p for p in self.procs if p.pid == pid), None)

    def describe(self) -> str:
        lines = [f"test process pid={self.self_pid} session={self.self_session}"]
        for p in self.procs:
            depth = 0
            up = p.parent
            while up is not None:
                depth, up = depth + 1, up.parent
            extra = f" tids={p.tids}" if p.tids else ""
            extra += f" logins={p.logins}" if p.logins else ""
            lines.append("  " * (depth + 1) + repr(p) + extra)
        return "\n".join(lines)

    def _after_exit(self, proc: Proc) -> None:
        proc.state = "exited"
        if self.parent_exit_releases_children:
            for child in self.procs:
                if child.parent is proc and child.state == "exited":
                    child.state = "gone"


def answer(backend: Any, pid: int) -> tuple[str, int]:
    """("ok", session) or ("error", winerror); anything else propagates."""
    try:
        return ("ok", backend.session_id(pid))
    except SessionIdError as err:
        return ("error", err.winerror)


def compare(live: Any, model: ModelBackend, pids: Iterable[int], forest: Forest) -> list[str]:
    """Every PID on which ``live`` and ``model`` disagree, explained.

    A PID the model calls missing but the live backend answers is forgiven
    only if the OS now shows a stranger under it: not a process of the
    forest that still exists, not a thread of ours (the PID was reused).
    """
    pids = list(pids)
    ours = {p.pid for p in forest.procs if p.state != "gone"} | {forest.self_pid}
    our_tids = {t for p in forest.procs if p.state == "alive" for t in p.tids}
    mismatches, forgiven = [], set()

    def stranger(pid: int) -> bool:
        """A PID the OS now shows under a process that is none of ours."""
        owner = pid & ~3 if forest.aliasing else pid
        return owner not in ours and owner not in our_tids and forest.names_process(owner)

    for pid in pids:
        STATS["queries"] += forest.real
        got, want = answer(live, pid), answer(model, pid)
        if got == want:
            continue
        owner = pid & ~3 if forest.aliasing else pid
        if want == ("error", 87) and got[0] == "ok" and stranger(pid):
            forgiven.add(pid)
            continue
        proc = forest.find(owner)
        who = repr(proc) if proc else "a thread id" if owner in our_tids else "not a forest PID"
        mismatches.append(f"PID {pid} ({who}): live {got}, model {want}")
    live_bulk = live.session_ids(pids)
    model_bulk = model.session_ids(pids)
    for pid in sorted((set(live_bulk) | set(model_bulk)) - forgiven):
        if pid not in model_bulk and stranger(pid):
            continue  # a stranger started on a free PID after the single queries
        if live_bulk.get(pid) != model_bulk.get(pid):
            mismatches.append(
                f"session_ids(): PID {pid} live {live_bulk.get(pid)}, model {model_bulk.get(pid)}"
            )
    return mismatches


# Real agent processes over sockets: judged by the live suites (test_differential,
# test_state_machine, test_contract), not by the mutation gate (docs/reliability.md).
# pragma: no mutate start
class RealForest(Forest):
    """A forest of real agent processes (see the module docstring)."""

    real = True
    #: Windows: seconds close() waits for a released process to be gone
    #: before it asks who keeps it.
    release_timeout = 10.0

    def __init__(self) -> None:
        super().__init__()
        self.backend = get_backend()
        self.self_session = mapped(own_raw_session())
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(REPLY_TIMEOUT)
        self._port = self._listener.getsockname()[1]
        self._env = dict(
            os.environ,
            SESSIONID_FOREST_AGENT=AGENT,
            SESSIONID_FOREST_BOOT=BOOT,
            SESSIONID_FOREST_LIFETIME=str(AGENT_LIFETIME),
        )
        self._subreaper = False
        if LINUX:
            _set_subreaper(True)
            self._subreaper = True
        STATS["forests"] += 1

    # -- talking to agents --------------------------------------------------
    def holders(self, proc: Proc) -> str:
        """Who holds an exited ``proc`` (Windows); the project's tests
        override it with a walker of the system's handle table."""
        return "held by some other process"

    def _ask(self, proc: Proc, **command: object) -> dict[str, Any]:
        if proc.conn is None or proc.reader is None or proc.state != "alive":
            raise ForestError(f"{proc!r} cannot take commands")
        proc.conn.sendall((json.dumps(command) + "\n").encode())
        line = proc.reader.readline()
        if not line:
            raise ForestError(f"{proc!r} hung up on {command}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise ForestError(f"{proc!r} failed {command}: {reply['error']}")
        return reply

    def spawn(self, parent: Proc | None, *, orphan: bool = False) -> Proc:
        """A new agent, child of ``parent`` (None: of the forest's owner);
        ``orphan=True``: started through an intermediary that exits at once,
        so the agent's parent is gone from its birth (adopted by the owner,
        the subreaper, on Linux)."""
        node = self._name()
        popen = None
        pid: int | None
        if parent is None:
            command = [agent_python(), "-S", "-c", BOOT, "127.0.0.1", str(self._port), node]
            if orphan:
                command[3] = INTERMEDIARY
            popen = start_process(command, stdin=subprocess.DEVNULL, env=self._env)
            pid = popen.pid
            if orphan:
                popen.wait()  # the intermediary: reaped, its child orphaned
                popen, pid = None, None
        else:
            pid = self._ask(parent, op="spawn", node=node, detach=orphan)["pid"]
        try:
            conn, _ = self._listener.accept()
        except OSError as err:
            if popen is not None:
                popen.kill()
                popen.wait()
            raise ForestError(f"agent {node} (pid {pid}) did not call back: {err}") from err
        conn.settimeout(REPLY_TIMEOUT)
        reader = conn.makefile("r", encoding="utf-8")
        hello = json.loads(reader.readline())
        pid = int(hello["pid"]) if pid is None else pid
        proc = Proc(node, pid, parent, mapped(hello["session"]), conn=conn, reader=reader)
        proc.popen = popen
        proc.orphan = orphan
        proc.login_set = parent.login_set if parent else _own_login_set()
        proc.started_at = process_started_at(pid)  # it runs: it called back
        self.procs.append(proc)
        STATS["processes"] += 1
        STATS["orphans"] += orphan
        if hello["node"] != node or hello["pid"] != pid:
            raise ForestError(f"expected agent {node} pid {pid}, got {hello}")
        ppid = parent.pid if parent else self.self_pid
        if not orphan and hello["ppid"] is not None and hello["ppid"] != ppid:
            raise ForestError(f"agent {node} reports parent {hello['ppid']}, expected {ppid}")
        return proc

    def login(self, proc: Proc, uid: int | None = None) -> None:
        """``proc`` starts a new login (Linux): writes ``uid`` (default:
        ``login_uid()``) to its own loginuid and reports its new session."""
        reply = self._ask(proc, op="login", uid=login_uid() if uid is None else uid)
        proc.session = mapped(int(reply["session"]))
        proc.logins += 1
        proc.login_set = True
        STATS["logins"] += 1

    def setsid(self, proc: Proc) -> None:
        """``proc`` becomes the leader of a new POSIX session (Linux): a
        terminal session, which does not change its login session."""
        self._ask(proc, op="setsid")
        STATS["setsid"] += 1

    def nohup(self, proc: Proc) -> None:
        """``proc`` ignores SIGHUP, as under ``nohup`` (Linux)."""
        self._ask(proc, op="nohup")

    def add_thread(self, proc: Proc) -> int:
        tid = int(self._ask(proc, op="thread")["tid"])
        proc.tids.append(tid)
        STATS["threads"] += 1
        return tid

    def exit(self, proc: Proc) -> None:
        """Make ``proc`` exit and wait until it has, without reaping it."""
        parent = proc.parent
        adopted = proc.orphan or parent is None or parent.state != "alive"
        if WINDOWS and adopted and proc.popen is None:
            raise ForestError(f"{proc!r}: nobody holds a handle to it (Windows)")
        self._ask(proc, op="exit")
        self._close_conn(proc)
        if proc.popen is not None:  # ours
            if WINDOWS:
                proc.popen.wait()
            else:
                os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        elif parent is not None and not adopted:
            self._ask(parent, op="wait_exit", pid=proc.pid)
        else:  # Linux: an orphan, adopted by us as the subreaper
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        self._after_exit(proc)
        STATS["exited"] += 1

    def reap(self, proc: Proc) -> None:
        """Make an exited ``proc`` gone: its reaper (the parent, or us) reaps it."""
        if proc.state != "exited":
            raise ForestError(f"{proc!r} has not exited")
        parent = proc.parent
        if proc.popen is not None:
            proc.popen.wait()
            if WINDOWS:
                proc.popen._handle.Close()  # type: ignore[attr-defined,unused-ignore]
        elif parent is not None and parent.state == "alive" and not proc.orphan:
            self._ask(parent, op="reap", pid=proc.pid)
        elif LINUX:
            os.waitpid(proc.pid, 0)
        else:
            raise ForestError(f"{proc!r}: nobody can reap it")
        # Wine frees the PID asynchronously.
        if not wait_until_gone(proc.pid, proc.started_at):
            raise ForestError(
                f"{proc!r} still exists 30 s after it was reaped: " + self.holders(proc)
            )
        proc.state = "gone"
        STATS["reaped"] += 1

    def holds_itself(self, proc: Proc) -> bool:
        """Whether the forest's owner itself still holds ``proc`` (Windows;
        the project's tests override it with the handle walker)."""
        return False

    def _close_conn(self, proc: Proc) -> None:
        for closable in (proc.reader, proc.conn):
            if closable is not None:
                closable.close()
        proc.conn = proc.reader = None

    # -- cleanup ------------------------------------------------------------
    def close(self) -> None:
        """End every process of the forest and reap what is ours; no leaks."""
        try:
            for proc in self.procs:
                self._close_conn(proc)  # an agent exits when its socket closes
            if LINUX:
                self._close_linux()
            else:
                self._close_windows()
        finally:
            self._listener.close()
            if self._subreaper:
                _set_subreaper(False)
                self._subreaper = False

    def _close_linux(self) -> None:
        import signal

        pending = {p.pid for p in self.procs if p.state != "gone"}
        for pid in pending:
            # Not reaped yet, so the PID is still this process's own.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            if proc.popen is not None:
                proc.popen.wait()
                pending.discard(proc.pid)
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for pid in list(pending):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    # Not ours (yet): its dying parent still holds it.
                    done = 0
                    if not os.path.exists(f"/proc/{pid}"):
                        done = pid
                if done:
                    pending.discard(pid)
            if pending:
                time.sleep(0.005)
        for proc in self.procs:
            proc.state = "gone"
        if pending:
            raise ForestError(f"could not reap forest processes {sorted(pending)}")

    def _close_windows(self) -> None:
        import _winapi

        alive = [p.pid for p in self.procs if p.state == "alive" and p.popen is None]
        for proc in self.procs:
            if proc.popen is not None:
                # It exits by itself now that its socket is closed; killing it
                # while it exits would race its own ExitProcess.
                try:
                    proc.popen.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.popen.kill()
                    proc.popen.wait()
                proc.popen._handle.Close()  # type: ignore[attr-defined,unused-ignore]  # let the PID go
        for pid in alive:
            # They exit on their own once their socket is closed; wait for it.
            try:
                handle = _winapi.OpenProcess(0x00100000, False, pid)  # type: ignore[attr-defined,unused-ignore]  # SYNCHRONIZE
            except OSError:
                continue
            try:
                _winapi.WaitForSingleObject(handle, 30_000)  # type: ignore[attr-defined,unused-ignore]
            finally:
                _winapi.CloseHandle(handle)  # type: ignore[attr-defined,unused-ignore]
        lingering = []
        for proc in self.procs:
            # Wine frees PIDs asynchronously: about 0.5 s after the last handle.
            if not wait_until_gone(proc.pid, proc.started_at, timeout=self.release_timeout):
                lingering.append(proc)
            proc.state = "gone"
        for proc in lingering:
            # Ours to fix: a process still running, or a handle we hold. Not
            # ours: a handle held by a process outside the forest (on real
            # Windows, an antivirus; under Wine, its own service processes).
            held = self.holders(proc)
            if not has_exited(proc.pid, proc.started_at) or self.holds_itself(proc):
                raise ForestError(f"{proc!r} still exists after close(): {held}")
            proc.held_by = held
            STATS["held_elsewhere"] += 1


# pragma: no mutate end
class SimForest(Forest):
    """Simulated processes: the same records, no OS; the backend under test
    answers from the records by the contract's rules, written out plainly."""

    def __init__(self, *, aliasing: bool = False) -> None:
        super().__init__()
        self.aliasing = aliasing
        self.parent_exit_releases_children = aliasing
        self.orphans_may_exit = not aliasing
        step = 4 if aliasing else 1
        self._step = step
        self.self_pid = 1000 * step
        self.self_session = 1
        self._pid = self.self_pid
        self._session = 1
        self.backend = _RecordsBackend(self)

    def _new_id(self) -> int:
        self._pid += self._step
        return self._pid

    def spawn(self, parent: Proc | None, *, orphan: bool = False) -> Proc:
        session = parent.session if parent else self.self_session
        proc = Proc(self._name(), self._new_id(), parent, session, orphan=orphan)
        self.procs.append(proc)
        return proc

    def login(self, proc: Proc, uid: int | None = None) -> None:
        self._session += 1
        proc.session = self._session
        proc.logins += 1

    def add_thread(self, proc: Proc) -> int:
        tid = self._new_id()
        proc.tids.append(tid)
        return tid

    def exit(self, proc: Proc) -> None:
        self._after_exit(proc)

    def reap(self, proc: Proc) -> None:
        proc.state = "gone"

    def names_process(self, pid: int) -> bool:
        key = pid & ~3 if self.aliasing else pid
        return any(p.pid == key or key in p.tids for p in self.procs) or key == self.self_pid

    def close(self) -> None:
        for proc in self.procs:
            proc.state = "gone"


class _RecordsBackend:
    """The simulated OS's own answers, from the records (not a ModelBackend)."""

    name = "records"

    def __init__(self, forest: SimForest) -> None:
        self.forest = forest

    def session_id(self, pid: int) -> int:
        from sessionid_cffi._errors import not_found

        forest = self.forest
        key = pid & ~3 if forest.aliasing else pid
        if key == forest.self_pid:
            return forest.self_session
        for proc in forest.procs:
            if proc.pid == key and proc.state != "gone" and key != 0:
                return proc.session
        raise not_found(pid, "no such simulated process")

    def console_session_id(self) -> int | None:
        return None

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        found = {}
        for pid in pids or []:
            try:
                found[pid] = self.session_id(pid)
            except SessionIdError:
                continue
        return found
