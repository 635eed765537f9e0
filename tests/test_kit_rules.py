"""The kit's rules, worlds and generated-world judging, fast: every case is
"a backend broken in one way is BROKEN under rule X, the correct one kept",
judged against a table, a declaration or a simulated forest this test set
up, never against what the kit itself computed. No real process world is
built here (the live suites do that): these tests run in milliseconds, so
that the mutation gate (``tools/mutation.py --modules kit``) can afford them
for each of the kit's mutants."""

from __future__ import annotations

import contextlib
import copy
import os
import random
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from sessionid_cffi.emulation.model import ModelBackend

from sessionid_cffi import ProcessNotFoundError, SessionIdError
from sessionid_cffi._errors import access_denied, not_found
from sessionid_cffi.testing import (
    ContractReport,
    ContractViolation,
    LibraryLevel,
    PartlyChecked,
    RuleSkipped,
    World,
    _forest,
    _generated,
    _worlds,
    check_contract,
    contract,
)
from sessionid_cffi.testing._fake import CallerNotInFakeError, FakeSessions, make_fake
from sessionid_cffi.testing._forest import Proc, SimForest
from sessionid_cffi.testing._generated import Judgement, judge_declared
from sessionid_cffi.testing._worlds import DeclaredWorld, ListedWorld, ModelWorld, world_for

# Linux: the gate runs here, and several scenes read /proc or fork; the kit
# on Windows is judged by test_kit and test_contract in the Wine lane.
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the kit gate's fast suite (Linux)"
)
OWN = os.getpid()
# A declared world: the caller in 1; far processes in logins 2 and 3; one
# exited (held) in 2; a thread id; a reaped PID. PIDs spaced by 100, so
# that PID+1..+3 of each are free.
TABLE = {OWN: 1, OWN + 100: 2, OWN + 200: 3, OWN + 300: 2, OWN + 400: 0}
THREAD, GONE, EXITED = OWN + 500, OWN + 600, OWN + 300


def declared() -> DeclaredWorld:
    world = World.declare(TABLE, threads=[THREAD], exited=[EXITED], gone=[GONE])
    assert isinstance(world, DeclaredWorld)
    return world


class Fake:
    """A backend of one's own answering from TABLE; ``wrong`` maps a query
    form to a change of its answers (the breakage under test)."""

    name = "fake"

    def __init__(self, **wrong: Callable[..., Any]) -> None:
        self.wrong = wrong

    def session_id(self, pid: int) -> int:
        if "single" in self.wrong:
            return int(self.wrong["single"](pid))
        return self._true(pid)

    def _true(self, pid: int) -> int:
        if pid in TABLE:
            return TABLE[pid]
        raise ProcessNotFoundError(pid)

    def console_session_id(self) -> int | None:
        return None

    def _listing(self, pids: list[int] | None) -> dict[int, int]:
        found = {}
        for pid in TABLE if pids is None else pids:
            try:
                found[pid] = self._true(pid)
            except ProcessNotFoundError:
                continue
        return found

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        listed = self._listing(pids)
        form = "subset" if pids is not None else "all"
        if form in self.wrong:
            listed = self.wrong[form](listed)
        return listed


def answer_or_raise(change: dict[int, Any]) -> Callable[[int], int]:
    """session_id answering TABLE's truth except for the PIDs in ``change``
    (a session, or an exception to raise)."""

    def single(pid: int) -> int:
        if pid in change:
            got = change[pid]
            if isinstance(got, BaseException):
                raise got
            return int(got)
        return Fake()._true(pid)

    return single


def findings_of(backend: Any) -> Judgement:
    return judge_declared(backend, declared())


# -- the generated world's judging, on a declared world ------------------------------
def test_a_correct_fake_has_no_findings_and_every_count() -> None:
    judgement = findings_of(Fake())
    assert judgement.findings == {"C2": [], "C4": [], "C5": [], "C7": []}
    counts = judgement.counts
    # Alive and not the caller: OWN+100, +200, +400; exited OWN+300, gone OWN+600.
    assert counts["C2"] == {"processes": 3, "threads": 0, "reuses": 0, "queries": 3, "forms": 1}
    assert counts["C5"] == {"processes": 2, "threads": 0, "reuses": 0, "queries": 2, "forms": 1}
    assert counts["C4"] == {"processes": 0, "threads": 1, "reuses": 0, "queries": 1, "forms": 1}
    # The listing: every process but the gone one, and the caller: 5; no records.
    assert counts["C7"] == {"processes": 5, "threads": 1, "reuses": 0, "queries": 2, "forms": 2}
    assert judgement.describe("C2") == "declared world: 3 processes, 3 queries, 1 forms"
    assert judgement.failed is None
    assert not judgement.isolated


@pytest.mark.parametrize(
    ("change", "rule", "words"),
    [
        ({OWN + 200: 0}, "C2", f"(PID {OWN + 200}, depth 1), running, reports session 3"),
        ({OWN + 100: 1}, "C2", "but the backend answered 1"),
        ({EXITED: not_found(EXITED, "gone")}, "C5", "exited, not yet reaped, reports session 2"),
        ({GONE: 2}, "C5", "was reaped: must raise ProcessNotFoundError (87), got 2"),
        ({GONE: access_denied(GONE, "x")}, "C5", "was reaped: must raise"),
        ({THREAD: 0}, "C4", f"thread id {THREAD} of world process"),
        ({THREAD: access_denied(THREAD, "x")}, "C4", "must raise ProcessNotFoundError (87)"),
        ({OWN + 400: KeyError("boom")}, "C2", "raised KeyError: 'boom'"),
        ({EXITED: KeyError("boom")}, "C5", "raised KeyError"),
        ({THREAD: KeyError("boom")}, "C4", f"session_id({THREAD}) of a thread of"),
    ],
)
def test_one_wrong_single_answer_is_found_under_its_rule(
    change: dict[int, Any], rule: str, words: str
) -> None:
    judgement = findings_of(Fake(single=answer_or_raise(change)))
    found = {name: items for name, items in judgement.findings.items() if items}
    assert list(found) == [rule], found
    assert len(found[rule]) == 1, found[rule]
    assert words in found[rule][0], found[rule]


def test_a_broken_answer_is_not_counted_as_judged() -> None:
    judgement = findings_of(Fake(single=answer_or_raise({OWN + 400: KeyError("x")})))
    assert judgement.counts["C2"]["processes"] == 2


def test_a_stranger_on_a_reaped_pid_may_answer_anything() -> None:
    class Taken(DeclaredWorld):
        def names_process(self, pid: int) -> bool | None:
            return pid == GONE or super().names_process(pid)

    world = Taken(TABLE, threads=[THREAD], exited=[EXITED], gone=[GONE])
    both: dict[str, Callable[..., Any]] = {"subset": lambda got: {**got, GONE: 7}}
    judgement = judge_declared(Fake(single=answer_or_raise({GONE: 7}), **both), world)
    assert judgement.findings == {"C2": [], "C4": [], "C5": [], "C7": []}
    assert judgement.counts["C5"]["processes"] == 2


@pytest.mark.parametrize(
    ("form", "change", "words"),
    [
        ("subset", lambda got: {**got, OWN + 200: 0}, "session_ids(7 world PIDs) lists world"),
        ("all", lambda got: {**got, OWN + 200: 0}, "session_ids(None) lists world process"),
        ("all", lambda got: {p: s for p, s in got.items() if p != EXITED}, "as absent"),
        ("all", lambda got: {p: s for p, s in got.items() if p != OWN}, "the caller (PID"),
        ("subset", lambda got: {**got, THREAD: 0}, f"lists PID {THREAD}, a thread id or reaped"),
        ("all", lambda got: {**got, GONE: 2}, f"lists PID {GONE}, a thread id or reaped PID"),
        ("subset", lambda got: {**got, OWN + 7: 1}, f"it was not asked about: [{OWN + 7}]"),
    ],
)
def test_one_wrong_listing_is_found_under_c7(
    form: str, change: Callable[..., Any], words: str
) -> None:
    judgement = findings_of(Fake(**{form: change}))
    found = {name: items for name, items in judgement.findings.items() if items}
    assert list(found) == ["C7"], found
    assert any(words in item for item in found["C7"]), found["C7"]


def test_strays_in_a_whole_listing_count_only_in_a_world_of_its_own() -> None:
    backend = Fake(all=lambda got: {**got, OWN + 7: 1})
    world = declared()
    shared = Judgement()
    _generated._judge_forest(backend, _generated._Declared(world), shared, isolated=False)
    assert shared.findings["C7"] == []
    own = Judgement()
    _generated._judge_forest(backend, _generated._Declared(world), own, isolated=True)
    assert own.findings["C7"] == [
        f"session_ids(None) lists PIDs naming no process of the world's own PID "
        f"namespace: [{OWN + 7}]"
    ]


def test_windows_listings_may_drop_exited_processes_held_by_a_handle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drop = {"all": lambda got: {p: s for p, s in got.items() if p != EXITED}}
    monkeypatch.setattr(_generated, "WINDOWS", True)
    assert findings_of(Fake(**drop)).findings["C7"] == []
    # ... but only from the whole listing: the subset asked for it.
    subset = {"subset": lambda got: {p: s for p, s in got.items() if p != EXITED}}
    assert len(findings_of(Fake(**subset)).findings["C7"]) == 1


def test_process_records_is_judged_where_the_backend_has_it() -> None:
    from sessionid_cffi._records import ProcessRecord

    class WithRecords(Fake):
        def process_records(self, fields: object = None) -> list[ProcessRecord]:
            rows = self._listing(None)
            rows[OWN + 100] = 9
            return [ProcessRecord(pid, s) for pid, s in rows.items()]  # type: ignore[call-arg]

    judgement = findings_of(WithRecords())
    assert judgement.counts["C7"]["forms"] == 3
    assert judgement.findings["C7"] == [
        f"process_records() lists world process declared-{OWN + 100} (PID {OWN + 100}, "
        "depth 1) as 9, but it reports session 2 from the inside"
    ]


def test_a_listing_that_raises_is_a_c7_finding() -> None:
    def boom(got: dict[int, int]) -> dict[int, int]:
        raise RuntimeError("down")

    judgement = findings_of(Fake(all=boom))
    assert judgement.findings["C7"] == ["session_ids(None) raised RuntimeError: down"]
    assert judgement.counts["C7"]["forms"] == 1  # the subset form before it


def test_the_declared_world_as_forest_records() -> None:
    world = World.declare(
        {OWN: 1, 10: 2, 20: 3, 30: 0}, threads=[40, 41], denied=[30], exited=[20], gone=[50]
    )
    forest = _generated._Declared(world)  # type: ignore[arg-type]
    assert (forest.self_pid, forest.self_session) == (OWN, 1)
    states = [(p.pid, p.session, p.state, p.tids) for p in forest.procs]
    assert states == [(10, 2, "alive", [40, 41]), (20, 3, "exited", []), (50, 0, "gone", [])]
    assert forest.names_process(41)
    assert forest.names_process(20)
    assert not forest.names_process(51)


# -- the generated world's shape, built on a simulated forest ----------------------
class Simulated(SimForest):
    """SimForest with the Linux-only steps the generated world takes."""

    def __init__(self) -> None:
        super().__init__()
        self.setsids: list[Proc] = []
        self.nohups: list[Proc] = []
        self.next_pid: int | None = None

    def setsid(self, proc: Proc) -> None:
        self.setsids.append(proc)

    def nohup(self, proc: Proc) -> None:
        self.nohups.append(proc)

    def _new_id(self) -> int:
        if self.next_pid is not None:
            pid, self.next_pid = self.next_pid, None
            return pid
        return super()._new_id()


def depth(proc: Proc) -> int:
    level, up = 1, proc.parent
    while up is not None:
        level, up = level + 1, up.parent
    return level


def ancestors(proc: Proc) -> list[Proc]:
    found, up = [], proc.parent
    while up is not None:
        found, up = [*found, up], up.parent
    return found


@pytest.fixture
def logins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux as root: logins anywhere (as on CI)."""
    monkeypatch.setattr(_generated, "LINUX", True)
    monkeypatch.setattr(_generated, "WINDOWS", False)
    monkeypatch.setattr(_generated, "can_login", lambda: True)
    monkeypatch.setattr(_generated, "root_may_login", lambda: True)


@pytest.mark.parametrize("seed", range(6))
def test_a_generated_world_holds_every_kind_of_process(logins: None, seed: int) -> None:
    forest, judgement = Simulated(), Judgement()
    _generated._build(forest, random.Random(seed), 16, judgement)
    procs = forest.procs
    assert len(procs) == 16
    assert "logins" not in judgement.missing
    inside = [p for p in procs if p.session != forest.self_session]
    # A running process inside a login at every depth 1-4.
    alive = {depth(p) for p in inside if p.state == "alive"}
    assert {1, 2, 3, 4} <= alive, forest.describe()
    # A login below a login (spine A's relogin), orphans, a running
    # grandchild through an adopted orphan.
    assert any(p.logins and any(a.logins for a in ancestors(p)) for p in procs)
    assert any(
        p.state == "alive" and p.parent and p.parent.orphan and p.parent.parent for p in procs
    )
    assert sum(p.orphan for p in procs) >= 2
    assert len(forest.setsids) >= 2
    assert len(forest.nohups) >= 2
    assert all(p.session != forest.self_session for p in forest.setsids[:2])
    # Threads in three processes, one of them inside a login; fates.
    with_threads = [p for p in procs if p.tids]
    assert len(with_threads) >= 2
    assert any(p in inside for p in with_threads)
    assert all(p.state == "alive" for p in with_threads)
    exited = [p for p in procs if p.state == "exited"]
    gone = [p for p in procs if p.state == "gone"]
    assert len(exited) >= 2, forest.describe()
    assert len(gone) >= 2, forest.describe()
    assert any(p in inside for p in exited)
    # A zombie's parent stays alive to hold it.
    for proc in exited:
        assert proc.parent is None or proc.parent.state == "alive" or proc.orphan


def test_without_logins_the_world_says_so_and_stays_in_the_callers_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_generated, "can_login", lambda: False)
    forest, judgement = Simulated(), Judgement()
    _generated._build(forest, random.Random(3), 12, judgement)
    assert "no process could start a login" in judgement.missing["logins"]
    assert {p.session for p in forest.procs} == {forest.self_session}
    assert len(forest.procs) == 12


def test_without_root_a_login_never_starts_below_a_login(
    logins: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_generated, "root_may_login", lambda: False)
    original = Simulated.login

    def login(self: Simulated, proc: Proc, uid: int | None = None) -> None:
        assert not proc.login_set, f"{proc!r} is below a login"
        original(self, proc, uid)
        proc.login_set = True

    monkeypatch.setattr(Simulated, "login", login)
    for seed in range(4):
        forest = Simulated()
        _generated._build(forest, random.Random(seed), 16, Judgement())
        assert any(p.logins for p in forest.procs)


def test_the_fates_exit_deep_processes_inside_logins_first(logins: None) -> None:
    forest = Simulated()
    top = forest.spawn(None)
    forest.login(top)
    middle = forest.spawn(top)
    deep = forest.spawn(middle)
    plain = [forest.spawn(None) for _ in range(6)]
    _generated._fates(forest, random.Random(1), keep=[top])
    assert top.state == "alive"
    assert deep.state == "exited"  # the first chosen: inside a login, deepest
    assert middle.state == "alive"  # holds its exited child
    chosen = [p for p in forest.procs if p.state != "alive"]
    assert len(chosen) == 4
    assert all(p in plain for p in chosen if p is not deep)
    assert [p.state for p in chosen].count("gone") == 2


def test_judging_here_builds_judges_and_closes_each_world(
    logins: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Simulated] = []

    def forest() -> Simulated:
        made.append(Simulated())
        return made[-1]

    monkeypatch.setattr(_generated, "RealForest", forest)
    judgement = _generated._judge_here(_Oracle(made), [5, 6], 10, isolated=False)
    assert judgement.seeds == [5, 6]
    assert len(made) == 2
    assert judgement.findings == {"C2": [], "C4": [], "C5": [], "C7": []}
    assert all(p.state == "gone" for f in made for p in f.procs)  # closed
    assert judgement.counts["C7"]["forms"] == 4  # two listings a world
    assert "seed 5, 6" in judgement.describe("C2")

    class Broken(Simulated):
        def spawn(self, parent: Proc | None, *, orphan: bool = False) -> Proc:
            raise _forest.ForestError("no agent")

    monkeypatch.setattr(_generated, "RealForest", Broken)
    failed = _generated._judge_here(_Oracle(made), [1], 10, isolated=False)
    assert failed.failed == "the generated world could not be built: no agent"


class _Oracle:
    """Answers from the latest simulated forest's own records."""

    name = "oracle"

    def __init__(self, forests: list[Simulated]) -> None:
        self.forests = forests

    def session_id(self, pid: int) -> int:
        return self.forests[-1].backend.session_id(pid)

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        forest = self.forests[-1]
        if pids is None:
            pids = [forest.self_pid] + [p.pid for p in forest.procs if p.state != "gone"]
        return forest.backend.session_ids(pids)


