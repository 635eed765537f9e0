"""The contract of ``ProcessIdToSessionId`` as executable rules (C1-C11).

Each rule is a function ``rule(backend, world)`` that returns None when the
backend keeps it, raises ``ContractViolation`` when it does not, raises
``RuleSkipped`` when the world cannot set the rule's scene up (for example
a backend that can only be listed cannot be made to spawn a child), and
raises ``LibraryLevel`` when what it checked is the library's own doing,
not the backend's (C8). Answers are judged against the world's truth: what
real processes report about themselves, or what a model world put in its
table, never what the backend under check said elsewhere.

The rules call the backend directly (the raw API through a private helper
that takes the backend explicitly): checking never swaps the process-wide
backend, so other threads go on seeing what they saw.

The project's own test suite runs exactly these rules on every backend, and
``check_contract`` runs them for users.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NoReturn

from .. import lowlevel
from .._backend import BACKEND_ATTRIBUTES, checked_pid
from .._errors import (
    ERROR_ACCESS_DENIED,
    ERROR_INVALID_PARAMETER,
    AccessDeniedError,
    ProcessNotFoundError,
    SessionIdError,
)
from .._generated_ffi import ffi
from .._interface import Backend
from ..emulation.model import ModelBackend
from ._worlds import Child, LiveWorld, World, world_for

DWORD_MAX = 0xFFFFFFFF
UNTOUCHED = 0xDEADBEEF
#: How many listed processes C7 asks about one by one.
LISTED_SAMPLE = 256
#: C11: queries each thread makes while the others make theirs.
CONCURRENT_QUERIES = 200
#: C11: rounds of those, at most, until a query of one thread is seen to
#: start while another's is under way (a pure-Python backend is switched
#: away from mid-query in about one round of four here; a loaded machine
#: may run the threads one after another).
CONCURRENT_ROUNDS = 60
#: C11: the most login sessions made for it (each a real process when live).
CONCURRENT_LOGINS = 3


class ContractViolation(AssertionError):
    """A backend broke a rule of the contract; the message says which and how."""


class RuleSkipped(Exception):
    """The world cannot set this rule's scene up; the message says why."""


class LibraryLevel(Exception):
    """The rule was checked, but what it checks is done by the library before
    any backend is asked: it says nothing about the backend under check."""


class PartlyChecked(Exception):
    """The rule held, but only part of it could be exercised here; the
    message says which part was left out and why."""


Rule = Callable[[Backend, World], None]


def _ask(backend: Backend, pid: int) -> int | SessionIdError:
    """The backend's answer: a session, or the library error it raised."""
    try:
        session = backend.session_id(pid)
    except SessionIdError as err:
        return err
    except Exception as err:
        raise ContractViolation(
            f"session_id({pid}) raised {type(err).__name__}: {err}; a backend may "
            "only raise SessionIdError (ProcessNotFoundError, AccessDeniedError, ...)"
        ) from err
    if type(session) is not int or not 0 <= session <= DWORD_MAX:
        raise ContractViolation(f"session_id({pid}) returned {session!r}, not a DWORD")
    return session


def _expect_session(
    backend: Backend, pid: int, rule: str, what: str, truth: int | None = None
) -> int:
    """The backend's session for ``pid``; a violation if it fails, or if it
    differs from ``truth`` (the session learnt without the backend)."""
    answer = _ask(backend, pid)
    if isinstance(answer, SessionIdError):
        raise ContractViolation(f"{rule}: {what} (PID {pid}) must answer, but got: {answer}")
    if truth is not None and answer != truth:
        raise ContractViolation(
            f"{rule}: {what} (PID {pid}) is in session {truth}, but the backend answered {answer}"
        )
    return answer


def _expect_error(backend: Backend, pid: int, winerror: int, rule: str, what: str) -> None:
    answer = _ask(backend, pid)
    cls = ProcessNotFoundError if winerror == ERROR_INVALID_PARAMETER else AccessDeniedError
    if not isinstance(answer, cls) or answer.winerror != winerror:
        got = f"session {answer}" if isinstance(answer, int) else repr(answer)
        raise ContractViolation(
            f"{rule}: {what} (PID {pid}) must raise {cls.__name__} with winerror "
            f"{winerror}, but got {got}"
        )
    if answer.pid != pid:
        raise ContractViolation(f"{rule}: the error for PID {pid} names PID {answer.pid}")


