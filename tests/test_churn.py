"""PID churn: short-lived children, each in its own fresh login session,
exit and are reaped while several threads query their PIDs (Pythonic and
raw) and the bulk API walks /proc. Every answer must match the ground truth
the children recorded: that child's session (or, before it logged in, the
session it inherited), or "not found"; never another process's session.

A single-threaded helper forks the children (forking this multi-threaded
test process would be unsafe). Each child writes a uid to
/proc/self/loginuid (root: a fresh audit session, distinct for every
child), reads its own sessionid, reports it, waits a random few ms, exits;
the helper reaps it a random few ms later. The helper timestamps fork,
report and reap with CLOCK_MONOTONIC (shared by all processes), so each
answer can be judged against what held during the query.

Default: about 3 s of churn; HYPOTHESIS_PROFILE=long: 30 s.

With pid_max 32768 these children never get a PID used before in the run,
so reuse itself is forced, between the backend's steps, in test_pid_reuse.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import sessionid_cffi as s
from sessionid_cffi import AccessDeniedError, ProcessNotFoundError, SessionIdError, ffi

from conftest import needs_root

pytestmark = needs_root

SECONDS = 30.0 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 3.0
FIGURES = {"children": 0, "answers": 0, "wrong": 0}

HELPER = r"""
import json, os, random, sys, time

seconds, live_max = float(sys.argv[1]), int(sys.argv[2])
rng = random.Random(int(sys.argv[3]))
out = sys.stdout
now = time.monotonic
live = {}  # pid -> record
end = now() + seconds
uid = 1000
# The session every child has until its own login: the helper's, which it
# reads itself (4294967295: unset, session 0).
fd = os.open("/proc/self/sessionid", os.O_RDONLY)
own = int(os.read(fd, 64)); os.close(fd)
out.write(json.dumps({"event": "start", "inherited": 0 if own == 4294967295 else own}) + "\n")
out.flush()
while now() < end or live:
    if now() < end and len(live) < live_max:
        uid += 1
        report_r, report_w = os.pipe()
        go_r, go_w = os.pipe()
        fork_start = now()
        pid = os.fork()
        if pid == 0:
            os.close(report_r); os.close(go_w)
            for other in live.values():  # others' go pipes: they must see EOF
                if other["go"] is not None:
                    os.close(other["go"])
            fd = os.open("/proc/self/loginuid", os.O_WRONLY)
            os.write(fd, str(uid).encode()); os.close(fd)
            fd = os.open("/proc/self/sessionid", os.O_RDONLY)
            session = os.read(fd, 64); os.close(fd)
            os.write(report_w, session); os.close(report_w)
            os.read(go_r, 1)  # until the helper lets it exit
            os._exit(0)
        fork_end = now()
        os.close(report_w); os.close(go_r)
        session = int(os.read(report_r, 64)); os.close(report_r)
        record = {"pid": pid, "session": session, "fork_start": fork_start,
                  "fork_end": fork_end, "report": now(), "go": go_w,
                  "exit_at": now() + rng.uniform(0, 0.02)}
        live[pid] = record
        out.write(json.dumps({"event": "spawn", "pid": pid}) + "\n"); out.flush()
    t = now()
    for pid, rec in list(live.items()):
        if rec["go"] is not None and t >= rec["exit_at"]:
            os.close(rec["go"]); rec["go"] = None  # the child exits: a zombie until reaped
            rec["reap_at"] = t + rng.uniform(0, 0.02)
        elif rec["go"] is None and t >= rec["reap_at"]:
            rec["reap_start"] = now()
            os.waitpid(pid, 0)
            rec["reap_end"] = now()
            del live[pid]
            rec.pop("go"); rec.pop("exit_at"); rec.pop("reap_at")
            out.write(json.dumps({"event": "reaped", **rec}) + "\n"); out.flush()
    time.sleep(0.0005)
