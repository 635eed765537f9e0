"""The test kit that users import: fake_sessions (context manager and pytest
fixture), the Hypothesis strategies, and check_contract, which must pass on
the real backends and fail, naming the rule, on broken ones."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings

import sessionid_cffi
from sessionid_cffi import (
    AccessDeniedError,
    ProcessNotFoundError,
    ProcessRecord,
    SessionIdError,
    current_session_id,
    get_backend,
    process_id_to_session_id,
    session_ids,
)
from sessionid_cffi.testing import (
    RULES,
    CallerNotInFakeError,
    ContractViolation,
    ModelBackend,
    check_contract,
    contract,
    fake_sessions,
)
from sessionid_cffi.testing._worlds import LiveWorld, own_session_from_inside
from sessionid_cffi.testing.strategies import (
    model_backends,
    pids,
    process_tables,
    session_numbers,
)

WINDOWS = sys.platform == "win32"
LINUX = sys.platform.startswith("linux")
IS_ROOT = LINUX and os.geteuid() == 0
OWN = os.getpid()


def _why_no_logins() -> str | None:
    """Why the live world cannot make login sessions here (None: it can)."""
    world = LiveWorld()
    with world.child(login=True):
        pass
    return world.login_unavailable()


NO_LOGINS = _why_no_logins()


def same_session_as_me(pid: int) -> bool:
    """A typical function under test in a user's project."""
    try:
        return process_id_to_session_id(pid) == current_session_id()
    except ProcessNotFoundError:
        return False


# -- fake_sessions: the context manager --------------------------------------
def test_fake_sessions_answers_from_the_table() -> None:
    live = get_backend()
    with fake_sessions({4242: 1, 4343: 2}, self_session=1) as fake:
        assert get_backend() is fake
        assert process_id_to_session_id(4242) == 1
        assert current_session_id() == 1
        assert same_session_as_me(4242) is True
        assert same_session_as_me(4343) is False
        assert same_session_as_me(4444) is False  # names nothing
        assert session_ids() == {4242: 1, 4343: 2, OWN: 1}
    assert get_backend() is live


def test_fake_sessions_threads_zombies_denied_console() -> None:
    table = {100: 0, 200: 3, 300: 3}
    with fake_sessions(
        table, threads=[201], zombies=[300], denied=[100], console_session=3
    ) as fake:
        with pytest.raises(ProcessNotFoundError, match="thread id") as thread:
            process_id_to_session_id(201)
        assert thread.value.winerror == 87
        with pytest.raises(AccessDeniedError) as denied:
            process_id_to_session_id(100)
        assert (denied.value.winerror, denied.value.pid) == (5, 100)
        assert process_id_to_session_id(300) == 3  # exited, not reaped: answers
        assert sessionid_cffi.active_console_session_id() == 3
        fake.reap(300)
        with pytest.raises(ProcessNotFoundError):
            process_id_to_session_id(300)
        assert session_ids() == {200: 3}  # denied and reaped PIDs are left out


def test_fake_sessions_drives_the_raw_api() -> None:
    from sessionid_cffi import GetLastError, ProcessIdToSessionId, ffi

    out = ffi.new("DWORD *", 0xDEADBEEF)
    with fake_sessions({4242: 7}):
        assert ProcessIdToSessionId(4242, out) == 1
        assert out[0] == 7
        out[0] = 0xDEADBEEF
        assert ProcessIdToSessionId(4243, out) == 0
        assert (GetLastError(), out[0]) == (87, 0xDEADBEEF)


def test_fake_sessions_windows_aliasing() -> None:
    with fake_sessions({4: 0, 1000: 2}, aliasing=True):
        assert [process_id_to_session_id(1000 + n) for n in range(4)] == [2, 2, 2, 2]
        with pytest.raises(ProcessNotFoundError):
            process_id_to_session_id(1004)
    with pytest.raises(ValueError, match="multiples of 4"):
        fake_sessions({1001: 2}, aliasing=True).__enter__()


def test_fake_sessions_restores_after_an_error_and_nests() -> None:
    live = get_backend()

    def code_under_test() -> None:
        with fake_sessions({1: 0}):
            with fake_sessions({2: 5}) as inner:
                assert get_backend() is inner
                assert process_id_to_session_id(2) == 5
                with pytest.raises(ProcessNotFoundError):
                    process_id_to_session_id(1)  # the inner table hides the outer
            assert process_id_to_session_id(1) == 0
            raise RuntimeError("the code under test failed")

    with pytest.raises(RuntimeError, match="code under test"):
        code_under_test()
    assert get_backend() is live


def test_fake_sessions_rejects_a_conflicting_self_session() -> None:
    with pytest.raises(ValueError, match="self_session=2"):
        fake_sessions({OWN: 1}, self_session=2).__enter__()
    assert get_backend().name != "model"


def test_fake_without_the_caller_fails_loudly_not_as_not_found() -> None:
    """Code that reads "not found" as "not mine" must not pass because the
    test forgot to put the caller in the fake world."""
    from sessionid_cffi import GetLastError, ProcessIdToSessionId, ffi

    with fake_sessions({4242: 1}):
        with pytest.raises(CallerNotInFakeError, match="self_session"):
            current_session_id()
        with pytest.raises(CallerNotInFakeError):
            same_session_as_me(4242)  # would be False for the wrong reason
        with pytest.raises(CallerNotInFakeError):
            ProcessIdToSessionId(OWN, ffi.new("DWORD *"))
        # Other missing PIDs still answer 87, as the contract says.
        with pytest.raises(ProcessNotFoundError):
            process_id_to_session_id(4343)
        assert ProcessIdToSessionId(4343, ffi.new("DWORD *")) == 0
        assert GetLastError() == 87
    assert not issubclass(CallerNotInFakeError, (SessionIdError, Exception))


def test_check_contract_of_a_fake_without_the_caller_never_asks_about_it() -> None:
    """The checker's made-up PIDs (children, their PID+1..+3, missing PIDs)
    avoid the caller's PID, which such a fake refuses loudly: the table
    ends just below it."""
    from sessionid_cffi.testing._fake import make_fake

    table = {(OWN & ~3) - 4: 1} if OWN % 4 else {OWN - 20: 1}
    report = check_contract(make_fake(table))
    assert not report.broken


def test_fake_sessions_users_and_commands() -> None:
    with fake_sessions(
        {4242: 1, 4343: 0}, self_session=1, users={1: "alice"}, commands={4242: "editor"}
    ) as fake:
        infos = {info.session_id: info for info in sessionid_cffi.sessions()}
        assert (infos[1].user, infos[1].process_count) == ("alice", 2)  # 4242 and the caller
        assert infos[0].user is None
        assert sessionid_cffi.get_backend() is fake
        commands = {r.pid: r.comm for r in sessionid_cffi.process_records(["comm"])}
        assert commands == {4242: "editor", 4343: None, OWN: None}