def test_pid_reuse_is_judged_on_every_query_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_reuse`` on a simulated forest whose next PID is what the seam
    wrote to ns_last_pid plus one (as the kernel does)."""
    forest = Simulated()
    written: list[str] = []

    class NsLastPid:
        def __enter__(self) -> NsLastPid:
            return self

        def __exit__(self, *exc: object) -> None:
            forest.next_pid = int(written[-1]) + 1

        def write(self, text: str) -> None:
            written.append(text)

    def fake_open(path: str, mode: str = "r") -> NsLastPid:
        assert (path, mode) == ("/proc/sys/kernel/ns_last_pid", "w")
        return NsLastPid()

    monkeypatch.setattr(_generated, "open", fake_open, raising=False)
    judgement = Judgement()
    _generated._reuse(_Oracle([forest]), forest, judgement)
    assert judgement.findings["C5"] == []
    assert len(written) == 2
    assert judgement.counts["C5"]["reuses"] == 2
    assert judgement.counts["C5"]["queries"] == 6
    assert judgement.counts["C5"]["forms"] == 3

    class Remembers(_Oracle):
        """Keeps a reaped process's session for its PID (a stale cache)."""

        seen: ClassVar[dict[int, int]] = {}

        def session_id(self, pid: int) -> int:
            return self.seen.setdefault(pid, super().session_id(pid))

    forest = Simulated()
    judgement = Judgement()
    _generated._reuse(Remembers([forest]), forest, judgement)
    assert len(judgement.findings["C5"]) == 2
    assert (
        "was reused: the process in session 2 was reaped and a newcomer reports "
        in (judgement.findings["C5"][0])
    )
    assert judgement.findings["C5"][0].endswith("but session_id answered 2")

    forest = Simulated()
    monkeypatch.setattr(Simulated, "_new_id", SimForest._new_id)  # the PID is not reused
    judgement = Judgement()
    _generated._reuse(_Oracle([forest]), forest, judgement)
    assert judgement.counts["C5"]["reuses"] == 0
    assert "the newcomer got PID" in judgement.missing["reuse"]


def test_judge_falls_back_to_the_callers_namespace(
    logins: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Simulated] = []
    monkeypatch.setattr(_generated, "RealForest", lambda: made.append(Simulated()) or made[-1])
    monkeypatch.setattr(_generated, "_judge_in_namespace", lambda *a: "no namespace here")
    monkeypatch.setattr(_generated.os, "geteuid", lambda: 0)
    judgement = _generated.judge(_Oracle(made), worlds=2, size=8, seed=40)
    assert judgement.seeds == [40, 41]
    assert judgement.missing["reuse"] == "no namespace here"
    isolated = Judgement(isolated=True)
    monkeypatch.setattr(_generated, "_judge_in_namespace", lambda *a: isolated)
    assert _generated.judge(_Oracle(made), worlds=1, size=8, seed=None) is isolated
    monkeypatch.setattr(_generated.os, "geteuid", lambda: 1000)
    judgement = _generated.judge(_Oracle(made), worlds=1, size=8, seed=3)
    assert "PID reuse is forced only as root" in judgement.missing["reuse"]


def test_sizing_reads_arguments_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_generated.WORLDS_ENV, raising=False)
    monkeypatch.delenv(_generated.SIZE_ENV, raising=False)
    assert _generated.sizing(None, None) == (1, 16)
    monkeypatch.setenv(_generated.WORLDS_ENV, "3")
    monkeypatch.setenv(_generated.SIZE_ENV, "40")
    assert _generated.sizing(None, None) == (3, 40)
    assert _generated.sizing(0, 1) == (0, 1)
    for bad in ((-1, 4), (1, 0)):
        with pytest.raises(ValueError, match="worlds must be >= 0 and size >= 1"):
            _generated.sizing(*bad)


def test_describe_names_the_seeds_and_the_namespace() -> None:
    judgement = Judgement(seeds=[7], isolated=True)
    judgement.counts["C5"].update(processes=3, reuses=2)
    assert judgement.describe("C5") == (
        "generated world in its own PID namespace (seed 7): 3 processes, 2 reuses"
    )
    assert Judgement().describe("C4") == "declared world: nothing declared for it"


# -- the rules on declared and model worlds ---------------------------------------
def test_check_contract_on_a_declared_world_names_the_part_and_the_rest() -> None:
    far = {pid: 0 for pid in (OWN + 100, OWN + 200, OWN + 300, OWN + 400)}
    with pytest.raises(ContractViolation) as caught:
        check_contract(Fake(single=answer_or_raise(far)), world=declared())  # type: ignore[arg-type]
    report = str(caught.value)
    c2 = next(line for line in report.splitlines() if line.startswith("  BROKEN C2:"))
    assert "C2: in the declared world: 3 processes, 3 queries, 1 forms: " in c2
    assert "(and" not in c2  # 2 of 3 are wrong (OWN+400 is in 0)
    listed = {pid: 0 for pid in TABLE}
    with pytest.raises(ContractViolation) as caught:
        check_contract(Fake(all=lambda got: listed), world=declared())  # type: ignore[arg-type]
    c7 = next(line for line in str(caught.value).splitlines() if "BROKEN C7" in line)
    assert c7.endswith("(and 1 more)")  # 4 wrong of 5: three shown


def test_a_declared_world_reports_what_it_judged_per_rule() -> None:
    report = check_contract(Fake(), world=declared())  # type: ignore[arg-type]
    assert report.judged["C4"] == "declared world: 1 threads, 1 queries, 1 forms"
    assert set(report.judged) == {"C2", "C4", "C5", "C7"}
    assert "judged on the world's own processes only" in report.notes["C2"]
    assert "C6" in report.skipped
    assert set(report.library) == {"C8", "C9"}
    assert "[declared world: 1 threads" in str(report)


def test_c7_cross_checks_the_listing_against_single_answers() -> None:
    class Disagrees(ModelBackend):
        def session_ids(self, pids: list[int] | None) -> dict[int, int]:
            return {pid: s + 1 for pid, s in super().session_ids(pids).items()}

    with pytest.raises(ContractViolation, match=r"C7: session_ids\(\) lists PID \d+ in session"):
        check_contract(Disagrees({OWN: 1, OWN + 100: 2}), rules=["C7"])

    class NotDword(ModelBackend):
        def session_ids(self, pids: list[int] | None) -> dict[int, int]:
            return {**super().session_ids(pids), OWN + 100: -5}

    with pytest.raises(ContractViolation, match=r"lists PID \d+ in -5, not a DWORD"):
        check_contract(NotDword({OWN: 1, OWN + 100: 2}), rules=["C7"])


def test_c10_with_aliasing_needs_the_low_bits_ignored() -> None:
    own = OWN & ~3

    class NoAlias(ModelBackend):
        def session_id(self, pid: int) -> int:
            if pid % 4:
                raise ProcessNotFoundError(pid)
            return super().session_id(pid)

    table = {own: 1, own + 400: 2}
    assert check_contract(ModelBackend(table, aliasing=True), rules=["C10"]).kept == ["C10"]
    with pytest.raises(ContractViolation, match=r"child PID\+1 .* must answer"):
        check_contract(NoAlias(table, aliasing=True), rules=["C10"])

    class Shifted(ModelBackend):
        def session_id(self, pid: int) -> int:
            return super().session_id(pid) + (pid % 4 == 3)

    with pytest.raises(ContractViolation, match=r"PID \d+\+3 answered session"):
        check_contract(Shifted(table, aliasing=True), rules=["C10"])


def test_c10_on_a_declared_world_uses_a_process_with_free_neighbours() -> None:
    # The first process whose next three PIDs are free is OWN+103.
    crowded = {OWN: 1, OWN + 100: 2, OWN + 101: 2, OWN + 102: 2, OWN + 103: 2, OWN + 200: 3}
    world = World.declare(crowded)
    with pytest.raises(ContractViolation, match=f"PID\\+1 of a running child.*PID {OWN + 104}\\)"):
        check_contract(_AliasingFake(crowded), world=world, rules=["C10"])  # type: ignore[arg-type]
    report = check_contract(_AliasingFake(crowded, alias=False), world=world, rules=["C10"])  # type: ignore[arg-type]
    assert report.kept == ["C10"]
    alone = World.declare({OWN: 1})
    report = check_contract(_AliasingFake({OWN: 1}), world=alone, rules=["C10"])  # type: ignore[arg-type]
    assert "cannot start a child" in report.skipped["C10"]


class _AliasingFake(Fake):
    """Answers PID+1..+3 like the PID (wrong on Linux)."""

    def __init__(self, table: dict[int, int], *, alias: bool = True) -> None:
        super().__init__()
        self.table, self.alias = table, alias

    def _true(self, pid: int) -> int:
        if pid in self.table:
            return self.table[pid]
        for below in (pid - 1, pid - 2, pid - 3) if self.alias else ():
            if below in self.table:
                return self.table[below]
        raise ProcessNotFoundError(pid)

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        found = {}
        for pid in self.table if pids is None else pids:
            try:
                found[pid] = self._true(pid)
            except ProcessNotFoundError:
                continue
        return found


def test_c11_on_a_declared_world_uses_its_own_processes() -> None:
    world = World.declare({OWN: 1, OWN + 100: 2, OWN + 200: 3, OWN + 300: 4})

    class Swapped(_AliasingFake):
        def session_id(self, pid: int) -> int:
            return 9 if pid == OWN + 200 else super().session_id(pid)

    table = {OWN: 1, OWN + 100: 2, OWN + 200: 3, OWN + 300: 4}
    with pytest.raises(ContractViolation, match="C11: 4 threads asked 200 times"):
        check_contract(Swapped(table, alias=False), world=world, rules=["C11"])  # type: ignore[arg-type]
    alone = World.declare({OWN: 1, OWN + 100: 1})
    report = check_contract(_AliasingFake({OWN: 1}, alias=False), world=alone, rules=["C11"])  # type: ignore[arg-type]
    assert "fewer than 2 distinct sessions" in report.skipped["C11"]


def test_c1_c3_c6_raw_calls_on_a_model() -> None:
    class RawZero(ModelBackend):
        """Answers a session for the caller that changes every call."""

        n = 0

        def session_id(self, pid: int) -> int:
            self.n += 1
            return super().session_id(pid) + (self.n >= 3)

    with pytest.raises(
        ContractViolation, match=r"C1: raw ProcessIdToSessionId\(\d+\) gave \(1, 2\)"
    ):
        check_contract(RawZero({OWN: 1}), rules=["C1"])
    report = check_contract(ModelBackend({OWN: 1, OWN + 100: 2}, denied=[OWN + 100]), rules=["C6"])
    assert report.kept == ["C6"]
    report = check_contract(ModelBackend({OWN: 1}), rules=["C6"])
    assert report.skipped["C6"] == "the model's table: no process is denied to the caller"


def test_overlapping_counts_queries_begun_while_another_pid_was_asked() -> None:
    assert contract._overlapping([]) == 0
    assert contract._overlapping([(0, 1, 10), (2, 3, 20)]) == 0  # one after the other
    assert contract._overlapping([(0, 3, 10), (1, 2, 20)]) == 1
    assert contract._overlapping([(0, 3, 10), (1, 2, 10)]) == 0  # the same PID's thread
    assert contract._overlapping([(0, 5, 10), (1, 2, 20), (3, 4, 30)]) == 2
    assert contract._overlapping([(0, 2, 10), (2, 3, 20)]) == 0  # ended as it began


def test_the_report_reads_rule_by_rule() -> None:
    report = ContractReport("b", "w", kept=["C1", "C2"], broken={"C3": "x"})
    report.skipped["C6"] = "why"
    report.library["C8"] = "lib"
    report.notes["C2"] = "part"
    report.judged["C2"] = "seen"
    assert str(report).splitlines() == [
        "contract check of backend 'b' on w:",
        "  BROKEN C3: x",
        "  kept   C1",
        "  kept   C2 [seen] (only in part: part)",
        "  library C8: lib",
        "  not checked C6: why",
    ]


def test_check_contract_refuses_sizing_with_a_world_and_names_every_missing_method() -> None:
    with pytest.raises(ValueError, match="worlds=, size= and seed= size the default"):
        check_contract(ModelBackend({OWN: 1}), world=declared(), seed=1)
    with pytest.raises(ValueError, match="not with world="):
        check_contract(ModelBackend({OWN: 1}), world=declared(), worlds=0)
    with pytest.raises(TypeError) as caught:
        check_contract(object())  # type: ignore[arg-type]
    assert ".session_id, .console_session_id, .session_ids" in str(caught.value)
    assert "object has none of these" in str(caught.value)


def test_check_contract_sorts_each_outcome_and_restores_the_last_error() -> None:
    from sessionid_cffi import lowlevel

    outcomes = {
        "C1": ContractViolation("no"),
        "C2": RuleSkipped("skip"),
        "C3": LibraryLevel("lib"),
        "C4": PartlyChecked("part"),
        "C5": KeyError("kit"),
    }

    def rule_for(name: str) -> Callable[[Any, Any], None]:
        def rule(backend: Any, world: Any) -> None:
            world.judged[name] = f"judged {name}"
            raise outcomes[name]

        return rule

    lowlevel._set_last_error(1234)
    rules = {name: rule_for(name) for name in outcomes}
    rules["C6"] = lambda backend, world: None
    saved = dict(contract.RULES)
    contract.RULES.update(rules)
    try:
        with pytest.raises(ContractViolation) as caught:
            check_contract(ModelBackend({OWN: 1}), rules=[*rules])
    finally:
        contract.RULES.clear()
        contract.RULES.update(saved)
    assert lowlevel.GetLastError() == 1234
    lines = str(caught.value).splitlines()
    assert "  BROKEN C1: no" in lines
    assert "  kept   C4 [judged C4] (only in part: part)" in lines
    assert "  library C3: lib" in lines
    assert "  not checked C2: skip" in lines
    assert "  kept   C6" in lines
    assert any(
        line.startswith("  not checked C5: the check itself failed") and "KeyError" in line
        for line in lines
    )


