"""Stateful tests: processes come and go step by step, and after every step
the backend under test must answer like the model.

The rules (spawn, new login, start a thread, exit, reap, query) act on a
forest and update a ModelBackend through its own API (``spawn``,
``set_session``, ``add_thread``, ``exit``, ``reap``): the model *predicts*
(a child is in its parent's session, a zombie keeps answering, a reaped PID
answers 87), and the ``@invariant`` compares every PID of the forest,
PID+1..+3 of each and every thread id with the backend.

- ``TestRealForest``: real processes (tests/_forest.py) against the live
  backend: procfs on Linux (logins as root), kernel32 under Windows.
- ``TestSimulatedForest`` / ``TestSimulatedWindowsForest``: the same machine
  on simulated processes, where the backend under test is a plain reading
  of the records; it checks the model's own API and runs everywhere.
"""

from __future__ import annotations

import time

import pytest
from _forest import (
    SECONDS,
    STATS,
    Forest,
    Proc,
    RealForest,
    SimForest,
    can_login,
    compare,
    install_summary,
    scaled_examples,
)
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from sessionid_cffi.testing import ModelBackend

MAX_PROCESSES = 8
MAX_THREADS = 3


class ForestMachine(RuleBasedStateMachine):
    """Shared rules; subclasses say which forest they drive."""

    def make_forest(self) -> Forest:
        raise NotImplementedError

    def logins_possible(self) -> bool:
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.forest = self.make_forest()
        self.model = ModelBackend(
            {self.forest.self_pid: self.forest.self_session}, aliasing=self.forest.aliasing
        )
        self.sessions_seen = {self.forest.self_session}
        self.logins = self.logins_possible()

    @initialize()
    def count(self) -> None:
        real = isinstance(self.forest, RealForest)
        STATS["machine_runs" if real else "simulated_runs"] += 1

    def teardown(self) -> None:
        self.forest.close()

    # -- what the rules may pick ----------------------------------------------------
    def _alive(self) -> list[Proc]:
        return [p for p in self.forest.procs if p.state == "alive"]

    def _may_exit(self) -> list[Proc]:
        forest = self.forest
        return [
            p
            for p in self._alive()
            if forest.orphans_may_exit or p.parent is None or p.parent.state == "alive"
        ]

    def _exited(self) -> list[Proc]:
        return [p for p in self.forest.procs if p.state == "exited"]

    # -- rules ----------------------------------------------------------------------------
    @precondition(lambda self: len(self.forest.procs) < MAX_PROCESSES)
    @rule(data=st.data())
    def spawn(self, data: st.DataObject) -> None:
        alive = self._alive()
        parent = data.draw(st.none() | st.sampled_from(alive)) if alive else None
        predicted = parent.session if parent else self.forest.self_session
        proc = self.forest.spawn(parent)
        # The child reports its own session: the model's prediction must hold (C2).
        assert proc.session == predicted, f"{proc!r} is not in its parent's session {predicted}"
        if proc.pid in self.model.threads():
            self.model.remove_thread(proc.pid)  # an old thread id, reused
        self.model.spawn(proc.pid, predicted)

    @precondition(lambda self: self.logins and any(p.state == "alive" for p in self.forest.procs))
    @rule(data=st.data())
    def new_login(self, data: st.DataObject) -> None:
        proc = data.draw(st.sampled_from(self._alive()))
        self.forest.login(proc, uid=1000 + len(self.forest.procs))
        # The kernel numbers the session; the model only knows it is new.
        assert proc.session not in self.sessions_seen, f"{proc!r} got a used session"
        self.sessions_seen.add(proc.session)
        self.model.set_session(proc.pid, proc.session)

    def _may_thread(self) -> list[Proc]:
        return [p for p in self._alive() if len(p.tids) < MAX_THREADS]

    @precondition(lambda self: bool(self._may_thread()))
    @rule(data=st.data())
    def start_thread(self, data: st.DataObject) -> None:
        proc = data.draw(st.sampled_from(self._may_thread()))
        tid = self.forest.add_thread(proc)
        self.model.add_thread(tid)

    @precondition(lambda self: bool(self._may_exit()))
    @rule(data=st.data())
    def exit(self, data: st.DataObject) -> None:
        proc = data.draw(st.sampled_from(self._may_exit()))
        held = [c for c in self.forest.procs if c.parent is proc and c.state == "exited"]
        self.forest.exit(proc)
        self.model.exit(proc.pid)
        for tid in proc.tids:
            self.model.remove_thread(tid)
        if self.forest.parent_exit_releases_children:
            # Windows: the exited children were held by this process's handles.
            for child in held:
                self.model.reap(child.pid)

    @precondition(lambda self: bool(self._exited()))
    @rule(data=st.data())
    def reap(self, data: st.DataObject) -> None:
        proc = data.draw(st.sampled_from(self._exited()))
        self.forest.reap(proc)
        self.model.reap(proc.pid)

    @rule(data=st.data())
    def query(self, data: st.DataObject) -> None:
        """Any PID at all: one that names nothing must answer 87 on both."""
        pid = data.draw(st.integers(0, 0xFFFFFFFF) | st.integers(0, 70000), label="pid")
        ours = {p.pid for p in self.forest.procs} | {self.forest.self_pid}
        tids = {t for p in self.forest.procs for t in p.tids}
        key = pid & ~3 if self.forest.aliasing else pid
        if key not in ours | tids and self.forest.names_process(pid):
            return  # a stranger's process: nothing to compare with
        found = compare(self.forest.backend, self.model, [pid], self.forest)
        assert not found, "\n".join(found) + "\n" + self.forest.describe()

    # -- after every step -------------------------------------------------------------
    @invariant()
    def backend_agrees_with_model(self) -> None:
        found = compare(self.forest.backend, self.model, self.forest.pids_to_check(), self.forest)
        assert not found, (
            f"{self.forest.backend.name!r} and the model disagree:\n"  # type: ignore[attr-defined]
            + "\n".join(found)
            + "\nforest:\n"
            + self.forest.describe()
        )

    @invariant()
    def model_matches_the_records(self) -> None:
        """The rules kept the model in step with what the processes are."""
        expected = self.forest.expected_model()
        assert self.model.processes() == expected.processes()
        assert self.model.zombies == expected.zombies
        assert self.model.threads() == expected.threads()