def test_fake_sessions_are_process_wide_like_mock_patch() -> None:
    """A fake installed by the test is seen by the code's worker threads."""
    seen: list[int] = []
    with fake_sessions({4242: 1}, self_session=3):
        worker = threading.Thread(target=lambda: seen.append(current_session_id()))
        worker.start()
        worker.join()
    assert seen == [3]


def test_check_contract_never_changes_what_other_threads_see() -> None:
    """check_contract(model of session 77) in a helper thread: the main
    thread goes on getting its real session, and the helper's last error
    is back to what it was."""
    truth = own_session_from_inside()
    model = ModelBackend({OWN: 77, OWN + 100: 0, OWN + 200: 5}, denied=[OWN + 200])
    done = threading.Event()
    outcome: list[object] = []

    def helper() -> None:
        from sessionid_cffi import GetLastError

        try:
            for _ in range(3):
                outcome.append(check_contract(model))
            outcome.append(GetLastError())
        finally:
            done.set()

    thread = threading.Thread(target=helper)
    thread.start()
    answers = []
    while not done.is_set():
        answers.append(current_session_id())
        time.sleep(0)
    thread.join()
    assert answers
    assert set(answers) == {truth}
    assert outcome[-1] == 0  # the helper thread's last error before the checks


class _SeesWhatIsInstalled(ModelBackend):
    """Records which backend the process has installed whenever it is asked."""

    installed: list[object]

    def session_id(self, pid: int) -> int:
        self.installed.append(get_backend())
        return super().session_id(pid)


def test_check_contract_asks_the_backend_without_installing_it() -> None:
    """Every answer, raw API included, comes without a process-wide swap."""
    live = get_backend()
    model = _SeesWhatIsInstalled({OWN: 1, OWN + 100: 0, OWN + 200: 5}, denied=[OWN + 200])
    model.installed = []
    check_contract(model)
    assert model.installed
    assert all(backend is live for backend in model.installed)


def test_check_contract_of_an_installed_fake_leaves_it_unchanged() -> None:
    """The checker spawns and reaps in a copy of the model: code using the
    installed fake meanwhile sees its table only."""
    table = {OWN: 1, OWN + 100: 0}
    done = threading.Event()

    def helper() -> None:
        try:
            for _ in range(3):
                check_contract(fake)
        finally:
            done.set()

    with fake_sessions(table) as fake:
        thread = threading.Thread(target=helper)
        thread.start()
        listings = []
        while not done.is_set():
            listings.append(session_ids())
            time.sleep(0)
        thread.join()
    assert listings
    assert all(listing == table for listing in listings)


def test_fake_sessions_nested_swaps_across_threads_unwind_cleanly() -> None:
    """Bookkeeping only (two tables in two threads at once are not
    supported): each block removes its own swap, whatever the order."""
    live = get_backend()
    entered = threading.Barrier(2)
    seen: list[int] = []

    def worker() -> None:
        with fake_sessions({9: 9}):
            entered.wait()
            entered.wait()
        seen.append(1)

    thread = threading.Thread(target=worker)
    thread.start()
    with fake_sessions({8: 8}) as mine:
        entered.wait()
        entered.wait()
        thread.join()
        assert get_backend() is mine  # the other thread's exit left ours alone
    assert seen == [1]
    assert get_backend() is live


# -- the pytest fixture (registered through the pytest11 entry point) --------
def test_fixture_installs_for_the_test(fake_sessions) -> None:  # type: ignore[no-untyped-def]
    fake = fake_sessions({4242: 1}, self_session=1)
    assert isinstance(fake, ModelBackend)
    assert same_session_as_me(4242)
    newer = fake_sessions({4242: 2}, self_session=1)
    assert get_backend() is newer
    assert not same_session_as_me(4242)


def test_fixture_also_works_as_a_context_manager(fake_sessions) -> None:  # type: ignore[no-untyped-def]
    outer = fake_sessions({4242: 1}, self_session=1)
    with fake_sessions({4242: 2}, self_session=1, commands={4242: "x"}) as inner:
        assert get_backend() is inner
        assert not same_session_as_me(4242)
    assert get_backend() is outer  # the block's table only
    assert same_session_as_me(4242)


PLUGIN_PROJECT = """
    import os

    from hypothesis import given, strategies as st

    import sessionid_cffi
    from sessionid_cffi.testing import fake_sessions as fake

    LIVE = sessionid_cffi.get_backend().name


    def test_1_fixture_plain(fake_sessions):
        fake_sessions({4242: 1}, self_session=1)
        assert sessionid_cffi.get_backend().name == "model"


    def test_2_undone_after_the_test():
        assert sessionid_cffi.get_backend().name == LIVE


    @given(st.integers(0, 9))
    def test_3_given_with_the_context_manager(session):
        with fake({4242: session}, self_session=session):
            assert sessionid_cffi.process_id_to_session_id(4242) == session
        assert sessionid_cffi.get_backend().name == LIVE


    @given(st.integers(0, 9))
    def test_4_given_with_the_fixture(fake_sessions, session):
        with fake_sessions({4242: session}, self_session=session):
            assert sessionid_cffi.current_session_id() == session
"""


def test_fixture_in_a_fresh_project(tmp_path: Path) -> None:
    """In a project of its own (not this suite's conftest): the fixture is
    undone after its test, @given works with the context manager, and the
    fixture with @given trips Hypothesis' health check, as docs/testing.md
    says."""
    (tmp_path / "test_plugin.py").write_text(textwrap.dedent(PLUGIN_PROJECT))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-p", "no:randomly"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    outcomes = {
        line.split("::")[1].split()[0]: line.split()[1]
        for line in result.stdout.splitlines()
        if line.startswith("test_plugin.py::") and line.split()[1] in ("PASSED", "FAILED")
    }
    assert outcomes == {
        "test_1_fixture_plain": "PASSED",
        "test_2_undone_after_the_test": "PASSED",
        "test_3_given_with_the_context_manager": "PASSED",
        "test_4_given_with_the_fixture": "FAILED",
    }, result.stdout
    assert "function_scoped_fixture" in result.stdout