def _raw_call(backend: Backend, pid: int) -> tuple[int, int, int]:
    """(BOOL, last error, value left in the out-pointer) of the raw call,
    answered by ``backend`` itself (no process-wide swap)."""
    out = ffi.new("DWORD *", UNTOUCHED)
    ok = lowlevel._process_id_to_session_id_on(backend, pid, out)
    return ok, lowlevel.GetLastError(), int(out[0])


def _judge_generated(backend: Backend, world: World, rule: str) -> str | None:
    """This rule's part of the generated live world (``_generated.py``):
    a violation if the backend was wrong about any of its processes,
    threads or query forms; else a note of what could not be built (None:
    all of it was)."""
    judgement = world.generated(backend)
    if judgement is None:
        return None
    if judgement.failed:
        world.judged[rule] = judgement.failed
        return judgement.failed
    world.judged[rule] = judgement.describe(rule)
    found = judgement.findings[rule]
    if found:
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        raise ContractViolation(
            f"{rule}: in the {judgement.describe(rule)}: " + "; ".join(found[:3]) + more
        )
    missing = [judgement.missing[part] for part in _PARTS[rule] if part in judgement.missing]
    return "; ".join(missing) or None


#: The parts of the generated world each rule needs (reported when missing).
_PARTS = {"C2": ("logins",), "C4": (), "C5": ("logins", "reuse"), "C7": ("logins",)}


def c1_self(backend: Backend, world: World) -> None:
    """C1: the caller's own PID answers its true session, the same each
    time, raw API too."""
    pid = world.self_pid()
    truth = world.self_truth()
    first = _expect_session(backend, pid, "C1", "the caller's own PID", truth)
    second = _expect_session(backend, pid, "C1", "the caller's own PID")
    if first != second:
        raise ContractViolation(f"C1: own PID {pid} answered {first}, then {second}")
    ok, _, value = _raw_call(backend, pid)
    if ok != 1 or value != first:
        raise ContractViolation(
            f"C1: raw ProcessIdToSessionId({pid}) gave ({ok}, {value}), expected (1, {first})"
        )
    if truth is None:
        raise PartlyChecked(f"{world.description}: no truth for the caller, only its stability")


def c2_inheritance(backend: Backend, world: World) -> None:
    """C2: a child started by the caller is in the caller's session; a child
    that started a new login is in that login's session; on a live machine
    every running process of the generated world, at any depth, orphaned
    or not, answers the session it reports from the inside."""
    partial = _judge_generated(backend, world, "C2")
    own = world.self_truth()
    with world.child() as child:
        if child is None:
            _no_child(world, "C2")
        if own is not None and child.truth is not None and child.truth != own:
            raise RuleSkipped(
                f"the OS put child {child.pid} in session {child.truth}, the caller "
                f"in {own}: not a scene for inheritance"
            )
        session = _expect_session(backend, child.pid, "C2", "a running child", child.truth)
        caller = _expect_session(backend, world.self_pid(), "C2", "the caller", own)
        if session != caller:
            raise ContractViolation(
                f"C2: child {child.pid} is in session {session}, the caller in {caller}"
            )
    with world.child(login=True) as login:
        if login is None:
            why = world.login_unavailable()
            raise PartlyChecked(f"children in the caller's session only: {why}")
        _expect_session(backend, login.pid, "C2", "a child in a new login", login.truth)
    if partial:
        raise PartlyChecked(partial)


def c3_missing(backend: Backend, world: World) -> None:
    """C3: a PID that names no process fails with 87, out-pointer untouched."""
    for pid in world.missing_pids():
        _expect_error(backend, pid, ERROR_INVALID_PARAMETER, "C3", "a PID naming no process")
        ok, error, value = _raw_call(backend, pid)
        if (ok, error, value) != (0, ERROR_INVALID_PARAMETER, UNTOUCHED):
            raise ContractViolation(
                f"C3: raw call for missing PID {pid} gave BOOL {ok}, last error {error}, "
                f"out-pointer {value:#x}; expected 0, 87 and the pointer untouched"
            )


