"""Differential tests: the live backend against the model, on real process
forests that Hypothesis designs.

A forest plan is a list of nodes; node i names its parent (an earlier node,
or the test process itself), whether it starts a new login (Linux, root:
it writes a uid to /proc/self/loginuid, which allocates a fresh audit
session that its later children inherit), how many threads it starts, and
its fate: stay alive, exit and stay unreaped (a zombie on Linux; held by its
parent's handle on Windows), or exit and be reaped. ``tests/_forest.py``
builds the forest for real, every process reports its own PID, parent and
session, and ``expected_model`` turns those reports into a ModelBackend.
The live backend must then answer exactly like the model for every PID of
the forest (also after the fates), PID+1..+3 of each, every thread id, and
PIDs that name nothing. Plans shrink to the smallest failing forest.

Under Windows (the Wine lane) the same test runs without logins (all
children share the caller's session) and with the Windows rules: exited
children held by a handle answer, thread ids answer 87, PID+1..+3 alias.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from _forest import (
    SECONDS,
    STATS,
    ForestError,
    Proc,
    RealForest,
    can_login,
    compare,
    install_summary,
    scaled_examples,
)
from _handles import holders
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionid_cffi import ProcessNotFoundError, get_backend
from sessionid_cffi.testing._processes import has_exited

#: Processes per forest at most (plus the test process itself).
MAX_PROCESSES = 8
#: Forests per run: 15 under the default profile, 200 under "long".
FORESTS = scaled_examples(default=15, long=200)
FATES = ("alive", "zombie", "reaped")


@dataclass(frozen=True)
class NodePlan:
    parent: int | None  # index of an earlier node; None: a child of the test process
    login: bool
    threads: int
    fate: str

    def __repr__(self) -> str:
        return (
            f"Node(parent={self.parent}, login={self.login}, threads={self.threads}, {self.fate})"
        )


@st.composite
def forest_plans(draw: st.DrawFn, max_processes: int = MAX_PROCESSES) -> list[NodePlan]:
    """Plans of forests; they shrink towards one alive root without logins."""
    logins = can_login()
    count = draw(st.integers(1, max_processes))
    nodes = []
    for index in range(count):
        parent = draw(st.none() | st.integers(0, index - 1)) if index else None
        login = draw(st.booleans()) if logins else False
        threads = draw(st.integers(0, 2))
        fate = draw(st.sampled_from(FATES))
        nodes.append(NodePlan(parent, login, threads, fate))
    return nodes


@pytest.fixture(autouse=True)
def _count_time(pytestconfig: pytest.Config) -> Iterator[None]:
    install_summary(pytestconfig)
    started = time.monotonic()
    yield
    SECONDS[0] += time.monotonic() - started


@pytest.fixture
def forest() -> Iterator[RealForest]:
    made = RealForest()
    try:
        yield made
    finally:
        made.close()


def build(forest: RealForest, plan: list[NodePlan]) -> list[Proc]:
    """Spawn, log in and start threads in plan order (parents first, so
    children of a node that logs in inherit the new session)."""
    procs: list[Proc] = []
    for node in plan:
        parent = procs[node.parent] if node.parent is not None else None
        proc = forest.spawn(parent)
        if node.login:
            forest.login(proc, uid=1000 + len(procs))
        for _ in range(node.threads):
            forest.add_thread(proc)
        procs.append(proc)
    return procs


def apply_fates(forest: RealForest, plan: list[NodePlan], procs: list[Proc]) -> None:
    """Children before parents: each exit is seen by a living parent."""
    for node, proc in reversed(list(zip(plan, procs, strict=True))):
        if node.fate != "alive":
            forest.exit(proc)
        if node.fate == "reaped" and proc.state == "exited":
            forest.reap(proc)


def check_ground_truth(forest: RealForest, plan: list[NodePlan], procs: list[Proc]) -> None:
    """What the processes reported obeys C2: a child that did not log in
    reports its parent's session; a login gets a session nobody had."""
    seen = {forest.self_session}
    for node, proc in zip(plan, procs, strict=True):
        parent_session = proc.parent.session if proc.parent else forest.self_session
        if node.login:
            assert proc.session not in seen, f"login of {proc!r} reused a session"
        else:
            assert proc.session == parent_session, f"{proc!r} did not inherit {parent_session}"
        seen.add(proc.session)


def assert_agree(forest: RealForest, extra: list[int], when: str) -> None:
    model = forest.expected_model()
    mismatches = compare(forest.backend, model, forest.pids_to_check(extra), forest)
    assert not mismatches, (
        f"live backend {forest.backend.name!r} and the model disagree {when}:\n"
        + "\n".join(mismatches)
        + "\nforest:\n"
        + forest.describe()
    )