def test_the_backend_is_blamed_only_for_its_own_frames() -> None:
    backend = ModelBackend({OWN: 1})
    with pytest.raises(SessionIdError) as caught:
        backend.session_id(0)
    assert contract._raised_by_the_backend(caught.value, backend)
    assert not contract._raised_by_the_backend(caught.value, ModelBackend({OWN: 1}))
    assert not contract._raised_by_the_backend(ValueError(), backend)


def test_ask_refuses_what_no_backend_may_return() -> None:
    class Returns(ModelBackend):
        value: object = 0

        def session_id(self, pid: int) -> int:
            return self.value  # type: ignore[return-value]

    backend = Returns({OWN: 1})
    for bad in (True, -1, 2**32, 1.0, None):
        backend.value = bad
        with pytest.raises(ContractViolation, match="not a DWORD"):
            contract._ask(backend, OWN)
    for good in (0, 2**32 - 1):
        backend.value = good
        assert contract._ask(backend, OWN) == good


def test_expect_error_names_the_class_the_error_and_the_pid() -> None:
    backend = ModelBackend({OWN: 1, OWN + 100: 2}, denied=[OWN + 100])
    contract._expect_error(backend, OWN + 100, 5, "C6", "x")
    contract._expect_error(backend, OWN + 7, 87, "C3", "x")
    with pytest.raises(
        ContractViolation,
        match="must raise AccessDeniedError with winerror 5, but got ProcessNotFoundError",
    ):
        contract._expect_error(backend, OWN + 7, 5, "C6", "x")
    with pytest.raises(ContractViolation, match="with winerror 87, but got session 1"):
        contract._expect_error(backend, OWN, 87, "C3", "x")
    with pytest.raises(ContractViolation, match=r"C5: y \(PID \d+\) is in session 2, but"):
        contract._expect_session(backend, OWN, "C5", "y", truth=2)
    with pytest.raises(ContractViolation, match="must answer, but got"):
        contract._expect_session(backend, OWN + 7, "C5", "y")


# -- worlds -----------------------------------------------------------------------
def test_model_world_children_threads_and_missing_pids() -> None:
    model = ModelBackend({OWN: 1, 8: 0, 13: 2}, threads=[21], zombies=[13], denied=[8])
    world = ModelWorld(model)
    free = world._free_pid()
    assert free % 4 == 0
    assert free > max(OWN, 21)
    assert not world.names_process(free)
    with world.child() as child:
        assert child is not None
        assert (child.pid, child.truth) == (free, 1)
        assert model.session_id(child.pid) == 1
        child.exit()
        assert child.pid in model.zombies
    assert child.pid not in model.processes()
    with world.child(login=True) as login:
        assert login is not None
        assert login.truth == 3
        assert model.processes()[login.pid] == 3
    with world.thread_id() as tid:
        assert tid == free
        assert tid in model.threads()
    assert tid not in model.threads()
    assert world.missing_pids() == [0, free + 16, 0xFFFFFFFC]
    assert world.denied_pid() == 8
    assert world.login_unavailable() is None
    assert world.self_pid() == OWN
    assert world.self_truth() == 1


def test_model_world_without_the_caller_acts_from_a_usable_pid() -> None:
    world = ModelWorld(ModelBackend({5: 0, 9: 2, 12: 3}, zombies=[5], denied=[9]))
    assert (world.self_pid(), world.self_truth()) == (12, 3)
    with pytest.raises(LookupError, match="no process to act as the caller"):
        ModelWorld(ModelBackend({5: 0}, zombies=[5])).self_pid()


def test_model_world_finds_a_gap_when_the_table_reaches_the_top() -> None:
    world = ModelWorld(ModelBackend({0xFFFFFFFC: 1, 4: 0, 9: 0}, aliasing=False))
    assert world._free_pid() == 12
    aliasing = ModelWorld(ModelBackend({OWN & ~3: 1}, aliasing=True))
    assert aliasing.names_process((OWN & ~3) + 3)
    assert not aliasing.names_process((OWN & ~3) + 4)


def test_declared_world_answers_from_its_declaration() -> None:
    world = World.declare(
        {10: 2, 20: 3, 30: 0, 40: 5}, threads=[51, 50], denied=[30], exited=[40], gone=[60]
    )
    assert (world.self_pid(), world.self_truth()) == (10, 2)  # the caller is not declared
    assert world.denied_pid() == 30
    assert world.existing() == {20: 3}
    with world.thread_id() as tid:
        assert tid == 50
    assert world.missing_pids() == [0, 80, 0xFFFFFFFC]
    assert world.names_process(51)
    assert not world.names_process(60)
    assert "cannot start processes" in (world.login_unavailable() or "")
    aliasing = World.declare({OWN & ~3: 1, 400: 2}, aliasing=True)
    assert aliasing.names_process(403)
    assert aliasing.aliasing
    assert aliasing.self_pid() == (OWN & ~3 if OWN & ~3 == OWN else 400)
    with pytest.raises(LookupError):
        World.declare({10: 1}, denied=[10]).self_pid()


def test_listed_world_and_the_choice_of_world() -> None:
    listed = ListedWorld({7: 1, 9: 0})
    assert listed.self_pid() == (OWN if OWN in (7, 9) else 7)
    assert listed.missing_pids() == [0, 13, 1009, 0xFFFFFFFC]
    assert listed.self_truth() is None
    assert listed.names_process(7) is None
    with pytest.raises(LookupError, match="lists no process"):
        ListedWorld({}).self_pid()
    assert isinstance(world_for(ModelBackend({OWN: 1})), ModelWorld)
    assert isinstance(world_for(Fake()), ListedWorld)

    class Procfs(Fake):
        name = "procfs"
        live = False

    assert isinstance(world_for(Procfs()), ListedWorld)
    Procfs.live = True
    assert isinstance(world_for(Procfs()), _worlds.LiveWorld)


def test_the_base_world_offers_nothing() -> None:
    world = World()
    with world.child() as child:
        assert child is None
    with world.thread_id() as tid:
        assert tid is None
    assert world.self_truth() is None
    assert world.denied_pid() is None
    assert world.names_process(1) is None
    assert world.existing() == {}
    assert world.generated(object()) is None
    assert world.login_unavailable() == "a world: cannot start a new login"
    world.judged["C1"] = "x"
    assert world.judged == {"C1": "x"}
    for method in (world.self_pid, world.missing_pids):
        with pytest.raises(NotImplementedError):
            method()


def test_a_live_world_with_no_generated_worlds_judges_none() -> None:
    assert _worlds.LiveWorld(worlds=0, size=4).generated(object()) is None
    world = declared()
    first = world.generated(Fake())
    assert first is not None
    assert world.generated(Fake()) is not first
    backend = Fake()
    assert world.generated(backend) is world.generated(backend)  # once per backend


# -- the forests' oracle ----------------------------------------------------------
def test_the_expected_model_holds_exactly_the_records() -> None:
    forest = SimForest()
    a = forest.spawn(None)
    forest.login(a)
    b = forest.spawn(a)
    tid = forest.add_thread(b)
    c = forest.spawn(None)
    forest.exit(c)
    d = forest.spawn(None)
    forest.exit(d)
    forest.reap(d)
    model = forest.expected_model()
    assert model.processes() == {forest.self_pid: 1, a.pid: 2, b.pid: 2, c.pid: 1}
    assert model.threads() == {tid}
    assert set(model.zombies) == {c.pid}
    assert forest.find(b.pid) is b
    assert forest.find(99) is None
    text = forest.describe()
    assert text.splitlines()[0] == f"test process pid={forest.self_pid} session=1"
    assert f"    <n2 pid={b.pid} parent=n1 s=2 alive> tids=[{tid}]" in text
    assert "logins=1" in text.splitlines()[1]


def test_pids_to_check_and_compare_find_each_disagreement() -> None:
    forest = SimForest()
    a = forest.spawn(None)
    forest.login(a)
    tid = forest.add_thread(a)
    gone = forest.spawn(None)
    forest.exit(gone)
    forest.reap(gone)
    pids = forest.pids_to_check(extra=[5])
    assert {forest.self_pid, a.pid, tid, gone.pid, gone.pid + 3, 5} <= set(pids)
    model = forest.expected_model()
    assert _forest.compare(forest.backend, model, pids, forest) == []

    class Wrong(ModelBackend):
        def session_id(self, pid: int) -> int:
            return 0 if pid == a.pid else super().session_id(pid)

    live = Wrong(model.processes(), threads=model.threads())
    found = _forest.compare(live, model, pids, forest)
    assert found == [
        f"PID {a.pid} ({a!r}): live ('ok', 0), model ('ok', 2)",
        f"session_ids(): PID {a.pid} live 0, model 2",
    ]
    answers = _forest.answer(model, tid)
    assert answers == ("error", 87)


def test_parent_exit_releases_children_only_where_the_os_does() -> None:
    for aliasing, released in ((True, "gone"), (False, "exited")):
        forest = SimForest(aliasing=aliasing)
        parent = forest.spawn(None)
        child = forest.spawn(parent)
        forest.exit(child)
        forest.exit(parent)
        assert (parent.state, child.state) == ("exited", released)
        assert forest.self_pid % (4 if aliasing else 1) == 0
        assert child.pid - parent.pid == (4 if aliasing else 1)


def test_the_simulated_backend_answers_from_the_records() -> None:
    forest = SimForest(aliasing=True)
    a = forest.spawn(None)
    backend = forest.backend
    assert backend.session_id(a.pid + 3) == 1
    assert backend.session_id(forest.self_pid + 1) == 1
    assert backend.console_session_id() is None
    forest.exit(a)
    assert backend.session_id(a.pid) == 1
    forest.reap(a)
    with pytest.raises(ProcessNotFoundError):
        backend.session_id(a.pid)
    assert backend.session_ids([forest.self_pid, a.pid]) == {forest.self_pid: 1}
    assert backend.session_ids(None) == {}
    assert forest.names_process(forest.self_pid + 2)
    assert not forest.names_process(a.pid + 8)


# -- fakes and strategies ---------------------------------------------------------
def test_fake_records_show_owners_then_users() -> None:
    fake = make_fake({10: 1, 11: 1, 12: 0}, users={1: "alice"}, owners={11: "root"}, self_session=1)
    users = {r.pid: r.user for r in fake.process_records()}
    assert users == {10: "alice", 11: "root", 12: None, OWN: "alice"}
    clone = copy.copy(fake)
    assert isinstance(clone, FakeSessions)
    assert clone.owners == fake.owners
    assert clone.owners is not fake.owners
    assert not clone._installed
    clone.reap(11)
    assert 11 not in clone.owners
    assert 11 in fake.owners


def test_fake_without_the_caller_raises_only_for_the_caller() -> None:
    fake = make_fake({10: 1})
    with pytest.raises(CallerNotInFakeError):
        fake.session_id(OWN)
    with pytest.raises(ProcessNotFoundError):
        fake.session_id(OWN + 1)
    aliasing = make_fake({4: 1}, aliasing=True)
    with pytest.raises(CallerNotInFakeError):
        aliasing.session_id((OWN & ~3) + 3)
    with pytest.raises(ValueError, match="puts this process"):
        make_fake({OWN: 2}, self_session=1)
    assert make_fake({OWN: 2}, self_session=2).session_id(OWN) == 2


def test_strategies_refuse_ranges_with_nothing_in_them() -> None:
    from sessionid_cffi.testing import strategies

    with pytest.raises(ValueError, match="leaves no Windows PID"):
        strategies.pids(windows=True, max_value=3)
    with pytest.raises(ValueError, match="leaves no PID"):
        strategies.pids(max_value=0)
    strategies.pids(windows=True, max_value=4)
    strategies.pids(max_value=1)
    with pytest.raises(ValueError, match="must be a DWORD"):
        strategies.session_numbers(max_value=2**32)
    with pytest.raises(ValueError, match="must be a DWORD"):
        strategies.session_numbers(max_value=-1)
    strategies.session_numbers(max_value=2**32 - 1)
    with pytest.raises(ValueError, match="0 <= min_size <= max_size"):
        strategies.process_tables(min_size=3, max_size=2).example()
    with pytest.raises(AttributeError):
        strategies.no_such_name  # noqa: B018


# -- exact reports: a user reads these lines --------------------------------------
def broken_lines(backend: Any, rules: list[str], world: World | None = None) -> list[str]:
    with pytest.raises(ContractViolation) as caught:
        check_contract(backend, rules=rules, world=world)
    return [line for line in str(caught.value).splitlines() if "BROKEN" in line]


class ExitedForgotten(ModelBackend):
    """Answers 87 for an exited process before it is reaped."""

    def session_id(self, pid: int) -> int:
        if pid in self.zombies:
            raise not_found(pid, "exited")
        return super().session_id(pid)


class RemembersReaped(ModelBackend):
    """Keeps answering a reaped child's session."""

    reaped: ClassVar[dict[int, int]] = {}

    def reap(self, pid: int) -> None:
        self.reaped[pid] = self.processes()[pid]
        super().reap(pid)

    def session_id(self, pid: int) -> int:
        if pid in self.reaped:
            return self.reaped[pid]
        return super().session_id(pid)


class ForgetsLoginChildren(ModelBackend):
    """A child in a new login answers the caller's session."""

    def session_id(self, pid: int) -> int:
        session = super().session_id(pid)
        return 1 if session == 2 else session


class AnswersThreadIds(ModelBackend):
    def session_id(self, pid: int) -> int:
        return 1 if pid in self.threads() else super().session_id(pid)


class DeniedAnswers(ModelBackend):
    def session_id(self, pid: int) -> int:
        return self.processes()[pid] if pid in self.denied else super().session_id(pid)


class MissingIsZero(ModelBackend):
    def session_id(self, pid: int) -> int:
        try:
            return super().session_id(pid)
        except ProcessNotFoundError:
            return 0


@pytest.mark.parametrize(
    ("backend", "rule", "line"),
    [
        (
            ExitedForgotten({OWN: 1}),
            "C5",
            r"C5: an exited child not yet reaped \(PID \d+\) must answer, but got: \[WinError 87\] "
            r"process \d+ not found: exited",
        ),
        (
            RemembersReaped({OWN: 1}),
            "C5",
            r"C5: a reaped child \(PID \d+\) must raise ProcessNotFoundError with winerror 87, "
            r"but got session 2",
        ),
        (
            ForgetsLoginChildren({OWN: 1}),
            "C5",
            r"C5: a running child \(PID \d+\) is in session 2, but the backend answered 1",
        ),
        (
            AnswersThreadIds({OWN: 1}),
            "C4",
            r"C4: a thread id \(PID \d+\) must raise ProcessNotFoundError with winerror 87, "
            r"but got session 1",
        ),
        (
            DeniedAnswers({OWN: 1, OWN + 100: 2}, denied=[OWN + 100]),
            "C6",
            r"C6: a denied process \(PID \d+\) must raise AccessDeniedError with winerror 5, "
            r"but got session 2",
        ),
        (
            MissingIsZero({OWN: 1}),
            "C3",
            r"C3: a PID naming no process \(PID 0\) must raise ProcessNotFoundError with "
            r"winerror 87, but got session 0",
        ),
        (
            ForgetsLoginChildren({OWN: 1}),
            "C2",
            r"C2: a child in a new login \(PID \d+\) is in session 2, but the backend answered 1",
        ),
        (
            MissingIsZero({OWN: 1}),
            "C10",
            r"C10: PID\+1 of a running child, naming no process \(no aliasing here\) \(PID \d+\) "
            r"must raise ProcessNotFoundError with winerror 87, but got session 0",
        ),
    ],
)
def test_a_broken_rule_reads_exactly(backend: ModelBackend, rule: str, line: str) -> None:
    RemembersReaped.reaped.clear()
    lines = broken_lines(backend, [rule])
    assert len(lines) == 1
    assert re.fullmatch(rf"  BROKEN {rule}: " + line, lines[0]), lines[0]