def c4_threads(backend: Backend, world: World) -> None:
    """C4: a thread id that is not a process id fails with 87: the caller's
    own thread, and threads of the generated world's other processes."""
    partial = _judge_generated(backend, world, "C4")
    with world.thread_id() as tid:
        if tid is None:
            raise RuleSkipped(f"{world.description}: cannot start a thread")
        _expect_error(backend, tid, ERROR_INVALID_PARAMETER, "C4", "a thread id")
    if partial:
        raise PartlyChecked(partial)


def c5_exited(backend: Backend, world: World) -> None:
    """C5: an exited process answers its session while it is held (Linux: a
    zombie; Windows: a handle is open); once gone, 87. The child is in a new
    login where one can be made, so that its session is not everybody's.
    On a live machine, the generated world's exited processes at depth and
    its reaped PIDs too."""
    partial = _judge_generated(backend, world, "C5")
    with world.child(login=True) as login:
        if login is not None:
            _check_exit(backend, world, login)
            if partial:
                raise PartlyChecked(partial)
            return
    with world.child() as child:
        if child is None:
            _no_child(world, "C5")
        _check_exit(backend, world, child)
        truth = child.truth
    if truth == 0:
        raise PartlyChecked(
            "the exited child is in session 0, so an answer of 0 made up for exited "
            f"processes cannot be told apart: {world.login_unavailable()}"
        )
    if partial:
        raise PartlyChecked(partial)


def _no_child(world: World, rule: str) -> NoReturn:
    """No child can be started: the rule holds in part if the world's own
    processes were judged for it (a declared world), else it is skipped."""
    if rule in world.judged:
        raise PartlyChecked(
            f"{world.description}: no child can be started, so the rule was judged on "
            "the world's own processes only"
        )
    raise RuleSkipped(f"{world.description}: cannot start a child")


def _check_exit(backend: Backend, world: World, child: Child) -> None:
    _expect_session(backend, child.pid, "C5", "a running child", child.truth)
    child.exit()
    _expect_session(backend, child.pid, "C5", "an exited child not yet reaped", child.truth)
    if not child.reap():
        raise RuleSkipped(
            f"{world.description}: reaped child {child.pid} still names a process "
            "(held by another process, or its PID was reused); its running and "
            "exited answers were checked"
        )
    _expect_error(backend, child.pid, ERROR_INVALID_PARAMETER, "C5", "a reaped child")


def c6_access(backend: Backend, world: World) -> None:
    """C6: a process the caller may not inspect fails with 5."""
    pid = world.denied_pid()
    if pid is None:
        raise RuleSkipped(f"{world.description}: no process is denied to the caller")
    _expect_error(backend, pid, ERROR_ACCESS_DENIED, "C6", "a denied process")
    ok, error, value = _raw_call(backend, pid)
    if (ok, error, value) != (0, ERROR_ACCESS_DENIED, UNTOUCHED):
        raise ContractViolation(
            f"C6: raw call for denied PID {pid} gave BOOL {ok}, last error {error}, "
            f"out-pointer {value:#x}; expected 0, 5 and the pointer untouched"
        )


