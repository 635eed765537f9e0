"""Hostile input to the public API: every outcome is a result or a documented
exception, nothing crashes, hangs or leaks.

Hypothesis throws arbitrary Python objects at the Pythonic calls
(``process_id_to_session_id``, ``current_session_id``, ``session_ids`` and,
when present, ``processes_in_session``/``sessions``), at the raw Win32-shaped
calls (``ProcessIdToSessionId`` with cffi pointers of many types, NULL-like
pointers, arrays, non-pointers; ``GetLastError``;
``WTSGetActiveConsoleSessionId``) and at the CLI's argv. The expected outcome
of each input is computed here from the contract (C7, C8), not taken from the
code: TypeError for non-integers, ValueError outside 0 ... 2**32-1, FALSE +
87 for a NULL-like out-pointer, and otherwise the same answer as the plain
int gives. Against the in-memory model the answers are compared exactly;
against the live backend (procfs, or kernel32 under Wine, where a crash
kills the interpreter) by kind.

On Linux every example also counts the descriptors in /proc/self/fd before
and after the call: none may be left open. (Windows has no /proc; that part
is skipped there, the rest runs.)
"""

from __future__ import annotations

import contextlib
import io
import operator
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

import sessionid_cffi as s
from sessionid_cffi import (
    AccessDeniedError,
    ProcessNotFoundError,
    SessionIdError,
    ffi,
    lowlevel,
    use_backend,
)
from sessionid_cffi._cli import main as cli_main
from sessionid_cffi.testing import ModelBackend

from conftest import LINUX, WINDOWS

DWORD_MAX = 2**32 - 1
SENTINEL = 0xDEADBEEF
FIGURES = {"inputs": 0, "fd_checks": 0, "cli_runs": 0}


# -- descriptors -----------------------------------------------------------------


def open_fds() -> int | None:
    """Open descriptors of this process (Linux), None where it cannot be told."""
    if not LINUX:
        return None
    return len(os.listdir("/proc/self/fd")) - 1  # the listing's own descriptor


@contextlib.contextmanager
def no_fd_leak() -> Iterator[None]:
    before = open_fds()
    yield
    after = open_fds()
    if before is not None:
        FIGURES["fd_checks"] += 1
        assert after == before, f"{after - before} descriptor(s) left open"  # type: ignore[operator]


# -- hostile objects -------------------------------------------------------------


class IndexRaises:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __index__(self) -> int:
        raise self.error

    def __repr__(self) -> str:
        return f"IndexRaises({self.error!r})"


class IndexReturns:
    def __init__(self, value: object) -> None:
        self.value = value

    def __index__(self) -> object:
        return self.value

    def __repr__(self) -> str:
        return f"IndexReturns({self.value!r})"


class IntSubclass(int):
    """An int subclass whose own hooks lie: the int value is what counts."""

    def __index__(self) -> int:
        raise RuntimeError("never called for int subclasses")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("compared")

    __hash__ = int.__hash__


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __str__(self) -> str:
        raise RuntimeError("str")


INTS = st.one_of(
    st.sampled_from([os.getpid(), 1, 300, 70000, 2**31, 4294967295, 4294967292]),  # answer
    st.integers(0, 70000),
    st.integers(0, DWORD_MAX),
    st.sampled_from(
        [
            0,
            1,
            4,
            DWORD_MAX,
            DWORD_MAX + 1,
            -1,
            2**31,
            2**63,
            -(2**63),
            2**64,
            10**100,
            -(10**100),
            2**4000,
        ]
    ),
    st.integers(),
)
NON_INTS = st.one_of(
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(max_magnitude=1e6),
    st.text(max_size=10),
    st.binary(max_size=10),
    st.integers(0, 100).map(str),
    st.integers(0, 100).map(Decimal),
    st.integers(0, 100).map(lambda n: Fraction(n, 1)),
    st.sampled_from(
        [
            object(),
            object,
            int,
            [],
            [1],
            (1,),
            {},
            {1: 2},
            {1},
            frozenset(),
            bytearray(b"\x01"),
            memoryview(b"\x01\x00\x00\x00"),
            ...,
            NotImplemented,
            len,
            BadRepr(),
            1.0,
            float("nan"),
            1j,
        ]
    ),
)
INDEX_OBJECTS = st.one_of(
    st.builds(
        IndexRaises,
        st.sampled_from(
            [
                RuntimeError("boom"),
                ValueError("bad"),
                OverflowError("big"),
                ZeroDivisionError(),
                KeyError("k"),
                TypeError("t"),
                RecursionError(),
                AttributeError("a"),
            ]
        ),
    ),
    st.builds(IndexReturns, st.one_of(INTS, st.sampled_from(["1", 1.0, None, True, b"1"]))),
    INTS.map(IntSubclass),
)
HOSTILE = st.one_of(INTS, NON_INTS, INDEX_OBJECTS)