def test_c5_with_the_running_child_wrong_reads_exactly() -> None:
    class RunningWrong(ModelBackend):
        def session_id(self, pid: int) -> int:
            session = super().session_id(pid)
            return 7 if pid != OWN and pid not in self.zombies else session

    (line,) = broken_lines(RunningWrong({OWN: 1}), ["C5"])
    assert re.fullmatch(
        r"  BROKEN C5: C5: a running child \(PID \d+\) is in session 2, but the backend "
        r"answered 7",
        line,
    ), line


def test_c10_blames_an_answer_only_while_the_pid_still_names_nothing() -> None:
    """A busy machine: another job's process takes PID+n of the child
    between the world's check and the backend's answer (here the backend
    itself starts it, just before answering). That answer is right; only
    a PID that still names nothing must raise 87."""

    class TakenMeanwhile(ModelBackend):
        taken: ClassVar[set[int]] = {1}

        def session_id(self, pid: int) -> int:
            child = min((p for p in self.processes() if p != OWN), default=None)
            if child is not None and pid - child in self.taken and pid not in self.processes():
                self.spawn(pid, 5)  # another job's process, in its own login
            return super().session_id(pid)

    assert check_contract(TakenMeanwhile({OWN: 1}), rules=["C10"]).kept == ["C10"]
    TakenMeanwhile.taken = {1, 2, 3}
    report = check_contract(TakenMeanwhile({OWN: 1}), rules=["C10"])
    assert re.fullmatch(r"PIDs after child \d+ were taken while asked", report.skipped["C10"])

    class ZeroForFree(ModelBackend):  # the PID is never taken: an alias
        def session_id(self, pid: int) -> int:
            return 0 if pid not in self.processes() else super().session_id(pid)

    (line,) = broken_lines(ZeroForFree({OWN: 1}), ["C10"])
    assert "PID+1 of a running child, naming no process" in line


def test_c10_with_aliasing_reads_exactly() -> None:
    own = OWN & ~3

    class Plus(ModelBackend):
        def session_id(self, pid: int) -> int:
            return super().session_id(pid) + pid % 4

    lines = broken_lines(Plus({own: 1}, aliasing=True), ["C10"])
    assert re.fullmatch(
        r"  BROKEN C10: C10: PID \d+\+1 answered session 2, PID \d+ session 1; Windows "
        r"ignores the low two bits",
        lines[0],
    ), lines
    got = [ModelBackend({own: 1, own + 8: 2}, aliasing=True)]
    assert check_contract(got[0], rules=["C10"]).kept == ["C10"]


def test_the_skips_and_library_notes_read_exactly() -> None:
    report = check_contract(ModelBackend({OWN: 1}), rules=["C6", "C8", "C9"])
    assert report.skipped == {"C6": "the model's table: no process is denied to the caller"}
    assert report.library == {
        "C8": "the library refused every bad input before any backend was asked "
        "(checked_pid and the raw API's out-pointer check): nothing about the backend",
        "C9": "the raw call of a backend that is not native keeps its last error in the "
        "library's own thread-local, not the backend's: nothing about the backend",
    }
    report = check_contract(Fake(), world=World.declare({OWN: 1}), rules=["C4", "C11"])
    assert report.skipped["C4"] == "the declared world: cannot start a thread"
    assert report.skipped["C11"] == (
        "fewer than 2 distinct sessions can be made here, so wrong answers cannot be told "
        "apart (a declared world cannot start processes)"
    )
    listed = check_contract(Fake(), rules=["C11"])  # a ListedWorld: no truth
    assert listed.skipped["C11"] == (
        "the processes the backend lists: no truth to tell the threads' answers apart"
    )


class NoLogins(ModelWorld):
    """A model world where no child can start a login of its own."""

    @contextlib.contextmanager
    def child(self, *, login: bool = False) -> Iterator[Any]:
        if login:
            yield None
            return
        with super().child() as child:
            yield child

    def login_unavailable(self) -> str | None:
        return "no logins here"


def test_c5_in_session_0_is_checked_only_in_part() -> None:
    zero = ModelBackend({OWN: 0})
    report = check_contract(zero, world=NoLogins(zero), rules=["C5"])
    assert report.notes["C5"] == (
        "the exited child is in session 0, so an answer of 0 made up for exited processes "
        "cannot be told apart: no logins here"
    )
    model = ModelBackend({OWN: 3})
    report = check_contract(model, world=NoLogins(model), rules=["C5"])
    assert report.kept == ["C5"]
    assert "C5" not in report.notes

    class ZombiesZero(ModelBackend):
        def session_id(self, pid: int) -> int:
            return 0 if pid in self.zombies else super().session_id(pid)

    broken = ZombiesZero({OWN: 3})
    lines = broken_lines(broken, ["C5"], world=NoLogins(broken))
    assert "an exited child not yet reaped" in lines[0]


def test_c5_reports_a_child_that_a_stranger_keeps() -> None:
    class Kept(ModelWorld):
        @contextlib.contextmanager
        def child(self, *, login: bool = False) -> Iterator[Any]:
            with super().child(login=login) as child:
                child.reap = lambda: False  # type: ignore[method-assign]
                yield child

    model = ModelBackend({OWN: 1})
    report = check_contract(model, world=Kept(model), rules=["C5"])
    assert re.fullmatch(
        r"the model's table: reaped child \d+ still names a process \(held by another "
        r"process, or its PID was reused\); its running and exited answers were checked",
        report.skipped["C5"],
    ), report.skipped


def test_c3_and_c6_raw_calls_must_leave_the_pointer_untouched() -> None:
    from sessionid_cffi import lowlevel

    calls: list[int] = []
    original = lowlevel._process_id_to_session_id_on

    def leaky(backend: Any, pid: int, out: Any) -> int:
        ok = original(backend, pid, out)
        if not ok:
            calls.append(pid)
            out[0] = 5
        return ok

    model = ModelBackend({OWN: 1, OWN + 100: 2}, denied=[OWN + 100])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lowlevel, "_process_id_to_session_id_on", leaky)
        lines = broken_lines(model, ["C3", "C6"])
    assert lines == [
        "  BROKEN C3: C3: raw call for missing PID 0 gave BOOL 0, last error 87, "
        "out-pointer 0x5; expected 0, 87 and the pointer untouched",
        f"  BROKEN C6: C6: raw call for denied PID {OWN + 100} gave BOOL 0, last error 5, "
        "out-pointer 0x5; expected 0, 5 and the pointer untouched",
    ]
    assert calls[0] == 0


def test_c8_reaches_a_native_backend_through_its_spy() -> None:
    class Native(ModelBackend):
        asked: ClassVar[list[int]] = []

        def native_process_id_to_session_id(self, pid: int, out: Any) -> int:
            self.asked.append(pid)
            out[0] = self.session_id(pid)
            return 1

    spy = contract._NativeSpy(Native({OWN: 4}))
    from sessionid_cffi._generated_ffi import ffi

    out = ffi.new("DWORD *", 0)
    assert spy.native_process_id_to_session_id(OWN, out) == 1
    assert (out[0], spy.asked, Native.asked) == (4, [OWN], [OWN])
    plain = contract._Spy(ModelBackend({OWN: 4}))
    assert (plain.session_id(OWN), plain.asked, plain.name) == (4, [OWN], "model")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-1, ValueError),
        (2**32, ValueError),
        (2**64, ValueError),
        ("1", TypeError),
        (1.0, TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_c8_reports_a_library_that_lets_one_bad_pid_through(
    monkeypatch: pytest.MonkeyPatch, value: object, expected: type[Exception]
) -> None:
    real = contract.checked_pid

    def lax(pid: object) -> int:
        if pid is value or (type(pid) is type(value) and pid == value):
            return 1
        return real(pid)

    monkeypatch.setattr(contract, "checked_pid", lax)
    (line,) = broken_lines(ModelBackend({OWN: 1}), ["C8"])
    assert line == f"  BROKEN C8: C8: process_id_to_session_id({value!r}) did not raise"
    wrong = TypeError if expected is ValueError else ValueError

    def confused(pid: object) -> int:
        if pid is value or (type(pid) is type(value) and pid == value):
            raise wrong("no")
        return real(pid)

    monkeypatch.setattr(contract, "checked_pid", confused)
    (line,) = broken_lines(ModelBackend({OWN: 1}), ["C8"])
    assert line == (
        f"  BROKEN C8: C8: process_id_to_session_id({value!r}) raised {wrong.__name__}, "
        f"expected {expected.__name__}"
    )


def test_c8_reports_a_null_pointer_that_reaches_the_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sessionid_cffi import lowlevel

    original = lowlevel._process_id_to_session_id_on

    def asks_first(backend: Any, pid: int, out: Any) -> int:
        backend.session_id(pid)
        return original(backend, pid, out)

    monkeypatch.setattr(lowlevel, "_process_id_to_session_id_on", asks_first)
    (line,) = broken_lines(ModelBackend({OWN: 1}), ["C8"])
    assert line == (
        f"  BROKEN C8: C8: a raw call with a NULL out-pointer reached the backend (asked [{OWN}])"
    )
    monkeypatch.setattr(lowlevel, "_process_id_to_session_id_on", lambda b, p, o: 1)
    (line,) = broken_lines(ModelBackend({OWN: 1}), ["C8"])
    assert line == "  BROKEN C8: C8: raw call with a NULL out-pointer gave BOOL 1"


# -- the forests' helpers that ask the OS, fast -----------------------------------
def in_child(code: Callable[[], object]) -> object:
    """Run ``code`` in a forked child (so that what it changes of the
    process, a login or the subreaper flag, stays there); its result."""
    import pickle

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write_end, pickle.dumps(code()))
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return pickle.loads(data)


needs_root = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and os.geteuid() == 0), reason="root on Linux"
)


@needs_root
def test_a_login_shows_in_the_forest_helpers() -> None:
    def login_then_ask() -> tuple[bool, int, bool, int]:
        before = (_forest._own_login_set(), _forest.own_raw_session())
        with open("/proc/self/loginuid", "w") as file:
            file.write("4343")
        with open("/proc/self/sessionid") as file:
            session = int(file.read())
        return (*before, _forest._own_login_set(), _forest.own_raw_session() - session)

    with open("/proc/self/loginuid") as file:  # a forked child inherits it
        unset_before = file.read().strip() == "4294967295"
    was_set, raw_before, is_set, difference = in_child(login_then_ask)  # type: ignore[misc]
    assert was_set is not unset_before
    assert is_set is True
    assert difference == 0  # the raw session is the one the kernel gave the login
    assert raw_before != 0 or not unset_before
    assert _forest.mapped(0xFFFFFFFF) == 0
    assert _forest.mapped(5) == 5
    assert _forest.mapped(0xFFFFFFFE) == 0xFFFFFFFE


def test_login_uid_and_root_follow_the_effective_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_forest.os, "geteuid", lambda: 0)
    assert _forest.login_uid() == 4242
    assert _forest.root_may_login() is _forest.LINUX
    monkeypatch.setattr(_forest.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(_forest.os, "getuid", lambda: 1001)
    assert _forest.login_uid() == 1001
    assert _forest.root_may_login() is False


def test_the_agent_python_is_this_one_unless_the_caller_may_not_run_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _forest.agent_python() == sys.executable
    monkeypatch.setattr(_forest.os, "access", lambda path, mode: False)
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: f"/found/{name}")
    assert _forest.agent_python() == "/found/python3"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert _forest.agent_python() == sys.executable


@needs_root
def test_can_login_probes_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_forest, "_CAN_LOGIN", None)
    probes: list[object] = []
    real_run = _forest.subprocess.run

    def run(*args: Any, **options: Any) -> Any:
        probes.append(args)
        return real_run(*args, **options)

    monkeypatch.setattr(_forest.subprocess, "run", run)
    assert _forest.can_login() is True  # root, audit sessions present
    assert _forest.can_login() is True
    assert len(probes) == 1  # asked once
    monkeypatch.setattr(_forest, "_CAN_LOGIN", None)
    monkeypatch.setattr(_forest, "login_uid", lambda: "no-uid")  # the kernel refuses it
    assert _forest.can_login() is False
    monkeypatch.setattr(_forest, "_CAN_LOGIN", None)
    monkeypatch.setattr(_forest, "login_uid", lambda: 4242)
    monkeypatch.setattr(_forest, "LINUX", False)
    assert _forest.can_login() is False
    assert len(probes) == 2  # not Linux: no probe at all


def test_the_subreaper_flag_is_set_and_cleared() -> None:
    import ctypes

    def flag() -> int:
        value = ctypes.c_int(-1)
        ctypes.CDLL(None).prctl(37, ctypes.byref(value), 0, 0, 0)  # PR_GET_CHILD_SUBREAPER
        return value.value

    def toggle() -> tuple[int, int]:
        _forest._set_subreaper(True)
        on = flag()
        _forest._set_subreaper(False)
        return on, flag()

    assert in_child(toggle) == (1, 0)


def test_names_process_and_still_exists_ask_the_os() -> None:
    import subprocess
    import threading

    assert _forest.names_process(OWN)
    done = threading.Event()
    thread = threading.Thread(target=done.wait)
    thread.start()
    try:
        assert _forest.names_process(thread.native_id)  # a thread id too
    finally:
        done.set()
        thread.join()
    child = subprocess.Popen(["sleep", "60"])
    proc = Proc("n1", child.pid, None, 0, started_at=_forest.process_started_at(child.pid))
    assert proc.still_exists()
    assert not Proc("n2", child.pid, None, 0, started_at=1).still_exists()  # another start
    child.kill()
    child.wait()
    assert not _forest.names_process(child.pid)
    assert not proc.still_exists()
    assert _forest.Forest().names_process(OWN)


# -- the oracle: compare ----------------------------------------------------------
class Strangers(SimForest):
    """A simulated OS where ``strangers`` took PIDs (none of the forest's)."""

    def __init__(self, *, aliasing: bool = False) -> None:
        super().__init__(aliasing=aliasing)
        self.strangers: set[int] = set()

    def names_process(self, pid: int) -> bool:
        key = pid & ~3 if self.aliasing else pid
        if key in self.strangers:
            return True
        live = [p for p in self.procs if p.state != "gone"]
        return any(p.pid == key or key in p.tids for p in live) or key == self.self_pid


class Stale(ModelBackend):
    """The forest's model, but answering ``extra`` PIDs too."""

    def __init__(self, model: ModelBackend, extra: dict[int, int]) -> None:
        super().__init__(model.processes(), threads=model.threads(), aliasing=model.aliasing)
        self.extra = extra

    def session_id(self, pid: int) -> int:
        key = pid & ~3 if self.aliasing else pid
        return self.extra[key] if key in self.extra else super().session_id(pid)

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        found = super().session_ids(pids)
        for pid in pids or []:
            key = pid & ~3 if self.aliasing else pid
            if key in self.extra:
                found[pid] = self.extra[key]
        return found