def c7_domain(backend: Backend, world: World) -> None:
    """C7: every DWORD PID is a valid input; answers are DWORDs or errors;
    the listing holds the caller in its true session; on a live machine
    ``session_ids(subset)``, ``session_ids(None)`` and ``process_records``
    list every process of the generated world in its true session."""
    partial = _judge_generated(backend, world, "C7")
    rng = random.Random(7)
    pids = [0, 1, 2, 3, 4, 8, 2**31 - 1, 2**31, DWORD_MAX - 3, DWORD_MAX]
    pids += [rng.randrange(DWORD_MAX + 1) for _ in range(40)]
    for pid in pids:
        _ask(backend, pid)  # raises ContractViolation for anything else
    # The processes the backend lists answer DWORDs too, the same as listed
    # (a process may have exited since the listing: then any error is fine).
    listed = backend.session_ids(None)
    entries = sorted(listed.items())
    for pid, session in rng.sample(entries, min(LISTED_SAMPLE, len(entries))):
        if type(session) is not int or not 0 <= session <= DWORD_MAX:
            raise ContractViolation(
                f"C7: session_ids() lists PID {pid} in {session!r}, not a DWORD"
            )
        answer = _ask(backend, pid)
        if isinstance(answer, int) and answer != session and _still_listed(backend, pid, session):
            raise ContractViolation(
                f"C7: session_ids() lists PID {pid} in session {session}, "
                f"but session_id({pid}) answers {answer}"
            )
    own, truth = world.self_pid(), world.self_truth()
    if truth is not None and listed.get(own) != truth:
        raise ContractViolation(
            f"C7: the caller (PID {own}) is in session {truth}, but session_ids() "
            f"lists it as {listed.get(own, 'absent')}"
        )
    if partial:
        raise PartlyChecked(partial)


def _still_listed(backend: Backend, pid: int, session: int) -> bool:
    """Whether a fresh ``session_ids()`` still lists ``pid`` in ``session``.
    A process may start a login of its own (or exit, and a newcomer take its
    PID) between the listing and the single query: then the fresh listing
    agrees with the single answer, and neither form was wrong."""
    return backend.session_ids(None).get(pid) == session


class _Spy:
    """Wraps the backend under check and counts what reaches it."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.name = backend.name
        self.asked: list[int] = []

    def session_id(self, pid: int) -> int:
        self.asked.append(pid)
        return self._backend.session_id(pid)


class _NativeSpy(_Spy):
    """The spy of a backend that makes the raw call itself (kernel32)."""

    def native_process_id_to_session_id(self, pid: int, out: object) -> int:
        self.asked.append(pid)
        return int(self._backend.native_process_id_to_session_id(pid, out))  # type: ignore[attr-defined]


def c8_bad_input(backend: Backend, world: World) -> None:
    """C8 (library level): bad PIDs raise ValueError/TypeError, and a NULL
    out-pointer gives FALSE + 87, before any backend is asked."""
    cases: list[tuple[object, type[Exception]]] = [
        (-1, ValueError),
        (DWORD_MAX + 1, ValueError),
        (2**64, ValueError),
        ("1", TypeError),
        (1.0, TypeError),
        (True, TypeError),
        (None, TypeError),
    ]
    for value, expected in cases:
        try:
            checked_pid(value)  # what process_id_to_session_id does first
        except expected:
            continue
        except Exception as err:
            raise ContractViolation(
                f"C8: process_id_to_session_id({value!r}) raised {type(err).__name__}, "
                f"expected {expected.__name__}"
            ) from err
        raise ContractViolation(f"C8: process_id_to_session_id({value!r}) did not raise")
    native = hasattr(backend, "native_process_id_to_session_id")
    spy = _NativeSpy(backend) if native else _Spy(backend)
    ok = lowlevel._process_id_to_session_id_on(spy, world.self_pid(), ffi.NULL)
    if (ok, lowlevel.GetLastError()) != (0, ERROR_INVALID_PARAMETER):
        raise ContractViolation(f"C8: raw call with a NULL out-pointer gave BOOL {ok}")
    if spy.asked:
        raise ContractViolation(
            f"C8: a raw call with a NULL out-pointer reached the backend (asked {spy.asked})"
        )
    raise LibraryLevel(
        "the library refused every bad input before any backend was asked "
        "(checked_pid and the raw API's out-pointer check): nothing about the backend"
    )


def c9_last_error_per_thread(backend: Backend, world: World) -> None:
    """C9: the last error a failing raw call leaves is this thread's: another
    thread's calls (failing or not) neither see nor change it."""
    missing = world.missing_pids()[0]
    own = world.self_pid()
    seen: list[object] = []

    def other_thread() -> None:
        before = lowlevel.GetLastError()
        ok = _raw_call(backend, own)[0]
        seen.extend([before, ok, lowlevel.GetLastError()])

    lowlevel._set_last_error(0)  # start from a known state (check_contract restores it)
    ok, mine, _ = _raw_call(backend, missing)  # sets 87 in this thread
    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    after = lowlevel.GetLastError()
    ok_own = _raw_call(backend, own)[0]
    kept = lowlevel.GetLastError()
    if (ok, mine) != (0, ERROR_INVALID_PARAMETER) or seen != [0, 1, 0]:
        raise ContractViolation(
            f"C9: a failing raw call here gave ({ok}, last error {mine}), expected (0, 87); "
            f"another thread then read last error, made a call for the caller and read "
            f"again: {seen} (expected [0, 1, 0])"
        )
    if after != ERROR_INVALID_PARAMETER or (ok_own, kept) != (1, ERROR_INVALID_PARAMETER):
        raise ContractViolation(
            f"C9: this thread's last error became {after} after another thread's calls, "
            f"{kept} after its own successful call ({ok_own}); expected 87 both times"
        )
    if not hasattr(backend, "native_process_id_to_session_id"):
        raise LibraryLevel(
            "the raw call of a backend that is not native keeps its last error in the "
            "library's own thread-local, not the backend's: nothing about the backend"
        )


