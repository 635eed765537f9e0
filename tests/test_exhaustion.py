"""Exhausted resources and concurrency: clear errors, recovery, no leaks,
no bleeding of per-thread state.

- RLIMIT_NOFILE lowered so that no descriptor (or just one) can be opened:
  every call fails with a SessionIdError carrying winerror 4 and errno
  EMFILE (never "not found", never a silently shorter bulk answer), and the
  same calls answer again once descriptors return (Linux).
- 100,000 mixed calls leave no descriptor open (Linux: /proc/self/fd).
- 8 threads x 10,000 mixed raw and Pythonic calls: each thread's
  GetLastError() is exactly what its own calls left (C9), on the live
  backend (procfs; kernel32 under Wine) and on the model.
- use_backend() from many threads at once: every answer comes from an
  active swap, and the swap stack unwinds to the default.

HYPOTHESIS_PROFILE=long multiplies the call counts by 10.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable, Iterator

import pytest

import sessionid_cffi as s
from sessionid_cffi import SessionIdError, _backend, ffi, get_backend, lowlevel, use_backend
from sessionid_cffi.testing import ModelBackend

from conftest import LINUX, windows_only

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
SCALE = 10 if LONG else 1
FIGURES = {"calls": 0, "faults": 0, "threads": 0}


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) - 1


@contextlib.contextmanager
def descriptors_left(count: int) -> Iterator[None]:
    """Lower RLIMIT_NOFILE so that only ``count`` more descriptors can open."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    probe = os.open(os.devnull, os.O_RDONLY)  # the lowest free descriptor number
    os.close(probe)
    # Every descriptor below ``probe`` is in use; above it some may be free,
    # so count the free ones from the listing.
    used = {int(name) for name in os.listdir("/proc/self/fd")}
    used.discard(probe)  # the listing's own descriptor, closed again
    limit = probe
    free = 0
    while free < count:
        if limit not in used:
            free += 1
        limit += 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def other_process() -> int:
    """A PID that names a live process other than this one: the parent
    (Linux only here: under Wine, CPython 3.11/3.12's os.getppid() calls
    PssCaptureSnapshot, which Wine 8 lacks)."""
    return os.getppid()


def from_emfile(err: BaseException) -> bool:
    """Whether ``err`` was raised from the OSError it translates (errno kept)."""
    cause = err.__cause__
    return isinstance(cause, OSError) and cause.errno == errno.EMFILE


def assert_emfile(call: Callable[[], object]) -> None:
    with pytest.raises(SessionIdError) as caught:
        call()
    err = caught.value
    assert err.winerror == 4, err
    assert err.errno == errno.EMFILE, err
    assert not isinstance(err, (ProcessLookupError, PermissionError)), err
    assert "descriptor" in str(err)
    FIGURES["faults"] += 1


needs_rlimit = pytest.mark.skipif(
    not LINUX, reason="RLIMIT_NOFILE and /proc/self/fd are Linux (POSIX) only"
)


@needs_rlimit
@pytest.mark.parametrize("left", [0, 1])
def test_no_descriptor_left_is_a_clear_error_then_calls_recover(left: int) -> None:
    own, other = os.getpid(), other_process()
    truth = {own: s.process_id_to_session_id(own), other: s.process_id_to_session_id(other)}
    before = open_fds()
    results: dict[str, object] = {}
    # Resolve the lazily imported raw names first: an import needs a descriptor.
    raw_call, last_error = s.ProcessIdToSessionId, s.GetLastError
    with descriptors_left(left):
        # left=0: the sessionid file cannot be opened; left=1: it can, but
        # the thread check (pidfd_open) of another process cannot.
        pids = [other] if left else [own, other]
        for pid in pids:
            try:
                results[f"pid {pid}"] = s.process_id_to_session_id(pid)
            except SessionIdError as err:
                results[f"pid {pid}"] = err
            out = ffi.new("DWORD *", 0xDEADBEEF)
            results[f"raw {pid}"] = (raw_call(pid, out), last_error(), out[0])
            try:
                results[f"bulk {pid}"] = s.session_ids([pid])
            except SessionIdError as err:
                results[f"bulk {pid}"] = err
    for pid in pids:
        err = results[f"pid {pid}"]
        assert isinstance(err, SessionIdError), results
        assert (err.winerror, err.errno) == (4, errno.EMFILE), err
        assert not isinstance(err, (ProcessLookupError, PermissionError))
        assert "descriptor" in str(err)
        assert from_emfile(err), repr(err.__cause__)
        assert results[f"raw {pid}"] == (0, 4, 0xDEADBEEF)
        bulk = results[f"bulk {pid}"]
        # Never a silently shorter answer: the process exists, it could not be read.
        assert isinstance(bulk, SessionIdError), bulk
        assert bulk.winerror == 4
        FIGURES["faults"] += 3
    assert open_fds() == before
    # Descriptors are back: the same calls answer again.
    for pid in pids:
        assert s.process_id_to_session_id(pid) == truth[pid]
        out = ffi.new("DWORD *")
        assert s.ProcessIdToSessionId(pid, out) == 1
        assert out[0] == truth[pid]
        assert s.session_ids([pid]) == {pid: truth[pid]}