def reaped_forest(aliasing: bool = False) -> tuple[Strangers, Proc, Proc, int]:
    forest = Strangers(aliasing=aliasing)
    alive = forest.spawn(None)
    forest.login(alive)
    tid = forest.add_thread(alive)
    gone = forest.spawn(None)
    forest.exit(gone)
    forest.reap(gone)
    return forest, alive, gone, tid


def test_compare_forgives_only_a_stranger_on_a_reaped_pid() -> None:
    forest, _alive, gone, _tid = reaped_forest()
    model = forest.expected_model()
    live = Stale(model, {gone.pid: 1})
    assert _forest.compare(live, model, [gone.pid], forest) == [
        f"PID {gone.pid} ({gone!r}): live ('ok', 1), model ('error', 87)",
        f"session_ids(): PID {gone.pid} live 1, model None",
    ]
    forest.strangers.add(gone.pid)
    assert _forest.compare(live, model, [gone.pid], forest) == []


def test_compare_never_forgives_a_thread_or_a_process_of_ours() -> None:
    forest, alive, _gone, tid = reaped_forest()
    forest.strangers.update({tid, alive.pid})
    model = forest.expected_model()
    live = Stale(model, {tid: 2})
    assert _forest.compare(live, model, [tid], forest) == [
        f"PID {tid} (a thread id): live ('ok', 2), model ('error', 87)",
        f"session_ids(): PID {tid} live 2, model None",
    ]
    wrong = Stale(model, {alive.pid: 1})
    assert _forest.compare(wrong, model, [alive.pid], forest)[0] == (
        f"PID {alive.pid} ({alive!r}): live ('ok', 1), model ('ok', 2)"
    )
    own = Stale(model, {forest.self_pid: 9})
    assert _forest.compare(own, model, [forest.self_pid], forest)[0] == (
        f"PID {forest.self_pid} (not a forest PID): live ('ok', 9), model ('ok', 1)"
    )


def test_compare_forgives_a_stranger_that_only_the_bulk_listing_saw() -> None:
    forest, _alive, gone, _tid = reaped_forest()
    model = forest.expected_model()

    class BulkOnly(ModelBackend):
        def session_ids(self, pids: list[int] | None) -> dict[int, int]:
            return {**super().session_ids(pids), gone.pid: 3}

    live = BulkOnly(model.processes(), threads=model.threads())
    assert _forest.compare(live, model, [gone.pid], forest) == [
        f"session_ids(): PID {gone.pid} live 3, model None"
    ]
    forest.strangers.add(gone.pid)
    assert _forest.compare(live, model, [gone.pid], forest) == []


def test_compare_with_aliasing_looks_at_the_owning_pid() -> None:
    forest, _alive, gone, _tid = reaped_forest(aliasing=True)
    model = forest.expected_model()
    live = Stale(model, {gone.pid: 1})
    assert len(_forest.compare(live, model, [gone.pid + 3], forest)) == 2
    assert f"({gone!r})" in _forest.compare(live, model, [gone.pid + 3], forest)[0]
    forest.strangers.add(gone.pid)
    assert _forest.compare(live, model, [gone.pid + 3], forest) == []


def test_compare_counts_queries_only_for_real_forests() -> None:
    forest, alive, _gone, _tid = reaped_forest()
    model = forest.expected_model()
    before = _forest.STATS["queries"]
    _forest.compare(model, model, [alive.pid, forest.self_pid], forest)
    assert _forest.STATS["queries"] == before
    forest.real = True
    _forest.compare(model, model, [alive.pid, forest.self_pid], forest)
    assert _forest.STATS["queries"] == before + 2


def test_pids_to_check_takes_neighbours_bounds_and_only_free_strangers() -> None:
    forest = Strangers()
    a = forest.spawn(None)
    tid = forest.add_thread(a)
    forest.strangers.update({a.pid + 2, 5})
    pids = forest.pids_to_check(extra=[-1, 0, 5, 6, 0xFFFFFFFF, 2**32])
    ours = [forest.self_pid, a.pid, tid]
    expected = {0, 6, 0xFFFFFFFF, *ours}
    expected |= {p + n for p in ours[:2] for n in (1, 2, 3)} - {a.pid + 2}
    assert pids == sorted(expected)
    aliasing = Strangers(aliasing=True)
    b = aliasing.spawn(None)
    aliasing.strangers.add(b.pid + 4)
    assert b.pid + 3 in aliasing.pids_to_check()  # an alias of ours, though named


def test_describe_indents_by_depth_and_shows_threads_and_logins() -> None:
    forest = SimForest()
    a = forest.spawn(None)
    b = forest.spawn(a)
    c = forest.spawn(b)
    forest.login(c)
    forest.login(c)
    tid = forest.add_thread(b)
    assert forest.describe().splitlines() == [
        "test process pid=1000 session=1",
        f"  <n1 pid={a.pid} parent=- s=1 alive>",
        f"    <n2 pid={b.pid} parent=n1 s=1 alive> tids=[{tid}]",
        f"      <n3 pid={c.pid} parent=n2 s=3 alive> logins=2",
    ]


def test_the_simulated_forest_numbers_and_answers_like_its_os() -> None:
    plain, aliasing = SimForest(), SimForest(aliasing=True)
    assert (plain.self_pid, aliasing.self_pid) == (1000, 4000)
    assert (plain.parent_exit_releases_children, aliasing.parent_exit_releases_children) == (
        False,
        True,
    )
    assert (plain.orphans_may_exit, aliasing.orphans_may_exit) == (True, False)
    assert plain.expected_model().aliasing is False
    assert aliasing.expected_model().aliasing is True
    assert plain.spawn(None).orphan is False
    assert plain.spawn(None, orphan=True).orphan is True
    proc = aliasing.spawn(None)
    tid = aliasing.add_thread(proc)
    assert aliasing.names_process(tid + 3)
    assert not aliasing.names_process(tid + 4)
    assert not plain.names_process(1001 + 100)
    with pytest.raises(ProcessNotFoundError) as caught:
        plain.backend.session_id(0)
    assert (caught.value.pid, str(caught.value)) == (
        0,
        "[WinError 87] process 0 not found: no such simulated process",
    )
    plain.procs.append(Proc("zero", 0, None, 5))
    with pytest.raises(ProcessNotFoundError):
        plain.backend.session_id(0)  # PID 0 names no process, whatever the records say


# -- the generated world: judging words and structure ------------------------------
def test_where_names_depth_orphanhood_and_login() -> None:
    forest = SimForest()
    a = forest.spawn(None, orphan=True)
    b = forest.spawn(a)
    forest.login(b)
    assert _generated._where(a) == f"world process n1 (PID {a.pid}, depth 1, an orphan)"
    assert _generated._where(b) == (
        f"world process n2 (PID {b.pid}, depth 2, in a login of its own)"
    )


def test_a_broken_answer_does_not_stop_the_judging_of_the_others() -> None:
    forest = SimForest()
    procs = [forest.spawn(None) for _ in range(3)]
    gone = forest.spawn(None)
    forest.exit(gone)
    forest.reap(gone)
    for proc in procs:
        forest.add_thread(proc)

    class Raises(ModelBackend):
        def session_id(self, pid: int) -> int:
            if pid in (procs[0].pid, procs[1].tids[0]):
                raise KeyError(pid)
            return super().session_id(pid)

    model = forest.expected_model()
    backend = Raises(model.processes(), threads=model.threads())
    judgement = Judgement()
    _generated._judge_single(backend, forest, judgement.findings, judgement.counts)
    assert judgement.counts["C2"]["processes"] == 2  # the other two running ones
    assert judgement.counts["C5"]["processes"] == 1  # the reaped one, after them
    assert judgement.counts["C4"]["threads"] == 1  # not procs[0]'s (its answer broke)
    assert judgement.findings["C2"] == [
        f"session_id({procs[0].pid}) of world process n1 (PID {procs[0].pid}, depth 1) "
        f"raised KeyError: {procs[0].pid}"
    ]
    assert judgement.findings["C4"][0].startswith(
        f"session_id({procs[1].tids[0]}) of a thread of world process n2"
    )


def test_a_reaped_pid_a_stranger_took_does_not_stop_the_judging() -> None:
    forest = Strangers()
    gone = forest.spawn(None)
    forest.exit(gone)
    forest.reap(gone)
    forest.strangers.add(gone.pid)
    later = forest.spawn(None)
    judgement = Judgement()
    _generated._judge_single(
        Stale(forest.expected_model(), {gone.pid: 9, later.pid: 9}),
        forest,
        judgement.findings,
        judgement.counts,
    )
    assert judgement.findings["C5"] == []
    assert len(judgement.findings["C2"]) == 1  # the later process was still judged


def test_threads_of_exited_processes_are_not_asked() -> None:
    forest = SimForest()
    proc = forest.spawn(None)
    tid = forest.add_thread(proc)
    forest.exit(proc)
    model = forest.expected_model()
    judgement = Judgement()
    _generated._judge_single(Stale(model, {tid: 1}), forest, judgement.findings, judgement.counts)
    assert judgement.counts["C4"]["threads"] == 0
    assert judgement.findings["C4"] == []