def c10_aliasing(backend: Backend, world: World) -> None:
    """C10: Windows ignores a PID's two low bits; Linux does not alias."""
    with _some_process(world) as child:
        if child is None:
            raise RuleSkipped(f"{world.description}: cannot start a child")
        base = _expect_session(backend, child.pid, "C10", "a running child", child.truth)
        if world.aliasing:
            for offset in (1, 2, 3):
                got = _expect_session(backend, child.pid + offset, "C10", f"child PID+{offset}")
                if got != base:
                    raise ContractViolation(
                        f"C10: PID {child.pid}+{offset} answered session {got}, "
                        f"PID {child.pid} session {base}; Windows ignores the low two bits"
                    )
        else:
            free = [n for n in (1, 2, 3) if world.names_process(child.pid + n) is False]
            if not free:
                raise RuleSkipped(f"PIDs after child {child.pid} are all taken")
            judged = False
            for offset in free:
                try:
                    _expect_error(
                        backend,
                        child.pid + offset,
                        ERROR_INVALID_PARAMETER,
                        "C10",
                        f"PID+{offset} of a running child, naming no process (no aliasing here)",
                    )
                except ContractViolation:
                    # On a busy machine another job's process can take the
                    # PID between the check above and the answer: that
                    # answer is right, not an alias. Blamed only while the
                    # PID still names nothing.
                    if world.names_process(child.pid + offset) is False:
                        raise
                    continue
                judged = True
            if not judged:
                raise RuleSkipped(f"PIDs after child {child.pid} were taken while asked")


@contextlib.contextmanager
def _some_process(world: World) -> Iterator[Child | None]:
    """A running child, or where none can be started one of the world's
    own processes whose next three PIDs are free (a declared world)."""
    with world.child() as child:
        if child is not None:
            yield child
            return
    for pid, session in sorted(world.existing().items()):
        if world.aliasing or not any(world.names_process(pid + n) for n in (1, 2, 3)):
            yield Child(pid, session)
            return
    yield None