class RealForestMachine(ForestMachine):
    def make_forest(self) -> Forest:
        return RealForest()

    def logins_possible(self) -> bool:
        return can_login()


class SimulatedForestMachine(ForestMachine):
    def make_forest(self) -> Forest:
        return SimForest(aliasing=False)

    def logins_possible(self) -> bool:
        return True


class SimulatedWindowsForestMachine(ForestMachine):
    def make_forest(self) -> Forest:
        return SimForest(aliasing=True)

    def logins_possible(self) -> bool:
        return False  # Windows: children stay in the caller's session


@pytest.fixture(autouse=True)
def _count_time(pytestconfig: pytest.Config) -> object:
    install_summary(pytestconfig)
    started = time.monotonic()
    yield
    SECONDS[0] += time.monotonic() - started


_real = settings(
    max_examples=scaled_examples(default=8, long=150),
    stateful_step_count=scaled_examples(default=20, long=40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestRealForest = _real(RealForestMachine).TestCase
TestSimulatedForest = SimulatedForestMachine.TestCase
TestSimulatedWindowsForest = SimulatedWindowsForestMachine.TestCase
for _case in (TestSimulatedForest, TestSimulatedWindowsForest):
    _case.settings = settings(
        deadline=None,
        max_examples=scaled_examples(default=40, long=1000),
        stateful_step_count=scaled_examples(default=25, long=50),
    )
del _case


def test_simulated_machine_catches_a_broken_model() -> None:
    """The control: a model whose reap does nothing is caught by the invariant."""

    class KeepsReaped(ModelBackend):
        def reap(self, pid: int) -> None:
            self.zombies.add(pid)  # forgets to remove the PID

    machine = SimulatedForestMachine()
    machine.model = KeepsReaped(
        {machine.forest.self_pid: machine.forest.self_session}, aliasing=False
    )
    machine.spawn(_Fixed(None))
    proc = machine.forest.procs[0]
    machine.exit(_Fixed(proc))
    machine.reap(_Fixed(proc))
    mismatch = rf"PID {proc.pid} .*live \('error', 87\), model \('ok'"
    with pytest.raises(AssertionError, match=mismatch):
        machine.backend_agrees_with_model()


class _Fixed:
    """A stand-in for ``st.data()`` that always draws ``value``."""

    def __init__(self, value: object) -> None:
        self.value = value

    def draw(self, strategy: object, label: object = None) -> object:
        return self.value