class Recorder(Simulated):
    """Records every step the generated world takes, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[tuple[str, str]] = []

    def spawn(self, parent: Proc | None, *, orphan: bool = False) -> Proc:
        proc = super().spawn(parent, orphan=orphan)
        self.steps.append(("spawn", f"{proc.node}<{parent.node if parent else '-'}{'!' * orphan}"))
        return proc

    def login(self, proc: Proc, uid: int | None = None) -> None:
        super().login(proc, uid)
        self.steps.append(("login", proc.node))

    def add_thread(self, proc: Proc) -> int:
        self.steps.append(("thread", proc.node))
        return super().add_thread(proc)


def test_the_spines_orphans_and_threads_are_built_as_documented(logins: None) -> None:
    for seed in range(8):
        forest = Recorder()
        _generated._build(forest, random.Random(seed), 14, Judgement())
        spawns = [step for kind, step in forest.steps if kind == "spawn"]
        # Spine A: n1..n4 in a line from the caller; spine B: n5..n7; then the
        # orphan n8, its adopted child n9 (an orphan too) and n10 below it.
        assert spawns[:10] == [
            "n1<-",
            "n2<n1",
            "n3<n2",
            "n4<n3",
            "n5<-",
            "n6<n5",
            "n7<n6",
            "n8<-!",
            "n9<n8!",
            "n10<n9",
        ]
        logged = [step for kind, step in forest.steps if kind == "login"]
        spine_a = [node for node in logged if node in ("n1", "n2", "n3", "n4")]
        assert spine_a[0] == "n1"
        assert len(spine_a) == 2
        spine_b = [node for node in logged if node in ("n5", "n6", "n7")]
        assert spine_b in (["n6"], ["n7"])
        assert "n8" in logged
        assert "n9" not in logged[: logged.index("n8")]
        threads = [step for kind, step in forest.steps if kind == "thread"]
        assert len(threads) == 3
        inside = [p.node for p in forest.procs if p.session != forest.self_session]
        assert threads[-1] == inside[-1]
        assert len(forest.procs) == 14
        kept = ["n1", "n2", "n3", "n4", "n9", "n10"]
        assert all(forest.procs[int(n[1:]) - 1].state == "alive" for n in kept)


def test_the_random_part_mixes_every_kind(logins: None) -> None:
    orphans = logins_made = setsids = nohups = parents = 0
    total = 0
    for seed in range(10):
        forest = Recorder()
        _generated._build(forest, random.Random(seed), 40, Judgement())
        extra = forest.procs[10:]
        total += len(extra)
        orphans += sum(p.orphan for p in extra)
        logins_made += sum(bool(p.logins) for p in extra)
        setsids += sum(p in forest.setsids for p in extra)
        nohups += sum(p in forest.nohups for p in extra)
        parents += sum(p.parent is not None for p in extra)
    # Drawn with probabilities 0.2, 0.4, 0.3, 0.3: each kind, never all.
    for count in (orphans, logins_made, setsids, nohups, parents):
        assert 0 < count < total, (count, total)
    assert orphans < logins_made


def test_the_fates_pick_a_third_at_least_four_and_keep_holders(logins: None) -> None:
    forest = Simulated()
    procs = [forest.spawn(None) for _ in range(15)]
    _generated._fates(forest, random.Random(2), keep=[])
    changed = [p for p in procs if p.state != "alive"]
    assert len(changed) == 5  # 15 // 3
    assert sum(p.state == "gone" for p in changed) == 2
    small = Simulated()
    few = [small.spawn(None) for _ in range(6)]
    _generated._fates(small, random.Random(2), keep=[])
    assert sum(p.state != "alive" for p in few) == 4
    # Orphans (held by the caller) come after processes with a world parent.
    mixed = Simulated()
    top = mixed.spawn(None)
    child = mixed.spawn(top)
    orphan = mixed.spawn(None, orphan=True)
    others = [mixed.spawn(None) for _ in range(3)]
    _generated._fates(mixed, random.Random(0), keep=[top, *others])
    assert child.state == "exited"
    assert orphan.state == "alive" or orphan.state == "gone"
    with_threads = Simulated()
    busy = with_threads.spawn(None)
    with_threads.add_thread(busy)
    _generated._fates(with_threads, random.Random(0), keep=[])
    assert busy.state == "alive"  # a process with threads never exits


def test_judging_here_passes_isolation_and_reports_reuse_breakage(
    logins: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Simulated] = []
    monkeypatch.setattr(_generated, "RealForest", lambda: made.append(Simulated()) or made[-1])
    seen: list[object] = []
    monkeypatch.setattr(
        _generated, "_judge_forest", lambda b, f, j, isolated: seen.append(isolated)
    )

    def broken_reuse(backend: Any, forest: Any, judgement: Judgement) -> None:
        raise _generated._Broken("reuse broke")

    monkeypatch.setattr(_generated, "_reuse", broken_reuse)
    judgement = _generated._judge_here(_Oracle(made), [1], 10, isolated=True)
    assert seen == [True]
    assert judgement.findings["C5"] == ["reuse broke"]
    assert judgement.isolated is True
    judgement = _generated._judge_here(_Oracle(made), [1], 10, isolated=False)
    assert seen == [True, False]
    assert judgement.findings["C5"] == []


def test_a_declared_world_is_judged_as_sharing_its_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[object] = []
    monkeypatch.setattr(
        _generated, "_judge_forest", lambda b, f, j, isolated: seen.append(isolated)
    )
    judge_declared(Fake(), declared())
    assert seen == [False]


# -- live-world pieces that are quick: a shell child reports its session -----------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: /bin/sh reporters")
def test_a_live_child_reports_its_session_then_exits_and_is_reaped() -> None:
    world = _worlds.LiveWorld(worlds=0, size=1)
    own = _worlds.own_session_from_inside()
    with world.child() as child:
        assert child is not None
        assert child.truth == own
        with open(f"/proc/{child.pid}/cmdline", "rb") as file:
            assert file.read().split(b"\0")[:2] == [b"/bin/sh", b"-c"]
        child.exit()
        with open(f"/proc/{child.pid}/stat") as file:
            assert file.read().rpartition(")")[2].split()[0] == "Z"  # a zombie, held
        assert child.reap() is True
        assert not os.path.exists(f"/proc/{child.pid}")
    assert world.self_pid() == OWN
    assert world.self_truth() == own
    assert world.login_unavailable() is None or not IS_ROOT
    assert world.names_process(OWN) is True
    assert world.names_process(child.pid) is False


IS_ROOT = sys.platform.startswith("linux") and os.geteuid() == 0


@needs_root
def test_a_live_login_child_is_in_a_new_session_of_its_own() -> None:
    world = _worlds.LiveWorld(worlds=0, size=1)
    with world.child(login=True) as login:
        assert login is not None
        with open(f"/proc/{login.pid}/sessionid") as file:
            assert login.truth == int(file.read())
        assert login.truth != _worlds.own_session_from_inside()
        with open(f"/proc/{login.pid}/loginuid") as file:
            assert int(file.read()) == 65534 if os.getuid() else 65534


def test_a_refused_login_is_remembered_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    world = _worlds.LiveWorld(worlds=0, size=1)
    monkeypatch.setattr(_worlds, "_REPORTER_SH", "echo E; read -r x")
    with world.child(login=True) as login:
        assert login is None
    assert world.login_unavailable() == (
        "a child could not start a login: writing /proc/self/loginuid was refused (the "
        "caller's loginuid is set and it lacks CAP_AUDIT_CONTROL)"
    )
    with world.child(login=True) as again:
        assert again is None  # not tried again
    monkeypatch.setattr(_worlds, "_REPORTER_SH", "echo; read -r x")
    fresh = _worlds.LiveWorld(worlds=0, size=1)
    with (
        pytest.raises(RuntimeError, match=r"child \d+ did not report its session"),
        fresh.child(),
    ):
        pass


def test_live_missing_pids_name_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    world = _worlds.LiveWorld(worlds=0, size=1)
    pids = world.missing_pids()
    assert pids[:3] == [0, 0xFFFFFFFF, 0x80000000]
    assert pids[-1] == 4194305
    assert len(pids) in (4, 5)
    assert all(not os.path.exists(f"/proc/{pid}") for pid in pids)
    monkeypatch.setattr(_worlds, "process_started_at", lambda pid: 1)  # the PID was reused
    assert len(world.missing_pids()) == 4


def test_the_live_world_keeps_its_knobs_and_judges_each_backend_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, int, int | None]] = []

    def judge(backend: object, *, worlds: int, size: int, seed: int | None) -> Judgement:
        calls.append((worlds, size, seed))
        return Judgement()

    monkeypatch.setattr(_generated, "judge", judge)
    world = _worlds.LiveWorld(worlds=2, size=5, seed=9)
    assert (world.worlds, world.size, world.seed) == (2, 5, 9)
    one, other = object(), object()
    first = world.generated(one)
    assert first is world.generated(one)
    assert world.generated(other) is not first
    assert calls == [(2, 5, 9), (2, 5, 9)]
    assert world.login_unavailable() is None or world.login_unavailable() != ""


# -- strategies and process identity ----------------------------------------------
def test_the_old_strategy_name_warns_at_the_callers_line() -> None:
    from sessionid_cffi.testing import strategies

    with pytest.warns(DeprecationWarning, match="is deprecated") as caught:
        alias = strategies.session_ids
    assert alias is strategies.session_numbers
    assert str(caught[0].message) == (
        "sessionid_cffi.testing.strategies.session_ids is deprecated: use session_numbers "
        "(the old name read like sessionid_cffi.session_ids)"
    )
    with pytest.raises(AttributeError) as missing:
        strategies.nothing_here  # noqa: B018
    assert str(missing.value) == (
        "module 'sessionid_cffi.testing.strategies' has no attribute 'nothing_here'"
    )


def test_start_process_waits_longer_before_each_new_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import subprocess

    from sessionid_cffi.testing import _processes

    slept: list[float] = []
    attempts: list[int] = []

    def failing(command: list[str], **options: object) -> None:
        attempts.append(1)
        err = OSError(22, "Internal error")
        err.winerror = 1359  # type: ignore[attr-defined]
        raise err

    monkeypatch.setattr(subprocess, "Popen", failing)
    monkeypatch.setattr(_processes.time, "sleep", slept.append)
    with pytest.raises(OSError, match="Internal error"):
        _processes.start_process(["prog"])
    assert slept == [0.1, 0.2]
    assert len(attempts) == 3


def test_process_identity_reads_stat_after_the_last_parenthesis() -> None:
    import subprocess

    from sessionid_cffi.testing import _processes

    code = "open('/proc/self/comm', 'w').write('a) b) c'); print(flush=True); input()"
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    child.stdout.readline()
    try:
        started = _processes.process_started_at(child.pid)
        with open(f"/proc/{child.pid}/stat", "rb") as file:
            stat = file.read()
        assert started == int(stat[stat.rindex(b")") + 2 :].split()[19])
        assert not _processes.has_exited(child.pid, started)
        assert _processes.has_exited(child.pid, (started or 0) + 1)  # a newcomer
    finally:
        child.kill()
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    assert _processes.has_exited(child.pid, started)  # a zombie
    child.wait()
    assert _processes.has_exited(child.pid, started)
    assert _processes.wait_until_gone(child.pid, started) is True


def test_the_forest_helpers_in_this_process_agree_with_the_kernel() -> None:
    """The same helpers, asked here (mutmut sees only this process's calls):
    the kernel's own files are the truth."""
    import ctypes

    with open("/proc/self/sessionid") as file:
        assert _forest.own_raw_session() == int(file.read())
    with open("/proc/self/loginuid") as file:
        assert _forest._own_login_set() is (int(file.read()) != 0xFFFFFFFF)

    def flag() -> int:
        value = ctypes.c_int(-1)
        ctypes.CDLL(None).prctl(37, ctypes.byref(value), 0, 0, 0)  # PR_GET_CHILD_SUBREAPER
        return value.value

    before = flag()
    try:
        _forest._set_subreaper(True)
        assert flag() == 1
        _forest._set_subreaper(False)
        assert flag() == 0
    finally:
        _forest._set_subreaper(bool(before))


def test_an_unreadable_loginuid_counts_as_set(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "denied")

    monkeypatch.setattr(_forest, "open", refused, raising=False)
    assert _forest._own_login_set() is True


def test_c7_forgives_a_process_that_logged_in_after_the_listing() -> None:
    """Another job's process writes its loginuid between C7's listing and
    its single query (seen on this shared machine): the fresh listing agrees
    with the single answer, so neither form was wrong."""

    class LogsInMeanwhile(ModelBackend):
        listings = 0

        def session_ids(self, pids: list[int] | None) -> dict[int, int]:
            listed = super().session_ids(pids)
            if pids is None:
                self.listings += 1
                if self.listings == 1:
                    self.set_session(OWN + 100, 9)  # right after this listing
            return listed

    report = check_contract(LogsInMeanwhile({OWN: 1, OWN + 100: 2}), rules=["C7"])
    assert report.kept == ["C7"]

    class ListsStale(ModelBackend):
        def session_ids(self, pids: list[int] | None) -> dict[int, int]:
            listed = super().session_ids(pids)
            if pids is None and OWN + 100 in listed:
                listed[OWN + 100] = 2  # the old session, every time
            return listed

    stale = ListsStale({OWN: 1, OWN + 100: 2})
    stale.set_session(OWN + 100, 9)
    (line,) = broken_lines(stale, ["C7"])
    assert line == (
        f"  BROKEN C7: C7: session_ids() lists PID {OWN + 100} in session 2, "
        f"but session_id({OWN + 100}) answers 9"
    )


@needs_root
def test_a_refused_probe_says_nothing_on_the_callers_stderr(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_forest, "_CAN_LOGIN", None)
    monkeypatch.setattr(_forest, "login_uid", lambda: "no-uid")
    assert _forest.can_login() is False
    assert capfd.readouterr() == ("", "")  # the probe's traceback stayed in its pipe


def test_pids_to_check_takes_each_of_three_neighbours() -> None:
    forest = SimForest()
    forest.procs.append(Proc("far", 5000, None, 1))
    pids = forest.pids_to_check()
    assert {5001, 5002, 5003, 1001, 1002, 1003} <= set(pids)
    assert forest.names_process(1000)
    assert not forest.names_process(1003)  # no aliasing: 1003 is not 1000


def test_describe_without_isolation_names_only_the_seeds() -> None:
    judgement = Judgement(seeds=[3, 4])
    judgement.counts["C7"]["forms"] = 2
    assert judgement.describe("C7") == "generated world (seed 3, 4): 2 forms"


def test_judge_draws_a_32_bit_seed_and_never_isolates_by_mistake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[list[int], bool]] = []

    def here(backend: Any, seeds: list[int], size: int, *, isolated: bool) -> Judgement:
        calls.append((seeds, isolated))
        return Judgement(seeds=seeds)

    monkeypatch.setattr(_generated, "_judge_here", here)
    monkeypatch.setattr(_generated.os, "geteuid", lambda: 1000)
    for _ in range(24):
        judgement = _generated.judge(object(), worlds=1, size=4, seed=None)
        assert judgement.missing["reuse"] == (
            "PID reuse is forced only as root on Linux (a private PID namespace with its "
            "own /proc, and ns_last_pid)"
        )
    seeds = [seeds[0] for seeds, _ in calls]
    assert all(0 <= seed < 2**32 for seed in seeds)
    assert max(seeds) >= 2**20  # drawn from the whole range, not a small one
    assert {isolated for _, isolated in calls} == {False}


def test_the_same_seed_builds_the_same_world(logins: None, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Recorder] = []
    monkeypatch.setattr(_generated, "RealForest", lambda: made.append(Recorder()) or made[-1])
    monkeypatch.setattr(_generated, "can_login", lambda: False)
    for seed in (11, 11, 12):
        judgement = _generated._judge_here(_Oracle(made), [seed], 20, isolated=False)
        assert "no process could start a login here" in judgement.missing["logins"]
    assert made[0].steps == made[1].steps
    assert made[0].steps != made[2].steps
    assert judgement.missing["logins"] == (
        "no process could start a login here (not Linux, no audit sessions, or the "
        "caller's loginuid is set without CAP_AUDIT_CONTROL): every process of the "
        "world is in the caller's session"
    )


def test_reuse_is_asked_with_the_worlds_own_forest(
    logins: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Simulated] = []
    listed: list[int] = []
    threads: list[int] = []

    class Counted(Simulated):
        def close(self) -> None:  # what was listed, before close() lets all go
            listed.append(sum(p.state != "gone" for p in self.procs) + 1)
            threads.append(sum(len(p.tids) for p in self.procs if p.state == "alive"))
            super().close()

    monkeypatch.setattr(_generated, "RealForest", lambda: made.append(Counted()) or made[-1])
    seen: list[tuple[object, object, object]] = []
    monkeypatch.setattr(_generated, "_reuse", lambda b, f, j: seen.append((b, f, j)))
    backend = _Oracle(made)
    judgement = _generated._judge_here(backend, [1, 2], 10, isolated=True)
    assert seen == [(backend, made[0], judgement), (backend, made[1], judgement)]
    # Two worlds of 10 processes and the caller, listed in two forms each.
    assert judgement.counts["C7"]["processes"] == sum(listed)
    assert judgement.counts["C7"]["threads"] == sum(threads)
    assert min(listed) > 1


def test_spines_vary_where_the_second_logins_start(logins: None) -> None:
    second_a, spine_b, fixed_setsids = set(), set(), set()
    for seed in range(30):
        forest = Recorder()
        _generated._build(forest, random.Random(seed), 11, Judgement())
        logged = [step for kind, step in forest.steps if kind == "login"]
        second_a.update(n for n in logged if n in ("n2", "n3", "n4"))
        spine_b.update(n for n in logged if n in ("n5", "n6", "n7"))
        fixed_setsids.add(len(forest.setsids) - sum(p.node == "n11" for p in forest.setsids))
        assert all(isinstance(p, Proc) for p in forest.nohups)
    assert second_a == {"n2", "n3", "n4"}
    assert spine_b == {"n6", "n7"}
    assert fixed_setsids == {2}  # the random part (n11) may add one more


def test_the_fates_of_sixteen_pick_five(logins: None) -> None:
    forest = Simulated()
    procs = [forest.spawn(None) for _ in range(16)]
    _generated._fates(forest, random.Random(5), keep=[])
    assert sum(p.state != "alive" for p in procs) == 5  # 16 // 3


def test_only_running_processes_may_exit() -> None:
    forest = SimForest()
    proc = forest.spawn(None)
    assert _generated._may_exit(proc)
    forest.exit(proc)
    assert not _generated._may_exit(proc)


def test_every_thread_is_judged_after_one_breaks() -> None:
    forest = SimForest()
    proc = forest.spawn(None)
    tids = [forest.add_thread(proc) for _ in range(3)]
    other = forest.spawn(None)
    forest.add_thread(other)

    class Raises(ModelBackend):
        def session_id(self, pid: int) -> int:
            if pid == tids[0]:
                raise KeyError(pid)
            return super().session_id(pid)

    model = forest.expected_model()
    judgement = Judgement()
    backend = Raises(model.processes(), threads=model.threads())
    _generated._judge_single(backend, forest, judgement.findings, judgement.counts)
    assert judgement.counts["C4"]["threads"] == 3
    assert judgement.counts["C4"]["queries"] == 3
    assert len(judgement.findings["C4"]) == 1


def test_windows_forgiveness_does_not_end_the_whole_listing_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_generated, "WINDOWS", True)

    def drop_and_break(got: dict[int, int]) -> dict[int, int]:
        listed = {p: s for p, s in got.items() if p != EXITED}
        listed[OWN + 400] = 7
        return listed

    found = findings_of(Fake(all=drop_and_break)).findings["C7"]
    assert found == [
        f"session_ids(None) lists world process declared-{OWN + 400} (PID {OWN + 400}, "
        "depth 1) as 7, but it reports session 0 from the inside"
    ]


def test_a_thread_in_a_whole_listing_is_also_a_stray_in_a_world_of_its_own() -> None:
    backend = Fake(all=lambda got: {**got, THREAD: 1})
    judgement = Judgement()
    _generated._judge_forest(backend, _generated._Declared(declared()), judgement, isolated=True)
    assert judgement.findings["C7"] == [
        f"session_ids(None) lists PID {THREAD}, a thread id or reaped PID",
        "session_ids(None) lists PIDs naming no process of the world's own PID namespace: "
        f"[{THREAD}]",
    ]


def test_strays_are_shown_ten_at_most() -> None:
    strays = {OWN + 1000 + n: 1 for n in range(11)}
    judgement = findings_of(Fake(subset=lambda got: {**got, **strays}))
    (line,) = judgement.findings["C7"]
    assert line.endswith(f"it was not asked about: {sorted(strays)[:10]}")


def test_records_of_other_processes_are_fine_outside_a_world_of_its_own() -> None:
    from sessionid_cffi._records import ProcessRecord

    class WithStrangers(Fake):
        def process_records(self, fields: object = None) -> list[ProcessRecord]:
            rows = {**self._listing(None), OWN + 7: 1}
            return [ProcessRecord(pid, s) for pid, s in rows.items()]  # type: ignore[call-arg]

    assert findings_of(WithStrangers()).findings["C7"] == []


def test_a_listing_without_a_name_is_named_in_words() -> None:
    class Nameless:
        def __call__(self, fields: object = None) -> list[object]:
            raise RuntimeError("no")

    class Odd(Fake):
        process_records = Nameless()

    (line,) = findings_of(Odd()).findings["C7"]
    assert line == "a listing method(None) raised RuntimeError: no"