@settings(
    max_examples=FORESTS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    plan=forest_plans(),
    extra=st.lists(st.integers(0, 0xFFFFFFFF) | st.integers(0, 40000), max_size=4),
)
def test_live_backend_agrees_with_the_model_on_real_forests(
    plan: list[NodePlan], extra: list[int]
) -> None:
    forest = RealForest()
    try:
        procs = build(forest, plan)
        check_ground_truth(forest, plan, procs)
        assert_agree(forest, extra, "with every process alive")
        apply_fates(forest, plan, procs)
        for node, proc in zip(plan, procs, strict=True):
            if node.fate == "alive":
                assert proc.state == "alive"
        assert_agree(forest, extra, "after the exits and reaps")
    finally:
        forest.close()


# -- the harness is not vacuous: a wrong oracle or a buggy backend is caught ------
def _small_forest(forest: RealForest) -> dict[str, Proc]:
    root = forest.spawn(None)
    forest.add_thread(root)
    zombie = forest.spawn(root)
    reaped = forest.spawn(root)
    login = forest.spawn(root)
    if can_login():
        forest.login(login)
    forest.exit(zombie)
    forest.exit(reaped)
    forest.reap(reaped)
    return {"root": root, "zombie": zombie, "reaped": reaped, "login": login}


def test_a_wrong_oracle_is_reported(forest: RealForest) -> None:
    procs = _small_forest(forest)
    pids = forest.pids_to_check()
    assert compare(forest.backend, forest.expected_model(), pids, forest) == []

    model = forest.expected_model()
    model.reap(procs["zombie"].pid)  # the oracle forgets that zombies answer
    found = compare(forest.backend, model, pids, forest)
    assert any(f"PID {procs['zombie'].pid} " in line for line in found), found

    model = forest.expected_model()
    model.set_session(procs["login"].pid, procs["login"].session + 1)
    found = compare(forest.backend, model, pids, forest)
    assert any(f"PID {procs['login'].pid} " in line for line in found), found

    model = forest.expected_model()
    model.spawn(procs["reaped"].pid, 0)  # the oracle thinks a reaped PID answers
    found = compare(forest.backend, model, pids, forest)
    assert any(f"PID {procs['reaped'].pid} " in line for line in found), found


class _AnswersEverything:
    """A buggy backend: session 0 for PIDs that name nothing."""

    def __init__(self) -> None:
        self.live = get_backend()
        self.name = f"buggy {self.live.name}"

    def session_id(self, pid: int) -> int:
        try:
            return self.live.session_id(pid)
        except ProcessNotFoundError:
            return 0

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        return {pid: self.session_id(pid) for pid in pids or []}


def test_a_buggy_backend_is_reported(forest: RealForest) -> None:
    procs = _small_forest(forest)
    found = compare(_AnswersEverything(), forest.expected_model(), forest.pids_to_check(), forest)
    reaped, thread = procs["reaped"].pid, procs["root"].tids[0]
    assert any(line.startswith(f"PID {reaped} ") for line in found), found
    assert any(line.startswith(f"PID {thread} (a thread id)") for line in found), found


def test_forests_clean_up_after_a_failure() -> None:
    """Even when a test fails halfway, close() ends and reaps every process."""
    forest = RealForest()
    try:
        root = forest.spawn(None)
        child = forest.spawn(root)
        forest.exit(child)
        with pytest.raises(ForestError, match="cannot take commands"):
            forest.add_thread(child)  # an exited process takes no commands
    finally:
        forest.close()
    assert all(proc.state == "gone" for proc in forest.procs)
    for proc in forest.procs:
        assert proc.started_at is not None, f"{proc!r}: its start time was not read"
        if proc.held_by is None:
            assert not proc.still_exists(), f"{proc!r} still exists after close()"
        else:  # Windows: kept by a program outside the forest, as close() recorded
            assert has_exited(proc.pid, proc.started_at), f"{proc!r} still runs"
            assert os.getpid() not in holders(proc.pid, proc.started_at)


def test_stats_are_counted() -> None:
    """The counters that the end-of-run summary reports move with the work."""
    before = dict(STATS)
    forest = RealForest()
    try:
        root = forest.spawn(None)
        forest.add_thread(root)
    finally:
        forest.close()
    assert STATS["forests"] == before["forests"] + 1
    assert STATS["processes"] == before["processes"] + 1
    assert STATS["threads"] == before["threads"] + 1