def show(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__} with a failing repr>"


def expected_pid(value: object) -> int | type[Exception]:
    """What the contract (C7, C8) makes of ``value`` as a PID."""
    if isinstance(value, bool):
        return TypeError
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except Exception:
        return TypeError
    return number if 0 <= number <= DWORD_MAX else ValueError


# -- the model, whose every answer is known -----------------------------------------

OWN = os.getpid()
MODEL_TABLE = {OWN: 1, 1: 0, 4: 0, 300: 2, 70000: 3, 2**31: 4, DWORD_MAX: 5, DWORD_MAX - 3: 6}
DENIED = {300}


def make_model() -> ModelBackend:
    return ModelBackend(MODEL_TABLE, denied=DENIED, threads=[301], console_session=1)


def model_answer(pid: int) -> int | type[SessionIdError]:
    if pid in DENIED:
        return AccessDeniedError
    if pid in MODEL_TABLE:
        return MODEL_TABLE[pid]
    return ProcessNotFoundError


def outcome(call: Callable[[], object]) -> object:
    """The result of ``call``, or the exception it raised; anything outside
    the documented set fails the test."""
    try:
        return call()
    except (TypeError, ValueError, SessionIdError) as err:
        return err


def check_pid_outcome(value: object, got: object, *, exact: bool) -> None:
    expected = expected_pid(value)
    note(f"value={show(value)} expected={expected!r} got={got!r}")
    if isinstance(expected, type):
        assert type(got) is expected, f"{value!r}: expected {expected.__name__}, got {got!r}"
        return
    if isinstance(got, SessionIdError):
        assert got.pid == expected
        assert got.winerror in (5, 87, 4, 13, 31, 50)
        if exact:
            assert type(got) is model_answer(expected)
        return
    assert type(got) is int, got
    assert 0 <= got <= DWORD_MAX
    if exact:
        assert got == model_answer(expected)