def test_reuse_judges_every_form_and_words_each_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionid_cffi._records import ProcessRecord

    def ns_last_pid(forest: Simulated) -> Callable[..., Any]:
        class File:
            def __enter__(self) -> File:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

            def write(self, text: str) -> None:
                forest.next_pid = int(text) + 1

        return lambda path, mode="r": File()

    class WithRecords(_Oracle):
        stale = False

        def process_records(self, fields: object = None) -> list[ProcessRecord]:
            rows = self.session_ids(None)
            if self.stale:
                rows = {pid: 2 for pid in rows}
            return [ProcessRecord(pid, s) for pid, s in rows.items()]  # type: ignore[call-arg]

    forest = Simulated()
    monkeypatch.setattr(_generated, "open", ns_last_pid(forest), raising=False)
    judgement = Judgement()
    _generated._reuse(WithRecords([forest]), forest, judgement)
    assert judgement.findings["C5"] == []
    assert judgement.counts["C5"]["forms"] == 4
    assert judgement.counts["C5"]["queries"] == 8
    stale = WithRecords([forest := Simulated()])
    stale.stale = True
    monkeypatch.setattr(_generated, "open", ns_last_pid(forest), raising=False)
    judgement = Judgement()
    _generated._reuse(stale, forest, judgement)
    assert [line.rpartition(", but ")[2] for line in judgement.findings["C5"]] == [
        "process_records() answered 2",
        "process_records() answered 2",
    ]

    class WrongBefore(_Oracle):
        def session_id(self, pid: int) -> int:
            return 5

    forest = Simulated()
    monkeypatch.setattr(_generated, "open", ns_last_pid(forest), raising=False)
    judgement = Judgement()
    _generated._reuse(WrongBefore([forest]), forest, judgement)
    first = judgement.findings["C5"][0]
    assert first.startswith("world process n1 (PID ")
    assert first.endswith(
        ", depth 1, in a login of its own) answered (5, {1001: 2}) before its PID was reused"
    )
    assert judgement.findings["C5"][1].endswith("but session_id answered 5")
    wrong_subset = [line for line in judgement.findings["C5"] if "session_ids([pid])" in line]
    assert wrong_subset == []


def test_wait_until_gone_is_immediate_off_windows() -> None:
    import time as clock

    from sessionid_cffi.testing import _processes

    started = clock.monotonic()
    assert _processes.wait_until_gone(OWN, _processes.process_started_at(OWN)) is True
    assert clock.monotonic() - started < 5


def test_a_plain_child_exits_and_reaps_as_nothing() -> None:
    child = _worlds.Child(7, 2)
    assert (child.pid, child.truth) == (7, 2)
    assert child.exit() is None
    assert child.reap() is True


