"""Real PID reuse between the backend's steps: no answer belongs to the newcomer.

The churn tests (test_churn.py) never see a PID reused: with pid_max 32768
the kernel hands out fresh numbers for a long time. Here reuse is forced.
The scene runs in a private PID namespace with its own /proc
(``unshare --pid --fork --mount-proc``), where root writes N-1 to
``/proc/sys/kernel/ns_last_pid`` so that the next process gets PID N.

A target process logs in (a fresh audit session A, which it reports from
its own ``/proc/self/sessionid``). The backend is then asked about the
target's PID N, and between two of its steps the test kills and reaps the
target and starts a newcomer on PID N in another login session B (which it
reports itself). The steps are the backend's calls of ``os.open``,
``os.read``, ``os.pidfd_open``, ``os.listdir`` and the like: the test seam
is the ``os`` global of ``sessionid_cffi.emulation.procfs``, replaced by a
proxy that runs the swap after the k-th call (see the module's docstring).
Every k from the backend's first step that names N to its last is tried.

Truth: A (the answer was complete before the swap) or "not found" (the
target was gone before the backend finished); never B. A swap before the
backend's first step on N is not tried: then the newcomer *is* process N
when asked, and its session is the true answer.

Covers ``session_id(N)``, ``session_ids([N])`` and ``session_ids(None)``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import needs_root

pytestmark = needs_root

# Scene helpers (test_kill.py's reuse scene uses them too): a fresh login
# per process: sh writes its loginuid (a new audit session), reports the
# session from its own sessionid, then waits on stdin. (sessionid ends
# without a newline: read fails at EOF but sets s.)
LOGINS = r"""
LOGIN = 'echo $0 > /proc/self/loginuid || exit; read s < /proc/self/sessionid; echo $s; exec cat'
uids = iter(range(2000, 3000))


def login():
    process = subprocess.Popen(["sh", "-c", LOGIN, str(next(uids))], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    return process, int(process.stdout.readline())


def end(process):
    process.kill()
    process.wait()  # reaped: its PID is free again
    process.stdin.close(); process.stdout.close()
"""

SCENE = (
    r"""
import json, os, subprocess, sys
from sessionid_cffi import ProcessNotFoundError
from sessionid_cffi.emulation import procfs as procfs_module

backend = procfs_module.ProcfsBackend()
"""
    + LOGINS
    + r"""


class Steps:
    # Stands in for the os module inside procfs.py: counts the calls that
    # touch the kernel and runs `after(step, name, args)` after each one.
    COUNTED = ("open", "read", "close", "pidfd_open", "listdir", "readlink", "pread")

    def __init__(self, after):
        self.after, self.count = after, 0

    def __getattr__(self, name):
        real = getattr(os, name)
        if name not in self.COUNTED:
            return real
        def step(*args, **kwargs):
            result = real(*args, **kwargs)
            self.count += 1
            self.after(self.count, name, args)
            return result
        return step


def names(name, args, pid):
    # Whether a step works on process `pid`: a path of it, or pidfd_open(pid).
    if name == "pidfd_open":
        return args[0] == pid
    # (The backend passes paths as bytes, as the kernel lists them.)
    paths = [os.fsdecode(a) for a in args if isinstance(a, (str, bytes))]
    return any(f"/{pid}/" in a or a.startswith(f"{pid}/") for a in paths)


QUERIES = {
    "session_id": lambda pid: backend.session_id(pid),
    "session_ids_list": lambda pid: backend.session_ids([pid]).get(pid),
    "session_ids_all": lambda pid: backend.session_ids(None).get(pid),
}


def ask(query, pid):
    try:
        return QUERIES[query](pid)
    except ProcessNotFoundError:
        return None


report = {"rounds": [], "reused": 0}
for query in QUERIES:
    # A dry run: which steps come after the backend's first step on the target?
    target, session = login()
    ask(query, target.pid)  # once unhooked: the namespace check is then done and kept
    first = []
    def note_first(step, name, args):
        if not first and names(name, args, target.pid):
            first.append(step)
    procfs_module.os = Steps(note_first)
    try:
        assert ask(query, target.pid) == session, "a quiet query answers the truth"
        total = procfs_module.os.count
    finally:
        procfs_module.os = os
    end(target)
    assert first, f"{query}: no step named the target"
    for k in range(first[0], total + 1):
        target, session = login()
        pid = target.pid
        swapped = {}
        def swap(step, name, args):
            if step != k:
                return
            end(target)
            with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                f.write(str(pid - 1))
            newcomer, new_session = login()
            swapped.update(newcomer=newcomer, session=new_session, after=name)
        procfs_module.os = Steps(swap)
        try:
            answer = ask(query, pid)
        finally:
            procfs_module.os = os
        assert swapped, f"{query}: the query took fewer than {k} steps this time"
        newcomer = swapped["newcomer"]
        reused = newcomer.pid == pid
        report["reused"] += reused
        report["rounds"].append({"query": query, "step": k, "after": swapped["after"],
                                 "pid": pid, "reused": reused, "target": session,
                                 "newcomer": swapped["session"], "answer": answer})
        end(newcomer)
print(json.dumps(report))
"""
)


def run_scene() -> dict[str, object]:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) from util-linux")
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode:
        pytest.skip(f"no private PID namespace here: {probe.stderr.strip()}")
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", SCENE],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_a_pid_reused_between_the_backends_steps_never_gives_the_newcomers_session() -> None:
    report = run_scene()
    rounds = report["rounds"]
    assert isinstance(rounds, list)
    # Reuse was real: every newcomer got the target's PID.
    assert report["reused"] == len(rounds), [r for r in rounds if not r["reused"]]
    for query in ("session_id", "session_ids_list", "session_ids_all"):
        mine = [r for r in rounds if r["query"] == query]
        assert len(mine) >= 2, (query, mine)
        for r in mine:
            assert r["target"] != r["newcomer"], r  # two distinct logins
            assert r["answer"] in (r["target"], None), r  # never the newcomer's
        # Both outcomes happen: the swap came before the last read, and after it.
        assert any(r["answer"] is None for r in mine), mine
        assert any(r["answer"] == r["target"] for r in mine), mine
