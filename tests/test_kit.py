"""The test kit that users import: fake_sessions (context manager and pytest
fixture), the Hypothesis strategies, and check_contract, which must pass on
the real backends and fail, naming the rule, on broken ones."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from hypothesis import given, settings

import sessionid_cffi
from sessionid_cffi import (
    AccessDeniedError,
    ProcessNotFoundError,
    current_session_id,
    get_backend,
    process_id_to_session_id,
    session_ids,
)
from sessionid_cffi.testing import (
    RULES,
    ContractViolation,
    ModelBackend,
    check_contract,
    fake_sessions,
)
from sessionid_cffi.testing.strategies import model_backends, pids, process_tables
from sessionid_cffi.testing.strategies import session_ids as session_numbers

WINDOWS = sys.platform == "win32"
OWN = os.getpid()


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


def test_fake_sessions_is_per_block_across_threads() -> None:
    """Each thread's block removes its own swap, whatever the order."""
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


def test_fixture_is_undone_after_the_test() -> None:
    """Runs after the fixture test above: nothing is left installed."""
    assert get_backend().name == ("kernel32" if WINDOWS else "procfs")


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
@given(model=model_backends() | model_backends(windows=True))
def test_check_contract_passes_on_every_generated_model(model: ModelBackend) -> None:
    if model.aliasing and OWN % 4:
        return  # not reachable: model_backends refuses such a caller
    report = check_contract(model)
    assert not report.broken
    assert set(report.kept) | set(report.skipped) == set(RULES)
    assert "C6" in report.kept if model.denied else "C6" in report.skipped


# -- check_contract on the real backends ----------------------------------------
def test_check_contract_passes_on_the_live_backend() -> None:
    report = check_contract(get_backend())
    assert report.backend == ("kernel32" if WINDOWS else "procfs")
    assert set(report.kept) >= {"C1", "C2", "C3", "C4", "C5", "C7", "C8", "C9"}
    assert "C6" in report.skipped  # nothing is denied to the caller here
    assert "kept   C1" in str(report)


def test_check_contract_passes_on_a_model_with_every_scene() -> None:
    model = ModelBackend({OWN: 1, OWN + 10: 0, OWN + 20: 2}, denied=[OWN + 20])
    report = check_contract(model)
    assert report.kept == list(RULES)


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
    (ChildrenElsewhere, "C2", "the caller in 1"),
    (IgnoresDenied, "C6", "a denied process"),
    (AliasesOnLinux, "C10", "no aliasing here"),
    (NotADword, "C7", "not a DWORD"),
    (WrongPidInError, "C3", "names PID"),
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
    # The rules this backend keeps are still listed as kept.
    assert "  kept   C8" in report.splitlines()


def test_the_intact_scene_keeps_every_rule() -> None:
    """The control for the table above: the same scene, unbroken, passes."""
    assert check_contract(ModelBackend(_scene(), denied=[OWN + 2000])).kept == list(RULES)


class _LiveZeroForMissing:
    """A wrapper around the live backend with the classic bug."""

    def __init__(self) -> None:
        self._live = get_backend()
        self.name = self._live.name
        self.live = True

    def session_id(self, pid: int) -> int:
        try:
            return self._live.session_id(pid)
        except ProcessNotFoundError:
            return 0

    def console_session_id(self) -> int | None:
        return self._live.console_session_id()

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        return self._live.session_ids(pids)

    def process_records(self) -> list[tuple[int, int, str | None, str | None]]:
        return self._live.process_records()


def test_check_contract_catches_a_broken_live_wrapper() -> None:
    with pytest.raises(ContractViolation) as caught:
        check_contract(_LiveZeroForMissing())  # type: ignore[arg-type]
    report = str(caught.value)
    assert "on real processes of this machine" in report
    for rule in ("C3", "C4", "C5"):
        assert f"  BROKEN {rule}:" in report, report


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

    def process_records(self) -> list[tuple[int, int, str | None, str | None]]:
        return [(pid, session, None, None) for pid, session in self.table.items()]


def test_check_contract_on_a_users_own_fake() -> None:
    report = check_contract(_DictFake({OWN: 1, 50: 0}, zero_for_missing=False))  # type: ignore[arg-type]
    assert report.world == "the processes the backend lists"
    assert {"C1", "C3", "C7"} <= set(report.kept)
    assert "cannot start a child" in report.skipped["C2"]
    with pytest.raises(ContractViolation, match=r"BROKEN C3: C3: a PID naming no process"):
        check_contract(_DictFake({OWN: 1, 50: 0}, zero_for_missing=True))  # type: ignore[arg-type]


def test_check_contract_refuses_a_non_backend() -> None:
    with pytest.raises(TypeError, match=r"check_contract\(\) needs a backend with \.name"):
        check_contract(object())  # type: ignore[arg-type]