def test_plugin_is_registered_and_lazy(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("sessionid_cffi")
    assert plugin is not None, "the pytest11 entry point 'sessionid_cffi' is not loaded"
    assert plugin.__name__ == "sessionid_cffi.testing.pytest_plugin"
    code = (
        "import sys, sessionid_cffi.testing.pytest_plugin\n"
        "heavy = ('hypothesis', 'sessionid_cffi.testing.contract', '_cffi_backend')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importing_the_library_does_not_import_the_kit() -> None:
    code = (
        "import sys, sessionid_cffi\n"
        "sessionid_cffi.current_session_id()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('hypothesis', 'pytest',"
        " 'sessionid_cffi.testing'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- strategies ----------------------------------------------------------------
def test_session_ids_strategy_is_a_deprecated_alias() -> None:
    """The old name shadowed sessionid_cffi.session_ids; it still works, warning."""
    import sessionid_cffi.testing.strategies as kit

    with pytest.warns(DeprecationWarning, match="session_numbers"):
        old = kit.session_ids
    assert old is session_numbers
    assert "session_ids" not in kit.__all__
    with pytest.raises(AttributeError):
        kit.no_such_strategy  # noqa: B018


@given(pid=pids(), wpid=pids(windows=True), session=session_numbers())
def test_strategies_pids_and_sessions(pid: int, wpid: int, session: int) -> None:
    assert 1 <= pid <= 4194304
    assert wpid >= 4
    assert wpid % 4 == 0
    assert 0 <= session < 0xFFFFFFFF


def test_process_tables_never_hold_the_callers_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even when most PIDs it can draw are the caller's (or, for Windows,
    aliases of it), the strategy leaves the caller out: fake_sessions adds it."""
    from hypothesis import strategies as st

    import sessionid_cffi.testing.strategies as kit

    own = os.getpid()
    base = own & ~3
    candidates = [own, base | 1, base | 2, base | 3, base + 4, base + 8]
    monkeypatch.setattr(kit, "pids", lambda windows=False: st.sampled_from(candidates))
    for windows in (False, True):
        _check_tables_leave_out(kit.process_tables(windows=windows), own, windows)


def _check_tables_leave_out(tables: object, own: int, windows: bool) -> None:
    @given(table=tables)
    def check(table: dict[int, int]) -> None:
        assert own not in table
        if windows:
            assert all(pid & ~3 != own & ~3 for pid in table)

    check()


@given(table=process_tables())
def test_process_tables_are_valid_models(table: dict[int, int]) -> None:
    assert all(type(pid) is int and 1 <= pid <= 4194304 for pid in table)
    assert all(0 <= session < 0xFFFFFFFF for session in table.values())
    model = ModelBackend(table)
    assert model.session_ids(None) == table
    with fake_sessions(table):
        for pid, session in table.items():
            assert process_id_to_session_id(pid) == session


@given(table=process_tables(windows=True, min_size=1))
def test_windows_tables_alias(table: dict[int, int]) -> None:
    assert all(pid % 4 == 0 for pid in table)
    model = ModelBackend(table, aliasing=True)
    for pid, session in table.items():
        assert [model.session_id(pid + n) for n in range(4)] == [session] * 4


@settings(max_examples=25)
@given(table=process_tables(min_size=20, max_size=40))
def test_process_tables_look_like_machines(table: dict[int, int]) -> None:
    """Not one flat session: a handful of logins besides session 0."""
    logins = set(table.values()) - {0}
    assert 1 <= len(logins) <= 4


@settings(max_examples=30)
@given(
    model=model_backends()
    | model_backends(windows=True)
    | model_backends(include_caller=False)
    | model_backends(windows=True, include_caller=False)
)
def test_check_contract_passes_on_every_generated_model(model: ModelBackend) -> None:
    """Every generated model, with the caller or without it, Windows-style
    or not, keeps the contract (none is empty, none acts from a denied PID)."""
    report = check_contract(model)
    assert not report.broken
    assert set(report.kept) | set(report.skipped) | set(report.library) == set(RULES)
    assert "C6" in report.kept if model.denied else "C6" in report.skipped


@settings(max_examples=40)
@given(
    model=model_backends(max_size=2, include_caller=False)
    | model_backends(windows=True, max_size=2, include_caller=False)
)
def test_small_models_without_the_caller_keep_the_contract(model: ModelBackend) -> None:
    """Tiny tables, where an empty one or an unusable stand-in is likely."""
    assert model.processes()
    check_contract(model, rules=["C1", "C2", "C7"])


@pytest.mark.parametrize(
    ("spans", "overlapping"),
    [
        ([(0, 1, 7), (2, 3, 8), (4, 5, 7)], 0),  # one after another
        ([(0, 3, 7), (1, 2, 8)], 1),  # 8's query inside 7's
        ([(0, 5, 7), (1, 2, 8), (3, 4, 8)], 2),
        ([(0, 2, 7), (1, 4, 8), (3, 5, 7)], 2),  # interleaved both ways
        ([(0, 9, 7), (1, 2, 7), (3, 4, 7)], 0),  # one thread: nothing at once
    ],
)
def test_c11_counts_queries_that_began_while_another_threads_was_under_way(
    spans: list[tuple[int, int, int]], overlapping: int
) -> None:
    """The clock readings C11 takes around each query, made by hand: the
    count is what the spans say, whatever order they come in."""
    assert contract._overlapping(spans) == overlapping
    assert contract._overlapping(spans[::-1]) == overlapping


def test_c11_is_not_checked_when_the_threads_never_ran_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stand-in for a machine so busy that every round ran the threads one
    after another (not reproducible on demand): C11 must then say it
    checked nothing, never that the backend kept it."""
    rounds: list[int] = []

    def one_after_another(backend: object, targets: dict[int, int], wrong: list[str]) -> int:
        rounds.append(len(targets))
        return 0

    monkeypatch.setattr(contract, "_ask_at_once", one_after_another)
    report = check_contract(ModelBackend(_scene(), denied=[OWN + 2000]), rules=["C1", "C11"])
    assert report.kept == ["C1"]
    assert "never overlapped" in report.skipped["C11"]
    assert len(rounds) == contract.CONCURRENT_ROUNDS


def test_check_contract_acts_from_a_usable_pid_when_the_caller_is_absent() -> None:
    """Without the caller in the table, the lowest PID that is neither denied
    nor a zombie acts as the caller."""
    base = OWN + 8 - OWN % 4
    model = ModelBackend({base: 1, base + 4: 2, base + 8: 3}, denied=[base], zombies=[base + 4])
    report = check_contract(model)
    assert "C1" in report.kept
    assert report.notes == {}


# -- check_contract on the real backends ----------------------------------------
def test_check_contract_passes_on_the_live_backend() -> None:
    report = check_contract(get_backend())
    assert report.backend == ("kernel32" if WINDOWS else "procfs")
    assert set(report.kept) >= {"C1", "C2", "C3", "C4", "C5", "C7", "C10"}
    # C9 is the backend's own only where the raw call is native (kernel32).
    assert "C9" in (report.kept if WINDOWS else report.library)
    assert "C6" in report.skipped  # nothing is denied to the caller here
    # C8 is the library's own check, never claimed as kept by the backend.
    assert "C8" in report.library
    assert "C8" not in report.kept
    assert "kept   C1" in str(report)
    if NO_LOGINS is None:
        assert "C11" in report.kept
        assert report.notes == {}, report  # every part of every rule was exercised
    else:
        assert "distinct sessions" in report.skipped["C11"]
        assert NO_LOGINS in report.notes["C2"]


def test_model_aliasing_refuses_thread_ids_that_alias_a_process() -> None:
    """Windows gives threads and processes ids from one pool of multiples
    of 4: thread id 1001 would be PID 1000's alias, so an aliased model
    refuses it; a thread id of its own answers 87 with its aliases."""
    with pytest.raises(ValueError, match="thread ids are multiples of 4"):
        ModelBackend({1000: 2}, threads=[1001], aliasing=True)
    model = ModelBackend({1000: 2}, threads=[1004], aliasing=True)
    with pytest.raises(ValueError, match="multiples of 4"):
        model.add_thread(1002)
    with pytest.raises(ValueError, match="already a PID"):
        model.add_thread(1000)
    for tid in range(1004, 1008):
        with pytest.raises(ProcessNotFoundError, match="thread id"):
            model.session_id(tid)
    assert [model.session_id(pid) for pid in range(1000, 1004)] == [2] * 4


def test_check_contract_passes_on_a_model_with_every_scene() -> None:
    model = ModelBackend({OWN: 1, OWN + 10: 0, OWN + 20: 2}, denied=[OWN + 20])
    report = check_contract(model)
    assert report.kept == [rule for rule in RULES if rule not in ("C8", "C9")]
    assert report.notes == {}
    assert report.skipped == {}


def test_check_contract_runs_a_chosen_subset() -> None:
    report = check_contract(ModelBackend({OWN: 1}), rules=["C1", "C3"])
    assert report.kept == ["C1", "C3"]


# -- check_contract on broken backends: every kind of breakage is caught ----------
class ZeroForMissing(ModelBackend):
    """Answers session 0 for PIDs that name nothing (the classic bug)."""

    def session_id(self, pid: int) -> int:
        try:
            return super().session_id(pid)
        except ProcessNotFoundError:
            return 0


class AnswersThreads(ModelBackend):
    """Treats thread ids as processes."""

    def session_id(self, pid: int) -> int:
        if pid in self.threads():
            return 1
        return super().session_id(pid)


class ForgetsZombies(ModelBackend):
    """An exited process answers 87 before it is reaped."""

    def session_id(self, pid: int) -> int:
        if pid in self.zombies:
            from sessionid_cffi._errors import not_found

            raise not_found(pid, "exited")
        return super().session_id(pid)


class RaisesKeyError(ModelBackend):
    """Leaks its own exception instead of the library's errors."""

    def session_id(self, pid: int) -> int:
        return self.processes()[pid]


class DeniesMissing(ModelBackend):
    """Says "access denied" (5) where the process does not exist (87)."""

    def session_id(self, pid: int) -> int:
        try:
            return super().session_id(pid)
        except ProcessNotFoundError as err:
            from sessionid_cffi._errors import access_denied

            raise access_denied(pid, "nope") from err


class Unstable(ModelBackend):
    """The caller's own session changes between calls."""

    calls = 0

    def session_id(self, pid: int) -> int:
        self.calls += 1
        return super().session_id(pid) + self.calls % 2


class ChildrenElsewhere(ModelBackend):
    """New processes land in another session than their parent."""

    def spawn(self, pid: int, session: int) -> None:
        super().spawn(pid, session + 1)


class IgnoresDenied(ModelBackend):
    """Answers for processes the caller may not inspect."""

    def session_id(self, pid: int) -> int:
        table = self.processes()
        return table[pid] if pid in self.denied else super().session_id(pid)


class AliasesOnLinux(ModelBackend):
    """Ignores the low two bits without declaring aliasing (C10)."""

    def session_id(self, pid: int) -> int:
        table = self.processes()
        if pid not in table and pid & ~3 in table:
            return table[pid & ~3]
        return super().session_id(pid)


class NotADword(ModelBackend):
    """Returns something that is not a DWORD for session 0."""

    def session_id(self, pid: int) -> int:
        session = super().session_id(pid)
        return -1 if session == 0 else session


class WrongPidInError(ModelBackend):
    """Its errors name another PID than the one asked about."""

    def session_id(self, pid: int) -> int:
        try:
            return super().session_id(pid)
        except ProcessNotFoundError as err:
            from sessionid_cffi._errors import not_found

            raise not_found(pid + 1, "somewhere else") from err


class SharedPidModel(ModelBackend):
    """Keeps the asked PID in shared state: threads get each other's answers."""

    def session_id(self, pid: int) -> int:
        self.asked = pid
        time.sleep(0)
        return super().session_id(self.asked)


class OmitsTheCaller(ModelBackend):
    """Lists every process but the caller."""

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        listed = super().session_ids(pids)
        listed.pop(OWN, None)
        return listed


def _scene() -> dict[int, int]:
    # The caller in session 1, a system process in 0, a denied one in 2;
    # PIDs spaced so that PID+1..+3 of each are free.
    return {OWN: 1, OWN + 1000: 0, OWN + 2000: 2}


BROKEN = [
    (ZeroForMissing, "C3", "must raise ProcessNotFoundError with winerror 87, but got session 0"),
    (AnswersThreads, "C4", "a thread id"),
    (ForgetsZombies, "C5", "an exited child not yet reaped"),
    (RaisesKeyError, "C3", "raised KeyError"),
    (DeniesMissing, "C3", "but got AccessDeniedError"),
    (Unstable, "C1", "answered"),
    (ChildrenElsewhere, "C2", "is in session 1, but the backend answered 2"),
    (IgnoresDenied, "C6", "a denied process"),
    (AliasesOnLinux, "C10", "no aliasing here"),
    (NotADword, "C7", "not a DWORD"),
    (WrongPidInError, "C3", "names PID"),
    (SharedPidModel, "C11", "answers were not the asked PID's own"),
    (OmitsTheCaller, "C7", "lists it as absent"),
]


@pytest.mark.parametrize(
    ("broken", "rule", "detail"), BROKEN, ids=[cls.__name__ for cls, _, _ in BROKEN]
)
def test_check_contract_catches_a_broken_backend(
    broken: type[ModelBackend], rule: str, detail: str
) -> None:
    backend = broken(_scene(), denied=[OWN + 2000])
    with pytest.raises(ContractViolation) as caught:
        check_contract(backend)
    report = str(caught.value)
    assert report.startswith("contract check of backend 'model' on the model's table:")
    broken_lines = [line for line in report.splitlines() if line.startswith(f"  BROKEN {rule}:")]
    assert broken_lines, f"{rule} not reported broken:\n{report}"
    assert detail in broken_lines[0], report


def test_the_intact_scene_keeps_every_rule() -> None:
    """The control for the table above: the same scene, unbroken, passes."""
    report = check_contract(ModelBackend(_scene(), denied=[OWN + 2000]))
    assert report.kept == [rule for rule in RULES if rule not in ("C8", "C9")]
    assert list(report.library) == ["C8", "C9"]


LIVE_BROKEN = """
import os
import random
import time

import sessionid_cffi


def _stat(pid):
    # (state, ppid) of a process, read from /proc/<pid>/stat; None if gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def _tgid(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class LiveWrapper:
    # Wraps the real live backend; named like it, so it is checked live.

    def __init__(self):
        self._live = sessionid_cffi.get_backend()
        self.name = self._live.name

    def session_id(self, pid):
        return self._live.session_id(pid)

    def console_session_id(self):
        return self._live.console_session_id()

    def session_ids(self, pids):
        return self._live.session_ids(pids)

    def process_records(self, fields=None):
        return self._live.process_records(fields)


class WrongFor(LiveWrapper):
    # Answers 0 where wrong(pid) holds, truly elsewhere; every query form.

    def wrong(self, pid):
        raise NotImplementedError

    def session_id(self, pid):
        session = self._live.session_id(pid)
        return 0 if pid != os.getpid() and self.wrong(pid) else session

    def session_ids(self, pids):
        listed = self._live.session_ids(pids)
        return {p: 0 if p != os.getpid() and self.wrong(p) else s for p, s in listed.items()}

    def process_records(self, fields=None):
        return [r._replace(session_id=0) if r.pid != os.getpid() and self.wrong(r.pid) else r
                for r in self._live.process_records(fields)]


class ZeroForMissing(LiveWrapper):
    # The classic bug: session 0 for a PID that names nothing.

    def session_id(self, pid):
        try:
            return self._live.session_id(pid)
        except sessionid_cffi.ProcessNotFoundError:
            return 0


class ExistsThenZero(LiveWrapper):
    # Checks that the process exists, then never reads its session.

    def session_id(self, pid):
        self._live.session_id(pid)
        return 0


class ZeroForZombies(LiveWrapper):
    # Answers 0 for an exited, unreaped process (a zombie), only.

    def session_id(self, pid):
        session = self._live.session_id(pid)
        state = _stat(pid)
        return 0 if state and state[0] == "Z" else session


class SharedPid(LiveWrapper):
    # Keeps the asked PID in shared state: not thread-safe.

    def session_id(self, pid):
        self.pid = pid
        time.sleep(0)
        return self._live.session_id(self.pid)


class TrueForFamily(WrongFor):
    # Issue 16's first sample: true for the caller and its direct
    # children, 0 for every other process.

    def wrong(self, pid):
        state = _stat(pid)
        return state is not None and state[1] != os.getpid()


class ZeroListing(LiveWrapper):
    # Issue 16's second sample: session_ids(None) puts every process but
    # the caller in session 0.

    def session_ids(self, pids):
        listed = self._live.session_ids(pids)
        if pids is None:
            return {p: s if p == os.getpid() else 0 for p, s in listed.items()}
        return listed


class ZeroForGrandchildren(WrongFor):
    def wrong(self, pid):
        state = _stat(pid)
        parent = state and _stat(state[1])
        return bool(parent) and parent[1] == os.getpid()


class ZeroForInitsChildren(WrongFor):
    # 0 for processes re-parented to init (PID 1), or started by it.

    def wrong(self, pid):
        state = _stat(pid)
        return state is not None and state[1] == 1


class ZeroForDeepZombies(WrongFor):
    # 0 for zombies, but only those the caller did not start itself.

    def wrong(self, pid):
        state = _stat(pid)
        return state is not None and state[0] == "Z" and state[1] != os.getpid()


class ZeroAbove10(WrongFor):
    def wrong(self, pid):
        return pid > 10


class AnswersOtherThreads(LiveWrapper):
    # A thread id of another process answers that process's session; the
    # caller's own threads still answer 87.

    def session_id(self, pid):
        tgid = _tgid(pid)
        if tgid not in (None, pid, os.getpid()):
            return self._live.session_id(tgid)
        return self._live.session_id(pid)


class ListsThreads(LiveWrapper):
    # session_ids(None) lists every thread of every process too.

    def session_ids(self, pids):
        listed = self._live.session_ids(pids)
        if pids is None:
            for pid, session in list(listed.items()):
                try:
                    tasks = os.listdir(f"/proc/{pid}/task")
                except OSError:
                    continue
                listed.update((int(task), session) for task in tasks)
        return listed


class ListsPhantoms(LiveWrapper):
    # session_ids(None) and process_records() list a process that does
    # not exist, in session 0.

    def phantom(self, listed):
        return max(listed) + 1000

    def session_ids(self, pids):
        listed = self._live.session_ids(pids)
        if pids is None:
            listed[self.phantom(listed)] = 0
        return listed

    def process_records(self, fields=None):
        rows = self._live.process_records(fields)
        return rows + [rows[0]._replace(pid=self.phantom([r.pid for r in rows]), session_id=0)]


class SubsetZero(LiveWrapper):
    # session_ids(subset) only: 0 for all but the caller.

    def session_ids(self, pids):
        listed = self._live.session_ids(pids)
        if pids is not None:
            return {p: s if p == os.getpid() else 0 for p, s in listed.items()}
        return listed


class RecordsZero(LiveWrapper):
    # process_records only: 0 for all but the caller.

    def process_records(self, fields=None):
        return [r if r.pid == os.getpid() else r._replace(session_id=0)
                for r in self._live.process_records(fields)]


class StaleAfterReuse(LiveWrapper):
    # Checks the PID names a process, then answers what it answered the
    # first time: right until the PID is reused.

    def __init__(self):
        super().__init__()
        self.cache = {}

    def session_id(self, pid):
        session = self._live.session_id(pid)
        return self.cache.setdefault(pid, session)

    def session_ids(self, pids):
        listed = self._live.session_ids(pids)
        return {p: self.cache.setdefault(p, s) for p, s in listed.items()}

    def process_records(self, fields=None):
        return [r._replace(session_id=self.cache.setdefault(r.pid, r.session_id))
                for r in self._live.process_records(fields)]


class ParentsSession(LiveWrapper):
    # Not designed for: answers the session of the process's parent.

    def session_id(self, pid):
        state = _stat(pid)
        if pid != os.getpid() and state is not None and state[1] > 0:
            return self._live.session_id(state[1])
        return self._live.session_id(pid)


class ZeroForMultithreaded(WrongFor):
    # Not designed for: 0 for a process with more than one thread.

    def wrong(self, pid):
        try:
            return len(os.listdir(f"/proc/{pid}/task")) > 1
        except OSError:
            return False


#: Each broken wrapper, the rules to run on it and the rules it must be
#: caught under: as root (a PID namespace of its own, PID reuse) and as
#: nobody (the caller's namespace; None: not expected to be caught there).
CASES = {
    "ZeroForMissing": (["C3", "C4", "C5"], {"C3", "C4", "C5"}, {"C3", "C4", "C5"}),
    "ExistsThenZero": (["C2"], {"C2"}, {"C2"}),
    "ZeroForZombies": (["C5"], {"C5"}, {"C5"}),
    "SharedPid": (["C11"], {"C11"}, {"C11"}),
    "TrueForFamily": (["C2", "C5", "C7"], {"C2", "C5", "C7"}, {"C2", "C5", "C7"}),
    "ZeroListing": (["C7"], {"C7"}, {"C7"}),
    "ZeroForGrandchildren": (["C2", "C7"], {"C2", "C7"}, {"C2", "C7"}),
    "ZeroForInitsChildren": (["C2", "C7"], {"C2", "C7"}, None),
    "ZeroForDeepZombies": (["C5"], {"C5"}, {"C5"}),
    "ZeroAbove10": (["C2", "C7"], {"C2", "C7"}, {"C2", "C7"}),
    "AnswersOtherThreads": (["C4"], {"C4"}, {"C4"}),
    "ListsThreads": (["C7"], {"C7"}, {"C7"}),
    "ListsPhantoms": (["C7"], {"C7"}, None),
    "SubsetZero": (["C7"], {"C7"}, {"C7"}),
    "RecordsZero": (["C7"], {"C7"}, {"C7"}),
    "StaleAfterReuse": (["C5"], {"C5"}, None),
    "ParentsSession": (["C2"], {"C2"}, {"C2"}),
    "ZeroForMultithreaded": (["C2", "C7"], {"C2", "C7"}, {"C2", "C7"}),
}


def outcomes(names=None):
    # {backend: what check_contract said of it}
    from sessionid_cffi.testing import ContractViolation, check_contract

    found = {}
    names = ["LiveWrapper"] + list(CASES) if names is None else names
    for name in names:
        rules = None if name == "LiveWrapper" else CASES[name][0]
        report = None
        started = time.monotonic()
        try:
            report = check_contract(globals()[name](), rules=rules)
        except ContractViolation as err:
            text = str(err)
        else:
            text = str(report)
        found[name] = {
            "broken": [l.split()[1].rstrip(":") for l in text.splitlines() if "BROKEN" in l],
            "notes": report.notes if report else None,
            "text": text,
            "seconds": round(time.monotonic() - started, 1),
        }
    return found
"""


def _live_broken_module() -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "live_broken"}
    exec(compile(LIVE_BROKEN, "live_broken", "exec"), namespace)
    return namespace


def _check_live_outcomes(found: dict[str, dict[str, object]], as_root: bool) -> None:
    cases = _live_broken_module()["CASES"]
    real = found.pop("LiveWrapper")
    assert real["broken"] == [], real["text"]
    notes = real["notes"]
    if as_root:
        assert notes == {}, real["text"]  # logins, a namespace, reuse: every part ran
    else:  # the one part nobody cannot set up: PID reuse
        assert notes
        assert all("reuse" in note or "ns_last_pid" in note for note in notes.values())
    for name, outcome in found.items():
        _, root_rules, nobody_rules = cases[name]  # type: ignore[index]
        expected = root_rules if as_root else nobody_rules
        if expected is None:
            continue
        assert set(outcome["broken"]) == expected, f"{name}: {outcome['text']}"  # type: ignore[call-overload]


@pytest.mark.worlds
@pytest.mark.skipif(not LINUX, reason="the broken wrappers read procfs")
@pytest.mark.skipif(NO_LOGINS is not None, reason=f"no logins can be made here: {NO_LOGINS}")
def test_check_contract_catches_broken_live_backends() -> None:
    # Judged against what real processes report about themselves, with real
    # logins, in the generated world: each broken wrapper of the real
    # backend is caught under its rules, and the unbroken wrapper keeps
    # every rule in full.
    found = _live_broken_module()["outcomes"]()  # type: ignore[operator]
    _check_live_outcomes(found, as_root=IS_ROOT)


@pytest.mark.worlds
@pytest.mark.skipif(not (LINUX and IS_ROOT), reason="needs root on Linux to become nobody")
def test_check_contract_catches_broken_live_backends_as_nobody() -> None:
    # The same as user nobody (uid 65534), whose children may each start
    # one login while the loginuid is unset. The process imports everything
    # as root, then drops to nobody (the interpreter may live where nobody
    # cannot read it), and only then checks.
    with open("/proc/self/loginuid") as file:
        if int(file.read()) != 0xFFFFFFFF:
            pytest.skip("this process's loginuid is set: nobody's children could not log in")
    code = LIVE_BROKEN + textwrap.dedent("""
        import ctypes, json, shutil, signal  # the stdlib of root's Python: read while root
        import sessionid_cffi.testing.contract
        import sessionid_cffi.testing._generated
        import sessionid_cffi._records  # loaded lazily: while root, as the venv may be 0700
        sessionid_cffi.get_backend()
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        print(json.dumps({"uid": os.getuid(), "found": outcomes()}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd="/"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["uid"] == 65534
    _check_live_outcomes(result["found"], as_root=False)


WINDOWS_BROKEN = """
import ctypes


def _thread_owner(tid):
    # The PID of the process thread ``tid`` belongs to, from kernel32.
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenThread.restype = ctypes.c_void_p
    handle = kernel32.OpenThread(0x0800, False, tid)  # THREAD_QUERY_LIMITED_INFORMATION
    if not handle:
        return None
    try:
        kernel32.GetProcessIdOfThread.argtypes = [ctypes.c_void_p]
        return kernel32.GetProcessIdOfThread(ctypes.c_void_p(handle)) or None
    finally:
        kernel32.CloseHandle(ctypes.c_void_p(handle))


class OtherThreadsAnswerWin(LiveWrapper):
    # A thread id of another process answers that process's session; the
    # caller's own threads still answer 87.

    def session_id(self, pid):
        owner = _thread_owner(pid)
        if owner not in (None, pid, os.getpid()):
            return self._live.session_id(owner)
        return self._live.session_id(pid)


CASES["OtherThreadsAnswerWin"] = (["C4"], {"C4"}, None)
"""


@pytest.mark.skipif(not WINDOWS, reason="wrappers of kernel32 (Windows, the Wine lane)")
def test_check_contract_catches_broken_kernel32_wrappers() -> None:
    """Under Wine every process is in session 1, so a wrapper answering 0
    for the generated world's processes in one query form is caught (C7),
    and one answering for another process's thread ids (C4); the unbroken
    wrapper keeps every rule it can."""
    module = _live_broken_module()
    exec(compile(WINDOWS_BROKEN, "windows_broken", "exec"), module)
    names = ["LiveWrapper", "ZeroListing", "SubsetZero", "RecordsZero", "OtherThreadsAnswerWin"]
    found = module["outcomes"](names)  # type: ignore[operator]
    assert found.pop("LiveWrapper")["broken"] == []
    cases = module["CASES"]
    for name, outcome in found.items():
        assert set(outcome["broken"]) == cases[name][1], outcome["text"]  # type: ignore[index]


class _DictFake:
    """A user's own fake that is not a ModelBackend: only listed PIDs known."""

    name = "users-fake"

    def __init__(self, table: dict[int, int], zero_for_missing: bool) -> None:
        self.table = table
        self.zero_for_missing = zero_for_missing

    def session_id(self, pid: int) -> int:
        if pid in self.table:
            return self.table[pid]
        if self.zero_for_missing:
            return 0
        from sessionid_cffi._errors import not_found

        raise not_found(pid, "not in my table")

    def console_session_id(self) -> int | None:
        return None

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        keys = self.table if pids is None else [p for p in pids if p in self.table]
        return {pid: self.table[pid] for pid in keys}

    def process_records(self, fields: frozenset[str] | None = None) -> list[ProcessRecord]:
        return [ProcessRecord(pid, session) for pid, session in self.table.items()]


def test_check_contract_on_a_users_own_fake() -> None:
    report = check_contract(_DictFake({OWN: 1, 50: 0}, zero_for_missing=False))  # type: ignore[arg-type]
    assert report.world == "the processes the backend lists"
    assert {"C1", "C3", "C7"} <= set(report.kept)
    assert "cannot start a child" in report.skipped["C2"]
    with pytest.raises(ContractViolation, match=r"BROKEN C3: C3: a PID naming no process"):
        check_contract(_DictFake({OWN: 1, 50: 0}, zero_for_missing=True))  # type: ignore[arg-type]


def test_check_contract_refuses_a_non_backend() -> None:
    with pytest.raises(TypeError, match=r"needs a backend with \.name, \.session_id, \.console"):
        check_contract(object())  # type: ignore[arg-type]


def test_check_contract_names_every_missing_method_at_once() -> None:
    class Half:
        name = "half"

        def session_id(self, pid: int) -> int:
            return 0

    with pytest.raises(TypeError) as caught:
        check_contract(Half())  # type: ignore[arg-type]
    assert ".console_session_id, .session_ids;" in str(caught.value)
    assert ".name" not in str(caught.value)


def test_errors_construct_from_a_pid_alone() -> None:
    missing, denied = ProcessNotFoundError(4242), AccessDeniedError(4242)
    assert (missing.pid, missing.winerror, missing.errno) == (4242, 87, None)
    assert (denied.pid, denied.winerror) == (4242, 5)
    assert str(missing) == "[WinError 87] process 4242 not found"
    assert str(denied) == "[WinError 5] access to process 4242 denied"
    assert ProcessNotFoundError(7, "gone").strerror == "gone"
    assert ProcessNotFoundError(7, 87, "gone", 3).errno == 3  # the long form still works
    with pytest.raises(ValueError, match="always 87"):
        ProcessNotFoundError(7, 5, "lying")
    import pickle

    again = pickle.loads(pickle.dumps(denied))
    assert (type(again), again.pid, again.winerror) == (AccessDeniedError, 4242, 5)


def _docs_block(after: str) -> str:
    text = (Path(__file__).parent.parent / "docs" / "testing.md").read_text()
    start = text.index("```python\n", text.index(after)) + len("```python\n")
    return text[start : text.index("```", start)]


def test_the_documented_minimal_backend_passes() -> None:
    """docs/testing.md's minimal backend, run as written: 9 rules kept
    (C8 and C9 library level), judged against its declared world."""
    namespace: dict[str, object] = {"__name__": "minimal"}
    exec(_docs_block("minimal backend that passes (tested"), namespace)
    report = namespace["report"]
    assert not report.broken  # type: ignore[attr-defined]
    assert set(report.judged) == {"C2", "C4", "C5", "C7"}  # type: ignore[attr-defined]


class _DeclaredFake:
    """A fake of one's own answering from a table, broken on request."""

    name = "declared-fake"

    def __init__(self, table: dict[int, int], threads: set[int], breakage: str = "") -> None:
        self.table, self.threads, self.breakage = table, threads, breakage

    def session_id(self, pid: int) -> int:
        if pid in self.threads:
            if self.breakage == "threads":
                return 0
            raise ProcessNotFoundError(pid)
        if pid == OWN + 500 and self.breakage == "reaped":
            return 2  # remembers a reaped process
        if pid not in self.table:
            raise ProcessNotFoundError(pid)
        if self.breakage == "far" and pid != OWN:
            return 0
        return self.table[pid]

    def console_session_id(self) -> int | None:
        return None

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        found = {}
        for pid in self.table if pids is None else pids:
            try:
                found[pid] = self.session_id(pid)
            except ProcessNotFoundError:
                continue
        if self.breakage == "listing" and pids is None:
            found = {pid: 0 for pid in found}
        return found


@pytest.mark.parametrize(
    ("breakage", "rules"),
    [
        ("", set()),
        ("threads", {"C4", "C7"}),
        ("far", {"C2", "C5", "C7"}),
        ("listing", {"C7"}),
        ("reaped", {"C5"}),
    ],
)
def test_a_declared_world_judges_a_fake_in_full(breakage: str, rules: set[str]) -> None:
    from sessionid_cffi.testing import World

    table = {OWN: 1, OWN + 100: 2, OWN + 200: 3, OWN + 300: 2}
    fake = _DeclaredFake(table, {OWN + 400}, breakage)
    world = World.declare(table, threads=[OWN + 400], exited=[OWN + 300], gone=[OWN + 500])
    if not rules:
        report = check_contract(fake, world=world)  # type: ignore[arg-type]
        assert sorted(report.kept) == sorted(set(RULES) - {"C6", "C8", "C9"})
        assert "no process is denied" in report.skipped["C6"]  # nothing declared denied
        return
    with pytest.raises(ContractViolation) as caught:
        check_contract(fake, world=world)  # type: ignore[arg-type]
    broken = {
        line.split()[1].rstrip(":") for line in str(caught.value).splitlines() if "BROKEN" in line
    }
    assert rules <= broken, str(caught.value)


def test_a_kit_error_is_not_blamed_on_the_backend() -> None:
    """An exception raised in the kit's own code is reported as the kit's
    (not checked), one raised in the backend's code as the backend's."""
    from sessionid_cffi.testing import World

    class BadWorld(World):  # the kit's code fails (its world, here)
        description = "a world that fails"

        def self_pid(self) -> int:
            return OWN

        def missing_pids(self) -> list[int]:
            return [int("x")]  # a ValueError inside the kit's call

    report = check_contract(ModelBackend({OWN: 1}), world=BadWorld(), rules=["C1", "C3"])
    assert report.kept == ["C1"]
    assert "not in the backend): ValueError" in report.skipped["C3"]

    class Raising(ModelBackend):
        def session_ids(self, pids: list[int] | None) -> dict[int, int]:
            raise TypeError("the backend's own bug")

    with pytest.raises(ContractViolation, match="the backend raised TypeError"):
        check_contract(Raising({OWN: 1}), rules=["C7"])


def test_a_declaration_that_contradicts_itself_is_refused() -> None:
    from sessionid_cffi.testing import World

    with pytest.raises(ValueError, match="cannot be in the table"):
        World.declare({OWN: 1, 50: 0}, threads=[50])
    with pytest.raises(ValueError, match="cannot be in the table"):
        World.declare({OWN: 1, 50: 0}, gone=[50])
    with pytest.raises(ValueError, match="must be in the table"):
        World.declare({OWN: 1}, exited=[50])


LOGGED_IN_USER = """
import json, os
import ctypes, shutil, signal
import sessionid_cffi
import sessionid_cffi.testing.contract, sessionid_cffi.testing._generated
import sessionid_cffi._records  # loaded lazily: while root, as the venv may be 0700
from sessionid_cffi.testing import check_contract
sessionid_cffi.get_backend()
with open("/proc/self/loginuid", "w") as file:  # root starts a login for itself
    file.write("4343")
os.setgroups([])
os.setgid(65534)
os.setuid(65534)  # now nobody, in a login it may not leave
report = check_contract(sessionid_cffi.get_backend(), rules=["C2", "C5", "C7"])
print(json.dumps({"kept": report.kept, "notes": report.notes, "text": str(report)}))
"""


@pytest.mark.skipif(not (LINUX and IS_ROOT), reason="needs root on Linux to set a loginuid")
def test_a_caller_in_a_login_without_audit_rights_hears_what_was_left_out() -> None:
    """The usual desktop or SSH user: in a login (loginuid set), without
    CAP_AUDIT_CONTROL, so no process can start a login. The rules hold, and
    each says which part could not be built, never "kept" in full."""
    done = subprocess.run(
        [sys.executable, "-c", LOGGED_IN_USER], capture_output=True, text=True, timeout=300, cwd="/"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["kept"] == ["C2", "C5", "C7"], result["text"]
    assert set(result["notes"]) == {"C2", "C5", "C7"}, result["text"]
    assert "no process could start a login" in result["notes"]["C5"], result["text"]
    assert "PID reuse" in result["notes"]["C5"], result["text"]


@pytest.mark.worlds
@pytest.mark.skipif(not LINUX, reason="sizes measured on Linux worlds; Windows runs the default")
def test_the_generated_worlds_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    """worlds= and size= (or their environment variables) set how much is
    built; seed= replays a world; worlds=0 leaves it out."""
    live = get_backend()
    small = check_contract(live, rules=["C2"], worlds=1, size=10, seed=5)
    again = check_contract(live, rules=["C2"], worlds=1, size=10, seed=5)
    assert small.judged == again.judged  # the same world, drawn again
    assert "(seed 5)" in small.judged["C2"]
    monkeypatch.setenv("SESSIONID_CONTRACT_WORLDS", "2")
    monkeypatch.setenv("SESSIONID_CONTRACT_WORLD_SIZE", "24")
    bigger = check_contract(live, rules=["C2"], seed=5)
    assert "(seed 5, 6)" in bigger.judged["C2"]

    def judged(report: object) -> int:
        return int(report.judged["C2"].split(": ")[1].split()[0])  # type: ignore[attr-defined]

    assert judged(bigger) > 2 * judged(small)
    none = check_contract(live, rules=["C2"], worlds=0)
    assert none.judged == {}
    with pytest.raises(ValueError, match="size >= 1"):
        check_contract(live, rules=["C2"], size=0)
    with pytest.raises(ValueError, match="not with world="):
        check_contract(live, world=LiveWorld(), seed=1)


@pytest.mark.parametrize("root", [True, False], ids=["root", "nobody"])
def test_every_generated_world_keeps_each_depth_running_inside_a_login(
    root: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the seed and the fates (exits, reaps), a generated world
    keeps, running inside a login, a process at each depth 1-4 of the real
    process tree (the parent of a non-orphan is its world parent; an
    orphan's is the caller, its subreaper) and a grandchild through an
    adopted orphan: a backend wrong only at one depth cannot pass for lack
    of such a process (a CI run drew a world whose grandchildren had all
    exited). Built on a recording forest: the plan is checked, not the OS."""
    from sessionid_cffi.testing import _forest, _generated

    monkeypatch.setattr(_generated, "LINUX", True)
    monkeypatch.setattr(_generated, "WINDOWS", False)
    monkeypatch.setattr(_generated, "can_login", lambda: True)
    monkeypatch.setattr(_generated, "root_may_login", lambda: root)

    class Recording(_forest.SimForest):
        def setsid(self, proc: object) -> None:
            pass

        def nohup(self, proc: object) -> None:
            pass

        def spawn(self, parent: object, *, orphan: bool = False) -> object:
            proc = super().spawn(parent, orphan=orphan)  # type: ignore[arg-type]
            proc.login_set = bool(parent and parent.login_set)  # type: ignore[attr-defined]
            return proc

        def login(self, proc: object, uid: int | None = None) -> None:
            super().login(proc, uid)  # type: ignore[arg-type]
            proc.login_set = True  # type: ignore[attr-defined]

    def real_depth(proc: object) -> int | None:
        """Depth below the caller with every ancestor running; None if broken."""
        level = 0
        while proc is not None:
            if proc.state != "alive":  # type: ignore[attr-defined]
                return None
            level += 1
            proc = None if proc.orphan else proc.parent  # type: ignore[attr-defined]
        return level

    for seed in range(300):
        forest = Recording()
        _generated._build(forest, random.Random(seed), 16, _generated.Judgement())
        inside = [p for p in forest.procs if p.session != forest.self_session]
        depths = {real_depth(p) for p in inside}
        assert {1, 2, 3, 4} <= depths, (seed, depths)
        assert any(
            p.state == "alive" and p.orphan and p.parent is not None and real_depth(p) == 1
            for p in inside
        ), seed
        assert [p for p in forest.procs if p.state == "exited"], seed  # zombies still made
        assert [p for p in forest.procs if p.state == "gone"], seed  # and reaped PIDs