def c11_concurrency(backend: Backend, world: World) -> None:
    """C11: several threads asking about processes of distinct sessions at
    once each get their own process's session."""
    own = world.self_truth()
    if own is None:
        raise RuleSkipped(f"{world.description}: no truth to tell the threads' answers apart")
    targets = {world.self_pid(): own}
    with contextlib.ExitStack() as stack:
        for _ in range(CONCURRENT_LOGINS):
            login = stack.enter_context(world.child(login=True))
            if login is None or login.truth is None:
                break
            targets[login.pid] = login.truth
        for pid, session in world.existing().items():  # a declared world's own
            if session not in targets.values() and len(targets) <= CONCURRENT_LOGINS:
                targets[pid] = session
        if len(set(targets.values())) < 2:
            raise RuleSkipped(
                f"fewer than 2 distinct sessions can be made here, so wrong answers "
                f"cannot be told apart ({world.login_unavailable()})"
            )
        wrong: list[str] = []
        overlaps = 0
        for _round in range(CONCURRENT_ROUNDS):
            overlaps += _ask_at_once(backend, targets, wrong)
            if wrong or overlaps:
                break
    if wrong:
        raise ContractViolation(
            f"C11: {len(targets)} threads asked {CONCURRENT_QUERIES} times each about "
            f"PIDs of distinct sessions at once; {len(wrong)} answers were not the asked "
            f"PID's own, e.g. {wrong[0]}"
        )
    if overlaps == 0:
        raise RuleSkipped(
            f"the threads' queries never overlapped in {CONCURRENT_ROUNDS} rounds "
            "(a busy machine ran them one after another): nothing was asked at once"
        )


def _ask_at_once(backend: Backend, targets: dict[int, int], wrong: list[str]) -> int:
    """One round of C11: a thread a PID, released together, each asking
    CONCURRENT_QUERIES times and adding wrong answers to ``wrong``. Returns
    how many queries ran while another thread's query was under way, told
    from a shared clock read before and after each one."""
    clock = itertools.count()  # next() is atomic: one ordering for every thread
    spans: list[tuple[int, int, int]] = []
    arrived = [0]
    arrival = threading.Lock()

    def ask(pid: int, truth: int) -> None:
        # A spinning start line, not a Barrier: threads woken from a Barrier
        # start up to ~0.1 ms apart, long enough for one to finish alone.
        with arrival:
            arrived[0] += 1
        while arrived[0] < len(targets):
            time.sleep(0)
        for _ in range(CONCURRENT_QUERIES):
            begun = next(clock)
            answer = _ask(backend, pid)
            spans.append((begun, next(clock), pid))
            if answer != truth:
                wrong.append(f"PID {pid} (session {truth}) answered {answer}")

    threads = [threading.Thread(target=ask, args=item) for item in targets.items()]
    # Hand the GIL over every few microseconds instead of every 5 ms, so
    # that pure-Python backends are interleaved mid-query too. Scheduling
    # only: every thread's code means the same. Restored right after.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    return _overlapping(spans)


def _overlapping(spans: list[tuple[int, int, int]]) -> int:
    """How many of the ``(begun, ended, pid)`` query spans began while a
    query about another PID (another thread's) was under way: its span
    began earlier and had not ended yet."""
    overlapping = 0
    latest_end: dict[int, int] = {}
    for begun, ended, pid in sorted(spans):
        if any(end > begun for other, end in latest_end.items() if other != pid):
            overlapping += 1
        latest_end[pid] = max(ended, latest_end.get(pid, 0))
    return overlapping


RULES: dict[str, Rule] = {
    "C1": c1_self,
    "C2": c2_inheritance,
    "C3": c3_missing,
    "C4": c4_threads,
    "C5": c5_exited,
    "C6": c6_access,
    "C7": c7_domain,
    "C8": c8_bad_input,
    "C9": c9_last_error_per_thread,
    "C10": c10_aliasing,
    "C11": c11_concurrency,
}


@dataclass
class ContractReport:
    """What ``check_contract`` found: rules kept, broken and not checkable.

    ``kept`` holds the rules the backend was seen to keep, judged against
    the world's truth; ``notes`` says, for a kept rule, which part of it
    could not be exercised here and why; ``library`` holds the rules that
    passed but are kept by the library itself, before any backend is asked
    (they say nothing about the backend); ``skipped`` the rules that could
    not be exercised at all, with the reason.
    """

    backend: str
    world: str
    kept: list[str] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    library: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    #: Per rule, what the generated live world let it judge: how many
    #: processes, threads, PID reuses, queries and query forms, and the
    #: world's seed (live backends only).
    judged: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"contract check of backend {self.backend!r} on {self.world}:"]
        lines += [f"  BROKEN {rule}: {why}" for rule, why in self.broken.items()]
        for rule in self.kept:
            note = self.notes.get(rule)
            judged = f" [{self.judged[rule]}]" if rule in self.judged else ""
            lines.append(f"  kept   {rule}" + judged + (f" (only in part: {note})" if note else ""))
        lines += [f"  library {rule}: {why}" for rule, why in self.library.items()]
        lines += [f"  not checked {rule}: {why}" for rule, why in self.skipped.items()]
        return "\n".join(lines)