@pytest.fixture(params=["live", "model"])
def where(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "model":
        with use_backend(make_model()):
            yield "model"
    else:
        yield "live"


# -- the Pythonic API ----------------------------------------------------------------


@given(value=HOSTILE)
def test_process_id_to_session_id_takes_anything(where: str, value: object) -> None:
    FIGURES["inputs"] += 1
    with no_fd_leak():
        got = outcome(lambda: s.process_id_to_session_id(value))
    check_pid_outcome(value, got, exact=where == "model")


@given(value=HOSTILE)
def test_processes_in_session_takes_anything(where: str, value: object) -> None:
    if not hasattr(s, "processes_in_session"):
        pytest.skip("processes_in_session is not in this version")
    FIGURES["inputs"] += 1
    expected = expected_pid(value)
    with no_fd_leak():
        got = outcome(lambda: s.processes_in_session(value))
    note(f"expected={expected!r} got={got!r}")
    if isinstance(expected, type):
        assert type(got) is expected
        return
    assert isinstance(got, list)
    assert got == sorted(got)
    assert all(type(pid) is int and 0 < pid <= DWORD_MAX for pid in got)
    if where == "model":
        assert got == sorted(
            p for p, sess in MODEL_TABLE.items() if sess == expected and p not in DENIED
        )


def test_calls_without_arguments_answer_and_refuse_arguments(where: str) -> None:
    with no_fd_leak():
        own = s.current_session_id()
        assert type(own) is int
        assert 0 <= own <= DWORD_MAX
        assert own == s.process_id_to_session_id(os.getpid())
        if where == "model":
            assert own == 1
        for call in (
            s.current_session_id,
            s.GetLastError,
            s.WTSGetActiveConsoleSessionId,
            getattr(s, "sessions", s.current_session_id),
        ):
            for args in ((1,), (None,), (1, 2)):
                with pytest.raises(TypeError):
                    call(*args)
        if hasattr(s, "sessions"):
            listed = s.sessions()
            assert isinstance(listed, list)


# -- bulk: iterables, huge ones and generators that raise ------------------------


class Boom(Exception):
    """Raised by the caller's own generator: it must come out unchanged."""


def failing_generator(items: list[object], error: BaseException) -> Iterator[object]:
    yield from items
    raise error


class BadIterable:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __iter__(self) -> Iterator[object]:
        raise self.error


@given(items=st.lists(HOSTILE, max_size=30))
def test_session_ids_takes_any_list(where: str, items: list[object]) -> None:
    FIGURES["inputs"] += 1
    expectations = [expected_pid(item) for item in items]
    with no_fd_leak():
        got = outcome(lambda: s.session_ids(items))
    note(f"items={show(items)} expected={expectations!r} got={got!r}")
    first_bad = next((e for e in expectations if isinstance(e, type)), None)
    if first_bad is not None:
        assert type(got) is first_bad, got
        return
    assert isinstance(got, dict), got
    pids = set(expectations)
    assert set(got) <= pids  # type: ignore[operator]
    assert all(type(v) is int and 0 <= v <= DWORD_MAX for v in got.values())
    if where == "model":
        assert got == {p: MODEL_TABLE[p] for p in pids if p in MODEL_TABLE and p not in DENIED}


@given(
    items=st.lists(st.integers(0, 70000), max_size=20),
    error=st.sampled_from(
        [
            Boom("midway"),
            ValueError("caller's"),
            KeyError("k"),
            RuntimeError("r"),
            TypeError("caller's type error"),
        ]
    ),
)
def test_a_generator_that_raises_midway_raises_its_own_error(
    where: str, items: list[object], error: Exception
) -> None:
    FIGURES["inputs"] += 1
    with no_fd_leak(), pytest.raises(type(error)) as caught:
        s.session_ids(failing_generator(items, error))
    assert caught.value is error  # the caller's own exception, not a wrapped one


@pytest.mark.parametrize("error", [Boom("iter"), RuntimeError("iter")])
def test_an_iterable_whose_iter_raises_raises_its_own_error(error: Exception) -> None:
    with pytest.raises(type(error)) as caught:
        s.session_ids(BadIterable(error))
    assert caught.value is error


@pytest.mark.parametrize("pids", ["123", b"123", 5, 5.0, object(), True])
def test_session_ids_refuses_non_iterables_and_strings(pids: object) -> None:
    with pytest.raises(TypeError):
        s.session_ids(pids)  # type: ignore[arg-type]


def test_huge_iterables_are_bounded_in_time(where: str) -> None:
    # A range of 20,000 PIDs (a generator of 200,000 on the model): the call
    # answers for those that name processes and stays linear.
    count = 200_000 if where == "model" else 20_000
    with no_fd_leak():
        got = s.session_ids(pid for pid in range(0, count * 7, 7))
    if where == "model":
        assert got == {
            p: MODEL_TABLE[p]
            for p in MODEL_TABLE
            if p % 7 == 0 and p < count * 7 and p not in DENIED
        }
    assert all(pid % 7 == 0 for pid in got)
    with pytest.raises(ValueError, match="DWORD"):
        s.session_ids(range(DWORD_MAX - 5, DWORD_MAX + 5))


# -- the raw API --------------------------------------------------------------------

# A pointer derived by arithmetic does not own its memory: its array must be
# kept alive, or the call would write into freed memory (a bug of the test).
_ARRAYS_IN_USE: list[object] = []


def _interior_pointer() -> object:
    array = ffi.new("DWORD[4]", [SENTINEL] * 4)
    del _ARRAYS_IN_USE[:-16]  # keep the last few only: each example uses one
    _ARRAYS_IN_USE.append(array)
    return array + 2


DWORD_POINTERS = [
    lambda: ffi.new("DWORD *", SENTINEL),
    lambda: ffi.new("uint32_t *", SENTINEL),
    lambda: ffi.new("unsigned int *", SENTINEL),
    lambda: ffi.new("DWORD[1]", [SENTINEL]),
    lambda: ffi.new("DWORD[3]", [SENTINEL] * 3),
    lambda: ffi.new("DWORD[]", [SENTINEL] * 2),
    _interior_pointer,
]
NULL_LIKE = [
    lambda: ffi.NULL,
    lambda: ffi.cast("DWORD *", 0),
    lambda: ffi.cast("DWORD *", 4),
    lambda: ffi.cast("void *", 0xFFFF),
    lambda: ffi.cast("char *", 8),
    lambda: ffi.cast("int *", 0),
    lambda: ffi.cast("DWORD *", -1),  # all bits set: the top of the address space
    lambda: ffi.cast("DWORD *", 2**63),
    lambda: ffi.new("DWORD[0]"),
    lambda: ffi.new("DWORD[]", 0),
]
WRONG_TYPE = [
    lambda: ffi.new("int *"),
    lambda: ffi.new("char *"),
    lambda: ffi.new("unsigned short *"),
    lambda: ffi.new("unsigned long long *"),
    lambda: ffi.new("uint64_t *"),
    lambda: ffi.new("int32_t *"),
    lambda: ffi.new("float *"),
    lambda: ffi.new("DWORD **"),
    lambda: ffi.new("char[4]"),
    lambda: ffi.new("DWORD[2][2]"),
    lambda: ffi.new("WTS_PROCESS_INFOW *"),
    lambda: ffi.new("WTS_PROCESS_INFOW *")[0],
    lambda: ffi.new("PWTS_PROCESS_INFOW *"),
    lambda: ffi.cast("DWORD", 5),
    lambda: ffi.cast("void *", 0x10000),  # a plausible address, but no type to write
    lambda: ffi.new("DWORD *")[0],  # an int, not a pointer
    lambda: None,
    lambda: 0,
    lambda: 5,
    lambda: [0],
    lambda: bytearray(4),
    lambda: memoryview(bytearray(4)),
    lambda: "ptr",
    lambda: object(),
]
OUT_KINDS = st.one_of(
    st.sampled_from(DWORD_POINTERS).map(lambda f: ("dword", f)),
    st.sampled_from(NULL_LIKE).map(lambda f: ("null", f)),
    st.sampled_from(WRONG_TYPE).map(lambda f: ("wrong", f)),
)


@given(value=HOSTILE, out_kind=OUT_KINDS, before=st.sampled_from([0, 5, 87, 1234]))
def test_raw_process_id_to_session_id_takes_anything(
    where: str, value: object, out_kind: tuple[str, Callable[[], object]], before: int
) -> None:
    FIGURES["inputs"] += 1
    kind, make = out_kind
    out = make()
    expected = expected_pid(value)
    lowlevel._last.error = before  # a known last error to see what the call leaves
    with no_fd_leak():
        got = outcome(lambda: s.ProcessIdToSessionId(value, out))  # type: ignore[arg-type]
    error = s.GetLastError()
    note(f"value={show(value)} out={out!r} expected={expected!r} got={got!r} last={error}")
    if isinstance(expected, type):
        assert type(got) is expected  # the PID is checked before the pointer
        assert error == before
        return
    if kind == "wrong":
        assert type(got) is TypeError
        assert error == before
        return
    if kind == "null":
        assert (got, error) == (0, 87)
        return
    assert got in (0, 1)
    if got == 0:
        assert error in (5, 87, 4, 13, 31, 50)
        assert out[0] == SENTINEL  # type: ignore[index]
        if where == "model":
            assert model_answer(expected) in (ProcessNotFoundError, AccessDeniedError)
            assert error == (87 if model_answer(expected) is ProcessNotFoundError else 5)
        return
    assert error == before  # success leaves the last error alone
    session = out[0]  # type: ignore[index]
    assert 0 <= session <= DWORD_MAX
    if where == "model":
        assert session == model_answer(expected)
    if kind == "dword" and ffi.typeof(out).kind == "array":  # type: ignore[arg-type]
        assert all(out[i] == SENTINEL for i in range(1, len(out)))  # type: ignore[arg-type,index]


NULL_LIKE_IDS = [
    "NULL",
    "DWORD*0",
    "DWORD*4",
    "void*0xFFFF",
    "char*8",
    "int*0",
    "DWORD*-1",
    "DWORD*2**63",
    "DWORD[0]",
    "DWORD[]0",
]


@pytest.mark.parametrize("make", NULL_LIKE, ids=NULL_LIKE_IDS)
def test_a_null_like_pointer_never_receives_an_answer(
    where: str, make: Callable[[], object]
) -> None:
    # With a PID that answers, so that a pointer let through would be written
    # to: ffi.cast("DWORD *", -1) once crashed the interpreter here.
    out = make()
    lowlevel._last.error = 0
    assert s.ProcessIdToSessionId(os.getpid(), out) == 0  # type: ignore[arg-type]
    assert s.GetLastError() == 87


def test_raw_console_session_and_last_error_are_dwords(where: str) -> None:
    with no_fd_leak():
        console = s.WTSGetActiveConsoleSessionId()
    assert type(console) is int
    assert 0 <= console <= DWORD_MAX
    if where == "model":
        assert console == 1
    assert type(s.GetLastError()) is int


# -- the CLI ------------------------------------------------------------------------

ARGS = st.one_of(
    st.integers(0, DWORD_MAX).map(str),
    st.integers(-(2**40), 2**70).map(str),
    st.sampled_from(
        [
            "-1",
            "--",
            "-",
            "--backend",
            "--backend=",
            "--backend=model",
            "--backend=kernel32",
            "--backend=nope",
            "--backend=procfs",
            "-h",
            "--help",
            "--version",
            "--bogus",
            "0x10",
            "1e3",
            "\uff11\uff12",
            "٣",
            " 5",
            "5 ",
            "+5",
            "9" * 5000,
            "\udcff",
            "a\nb",
            "--x\ny",
            "\t",
            "",
            "%s%n",
            "00012",
        ]
    ),
    st.text(st.characters(blacklist_characters="\x00"), max_size=12),
)
ARGVS = st.lists(ARGS, max_size=5)
USAGE = "usage: sessionid"


def check_cli(argv: list[str], code: object, stdout: str, stderr: str) -> None:
    if currently_in_test_context():
        note(f"argv={argv!r} code={code!r} stdout={stdout!r} stderr={stderr!r}")
    assert code in (0, 1, 2), f"exit code {code!r}"
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    if code == 0:
        assert lines == []
        return
    assert lines, "a failure must say why"
    if lines[0].startswith(USAGE):  # argparse: its usage line, then one error line
        assert code == 2
        assert len(lines) == 2, lines
        assert lines[1].startswith("sessionid: error: "), lines
        return
    assert all(line.startswith("sessionid: ") for line in lines), lines


def run_cli_in_process(argv: list[str]) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code: object = cli_main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


@given(argv=ARGVS)
def test_cli_arguments_in_process(argv: list[str]) -> None:
    FIGURES["cli_runs"] += 1
    with no_fd_leak():
        code, stdout, stderr = run_cli_in_process(argv)
    check_cli(argv, code, stdout, stderr)


CLI_SUBPROCESS_ARGVS = [
    [],
    ["1"],
    [str(os.getpid())],
    ["0", "4294967295"],
    ["4294967296"],
    ["-1"],
    ["abc"],
    ["9" * 5000],
    ["--backend", "nope"],
    ["--backend", "model", "1"],
    ["--bogus"],
    ["--backend"],
    ["\udcff"],
    ["a\nb"],
    ["\uff11\uff12"],
]


@pytest.fixture(scope="module")
def wide_named_process() -> Iterator[int]:
    """A process whose name no 8-bit encoding carries (Linux: its comm), so
    that every ps and sessions table below has a row with it."""
    code = (
        "import sys\n"
        "if sys.platform != 'win32': open('/proc/self/comm', 'wb').write('漢字漢字漢'.encode())\n"
        "print(flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    child.stdout.readline()
    yield child.pid
    child.kill()
    child.wait()
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            stream.close()


# The output encodings the command runs under: UTF-8 and two that cannot
# carry most names (these tests ran under UTF-8 only, and so never saw a
# name wipe a whole table).
OUTPUT_ENCODINGS = ["utf-8:backslashreplace", "latin-1", "ascii"]


@pytest.mark.parametrize("encoding", OUTPUT_ENCODINGS)
@pytest.mark.parametrize(
    "argv", [*CLI_SUBPROCESS_ARGVS, ["ps"], ["ps", "-o", "comm,pid"], ["sessions"]], ids=repr
)
def test_cli_as_a_process(argv: list[str], encoding: str, wide_named_process: int) -> None:
    # The real entry point: a fresh interpreter, argv as bytes where not UTF-8.
    if WINDOWS and any("\udcff" in a for a in argv):
        pytest.skip("Windows argv is UTF-16: no lone surrogate reaches a process")
    FIGURES["cli_runs"] += 1
    command = [sys.executable, "-m", "sessionid_cffi"]
    args: list[str | bytes] = [os.fsencode(a) if not WINDOWS else a for a in argv]
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    env.pop("SESSIONID_CFFI_BACKEND", None)
    done = subprocess.run([*command, *args], capture_output=True, timeout=60, env=env)
    stdout = done.stdout.decode(encoding.split(":")[0])  # strict: it must be that encoding
    check_cli(argv, done.returncode, stdout, done.stderr.decode("utf-8", "replace"))
    if argv[:1] == ["ps"]:  # every row printed, the wide-named one too
        assert done.returncode == 0
        assert str(wide_named_process) in stdout.split()


@settings(max_examples=8 if WINDOWS else 15)
@given(argv=ARGVS)
def test_cli_as_a_process_generated(argv: list[str]) -> None:
    if WINDOWS and any("\ud800" <= ch <= "\udfff" for a in argv for ch in a):
        return  # not representable in a Windows command line
    try:
        args = [os.fsencode(a) if not WINDOWS else a for a in argv]
    except UnicodeEncodeError:
        return  # a lone surrogate surrogateescape cannot encode: no POSIX argv holds it
    FIGURES["cli_runs"] += 1
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:backslashreplace"}
    env.pop("SESSIONID_CFFI_BACKEND", None)
    done = subprocess.run(
        [sys.executable, "-m", "sessionid_cffi", *args], capture_output=True, timeout=60, env=env
    )
    check_cli(
        argv,
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


# Found by the fuzz: argparse echoed unknown arguments raw (fixed in _cli.py).
@pytest.mark.parametrize(
    "argv", [["--x\ny"], ["--backend=model", "--a\nb"], ["0", "--backend=", "\x0c"]], ids=repr
)
def test_cli_error_stays_one_line_with_a_newline_in_an_unknown_option(argv: list[str]) -> None:
    code, stdout, stderr = run_cli_in_process(argv)
    check_cli(argv, code, stdout, stderr)
