"""The contract of ``ProcessIdToSessionId`` as executable rules (C1-C10).

Each rule is a function ``rule(backend, world)`` that returns None when the
backend keeps it, raises ``ContractViolation`` when it does not, and raises
``RuleSkipped`` when the world cannot set the rule's scene up (for example
a backend that can only be listed cannot be made to spawn a child). The
project's own test suite runs exactly these rules on every backend, and
``check_contract`` runs them for users.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import BACKEND_ATTRIBUTES, lowlevel, use_backend
from .._errors import (
    ERROR_ACCESS_DENIED,
    ERROR_INVALID_PARAMETER,
    AccessDeniedError,
    ProcessNotFoundError,
    SessionIdError,
)
from .._generated_ffi import ffi
from .._interface import Backend
from ._worlds import World, world_for

DWORD_MAX = 0xFFFFFFFF
UNTOUCHED = 0xDEADBEEF
#: How many listed processes C7 asks about one by one.
LISTED_SAMPLE = 256


class ContractViolation(AssertionError):
    """A backend broke a rule of the contract; the message says which and how."""


class RuleSkipped(Exception):
    """The world cannot set this rule's scene up; the message says why."""


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


def _expect_session(backend: Backend, pid: int, rule: str, what: str) -> int:
    answer = _ask(backend, pid)
    if isinstance(answer, SessionIdError):
        raise ContractViolation(f"{rule}: {what} (PID {pid}) must answer, but got: {answer}")
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
    """(BOOL, last error, value left in the out-pointer) of the raw call."""
    out = ffi.new("DWORD *", UNTOUCHED)
    with use_backend(backend):
        ok = lowlevel.ProcessIdToSessionId(pid, out)
        return ok, lowlevel.GetLastError(), int(out[0])


def c1_self(backend: Backend, world: World) -> None:
    """C1: the caller's own PID answers, the same each time, raw API too."""
    pid = world.self_pid()
    first = _expect_session(backend, pid, "C1", "the caller's own PID")
    second = _expect_session(backend, pid, "C1", "the caller's own PID")
    if first != second:
        raise ContractViolation(f"C1: own PID {pid} answered {first}, then {second}")
    ok, _, value = _raw_call(backend, pid)
    if ok != 1 or value != first:
        raise ContractViolation(
            f"C1: raw ProcessIdToSessionId({pid}) gave ({ok}, {value}), expected (1, {first})"
        )


def c2_inheritance(backend: Backend, world: World) -> None:
    """C2: a child started by the caller is in the caller's session."""
    own = _expect_session(backend, world.self_pid(), "C2", "the caller")
    with world.child() as child:
        if child is None:
            raise RuleSkipped(f"{world.description}: cannot start a child")
        session = _expect_session(backend, child.pid, "C2", "a running child")
        if session != own:
            raise ContractViolation(
                f"C2: child {child.pid} is in session {session}, the caller in {own}"
            )


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
    """C4: a thread id that is not a process id fails with 87."""
    with world.thread_id() as tid:
        if tid is None:
            raise RuleSkipped(f"{world.description}: cannot start a thread")
        _expect_error(backend, tid, ERROR_INVALID_PARAMETER, "C4", "a thread id")


def c5_exited(backend: Backend, world: World) -> None:
    """C5: an exited process answers while it is held (Linux: a zombie;
    Windows: a handle is open); once gone, 87."""
    with world.child() as child:
        if child is None:
            raise RuleSkipped(f"{world.description}: cannot start a child")
        alive = _expect_session(backend, child.pid, "C5", "a running child")
        child.exit()
        held = _expect_session(backend, child.pid, "C5", "an exited child not yet reaped")
        if held != alive:
            raise ContractViolation(
                f"C5: child {child.pid} changed session on exit: {alive} -> {held}"
            )
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
    """C7: every DWORD PID is a valid input; answers are DWORDs or errors."""
    rng = random.Random(7)
    pids = [0, 1, 2, 3, 4, 8, 2**31 - 1, 2**31, DWORD_MAX - 3, DWORD_MAX]
    pids += [rng.randrange(DWORD_MAX + 1) for _ in range(40)]
    for pid in pids:
        _ask(backend, pid)  # raises ContractViolation for anything else
    # The processes the backend lists answer DWORDs too, the same as listed
    # (a process may have exited since the listing: then any error is fine).
    listed = backend.session_ids(None)
    for pid, session in sorted(listed.items())[:LISTED_SAMPLE]:
        if type(session) is not int or not 0 <= session <= DWORD_MAX:
            raise ContractViolation(
                f"C7: session_ids() lists PID {pid} in {session!r}, not a DWORD"
            )
        answer = _ask(backend, pid)
        if isinstance(answer, int) and answer != session:
            raise ContractViolation(
                f"C7: session_ids() lists PID {pid} in session {session}, "
                f"but session_id({pid}) answers {answer}"
            )


