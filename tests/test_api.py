"""The Pythonic and raw API on every backend: argument checking (C7, C8),
errors, backend selection and swapping, the raw Win32 shape (C3, C9)."""

from __future__ import annotations

import enum
import inspect
import os
import pickle
import subprocess
import sys
import threading
from types import FrameType

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sessionid_cffi as s
from sessionid_cffi import _backend
from sessionid_cffi.testing import ModelBackend

from conftest import LINUX, make_model

DWORD_MAX = 2**32 - 1


class Index:
    """Not an int, but has __index__: accepted like the int it stands for."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


class Pid(enum.IntEnum):
    SELF = os.getpid()


# -- C8: what the Python API accepts -------------------------------------------------
non_integers = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(),
    st.text(),
    st.binary(),
    st.complex_numbers(),
    st.lists(st.integers(), max_size=3),
    st.decimals(allow_nan=False),
    st.fractions(),
)


@given(value=non_integers)
def test_non_integers_raise_type_error(backend: object, value: object) -> None:
    with s.use_backend(backend), pytest.raises(TypeError, match="pid"):  # type: ignore[arg-type]
        s.process_id_to_session_id(value)


@given(value=st.one_of(st.integers(max_value=-1), st.integers(min_value=DWORD_MAX + 1)))
def test_out_of_range_integers_raise_value_error(backend: object, value: int) -> None:
    with s.use_backend(backend), pytest.raises(ValueError, match="DWORD"):  # type: ignore[arg-type]
        s.process_id_to_session_id(value)


def test_index_objects_answer_like_their_int(backend: object) -> None:
    own = os.getpid()
    with s.use_backend(backend):  # type: ignore[arg-type]
        expected = s.process_id_to_session_id(own)
        assert s.process_id_to_session_id(Index(own)) == expected
        assert s.process_id_to_session_id(Pid.SELF) == expected
        with pytest.raises(ValueError, match="DWORD"):
            s.process_id_to_session_id(Index(-1))


def test_hostile_index_becomes_type_error() -> None:
    class Hostile:
        def __index__(self) -> int:
            raise RuntimeError("boom")

    with pytest.raises(TypeError, match="boom"):
        s.process_id_to_session_id(Hostile())


@given(pid=st.integers(0, DWORD_MAX))
def test_every_dword_answers_a_dword_or_a_documented_error(backend: object, pid: int) -> None:
    """C7 on every backend: never a crash, a hang or a non-DWORD."""
    with s.use_backend(backend):  # type: ignore[arg-type]
        try:
            answer: int | s.SessionIdError = s.process_id_to_session_id(pid)
        except (s.ProcessNotFoundError, s.AccessDeniedError) as err:
            answer = err
    if isinstance(answer, s.SessionIdError):
        assert answer.pid == pid
        assert answer.winerror in (s.ERROR_INVALID_PARAMETER, s.ERROR_ACCESS_DENIED)
    else:
        assert type(answer) is int
        assert 0 <= answer <= DWORD_MAX


# -- errors -----------------------------------------------------------------------
def test_not_found_error_carries_pid_codes_and_a_message() -> None:
    missing = max(make_model().processes()) + 4
    with s.use_backend(make_model()), pytest.raises(s.ProcessNotFoundError) as caught:
        s.process_id_to_session_id(missing)
    err = caught.value
    assert isinstance(err, ProcessLookupError)
    assert isinstance(err, s.SessionIdError)
    assert isinstance(err, OSError)
    assert (err.pid, err.winerror) == (missing, 87)
    assert str(missing) in str(err)
    assert "not found" in str(err)


def test_access_denied_error_is_a_permission_error() -> None:
    model = make_model()
    denied = min(model.denied)
    with s.use_backend(model), pytest.raises(s.AccessDeniedError) as caught:
        s.process_id_to_session_id(denied)
    assert isinstance(caught.value, PermissionError)
    assert (caught.value.pid, caught.value.winerror) == (denied, 5)
    assert "denied" in str(caught.value)


def test_errors_survive_pickling() -> None:
    """Errors cross process boundaries (multiprocessing) with their fields."""
    for err in (
        s.ProcessNotFoundError(12, 87, "process 12 not found", 3),
        s.AccessDeniedError(1, 5, "access to process 1 denied", 13),
    ):
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is type(err)
        assert (copy.pid, copy.winerror, copy.errno, str(copy)) == (
            err.pid,
            err.winerror,
            err.errno,
            str(err),
        )


def test_constants_are_the_win32_codes() -> None:
    # winerror.h: ERROR_ACCESS_DENIED 5L, ERROR_INVALID_PARAMETER 87L
    assert (s.ERROR_ACCESS_DENIED, s.ERROR_INVALID_PARAMETER) == (5, 87)


# -- backends ---------------------------------------------------------------------
def test_use_backend_swaps_and_restores() -> None:
    before = s.get_backend()
    outer, inner = ModelBackend({os.getpid(): 7}), ModelBackend({os.getpid(): 9})
    with s.use_backend(outer):
        assert s.current_session_id() == 7
        with s.use_backend(inner):
            assert s.current_session_id() == 9
        assert s.current_session_id() == 7
    assert s.get_backend() is before


def test_use_backend_rejects_non_backends() -> None:
    with pytest.raises(TypeError, match="backend"):
        s.use_backend(object())  # type: ignore[arg-type]


def test_use_backend_is_safe_from_many_threads() -> None:
    """Threads entering and leaving their own swaps, interleaved, never
    leave a stale swap behind and always see a swap that is open."""
    before = s.get_backend()
    models = [ModelBackend({os.getpid(): n}) for n in range(1, 9)]
    errors: list[str] = []
    start = threading.Barrier(len(models))

    def worker(model: ModelBackend) -> None:
        start.wait()
        for _ in range(300):
            with s.use_backend(model):
                if s.get_backend() not in models:
                    errors.append("a swap that is not open answered")

    threads = [threading.Thread(target=worker, args=(m,)) for m in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert s.get_backend() is before


def test_a_swap_closed_between_the_check_and_the_index_is_still_answered() -> None:
    """The interleaving a free-threaded CPython (or an unlucky thread switch)
    makes: get_backend() has seen an open swap, and before it reads the top
    of the stack another thread closes that swap. Forced here with a line
    tracer that closes the swap (as that thread would, with the same call)
    just before the line that reads the top runs. A stack read twice (check,
    then index) raises IndexError; one read once answers the swap it saw."""
    model = ModelBackend({os.getpid(): 5})
    swap = s.use_backend(model)
    swap.__enter__()
    code = _backend.get_backend.__code__
    lines = inspect.getsourcelines(_backend.get_backend)
    top_line = next(lines[1] + offset for offset, text in enumerate(lines[0]) if "[-1]" in text)
    closed: list[bool] = []

    def in_get_backend(frame: FrameType, event: str, arg: object) -> object:
        if event == "line" and frame.f_lineno == top_line and not closed:
            swap.__exit__(None, None, None)  # the other thread's "with" ends
            closed.append(True)
        return in_get_backend

    def tracer(frame: FrameType, event: str, arg: object) -> object:
        return in_get_backend if frame.f_code is code else None

    previous = sys.gettrace()  # coverage's, when it runs
    sys.settrace(tracer)
    try:
        answered = s.get_backend()
    finally:
        sys.settrace(previous)
    assert closed == [True]  # the swap really closed in between
    assert answered is model  # the swap that was open when asked
    assert s.get_backend() is not model  # and it is closed now


def test_live_backend_name_is_the_platform_one() -> None:
    expected = "kernel32" if sys.platform == "win32" else "procfs"
    assert s.get_backend().name == expected


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=False
    )


def test_env_var_picks_a_builtin_backend() -> None:
    done = _run(
        "import sessionid_cffi as s; print(s.get_backend().name, s.current_session_id())",
        SESSIONID_CFFI_BACKEND="model",
    )
    assert done.stdout.split() == ["model", "1"], done.stderr


def test_env_var_accepts_nothing_but_builtin_names() -> None:
    code = (
        "import sessionid_cffi as s\n"
        "try:\n    s.current_session_id()\n"
        "except s.BackendUnavailableError as e:\n    print('refused:', e)\n"
    )
    done = _run(code, SESSIONID_CFFI_BACKEND="os.system")
    assert "refused:" in done.stdout, done.stderr
    assert "'os.system'" in done.stdout
    assert "kernel32, procfs, model" in done.stdout


def test_raw_call_without_a_backend_is_false_with_the_code() -> None:
    """The raw API never raises for a backend that cannot load: FALSE, the
    backend error's Win32 code (50) and the out-pointer untouched."""
    code = (
        "import os, sessionid_cffi as s\n"
        "out = s.ffi.new('DWORD *', 0xDEADBEEF)\n"
        "print(s.ProcessIdToSessionId(os.getpid(), out), s.GetLastError(), hex(out[0]))\n"
    )
    done = _run(code, SESSIONID_CFFI_BACKEND="nosuch")
    assert done.stdout.split() == ["0", str(s.ERROR_NOT_SUPPORTED), "0xdeadbeef"], done.stderr