@needs_rlimit
def test_current_session_with_no_descriptor_left() -> None:
    truth = s.current_session_id()
    with descriptors_left(0):
        try:
            got: object = s.current_session_id()
        except SessionIdError as err:
            got = err
    assert isinstance(got, SessionIdError)
    assert (got.winerror, got.errno) == (4, errno.EMFILE)
    assert from_emfile(got), repr(got.__cause__)
    assert s.current_session_id() == truth


# A fresh interpreter: the record types are imported at its first listing,
# and that import needs a descriptor of its own. Then the same calls answer.
FIRST_LISTING = r"""
import errno, json, os, resource, sys
import sessionid_cffi as s

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
lowest_free = os.open(os.devnull, os.O_RDONLY)
os.close(lowest_free)
got = {}
for name, call in [("process_records", s.process_records), ("sessions", s.sessions)]:
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        call()
        got[name] = "answered"
    except s.SessionIdError as err:
        got[name] = [err.winerror, err.errno, "descriptor" in str(err)]
    except BaseException as err:
        got[name] = repr(err)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
got["afterwards"] = os.getpid() in {record.pid for record in s.process_records()}
print(json.dumps(got))
"""


@needs_rlimit
def test_the_first_listing_with_no_descriptor_left_says_so() -> None:
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", FIRST_LISTING], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    said = [4, errno.EMFILE, True]
    assert json.loads(done.stdout) == {
        "process_records": said,
        "sessions": said,
        "afterwards": True,
    }


@needs_rlimit
def test_bulk_walk_with_no_descriptor_left_says_so() -> None:
    with descriptors_left(0):
        try:
            got: object = s.session_ids()
        except SessionIdError as err:
            got = err
    assert isinstance(got, SessionIdError)
    assert (got.winerror, got.errno) == (4, errno.EMFILE)
    assert from_emfile(got), repr(got.__cause__)