def check_contract(
    backend: Backend,
    *,
    world: World | None = None,
    rules: list[str] | None = None,
    worlds: int | None = None,
    size: int | None = None,
    seed: int | None = None,
) -> ContractReport:
    """Run the contract rules against ``backend``; raise ContractViolation
    with a readable report if any rule is broken, else return the report.

    ``world`` defaults to real processes for the live backends (judged
    against what the processes report about themselves), a copy of the
    model's own table for a ModelBackend (judged against that table), and
    the listed processes otherwise. The check never installs ``backend``:
    what other threads see does not change while it runs, and the calling
    thread's ``GetLastError()`` is put back when it ends.

    On a live backend the check also draws ``worlds`` generated worlds of
    ``size`` real processes each (default: 1 world of 16, or the
    ``SESSIONID_CONTRACT_WORLDS`` and ``SESSIONID_CONTRACT_WORLD_SIZE``
    environment variables; 0 worlds: none), the first from ``seed``
    (default: random; the report names it, to replay a finding). They
    size the default world only: giving them with ``world`` is a ValueError.
    """
    missing = [name for name in BACKEND_ATTRIBUTES if not hasattr(backend, name)]
    if missing:
        raise TypeError(
            "check_contract() needs a backend with "
            + ", ".join(f".{name}" for name in missing)
            + f"; {type(backend).__name__} has none of these (see sessionid_cffi.Backend)"
        )
    if world is not None and (worlds, size, seed) != (None, None, None):
        raise ValueError("worlds=, size= and seed= size the default live world: not with world=")
    if world is None and isinstance(backend, ModelBackend):
        # The rules spawn and reap in the model: do it in a copy, so that
        # code using the model meanwhile (a fake_sessions block) sees no change.
        backend = copy.copy(backend)
    if world is not None:
        chosen = world
    else:
        chosen = world_for(backend)
        if isinstance(chosen, LiveWorld):
            chosen = LiveWorld(worlds=worlds, size=size, seed=seed)
    report = ContractReport(str(getattr(backend, "name", "?")), chosen.description)
    last_error = lowlevel.GetLastError()
    try:
        for name in rules if rules is not None else list(RULES):
            try:
                RULES[name](backend, chosen)
            except ContractViolation as err:
                report.broken[name] = str(err)
            except RuleSkipped as err:
                report.skipped[name] = str(err)
            except LibraryLevel as err:
                report.library[name] = str(err)
            except PartlyChecked as err:
                report.kept.append(name)
                report.notes[name] = str(err)
            except Exception as err:
                if _raised_by_the_backend(err, backend):  # it broke the rule's scene
                    report.broken[name] = (
                        f"{name}: the check could not run, the backend raised "
                        f"{type(err).__name__}: {err}"
                    )
                else:
                    report.skipped[name] = (
                        "the check itself failed (in the kit or the world given to it, not "
                        f"in the backend): {type(err).__name__}: {err}"
                    )
            else:
                report.kept.append(name)
            if name in chosen.judged:
                report.judged[name] = chosen.judged[name]
    finally:
        lowlevel._set_last_error(last_error)
    if report.broken:
        raise ContractViolation(str(report))
    return report


def _raised_by_the_backend(err: BaseException, backend: Backend) -> bool:
    """Whether ``err`` came out of the backend's own code: a frame of its
    traceback is a method running on ``backend``. Otherwise the kit (or the
    world passed to it) failed, which says nothing about the backend."""
    trace = err.__traceback__
    while trace is not None:
        if trace.tb_frame.f_locals.get("self") is backend:
            return True
        trace = trace.tb_next
    return False