out.write(json.dumps({"event": "done"}) + "\n"); out.flush()
"""


@dataclass
class Query:
    pid: int
    start: float
    end: float
    answer: int | str  # a session, "notfound", "denied" or an error text
    how: str


@dataclass
class Truth:
    incarnations: dict[int, list[dict[str, float]]] = field(default_factory=dict)
    sessions: dict[int, int] = field(default_factory=dict)  # session -> pid


def judge(query: Query, truth: Truth, inherited: int) -> str | None:
    """None if ``query`` is a possible answer, else why it is wrong."""
    lives = truth.incarnations.get(query.pid, [])
    # Times at which the PID was surely one of our children: fork returned,
    # reaping not yet started.
    surely_ours = any(r["fork_end"] <= query.start and query.end <= r["reap_start"] for r in lives)
    maybe = [r for r in lives if r["fork_start"] <= query.end and query.start <= r["reap_end"]]
    answer = query.answer
    if answer == "notfound":
        return "not found while the child surely existed" if surely_ours else None
    if answer == "denied":
        return "access denied to root"
    if isinstance(answer, str):
        return f"unexpected error: {answer}"
    if any(answer == r["session"] for r in maybe):
        return None
    if answer in truth.sessions:
        owner = truth.sessions[answer]
        return f"answered session {answer} of child {owner}, not of PID {query.pid}"
    if answer == inherited and any(
        r["fork_start"] <= query.end and query.start <= r["report"] for r in maybe
    ):
        return None  # the child had not logged in yet: the session it inherited
    if not surely_ours:
        return None  # another process may hold this PID now
    return (
        f"answered {answer} while child {query.pid} (session(s) "
        f"{[r['session'] for r in maybe]}) held the PID"
    )


def ask(pid: int, how: str) -> int | str:
    try:
        if how == "py":
            return s.process_id_to_session_id(pid)
        out = ffi.new("DWORD *", 0xDEADBEEF)
        if s.ProcessIdToSessionId(pid, out):
            return int(out[0])
        code = s.GetLastError()
        if out[0] != 0xDEADBEEF:
            return "raw call failed but wrote the out-pointer"
        return {87: "notfound", 5: "denied"}.get(code, f"last error {code}")
    except ProcessNotFoundError:
        return "notfound"
    except AccessDeniedError:
        return "denied"
    except SessionIdError as err:
        return f"{type(err).__name__}: {err}"


def test_answers_under_pid_churn_match_the_children_ground_truth() -> None:
    seed = random.randrange(2**32)
    helper = subprocess.Popen(
        [sys.executable, "-c", HELPER, str(SECONDS), "24", str(seed)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert helper.stdout is not None
    # What a child has before its own login, as its parent read it itself.
    start = json.loads(helper.stdout.readline())
    assert start["event"] == "start", start
    inherited = int(start["inherited"])
    known: list[int] = []
    records: list[dict[str, float]] = []
    queries: list[Query] = []
    lock = threading.Lock()
    stop = threading.Event()

    def reader() -> None:
        assert helper.stdout is not None
        for line in helper.stdout:
            event = json.loads(line)
            if event["event"] == "spawn":
                with lock:
                    known.append(event["pid"])
            elif event["event"] == "reaped":
                records.append(event)
            else:
                break
        stop.set()

    def querier(index: int) -> None:
        rng = random.Random(seed + index)
        mine: list[Query] = []
        while not stop.is_set():
            with lock:
                pid = rng.choice(known[-40:]) if known else 0
            if not pid:
                time.sleep(0.001)
                continue
            pid += rng.choice([0, 0, 0, 0, 1, -1])  # neighbours: the next child, or none
            how = "py" if rng.random() < 0.5 else "raw"
            start = time.monotonic()
            answer = ask(pid, how)
            mine.append(Query(pid, start, time.monotonic(), answer, how))
        with lock:
            queries.extend(mine)

    def walker() -> None:
        mine: list[Query] = []
        while not stop.is_set():
            start = time.monotonic()
            table = s.session_ids()
            end = time.monotonic()
            with lock:
                ours = set(known[-60:])
            mine += [Query(p, start, end, table[p], "bulk") for p in ours if p in table]
            with lock:
                batch = known[-30:]
            start = time.monotonic()
            listed = s.session_ids(batch)
            end = time.monotonic()
            mine += [Query(p, start, end, sess, "bulk-list") for p, sess in listed.items()]
        with lock:
            queries.extend(mine)

    threads = [threading.Thread(target=reader)]
    threads += [threading.Thread(target=querier, args=(i,)) for i in range(3)]
    threads.append(threading.Thread(target=walker))
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join(SECONDS + 60)
    finally:
        stop.set()
        with contextlib.suppress(subprocess.TimeoutExpired):
            helper.wait(30)
        if helper.poll() is None:
            helper.kill()
            helper.wait()
        helper.stdout.close()
    assert helper.returncode == 0
    assert not any(thread.is_alive() for thread in threads)

    truth = Truth()
    for rec in records:
        truth.incarnations.setdefault(int(rec["pid"]), []).append(rec)
        assert rec["session"] not in truth.sessions, "the kernel reused an audit session"
        truth.sessions[int(rec["session"])] = int(rec["pid"])
    wrong = [(q, why) for q in queries if (why := judge(q, truth, inherited)) is not None]
    FIGURES["children"] += len(records)
    FIGURES["answers"] += len(queries)
    FIGURES["wrong"] += len(wrong)
    print(f"churn: {len(records)} children, {len(queries)} answers checked, {len(wrong)} wrong")
    assert len(records) >= 20, "too little churn to prove anything"
    answered = sum(1 for q in queries if isinstance(q.answer, int) and q.answer in truth.sessions)
    assert answered >= 20, "too few answers named a child's own session"
    assert wrong == [], wrong[:5]


def test_the_judge_flags_wrong_answers() -> None:
    # The oracle above must be able to fail: two children, A (PID 10, session
    # 7, alive 1.0-2.0) and B (PID 11, session 8, alive 1.5-3.0).
    truth = Truth()
    for pid, session, born, gone in ((10, 7, 1.0, 2.0), (11, 8, 1.5, 3.0)):
        truth.incarnations[pid] = [
            {
                "pid": pid,
                "session": session,
                "fork_start": born,
                "fork_end": born + 0.01,
                "report": born + 0.02,
                "reap_start": gone,
                "reap_end": gone + 0.01,
            }
        ]
        truth.sessions[session] = pid
    assert judge(Query(10, 1.2, 1.3, 7, "py"), truth, 0) is None
    assert judge(Query(10, 1.6, 1.7, 8, "py"), truth, 0) is not None  # B's session for A
    assert judge(Query(10, 1.2, 1.3, "notfound", "py"), truth, 0) is not None  # A was alive
    assert judge(Query(10, 1.9, 2.1, "notfound", "py"), truth, 0) is None  # reaped meanwhile
    assert judge(Query(10, 1.0, 1.015, 0, "py"), truth, 0) is None  # not logged in yet
    assert judge(Query(10, 1.2, 1.3, 0, "py"), truth, 0) is not None  # long logged in
    assert judge(Query(10, 2.5, 2.6, 0, "py"), truth, 0) is None  # PID free: anyone's
    assert judge(Query(10, 1.2, 1.3, "denied", "py"), truth, 0) is not None