def test_model_world_free_pids_exactly() -> None:
    assert ModelWorld(ModelBackend({5: 1}))._free_pid() == (OWN // 4 + 1) * 4
    assert ModelWorld(ModelBackend({0xFFFFFFF8: 1}))._free_pid() == 0xFFFFFFFC
    assert ModelWorld(ModelBackend({0xFFFFFFFC: 1, 8: 0}))._free_pid() == 4
    top = ModelWorld(ModelBackend({0xFFFFFFFC: 1}))
    assert 0xFFFFFFFC not in top.missing_pids()
    edge = ModelWorld(ModelBackend({0xFFFFFFEC: 1}))
    assert edge._free_pid() == 0xFFFFFFF0
    assert edge.missing_pids() == [0, 0xFFFFFFFC]  # 0xFFFFFFF0 + 16 is past the top


def test_model_world_prefers_the_caller_and_says_what_it_needs() -> None:
    assert ModelWorld(ModelBackend({OWN: 1, 5: 2})).self_pid() == OWN
    with pytest.raises(LookupError) as caught:
        ModelWorld(ModelBackend({5: 0}, denied=[5])).self_pid()
    assert str(caught.value) == (
        "the model's table has no process to act as the caller: give it the caller's PID "
        "(or one PID that is neither denied nor a zombie)"
    )


def test_declared_and_listed_missing_pids_exactly() -> None:
    assert World.declare({10: 1}, threads=[100]).missing_pids() == [0, 120, 0xFFFFFFFC]
    assert World.declare({10: 1}, gone=[200]).missing_pids() == [0, 220, 0xFFFFFFFC]
    assert DeclaredWorld({}).missing_pids() == [0, 20, 0xFFFFFFFC]
    assert World.declare({0xFFFFFFFC: 1}).missing_pids() == [0]
    assert World.declare({0xFFFFFFEC: 1}).missing_pids() == [0, 0xFFFFFFFC]
    assert ListedWorld({}).missing_pids() == [0, 4, 1000, 0xFFFFFFFC]
    with pytest.raises(LookupError) as caught:
        ListedWorld({}).self_pid()
    assert str(caught.value) == "the backend lists no process (session_ids(None) is empty)"


def test_a_reused_gone_pid_is_left_out_of_the_live_missing_pids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = _worlds.LiveWorld(worlds=0, size=1)
    monkeypatch.setattr(_worlds, "process_started_at", lambda pid: None if pid is None else 1)
    assert len(world.missing_pids()) == 4


def test_the_old_strategy_name_warns_at_a_frame_outside_the_module() -> None:
    from sessionid_cffi.testing import strategies

    with pytest.warns(DeprecationWarning, match="is deprecated") as caught:
        strategies.session_ids  # noqa: B018
    assert caught[0].filename != strategies.__file__
    if "mutmut" not in sys.modules:  # under the gate, mutmut's trampoline is one more frame
        assert caught[0].filename == __file__


# -- raw calls and the last error: worlds and libraries broken on purpose -----------
class NativeModel(ModelBackend):
    """A model that makes the raw call itself, as kernel32 does: it returns
    the Win32 error (0: success) and the library keeps it as last error."""

    def native_process_id_to_session_id(self, pid: int, out: Any) -> int:
        try:
            out[0] = self.session_id(pid)
        except SessionIdError as err:
            return err.winerror
        return 0


class LiveNamedMissing(ModelWorld):
    """A model world that calls PID 1 missing: the model has no PID 1, but
    this machine does, so a raw call asked of the installed backend instead
    of the one under check answers it."""

    def __init__(self, model: ModelBackend, missing: list[int]) -> None:
        super().__init__(model)
        self._missing = missing

    def missing_pids(self) -> list[int]:
        return self._missing


def test_raw_calls_ask_the_backend_under_check_not_the_installed_one() -> None:
    assert os.path.exists("/proc/1")
    model = ModelBackend({OWN: 1})
    report = check_contract(model, world=LiveNamedMissing(model, [1]), rules=["C3"])
    assert report.kept == ["C3"]
    report = check_contract(model, world=LiveNamedMissing(model, [5, 1]), rules=["C9"])
    assert "C9" in report.library  # it held: PID 5, then 1, both missing in the model
    native = NativeModel({OWN: 1})
    report = check_contract(native, world=LiveNamedMissing(native, [1, 5]), rules=["C9"])
    assert report.kept == ["C9"]  # a native backend's last error is its own


def test_c9_reports_a_last_error_shared_by_every_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionid_cffi import lowlevel

    shared = [0]
    original = lowlevel._process_id_to_session_id_on

    def call(backend: Any, pid: int, out: Any) -> int:
        ok = original(backend, pid, out)
        if not ok:
            shared[0] = lowlevel._last.error  # type: ignore[attr-defined]
        return ok

    monkeypatch.setattr(lowlevel, "_process_id_to_session_id_on", call)
    monkeypatch.setattr(lowlevel, "GetLastError", lambda: shared[0])
    monkeypatch.setattr(lowlevel, "_set_last_error", lambda code: shared.__setitem__(0, code))
    (line,) = broken_lines(ModelBackend({OWN: 1}), ["C9"])
    assert line == (
        "  BROKEN C9: C9: a failing raw call here gave (0, last error 87), expected (0, 87); "
        "another thread then read last error, made a call for the caller and read again: "
        "[87, 1, 87] (expected [0, 1, 0])"
    )


def test_c9_reports_a_success_that_clears_the_last_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionid_cffi import lowlevel

    original = lowlevel._process_id_to_session_id_on

    def call(backend: Any, pid: int, out: Any) -> int:
        ok = original(backend, pid, out)
        if ok:
            lowlevel._set_last_error(0)
        return ok

    monkeypatch.setattr(lowlevel, "_process_id_to_session_id_on", call)
    (line,) = broken_lines(ModelBackend({OWN: 1}), ["C9"])
    assert line == (
        "  BROKEN C9: C9: this thread's last error became 87 after another thread's calls, "
        "0 after its own successful call (1); expected 87 both times"
    )


class FailedWorld(DeclaredWorld):
    """A declared world whose generated part could not be built."""

    def generated(self, backend: object) -> Judgement | None:
        return Judgement(failed="the generated world could not be built: no agent")


@pytest.mark.parametrize("rule", ["C2", "C4", "C5", "C7"])
def test_a_world_that_could_not_be_built_is_a_note_of_each_rule(rule: str) -> None:
    world = FailedWorld(TABLE, threads=[THREAD], exited=[EXITED], gone=[GONE])
    report = check_contract(Fake(), world=world, rules=[rule])  # type: ignore[arg-type]
    assert report.kept == [rule]
    if rule in ("C4", "C7"):  # C2 and C5 then say no child could be started
        assert report.notes[rule] == "the generated world could not be built: no agent"
    assert report.judged[rule] == "the generated world could not be built: no agent"


def test_c10_with_aliasing_checks_the_pid_itself_and_each_alias() -> None:
    own = OWN & ~3

    class WrongItself(ModelBackend):
        def session_id(self, pid: int) -> int:
            session = super().session_id(pid)
            return 9 if pid > own and pid % 4 == 0 else session

    (line,) = broken_lines(WrongItself({own: 1}, aliasing=True), ["C10"])
    assert re.fullmatch(
        r"  BROKEN C10: C10: a running child \(PID \d+\) is in session 1, but the backend "
        r"answered 9",
        line,
    ), line

    class WrongAtTwo(ModelBackend):
        def session_id(self, pid: int) -> int:
            return super().session_id(pid) + (pid % 4 == 2)

    (line,) = broken_lines(WrongAtTwo({own: 1}, aliasing=True), ["C10"])
    assert re.fullmatch(
        r"  BROKEN C10: C10: PID \d+\+2 answered session 2, PID \d+ session 1; Windows "
        r"ignores the low two bits",
        line,
    ), line

    class MissingAlias(ModelBackend):
        def session_id(self, pid: int) -> int:
            if pid % 4 == 1 and pid > own + 3:
                raise ProcessNotFoundError(pid)
            return super().session_id(pid)

    (line,) = broken_lines(MissingAlias({own: 1}, aliasing=True), ["C10"])
    assert re.fullmatch(
        r"  BROKEN C10: C10: child PID\+1 \(PID \d+\) must answer, but got: .*", line
    ), line


def test_a_refused_subreaper_flag_raises_with_the_errno(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    calls: list[tuple[object, ...]] = []

    class Libc:
        def __init__(self, name: object, **options: object) -> None:
            calls.append((name, options))

        def prctl(self, *args: object) -> int:
            calls.append(args)
            ctypes.set_errno(1)  # EPERM, as the kernel says it
            return -1

    monkeypatch.setattr(ctypes, "CDLL", Libc)
    with pytest.raises(OSError, match="PR_SET_CHILD_SUBREAPER") as caught:
        _forest._set_subreaper(True)
    assert (caught.value.errno, caught.value.strerror) == (1, "prctl(PR_SET_CHILD_SUBREAPER)")
    assert calls == [(None, {"use_errno": True}), (36, 1, 0, 0, 0)]


def test_compare_goes_on_after_a_forgiven_stranger() -> None:
    forest = Strangers()
    gone = forest.spawn(None)
    forest.exit(gone)
    forest.reap(gone)
    alive = forest.spawn(None)
    forest.strangers.add(gone.pid)
    model = forest.expected_model()
    live = Stale(model, {gone.pid: 4, alive.pid: 5})
    assert _forest.compare(live, model, [gone.pid, alive.pid], forest) == [
        f"PID {alive.pid} ({alive!r}): live ('ok', 5), model ('ok', 1)",
        f"session_ids(): PID {alive.pid} live 5, model 1",
    ]

    class BulkStranger(ModelBackend):
        def session_ids(self, pids: list[int] | None) -> dict[int, int]:
            return {**super().session_ids(pids), gone.pid: 4, alive.pid: 6}

    bulk = BulkStranger(model.processes(), threads=model.threads())
    assert _forest.compare(bulk, model, [alive.pid], forest) == [
        f"session_ids(): PID {alive.pid} live 6, model 1"
    ]


def reuse_forest(monkeypatch: pytest.MonkeyPatch) -> Simulated:
    forest = Simulated()

    class File:
        def __enter__(self) -> File:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def write(self, text: str) -> None:
            forest.next_pid = int(text) + 1

    monkeypatch.setattr(_generated, "open", lambda path, mode="r": File(), raising=False)
    return forest


def test_reuse_names_each_form_that_kept_the_old_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class StaleForms(_Oracle):
        """Its listings remember the first session they saw for a PID."""

        seen: ClassVar[dict[int, int]] = {}

        def session_ids(self, pids: list[int] | None) -> dict[int, int]:
            form = "all" if pids is None else "subset"
            got = super().session_ids(pids)
            for pid, session in got.items():
                first = self.seen.setdefault(pid, session)
                if form in self.stale:
                    got[pid] = first
            return got

    for stale, forms in ((("subset",), ["session_ids([pid])"]), (("all",), ["session_ids(None)"])):
        StaleForms.seen = {}
        forest = reuse_forest(monkeypatch)
        backend = StaleForms([forest])
        backend.stale = stale  # type: ignore[attr-defined]
        judgement = Judgement()
        _generated._reuse(backend, forest, judgement)
        named = {
            line.rpartition(", but ")[2].rpartition(" answered")[0]
            for line in judgement.findings["C5"]
        }
        assert named == set(forms), judgement.findings["C5"]


def test_reuse_blames_a_raising_backend_on_the_process_it_asked_about(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class RaisesAt(_Oracle):
        calls = 0
        at = 1

        def session_id(self, pid: int) -> int:
            self.calls += 1
            if self.calls == self.at:
                raise KeyError("boom")
            return super().session_id(pid)

    for at, who in ((1, "n1"), (2, "n2")):
        forest = reuse_forest(monkeypatch)
        backend = RaisesAt([forest])
        backend.at = at
        with pytest.raises(_generated._Broken) as caught:
            _generated._reuse(backend, forest, Judgement())
        assert f" of world process {who} (PID " in str(caught.value)


def test_compare_never_forgives_an_alias_of_a_thread_of_ours() -> None:
    forest = Strangers(aliasing=True)
    proc = forest.spawn(None)
    tid = forest.add_thread(proc)
    model = forest.expected_model()
    live = Stale(model, {tid: 3})  # answers the thread id and its aliases
    found = _forest.compare(live, model, [tid + 1], forest)
    assert found[0] == f"PID {tid + 1} (a thread id): live ('ok', 3), model ('error', 87)"


@needs_root
def test_a_probe_that_hangs_is_given_up_within_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    bounds: list[object] = []

    def run(*args: Any, **options: Any) -> Any:
        bounds.append(options.get("timeout"))
        raise subprocess.TimeoutExpired(args[0], options.get("timeout") or 0)

    monkeypatch.setattr(_forest, "_CAN_LOGIN", None)
    monkeypatch.setattr(_forest.subprocess, "run", run)
    with pytest.raises(subprocess.TimeoutExpired):
        _forest.can_login()
    (bound,) = bounds
    assert isinstance(bound, (int, float))
    assert 0 < bound <= 60


def test_overlapping_keeps_the_latest_end_of_each_pid() -> None:
    # A's first query is still under way (to 10) when B's begins at 3.
    assert contract._overlapping([(0, 10, 1), (1, 2, 1), (3, 4, 2)]) == 1
    # A query that ended at 0 is not under way at 0.
    assert contract._overlapping([(0, 0, 1), (0, 1, 2)]) == 0


def test_c11_names_one_wrong_answer() -> None:
    class Swapped(ModelBackend):
        def session_id(self, pid: int) -> int:
            return 9 if pid != OWN else super().session_id(pid)

    lines = broken_lines(Swapped({OWN: 1}), ["C11"])
    assert re.fullmatch(
        r"  BROKEN C11: C11: 4 threads asked 200 times each about PIDs of distinct "
        r"sessions at once; \d+ answers were not the asked PID's own, e\.g\. PID \d+ "
        r"\(session \d\) answered 9",
        lines[0],
    ), lines


class FailedModelWorld(ModelWorld):
    def generated(self, backend: object) -> Judgement | None:
        return Judgement(failed="no world: the agents could not start")


def test_c5_notes_a_world_that_could_not_be_built_in_either_scene() -> None:
    model = ModelBackend({OWN: 1})
    report = check_contract(model, world=FailedModelWorld(model), rules=["C5"])
    assert report.notes["C5"] == "no world: the agents could not start"

    class NoLoginsFailed(FailedModelWorld):
        @contextlib.contextmanager
        def child(self, *, login: bool = False) -> Iterator[Any]:
            if login:
                yield None
                return
            with super().child() as child:
                yield child

    three = ModelBackend({OWN: 3})
    report = check_contract(three, world=NoLoginsFailed(three), rules=["C5"])
    assert report.notes["C5"] == "no world: the agents could not start"

    class KeptNoLogins(NoLoginsFailed):
        @contextlib.contextmanager
        def child(self, *, login: bool = False) -> Iterator[Any]:
            with super().child(login=login) as child:
                if child is not None:
                    child.reap = lambda: False  # type: ignore[method-assign]
                yield child

    kept = KeptNoLogins(three)
    kept.description = "a world whose children stay"
    report = check_contract(three, world=kept, rules=["C5"])
    assert report.skipped["C5"].startswith("a world whose children stay: reaped child ")


def test_c8_spies_on_a_native_backend_through_its_native_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sessionid_cffi import lowlevel
    from sessionid_cffi._generated_ffi import ffi

    original = lowlevel._process_id_to_session_id_on

    def asks_native(backend: Any, pid: int, out: Any) -> int:
        native = getattr(backend, "native_process_id_to_session_id", None)
        if native is not None:
            native(pid, ffi.new("DWORD *"))
        return original(backend, pid, out)

    monkeypatch.setattr(lowlevel, "_process_id_to_session_id_on", asks_native)
    (line,) = broken_lines(NativeModel({OWN: 1}), ["C8"])
    assert line == (
        f"  BROKEN C8: C8: a raw call with a NULL out-pointer reached the backend (asked [{OWN}])"
    )
    report = check_contract(ModelBackend({OWN: 1}), rules=["C8"])  # no native call to make
    assert "C8" in report.library


# -- C1, C2, C7, C10, C11: each line a user would read ----------------------------
class WrongFor(ModelBackend):
    """Answers ``wrong`` for the PIDs in ``at``, from the ``after``-th query on."""

    def __init__(self, table: dict[int, int], at: set[int], wrong: Any, after: int = 1) -> None:
        super().__init__(table)
        self.at, self.wrong, self.after, self.asked = at, wrong, after, 0

    def session_id(self, pid: int) -> int:
        if pid in self.at:
            self.asked += 1
            if self.asked >= self.after:
                if isinstance(self.wrong, BaseException):
                    raise self.wrong
                return int(self.wrong)
        return super().session_id(pid)


def test_c1_lines() -> None:
    (line,) = broken_lines(WrongFor({OWN: 1}, {OWN}, 2), ["C1"])
    assert line == (
        f"  BROKEN C1: C1: the caller's own PID (PID {OWN}) is in session 1, but the backend "
        "answered 2"
    )
    refuses = WrongFor({OWN: 1}, {OWN}, not_found(OWN, "gone"), after=2)
    (line,) = broken_lines(refuses, ["C1"])
    assert line == (
        f"  BROKEN C1: C1: the caller's own PID (PID {OWN}) must answer, but got: "
        f"[WinError 87] process {OWN} not found: gone"
    )
    (line,) = broken_lines(WrongFor({OWN: 1}, {OWN}, 2, after=2), ["C1"])
    assert line == f"  BROKEN C1: C1: own PID {OWN} answered 1, then 2"
    report = check_contract(Fake(), rules=["C1"])  # a listed world: no truth
    assert report.notes["C1"] == (
        "the processes the backend lists: no truth for the caller, only its stability"
    )


class ElsewhereChildren(ModelWorld):
    """The OS puts a plain child in another session than the caller."""

    @contextlib.contextmanager
    def child(self, *, login: bool = False) -> Iterator[Any]:
        with super().child(login=True) as child:
            yield child


class Untruthful(ModelWorld):
    """A world that knows no session of its own processes."""

    def self_truth(self) -> int | None:
        return None

    @contextlib.contextmanager
    def child(self, *, login: bool = False) -> Iterator[Any]:
        with super().child(login=login) as child:
            if child is not None:
                child.truth = None
            yield child


def test_c2_lines() -> None:
    model = ModelBackend({OWN: 1})
    report = check_contract(model, world=ElsewhereChildren(model), rules=["C2"])
    assert re.fullmatch(
        r"the OS put child \d+ in session 2, the caller in 1: not a scene for inheritance",
        report.skipped["C2"],
    ), report.skipped
    child_wrong = WrongFor({OWN: 1}, set(), 5)
    child_wrong.at = {ModelWorld(child_wrong)._free_pid()}
    (line,) = broken_lines(child_wrong, ["C2"])
    assert re.fullmatch(
        r"  BROKEN C2: C2: a running child \(PID \d+\) is in session 1, but the backend "
        r"answered 5",
        line,
    ), line
    (line,) = broken_lines(WrongFor({OWN: 1}, {OWN}, 5), ["C2"])
    assert line == (
        f"  BROKEN C2: C2: the caller (PID {OWN}) is in session 1, but the backend answered 5"
    )
    untruthful = WrongFor({OWN: 1}, {OWN}, 5)
    (line,) = broken_lines(untruthful, ["C2"], world=Untruthful(untruthful))
    assert re.fullmatch(r"  BROKEN C2: C2: child \d+ is in session 1, the caller in 5", line)

    report = check_contract(model, world=NoLogins(model), rules=["C2"])
    assert report.notes["C2"] == "children in the caller's session only: no logins here"
    report = check_contract(model, world=FailedModelWorld(model), rules=["C2"])
    assert report.notes["C2"] == "no world: the agents could not start"


@pytest.mark.parametrize("pid", [0, 1, 2, 3, 4, 8, 2**31 - 1, 2**31, 2**32 - 4, 2**32 - 1])
def test_c7_asks_each_edge_of_the_pid_range(pid: int) -> None:
    class NotDwordAt(ModelBackend):
        def session_id(self, asked: int) -> int:
            if asked == pid:
                return -1
            return super().session_id(asked)

    (line,) = broken_lines(NotDwordAt({OWN: 1}), ["C7"])
    assert line == f"  BROKEN C7: session_id({pid}) returned -1, not a DWORD"


def test_c7_asks_random_pids_across_the_whole_range() -> None:
    class BrokenHigh(ModelBackend):
        def session_id(self, pid: int) -> int:
            if pid > 2**31 and pid not in (2**32 - 4, 2**32 - 1):
                return -1
            return super().session_id(pid)

    (line,) = broken_lines(BrokenHigh({OWN: 1}), ["C7"])
    assert line.endswith("returned -1, not a DWORD")


class Taken(ModelWorld):
    """A model world where other processes hold some PIDs after each child."""

    def __init__(self, model: ModelBackend, taken: set[int]) -> None:
        super().__init__(model)
        self.taken = taken

    def names_process(self, pid: int) -> bool | None:
        base = self._free_pid_seen if hasattr(self, "_free_pid_seen") else None
        if base is not None and pid - base in self.taken:
            return True
        return super().names_process(pid)

    def _free_pid(self) -> int:
        self._free_pid_seen = super()._free_pid()
        return self._free_pid_seen


def test_c10_asks_only_the_free_neighbours_and_says_when_none_is() -> None:
    class AnswersAfter(ModelBackend):
        def __init__(self, table: dict[int, int], offsets: set[int]) -> None:
            super().__init__(table)
            self.offsets = offsets

        def session_id(self, pid: int) -> int:
            table = self.processes()
            for n in self.offsets:
                if pid not in table and pid - n in table and pid - n != OWN:
                    return 7
            return super().session_id(pid)

    for offset in (1, 2, 3):
        (line,) = broken_lines(AnswersAfter({OWN: 1}, {offset}), ["C10"])
        assert f"PID+{offset} of a running child" in line
    held = AnswersAfter({OWN: 1}, {1})  # PID+1 answers: another process holds it
    report = check_contract(held, world=Taken(held, {1}), rules=["C10"])
    assert report.kept == ["C10"]
    full = ModelBackend({OWN: 1})
    report = check_contract(full, world=Taken(full, {1, 2, 3}), rules=["C10"])
    assert re.fullmatch(r"PIDs after child \d+ are all taken", report.skipped["C10"])


def test_c11_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {OWN: 1, OWN + 100: 2, OWN + 200: 2, OWN + 300: 3}
    world = World.declare(table)
    wrong = _AliasingFake(table, alias=False)
    wrong.session_id = lambda pid: 9  # type: ignore[method-assign]
    (line,) = broken_lines(wrong, ["C11"], world=world)
    assert line.startswith("  BROKEN C11: C11: 3 threads asked 200 times each")  # one per session
    two = World.declare({OWN: 1, OWN + 100: 2})
    both = _AliasingFake({OWN: 1, OWN + 100: 2}, alias=False)
    both.session_id = lambda pid: 9  # type: ignore[method-assign]
    (line,) = broken_lines(both, ["C11"], world=two)
    assert line.startswith("  BROKEN C11: C11: 2 threads asked")

    class OnceWrong(ModelBackend):
        done = False

        def session_id(self, pid: int) -> int:
            if pid != OWN and not self.done:
                self.done = True
                return 9
            return super().session_id(pid)

    (line,) = broken_lines(OnceWrong({OWN: 1}), ["C11"])
    assert re.fullmatch(
        r"  BROKEN C11: C11: 4 threads asked 200 times each about PIDs of distinct sessions "
        r"at once; 1 answers were not the asked PID's own, e\.g\. PID \d+ \(session \d\) "
        r"answered 9",
        line,
    ), line
    monkeypatch.setattr(contract, "_ask_at_once", lambda backend, targets, wrong: 0)
    report = check_contract(ModelBackend({OWN: 1}), rules=["C11"])
    assert report.skipped["C11"] == (
        "the threads' queries never overlapped in 60 rounds (a busy machine ran them one "
        "after another): nothing was asked at once"
    )


def test_c9_takes_the_first_missing_pid() -> None:
    model = ModelBackend({OWN: 1})
    report = check_contract(model, world=LiveNamedMissing(model, [5, OWN]), rules=["C9"])
    assert "C9" in report.library


def test_world_for_a_live_backend_by_name_unless_it_says_it_is_not_live() -> None:
    class Kernel32(Fake):
        name = "kernel32"

    class Procfs(Fake):
        name = "procfs"

    assert isinstance(world_for(Kernel32()), _worlds.LiveWorld)
    assert isinstance(world_for(Procfs()), _worlds.LiveWorld)  # no .live: live


def test_ask_names_what_a_backend_may_raise() -> None:
    class Raises(ModelBackend):
        def session_id(self, pid: int) -> int:
            raise KeyError("x")

    with pytest.raises(ContractViolation) as caught:
        contract._ask(Raises({OWN: 1}), 7)
    assert str(caught.value) == (
        "session_id(7) raised KeyError: 'x'; a backend may only raise SessionIdError "
        "(ProcessNotFoundError, AccessDeniedError, ...)"
    )


def test_generated_findings_show_three_and_count_the_rest() -> None:
    class Found(DeclaredWorld):
        count = 3

        def generated(self, backend: object) -> Judgement | None:
            judgement = Judgement()
            judgement.findings["C2"] = [f"f{n}" for n in range(self.count)]
            judgement.missing.update(logins="no logins", reuse="no reuse")
            return judgement

    world = Found(TABLE)
    with pytest.raises(ContractViolation) as caught:
        contract._judge_generated(Fake(), world, "C2")
    assert str(caught.value) == "C2: in the declared world: nothing declared for it: f0; f1; f2"
    world.count = 4
    with pytest.raises(ContractViolation) as caught:
        contract._judge_generated(Fake(), world, "C2")
    assert str(caught.value).endswith(": f0; f1; f2 (and 1 more)")
    assert contract._judge_generated(Fake(), world, "C5") == "no logins; no reuse"
    assert contract._judge_generated(Fake(), world, "C4") is None


def test_check_contract_passes_its_knobs_to_the_live_world(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, object]] = []

    class Recording(_worlds.LiveWorld):
        def __init__(self, **knobs: Any) -> None:
            made.append(knobs)
            super().__init__(worlds=0, size=1)

    monkeypatch.setattr(contract, "LiveWorld", Recording)
    monkeypatch.setattr(contract, "world_for", lambda backend: Recording())
    check_contract(Fake(), rules=[], worlds=2, size=7, seed=99)
    assert made[-1] == {"worlds": 2, "size": 7, "seed": 99}
    with pytest.raises(ValueError, match="not with world=") as caught:
        check_contract(Fake(), world=declared(), size=3)
    assert str(caught.value) == (
        "worlds=, size= and seed= size the default live world: not with world="
    )


def test_strategies_stay_inside_their_bounds() -> None:
    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    from sessionid_cffi.testing import strategies

    with pytest.raises(NoSuchExample):
        find(strategies.session_numbers(max_value=0), lambda s: s != 0)
    with pytest.raises(NoSuchExample):
        find(strategies.session_numbers(max_value=16), lambda s: s > 16)
    assert find(strategies.session_numbers(), lambda s: s > 1000) > 1000
    with pytest.raises(NoSuchExample):
        find(strategies.pids(windows=True, max_value=7), lambda p: p != 4)
    with pytest.raises(NoSuchExample):
        find(strategies.pids(max_value=1), lambda p: p != 1)
    assert find(strategies.pids(), lambda p: p == 1) == 1
    assert find(strategies.pids(windows=True), lambda p: p == 4) == 4


def test_c7_takes_the_top_session_as_a_dword_and_names_a_wrong_caller_row() -> None:
    top = ModelBackend({OWN: 1, OWN + 100: 0xFFFFFFFF})
    assert check_contract(top, rules=["C7"]).kept == ["C7"]

    class CallerElsewhere(ModelBackend):
        def session_ids(self, pids: list[int] | None) -> dict[int, int]:
            listed = super().session_ids(pids)
            if pids is None:
                listed[OWN] = 5
            return listed

        def session_id(self, pid: int) -> int:
            return 5 if pid == OWN and self.quiet else super().session_id(pid)

        quiet = True

    (line,) = broken_lines(CallerElsewhere({OWN: 1}), ["C7"])
    assert line == (
        f"  BROKEN C7: C7: the caller (PID {OWN}) is in session 1, but session_ids() lists it as 5"
    )