def c8_bad_input(backend: Backend, world: World) -> None:
    """C8: the Python API refuses bad PIDs with ValueError/TypeError before
    the backend sees them; the raw API refuses NULL with FALSE + 87."""
    from .. import process_id_to_session_id

    cases: list[tuple[object, type[Exception]]] = [
        (-1, ValueError), (DWORD_MAX + 1, ValueError), (2**64, ValueError),
        ("1", TypeError), (1.0, TypeError), (True, TypeError), (None, TypeError),
    ]
    with use_backend(backend):
        for value, expected in cases:
            try:
                process_id_to_session_id(value)  # type: ignore[arg-type]  # bad on purpose
            except expected:
                continue
            except Exception as err:
                raise ContractViolation(
                    f"C8: process_id_to_session_id({value!r}) raised {type(err).__name__}, "
                    f"expected {expected.__name__}"
                ) from err
            raise ContractViolation(f"C8: process_id_to_session_id({value!r}) did not raise")
        ok = lowlevel.ProcessIdToSessionId(world.self_pid(), ffi.NULL)
        if (ok, lowlevel.GetLastError()) != (0, ERROR_INVALID_PARAMETER):
            raise ContractViolation(f"C8: raw call with a NULL out-pointer gave BOOL {ok}")


def c9_last_error_per_thread(backend: Backend, world: World) -> None:
    """C9: the last error of one thread is not seen by another."""
    missing = world.missing_pids()[0]
    seen: list[int] = []
    out = ffi.new("DWORD *")
    with use_backend(backend):
        lowlevel.ProcessIdToSessionId(missing, out)  # sets 87 in this thread
        thread = threading.Thread(target=lambda: seen.append(lowlevel.GetLastError()))
        thread.start()
        thread.join()
        mine = lowlevel.GetLastError()
    if seen != [0] or mine != ERROR_INVALID_PARAMETER:
        raise ContractViolation(
            f"C9: after a failing call here, another thread read last error {seen} "
            f"(expected [0]) and this thread {mine} (expected 87)"
        )


def c10_aliasing(backend: Backend, world: World) -> None:
    """C10: Windows ignores a PID's two low bits; Linux does not alias."""
    with world.child() as child:
        if child is None:
            raise RuleSkipped(f"{world.description}: cannot start a child")
        base = _expect_session(backend, child.pid, "C10", "a running child")
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
            for offset in free:
                _expect_error(
                    backend, child.pid + offset, ERROR_INVALID_PARAMETER, "C10",
                    f"PID+{offset} of a running child, naming no process (no aliasing here)",
                )


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
}


@dataclass
class ContractReport:
    """What ``check_contract`` found: rules kept, broken and not checkable."""

    backend: str
    world: str
    kept: list[str] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"contract check of backend {self.backend!r} on {self.world}:"]
        lines += [f"  BROKEN {rule}: {why}" for rule, why in self.broken.items()]
        lines += [f"  kept   {rule}" for rule in self.kept]
        lines += [f"  not checked {rule}: {why}" for rule, why in self.skipped.items()]
        return "\n".join(lines)


def check_contract(
    backend: Backend, *, world: World | None = None, rules: list[str] | None = None
) -> ContractReport:
    """Run the contract rules against ``backend``; raise ContractViolation
    with a readable report if any rule is broken, else return the report.

    ``world`` defaults to real processes for the live backends, the model's
    own table for a ModelBackend, and the listed processes otherwise.
    """
    for attribute in BACKEND_ATTRIBUTES:
        if not hasattr(backend, attribute):
            raise TypeError(f"check_contract() needs a backend with .{attribute}")
    chosen = world if world is not None else world_for(backend)
    report = ContractReport(str(getattr(backend, "name", "?")), chosen.description)
    for name in rules if rules is not None else list(RULES):
        try:
            RULES[name](backend, chosen)
        except ContractViolation as err:
            report.broken[name] = str(err)
        except RuleSkipped as err:
            report.skipped[name] = str(err)
        except Exception as err:  # the backend broke the scene the rule needs
            report.broken[name] = (
                f"{name}: the check could not run, it raised {type(err).__name__}: {err}"
            )
        else:
            report.kept.append(name)
    if report.broken:
        raise ContractViolation(str(report))
    return report