@needs_rlimit
def test_no_descriptor_leaks_after_100000_calls(thread_id: int) -> None:
    own, other = os.getpid(), other_process()
    pids = [own, other, 0, 1, 2**32 - 1, 4194304, thread_id, 32767]
    out = ffi.new("DWORD *")
    calls = 100_000 * SCALE
    before = open_fds()
    for i in range(calls // 2):
        pid = pids[i % len(pids)]
        with contextlib.suppress(SessionIdError):
            s.process_id_to_session_id(pid)
        s.ProcessIdToSessionId(pid, out)
    after = open_fds()
    FIGURES["calls"] += calls
    assert after == before, f"{after - before} descriptors leaked over {calls} calls"


# -- threads ---------------------------------------------------------------------------


def _thread_work(
    index: int, calls: int, pids: dict[str, int], errors: list[str], barrier: threading.Barrier
) -> None:
    """Mixed calls; after each one the thread's last error must be what its
    own history says: a failing raw call sets it, anything else leaves it."""
    out = ffi.new("DWORD *")
    lowlevel._last.error = 1000 + index  # a value no call sets: a bleed shows at once
    expected = 1000 + index
    steps = [
        ("raw", pids["own"], None),
        ("raw", pids["missing"], 87),
        ("null", pids["own"], 87),
        ("py", pids["own"], None),
        ("py", pids["missing"], None),
        ("raw", pids.get("denied", pids["own"]), 5 if "denied" in pids else None),
        # kernel32 answers a bulk call with one WTSEnumerateProcessesW, ~1 ms
        # under Wine: there this step is a Pythonic call, to keep the lane fast.
        ("bulk" if LINUX else "py", pids["own"], None),
    ]
    barrier.wait()
    try:
        for i in range(calls):
            kind, pid, code = steps[(i * (index + 1)) % len(steps)]
            if kind == "raw":
                s.ProcessIdToSessionId(pid, out)
            elif kind == "null":
                s.ProcessIdToSessionId(pid, ffi.NULL)
            elif kind == "py":
                with contextlib.suppress(SessionIdError):
                    s.process_id_to_session_id(pid)
            else:
                s.session_ids([pid, pids["missing"]])
            if code is not None:
                expected = code
            got = s.GetLastError()
            if got != expected:
                errors.append(
                    f"thread {index} call {i} ({kind} {pid}): last error {got}, expected {expected}"
                )
                return
            if i % 1000 == 999 and index % 2:  # now and then, reset to its own value
                lowlevel._last.error = expected = 1000 + index
    except BaseException as err:  # pragma: no cover - reported below
        errors.append(f"thread {index}: {type(err).__name__}: {err}")


@pytest.mark.parametrize("where", ["live", "model"])
def test_last_error_never_bleeds_across_8_threads(where: str) -> None:
    own = os.getpid()
    pids = {"own": own, "missing": 2**32 - 1}
    context: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if where == "model":
        pids["denied"] = 12
        context = use_backend(ModelBackend({own: 1, 12: 2}, denied=[12]))
    calls = 10_000 * SCALE
    errors: list[str] = []
    barrier = threading.Barrier(8)
    with context:
        threads = [
            threading.Thread(target=_thread_work, args=(i, calls, pids, errors, barrier))
            for i in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    FIGURES["calls"] += 8 * calls
    FIGURES["threads"] += 8
    assert errors == []


def test_backend_swaps_from_many_threads_stay_consistent() -> None:
    own = os.getpid()
    default = get_backend()
    outer = ModelBackend({own: 999})
    models = [ModelBackend({own: 100 + i}) for i in range(8)]
    inner = [ModelBackend({own: 200 + i}) for i in range(8)]
    # Inside a thread's swap the newest active swap answers: some thread's
    # model, never the outer one (below every thread's) nor the default.
    allowed = {100 + i for i in range(8)} | {200 + i for i in range(8)}
    errors: list[str] = []
    rounds = 500 * SCALE
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        try:
            for _ in range(rounds):
                with use_backend(models[i]):
                    answer = s.process_id_to_session_id(own)
                    if answer not in allowed:
                        errors.append(f"thread {i}: answer {answer}")
                    with use_backend(inner[i]):
                        nested = s.process_id_to_session_id(own)
                        if nested not in allowed:
                            errors.append(f"thread {i}: nested answer {nested}")
                    if get_backend() is default:
                        errors.append(f"thread {i}: the default answered inside a swap")
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(f"thread {i}: {type(err).__name__}: {err}")

    with use_backend(outer):
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        # Every thread removed exactly its own entries: the outer swap is back on top.
        assert get_backend() is outer
        assert s.process_id_to_session_id(own) == 999
    assert get_backend() is default
    assert errors == []
    FIGURES["calls"] += 8 * rounds * 2


# -- failures while loading the backend, and a FALSE that names no error ---------------
@pytest.mark.parametrize(
    ("code", "winerror", "kind"),
    [
        (errno.ENOMEM, 8, SessionIdError),
        (errno.EMFILE, 4, SessionIdError),
        (errno.EACCES, 50, s.BackendUnavailableError),
    ],
    ids=["ENOMEM", "EMFILE", "EACCES"],
)
def test_an_os_error_while_loading_the_backend_is_said_in_kind(
    monkeypatch: pytest.MonkeyPatch, code: int, winerror: int, kind: type[SessionIdError]
) -> None:
    """Stand-in: the backend's module is loaded when the first query builds
    the backend; an ENOMEM (or EMFILE) from the import system's read of it
    cannot be provoked here without starving the test process itself, so
    make_builtin is replaced by one that fails as that read would."""

    def fails_to_load(name: str) -> object:
        raise OSError(code, os.strerror(code), f"{name}.py")

    monkeypatch.setattr(_backend, "make_builtin", fails_to_load)
    monkeypatch.setattr(_backend, "_default", None)
    monkeypatch.delenv("SESSIONID_CFFI_BACKEND", raising=False)
    with pytest.raises(SessionIdError) as caught:
        s.current_session_id()
    err = caught.value
    assert type(err) is kind, err
    assert (err.winerror, err.errno, err.pid) == (winerror, code, None), err
    assert "load" in str(err)
    assert _backend._default is None  # nothing half-built kept: the next query tries again


@windows_only
def test_kernel32_false_without_a_last_error_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-in: kernel32 does not return FALSE with last error 0 on demand,
    so the bound ProcessIdToSessionId is replaced by a function that calls
    the real SetLastError(0) (through a second FFI: cffi keeps one saved
    last error per thread for every FFI) and returns FALSE. The raw call
    must report failure (31), never TRUE with an unwritten out-pointer."""
    from cffi import FFI

    from sessionid_cffi import _kernel32

    other_ffi = FFI()
    other_ffi.cdef("void SetLastError(unsigned int);")
    kernel32 = other_ffi.dlopen("kernel32.dll")

    def false_without_last_error(pid: int, out: object) -> int:
        kernel32.SetLastError(0)
        return 0

    kernel32.SetLastError(5)
    false_without_last_error(0, None)
    assert ffi.getwinerror()[0] == 0  # the stand-in really leaves no last error
    assert get_backend().name == "kernel32"
    monkeypatch.setattr(_kernel32, "_process_id_to_session_id", false_without_last_error)
    out = ffi.new("DWORD *", 0xDEADBEEF)
    assert (s.ProcessIdToSessionId(os.getpid(), out), s.GetLastError(), out[0]) == (
        0,
        31,
        0xDEADBEEF,
    )
    # The Pythonic call through a fresh backend (no own session kept yet) fails too.
    with pytest.raises(SessionIdError) as caught:
        _kernel32.Kernel32Backend().session_id(os.getpid())
    assert caught.value.winerror == 31, caught.value
    assert "without setting a last error" in str(caught.value)