def test_unsupported_platform_fails_at_query_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "sunos5")
    monkeypatch.setattr(_backend, "_default", None)
    monkeypatch.delenv("SESSIONID_CFFI_BACKEND", raising=False)
    with pytest.raises(s.BackendUnavailableError, match="sunos5"):
        s.current_session_id()
    with pytest.raises(s.BackendUnavailableError, match="sunos5"):
        s.process_id_to_session_id(1)
    out = s.ffi.new("DWORD *", 5)
    assert (s.ProcessIdToSessionId(1, out), s.GetLastError(), out[0]) == (0, 50, 5)


@pytest.mark.skipif(not LINUX, reason="the import-cost rule is about the Linux path")
def test_import_and_query_do_not_load_cffi() -> None:
    code = (
        "import sys, sessionid_cffi as s; s.current_session_id(); "
        "print(sorted(m for m in ('cffi', '_cffi_backend', 'pycparser') if m in sys.modules))"
    )
    assert _run(code).stdout.strip() == "[]"


# -- the raw API --------------------------------------------------------------------
def _cdef() -> str:
    """CDEF of tools/ffi_build.py, the build tool that is not in the wheel."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "tools" / "ffi_build.py"
    if not path.exists():
        pytest.skip(f"no build tool at {path} (tests run outside a checkout or sdist)")
    spec = importlib.util.spec_from_file_location("ffi_build", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cdef: str = module.CDEF
    return cdef


def test_cdef_declares_the_exact_win32_prototypes() -> None:
    cdef = _cdef()
    assert "BOOL WINAPI ProcessIdToSessionId(DWORD dwProcessId, DWORD *pSessionId);" in cdef
    assert "DWORD WINAPI WTSGetActiveConsoleSessionId(void);" in cdef
    assert s.ffi.sizeof("DWORD") == 4
    assert s.ffi.sizeof("BOOL") == 4


def test_raw_success_writes_the_session(backend: object) -> None:
    out = s.ffi.new("DWORD *", 0xDEADBEEF)
    with s.use_backend(backend):  # type: ignore[arg-type]
        expected = s.current_session_id()
        assert s.ProcessIdToSessionId(os.getpid(), out) == 1
    assert out[0] == expected


def test_raw_accepts_dword_arrays(backend: object) -> None:
    out = s.ffi.new("DWORD[2]", [0xDEADBEEF, 0xDEADBEEF])
    with s.use_backend(backend):  # type: ignore[arg-type]
        assert s.ProcessIdToSessionId(os.getpid(), out) == 1
        assert out[0] == s.current_session_id()
    assert out[1] == 0xDEADBEEF


@pytest.mark.parametrize(
    "make_pointer",
    [
        lambda: s.ffi.NULL,
        lambda: s.ffi.cast("DWORD *", 0),
        lambda: s.ffi.cast("DWORD *", 8),
        lambda: s.ffi.new("DWORD[0]"),
    ],
    ids=["ffi.NULL", "NULL DWORD*", "low address", "empty array"],
)
def test_raw_null_like_pointers_fail_with_87(backend: object, make_pointer: object) -> None:
    with s.use_backend(backend):  # type: ignore[arg-type]
        assert s.ProcessIdToSessionId(os.getpid(), make_pointer()) == 0  # type: ignore[operator]
        assert s.GetLastError() == s.ERROR_INVALID_PARAMETER


@pytest.mark.parametrize(
    "pointer",
    [None, 0, 12345, "DWORD *", bytearray(4), memoryview(bytearray(4))],
    ids=repr,
)
def test_raw_non_pointers_raise_type_error(backend: object, pointer: object) -> None:
    with s.use_backend(backend), pytest.raises(TypeError, match="pSessionId"):  # type: ignore[arg-type]
        s.ProcessIdToSessionId(os.getpid(), pointer)


@pytest.mark.parametrize(
    "ctype", ["int *", "char[4]", "unsigned short *", "unsigned long long *", "float *", "DWORD **"]
)
def test_raw_wrongly_typed_pointers_raise_type_error(backend: object, ctype: str) -> None:
    with s.use_backend(backend), pytest.raises(TypeError, match="DWORD"):  # type: ignore[arg-type]
        s.ProcessIdToSessionId(os.getpid(), s.ffi.new(ctype))


def test_raw_failure_leaves_the_pointer_untouched_and_sets_87(backend: object) -> None:
    out = s.ffi.new("DWORD *", 0xDEADBEEF)
    with s.use_backend(backend):  # type: ignore[arg-type]
        assert s.ProcessIdToSessionId(0, out) == 0
        assert s.GetLastError() == 87
    assert out[0] == 0xDEADBEEF


def test_raw_success_keeps_the_last_error(backend: object) -> None:
    """Win32 functions do not clear the last error on success."""
    out = s.ffi.new("DWORD *")
    with s.use_backend(backend):  # type: ignore[arg-type]
        s.ProcessIdToSessionId(0, out)
        assert s.ProcessIdToSessionId(os.getpid(), out) == 1
        assert s.GetLastError() == 87


def test_console_session_from_the_model() -> None:
    with s.use_backend(ModelBackend({os.getpid(): 1}, console_session=3)):
        assert s.active_console_session_id() == 3
        assert s.WTSGetActiveConsoleSessionId() == 3
    with s.use_backend(ModelBackend({os.getpid(): 1})):
        assert s.active_console_session_id() is None
        assert s.WTSGetActiveConsoleSessionId() == 0xFFFFFFFF


def test_session_ids_for_given_pids_leaves_failures_out() -> None:
    model = make_model()
    table = model.processes()
    asked = [*table, max(table) + 4, 0]
    with s.use_backend(model):
        found = s.session_ids(asked)
    assert found == {pid: table[pid] for pid in table if pid not in model.denied}
    with pytest.raises(TypeError):
        s.session_ids("123")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        s.session_ids([1.5])  # type: ignore[list-item]


def test_a_backend_without_process_records_still_lists_sessions() -> None:
    """process_records is optional: listings fall back to session_ids()."""

    class Minimal:
        name = "minimal"

        def session_id(self, pid: int) -> int:
            raise s.ProcessNotFoundError(pid, 87, f"process {pid} not found")

        def console_session_id(self) -> int | None:
            return 2

        def session_ids(self, pids: list[int] | None) -> dict[int, int]:
            return {10: 2, 11: 2, 12: 5}

    with s.use_backend(Minimal()):  # type: ignore[arg-type]
        listed = [(i.session_id, i.user, i.process_count, i.is_console) for i in s.sessions()]
        assert s.processes_in_session(2) == [10, 11]
    assert listed == [(2, None, 2, True), (5, None, 1, False)]


@pytest.mark.skipif(not LINUX, reason="fills the descriptor table through /dev/null (Linux)")
def test_first_query_with_no_descriptor_left_is_a_clear_error() -> None:
    """The backend module loads at the first query; if that fails for lack
    of descriptors the caller gets SessionIdError(4), and it recovers."""
    code = (
        "import os, sessionid_cffi as s\n"
        "fds = []\n"
        "try:\n    while True: fds.append(os.open('/dev/null', os.O_RDONLY))\n"
        "except OSError: pass\n"
        "try:\n    s.current_session_id()\n"
        "except s.SessionIdError as e:\n    print(type(e).__name__, e.winerror, e.errno)\n"
        "for fd in fds: os.close(fd)\n"
        "print(s.current_session_id() == int(open('/proc/self/sessionid').read()) % 4294967295)\n"
    )
    assert _run(code).stdout.split() == ["SessionIdError", "4", "24", "True"]
