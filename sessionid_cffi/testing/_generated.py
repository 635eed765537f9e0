"""The generated live world: a random forest of real processes, judged.

``check_contract`` on a live backend does not only ask about the caller
and its own children: it draws a world of real processes (the kit's agent
forest, ``_forest.py``) and judges every answer about it against what each
process reported of itself from the inside. The world holds, where the OS
allows them:

- trees several levels deep, with logins started at any depth (Linux: a
  process writes a uid to its own loginuid; root anywhere, anyone else in
  a process whose loginuid is still unset) and their descendants;
- ``setsid`` leaders and ``nohup`` processes (Linux);
- orphans: processes started through an intermediary that exits at once
  (a tree the caller did not start itself), re-parented to the caller as
  the forest's subreaper (Linux);
- threads of other processes (their ids must answer 87);
- exited processes held at depth (Linux: zombies; Windows: held by their
  parent's handle) and reaped PIDs (87, unless a stranger took the PID).

Every query form is judged on the same world: ``session_id`` of each PID,
``session_ids(subset)``, ``session_ids(None)`` (every world process listed
with its true session, no thread id listed) and ``process_records`` where
the backend has it. The findings are sorted by rule: C2 (a running
process's session), C4 (thread ids), C5 (exited and reaped processes), C7
(the listing forms).

The world is drawn with a seeded ``random.Random``, not Hypothesis: the
check runs inside users' own tests, Hypothesis tests among them (a nested
``@given`` is refused), and a real process world cannot be shrunk in
useful time. The seed is in the report, so a finding can be replayed with
``check_contract(..., seed=N)``.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

from .._errors import SessionIdError
from ._forest import (
    LINUX,
    WINDOWS,
    Forest,
    ForestError,
    Proc,
    RealForest,
    can_login,
    root_may_login,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._worlds import DeclaredWorld

#: Processes in one generated world by default.
DEFAULT_SIZE = 16
#: Environment variables of the longer run (read when the arguments are None).
WORLDS_ENV = "SESSIONID_CONTRACT_WORLDS"
SIZE_ENV = "SESSIONID_CONTRACT_WORLD_SIZE"
#: The rules the generated world informs.
RULES = ("C2", "C4", "C5", "C7")


_KINDS = ("processes", "threads", "reuses", "queries", "forms")


@dataclass
class Judgement:
    """What the generated worlds showed, per rule."""

    seeds: list[int] = field(default_factory=list)
    #: rule -> the violations seen (empty: kept).
    findings: dict[str, list[str]] = field(default_factory=lambda: {r: [] for r in RULES})
    #: rule -> {"processes": n, "threads": n, "reuses": n, "queries": n, "forms": n}.
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {r: dict.fromkeys(_KINDS, 0) for r in RULES}
    )
    #: What the worlds could not hold here, and why (for the report's notes).
    missing: dict[str, str] = field(default_factory=dict)
    #: Set when no world could be built at all.
    failed: str | None = None
    #: Whether the worlds ran in a PID namespace of their own.
    isolated: bool = False

    def describe(self, rule: str) -> str:
        count = self.counts[rule]
        parts = ", ".join(f"{count[kind]} {kind}" for kind in _KINDS if count[kind])
        if not self.seeds:
            return f"declared world: {parts or 'nothing declared for it'}"
        seeds = ", ".join(map(str, self.seeds))
        where = " in its own PID namespace" if self.isolated else ""
        return f"generated world{where} (seed {seeds}): {parts}"


def sizing(worlds: int | None, size: int | None) -> tuple[int, int]:
    """How many worlds of how many processes: the arguments, else the
    environment variables, else one world of DEFAULT_SIZE."""
    if worlds is None:
        worlds = int(os.environ.get(WORLDS_ENV) or 1)
    if size is None:
        size = int(os.environ.get(SIZE_ENV) or DEFAULT_SIZE)
    if worlds < 0 or size < 1:
        raise ValueError(f"worlds must be >= 0 and size >= 1, got {worlds} and {size}")
    return worlds, size


def judge(backend: Any, *, worlds: int, size: int, seed: int | None) -> Judgement:
    """Build ``worlds`` generated worlds of ``size`` processes and judge
    ``backend`` on each; the seed of world k is ``seed + k``.

    Linux, as root: in a PID namespace of its own with its own /proc (a
    forked child of the caller runs the worlds there as the namespace's
    init), so that ``session_ids(None)`` must list exactly the world, and
    PIDs can be reused on purpose. Elsewhere (or if the namespace cannot be
    made) in the caller's own namespace, without PID reuse."""
    first = random.randrange(2**32) if seed is None else seed
    seeds = [first + k for k in range(worlds)]
    if LINUX and os.geteuid() == 0:
        isolated = _judge_in_namespace(backend, seeds, size)
        if isinstance(isolated, Judgement):
            return isolated
        why = isolated
    else:
        why = (
            "PID reuse is forced only as root on Linux (a private PID namespace with its "
            "own /proc, and ns_last_pid)"
        )
    judgement = _judge_here(backend, seeds, size, isolated=False)
    judgement.missing["reuse"] = why
    return judgement


def _judge_here(backend: Any, seeds: list[int], size: int, *, isolated: bool) -> Judgement:
    judgement = Judgement(isolated=isolated)
    for seed in seeds:
        judgement.seeds.append(seed)
        forest = RealForest()
        try:
            rng = random.Random(seed)
            _build(forest, rng, size, judgement)
            _judge_forest(backend, forest, judgement, isolated)
            if isolated:
                try:
                    _reuse(backend, forest, judgement)
                except _Broken as err:
                    judgement.findings["C5"].append(str(err))
        except ForestError as err:
            judgement.failed = f"the generated world could not be built: {err}"
            return judgement
        finally:
            forest.close()
    return judgement


#: Seconds the worlds in a PID namespace may take before they are given up:
#: this much, plus SECONDS_PER_PROCESS for each process of the worlds (a
#: world of 16 takes about 2 s on a 2-core machine).
NAMESPACE_TIMEOUT = 120
SECONDS_PER_PROCESS = 2
_CLONE_NEWNS = 0x00020000
_CLONE_NEWPID = 0x20000000
_MS_REC, _MS_PRIVATE = 0x4000, 1 << 18
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8
_PR_SET_PDEATHSIG = 1


# fork, unshare and mount: judged by the live suites (test_contract as root),
# not by the mutation gate (docs/reliability.md).
# pragma: no mutate start
def _judge_in_namespace(backend: Any, seeds: list[int], size: int) -> Judgement | str:
    """The worlds judged in a new PID namespace with its own /proc: a
    forked child unshares the namespaces and forks the namespace's init,
    which builds the worlds, asks ``backend`` (inherited by the fork) and
    writes its judgement to a pipe. A string says why it could not run."""
    import json
    import select
    import signal
    import warnings

    read_end, write_end = os.pipe()
    with warnings.catch_warnings():  # "fork() of a multi-threaded process": we exec nothing
        warnings.simplefilter("ignore", DeprecationWarning)
        middle = os.fork()
    if middle == 0:  # pragma: no cover - runs in the forked children
        status = 1
        try:
            os.close(read_end)
            libc = _libc()
            if libc.unshare(_CLONE_NEWPID | _CLONE_NEWNS) != 0:
                raise OSError(_errno(), "unshare(CLONE_NEWPID | CLONE_NEWNS)")
            init = os.fork()
            if init == 0:
                libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                _mount_own_proc(libc)
                found = _judge_here(backend, seeds, size, isolated=True)
                os.write(write_end, json.dumps(found.__dict__).encode())
                os._exit(0)
            status = 0 if os.waitpid(init, 0)[1] == 0 else 1
        except BaseException as err:
            os.write(write_end, json.dumps({"error": f"{type(err).__name__}: {err}"}).encode())
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    timeout = NAMESPACE_TIMEOUT + SECONDS_PER_PROCESS * size * len(seeds)
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(middle, signal.SIGKILL)  # its death kills the namespace's init
                return f"the worlds in a PID namespace took more than {timeout} s"
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(middle, 0)
    try:
        data = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        return "the worlds in a PID namespace sent no readable judgement"
    if "error" in data or "seeds" not in data:
        return f"no PID namespace of its own: {data.get('error', 'its init died')}"
    judgement = Judgement()
    judgement.__dict__.update(data)
    return judgement


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


def _mount_own_proc(libc: Any) -> None:
    """Mounts private to this mount namespace, and a /proc of this PID
    namespace over /proc."""
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise OSError(_errno(), "mount --make-rprivate /")
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    if libc.mount(b"proc", b"/proc", b"proc", flags, None) != 0:
        raise OSError(_errno(), "mount -t proc proc /proc")


# pragma: no mutate end
# -- building ---------------------------------------------------------------
def _may_login(proc: Proc) -> bool:
    return LINUX and can_login() and (root_may_login() or not proc.login_set)


def _build(forest: RealForest, rng: random.Random, size: int, judgement: Judgement) -> None:
    """A random world of about ``size`` processes (see the module
    docstring). Each kind of process (every depth, orphans, setsid leaders,
    zombies at depth) is made at least once inside a login where logins
    can be made, so that an answer of 0 or of the caller's session, made
    up for that kind, differs from its truth."""
    if not (LINUX and can_login()):
        judgement.missing["logins"] = (
            "no process could start a login here (not Linux, no audit sessions, or the "
            "caller's loginuid is set without CAP_AUDIT_CONTROL): every process of the "
            "world is in the caller's session"
        )
    # Spine A: a direct child logs in; its line goes 4 levels deep, and as
    # root one deeper level logs in again (a session of its own below a login).
    # It never exits (``keep``): whatever the fates, a running process inside
    # a login stays at every depth from 1 to 4 of the real process tree.
    parent: Proc | None = None
    relogin = rng.randrange(1, 4)
    keep: list[Proc] = []
    for level in range(4):
        proc = forest.spawn(parent)
        if (level == 0 or level == relogin) and _may_login(proc):
            forest.login(proc)
        keep.append(proc)
        parent = proc
    # Spine B: the direct child stays in the caller's session, a deeper
    # level logs in.
    parent = None
    login_at = rng.randrange(1, 3)
    for level in range(3):
        proc = forest.spawn(parent)
        if level == login_at and _may_login(proc):
            forest.login(proc)
        parent = proc
    # A tree the caller did not start: through an intermediary that exits.
    # The orphan at depth and its child keep running (an orphan adopted by
    # the caller, and a grandchild through it); the random part adds orphans
    # at any depth that may exit.
    orphan = forest.spawn(None, orphan=True)
    if _may_login(orphan):
        forest.login(orphan)
    adopted = forest.spawn(orphan, orphan=LINUX)
    keep += [adopted, forest.spawn(adopted)]
    if LINUX:  # setsid and nohup, inside a login
        for proc in rng.sample(
            [p for p in forest.procs if p.session != forest.self_session] or forest.procs, k=2
        ):
            forest.setsid(proc)
            forest.nohup(proc)
    while len(forest.procs) < size:
        alive = [p for p in forest.procs if p.state == "alive"]
        parent = rng.choice([*alive, None])
        proc = forest.spawn(parent, orphan=LINUX and rng.random() < 0.2)
        if _may_login(proc) and rng.random() < 0.4:
            forest.login(proc)
        if LINUX and rng.random() < 0.3:
            forest.setsid(proc)
        if LINUX and rng.random() < 0.3:
            forest.nohup(proc)
    # Threads in other processes, one of them deep inside a login.
    deep = [p for p in forest.procs if p.session != forest.self_session]
    for proc in rng.sample(forest.procs, k=2) + deep[-1:]:
        forest.add_thread(proc)
    _fates(forest, rng, keep)


def _fates(forest: RealForest, rng: random.Random, keep: list[Proc]) -> None:
    """Exit processes away from the caller (held: zombies, or by a handle),
    the deepest first, inside logins first, never one whose child exited
    (it holds that zombie) nor one of ``keep``; reap every other one."""

    def depth(proc: Proc) -> int:
        level, up = 0, proc.parent
        while up is not None:
            level, up = level + 1, up.parent
        return level

    candidates = [p for p in forest.procs if not p.tids and p not in keep and _may_exit(p)]
    rng.shuffle(candidates)
    # Inside logins first, then processes whose parent is a world process
    # (an orphan's real parent is the caller, its subreaper), deepest first:
    # the first one chosen becomes a zombie held away from the caller.
    candidates.sort(
        key=lambda p: (p.session != forest.self_session, not p.orphan, depth(p)), reverse=True
    )
    chosen: list[Proc] = []
    for proc in candidates:
        # A zombie's parent stays alive and holds it (orphans at depth are
        # held by the caller, their subreaper, instead).
        if len(chosen) < max(4, len(candidates) // 3) and not any(
            child.parent is proc for child in chosen
        ):
            chosen.append(proc)
    for proc in chosen:
        if _may_exit(proc):
            forest.exit(proc)
    for proc in chosen[1::2]:
        if proc.state == "exited" and _may_reap(proc):
            forest.reap(proc)


def _may_exit(proc: Proc) -> bool:
    if proc.state != "alive":
        return False
    # Windows only: judged by the Wine lane, not by the mutation gate on Linux.
    # pragma: no mutate start
    if WINDOWS:  # someone must hold its handle: its parent, or the caller
        parent = proc.parent
        return proc.popen is not None or (
            not proc.orphan and parent is not None and parent.state == "alive"
        )
    # pragma: no mutate end
    return True


def _may_reap(proc: Proc) -> bool:
    # Past LINUX: Windows only (the Wine lane judges it, the gate on Linux cannot).
    # pragma: no mutate start
    parent = proc.parent
    return LINUX or proc.popen is not None or (parent is not None and parent.state == "alive")
    # pragma: no mutate end


# -- judging ------------------------------------------------------------------
def _answer(backend: Any, pid: int, what: str) -> int | SessionIdError:
    try:
        session = backend.session_id(pid)
    except SessionIdError as err:
        return err
    except Exception as err:
        raise _Broken(f"session_id({pid}) of {what} raised {type(err).__name__}: {err}") from err
    return session  # type: ignore[no-any-return]


class _Broken(Exception):
    """A backend call raised what no backend may raise."""


def _judge_forest(backend: Any, forest: Forest, judgement: Judgement, isolated: bool) -> None:
    findings, counts = judgement.findings, judgement.counts
    try:
        _judge_single(backend, forest, findings, counts)
        _judge_listings(backend, forest, findings, counts, isolated)
    except _Broken as err:
        findings["C7"].append(str(err))


def _where(proc: Proc) -> str:
    """The process in words: its depth, login and fate, for a violation."""
    level, up = 0, proc.parent
    while up is not None:
        level, up = level + 1, up.parent
    words = [f"depth {level + 1}"]
    words += ["an orphan"] * proc.orphan
    words += ["in a login of its own"] * bool(proc.logins)
    return f"world process {proc.node} (PID {proc.pid}, {', '.join(words)})"


def _judge_single(
    backend: Any,
    forest: Forest,
    findings: dict[str, list[str]],
    counts: dict[str, dict[str, int]],
) -> None:
    """``session_id`` for every PID and thread id of the world."""
    for proc in forest.procs:
        rule = {"alive": "C2", "exited": "C5", "gone": "C5"}[proc.state]
        try:
            got = _answer(backend, proc.pid, _where(proc))
        except _Broken as err:
            findings[rule].append(str(err))
            continue
        counts[rule]["processes"] += 1
        counts[rule]["queries"] += 1
        if proc.state == "gone":
            if forest.names_process(proc.pid):
                continue  # a stranger took the PID: any answer may be true
            if not (isinstance(got, SessionIdError) and got.winerror == 87):
                findings[rule].append(
                    f"{_where(proc)} was reaped: must raise ProcessNotFoundError (87), got {got!r}"
                )
        elif got != proc.session:
            state = "exited, not yet reaped" if proc.state == "exited" else "running"
            findings[rule].append(
                f"{_where(proc)}, {state}, reports session {proc.session} from the inside, "
                f"but the backend answered {got!r}"
            )
        for tid in proc.tids if proc.state == "alive" else []:
            try:
                got = _answer(backend, tid, f"a thread of {_where(proc)}")
            except _Broken as err:
                findings["C4"].append(str(err))
                continue
            counts["C4"]["threads"] += 1
            counts["C4"]["queries"] += 1
            if not (isinstance(got, SessionIdError) and got.winerror == 87):
                findings["C4"].append(
                    f"thread id {tid} of {_where(proc)} must raise ProcessNotFoundError (87), "
                    f"got {got!r}"
                )
    counts["C2"]["forms"] = counts["C5"]["forms"] = counts["C4"]["forms"] = 1


def _judge_listings(
    backend: Any,
    forest: Forest,
    findings: dict[str, list[str]],
    counts: dict[str, dict[str, int]],
    isolated: bool,
) -> None:
    """``session_ids(subset)``, ``session_ids(None)`` and ``process_records``;
    in a PID namespace of the world's own, the whole listings must be
    exactly the world (no other process lives there)."""
    listed = {p.pid: p.session for p in forest.procs if p.state != "gone"}
    listed[forest.self_pid] = forest.self_session
    gone = [p.pid for p in forest.procs if p.state == "gone"]
    tids = [t for p in forest.procs if p.state == "alive" for t in p.tids]
    subset = sorted(listed) + gone + tids
    random.Random(len(subset)).shuffle(subset)
    # Windows lists a whole table with WTSEnumerateProcesses, which no longer
    # shows an exited process held by a handle (asked alone, it answers).
    unlisted_exited = {p.pid for p in forest.procs if p.state == "exited"} if WINDOWS else set()
    count = counts["C7"]
    count["processes"] += len(listed)
    count["threads"] += len(tids)

    def check(form: str, got: dict[int, int], whole: bool) -> None:
        count["forms"] += 1
        count["queries"] += 1
        for pid, truth in sorted(listed.items()):
            if whole and pid not in got and pid in unlisted_exited:
                continue  # Windows' enumeration drops exited processes still held
            if got.get(pid) != truth:
                proc = forest.find(pid)
                who = _where(proc) if proc else f"the caller (PID {pid})"
                findings["C7"].append(
                    f"{form} lists {who} as {got.get(pid, 'absent')}, but it reports "
                    f"session {truth} from the inside"
                )
        for pid in tids + gone:
            if pid in got and not (pid in gone and forest.names_process(pid)):
                findings["C7"].append(f"{form} lists PID {pid}, a thread id or reaped PID")
        if not whole or isolated:
            strays = set(got) - set(subset if not whole else listed)
            if strays:
                where = (
                    "naming no process of the world's own PID namespace"
                    if whole
                    else "it was not asked about"
                )
                findings["C7"].append(f"{form} lists PIDs {where}: {sorted(strays)[:10]}")

    check(f"session_ids({len(subset)} world PIDs)", _call(backend.session_ids, subset), False)
    check("session_ids(None)", _call(backend.session_ids, None), True)
    records = getattr(backend, "process_records", None)
    if records is not None:
        rows = _call(records, None)
        check("process_records()", {row.pid: row.session_id for row in rows}, True)


def _call(method: Any, argument: Any) -> Any:
    name = getattr(method, "__name__", "a listing method")
    try:
        return method(argument)
    except Exception as err:
        raise _Broken(f"{name}({argument!r}) raised {type(err).__name__}: {err}") from err


def _reuse(backend: Any, forest: RealForest, judgement: Judgement) -> None:
    """Twice: a process in a login is asked about, exits and is reaped; a
    newcomer of another login takes its PID (root writes the PID before
    it to this namespace's ns_last_pid); every query form must now answer
    the newcomer's session (C5)."""
    findings, count = judgement.findings["C5"], judgement.counts["C5"]
    for _ in range(2):
        first = forest.spawn(None)
        forest.login(first)
        pid = first.pid
        before = (_answer(backend, pid, _where(first)), _call(backend.session_ids, [pid]))
        if before != (first.session, {pid: first.session}):
            findings.append(f"{_where(first)} answered {before} before its PID was reused")
        forest.exit(first)
        forest.reap(first)
        with open("/proc/sys/kernel/ns_last_pid", "w") as file:
            file.write(str(pid - 1))
        newcomer = forest.spawn(None)
        if newcomer.pid != pid:
            judgement.missing["reuse"] = f"the newcomer got PID {newcomer.pid}, not {pid}"
            return
        forest.login(newcomer)
        truth = newcomer.session
        answers = {
            "session_id": _answer(backend, pid, _where(newcomer)),
            "session_ids([pid])": _call(backend.session_ids, [pid]).get(pid),
            "session_ids(None)": _call(backend.session_ids, None).get(pid),
        }
        records = getattr(backend, "process_records", None)
        if records is not None:
            rows = {row.pid: row.session_id for row in _call(records, None)}
            answers["process_records()"] = rows.get(pid)
        count["reuses"] += 1
        count["queries"] += len(answers)
        count["forms"] = max(count["forms"], len(answers))
        for form, got in answers.items():
            if got != truth:
                findings.append(
                    f"PID {pid} was reused: the process in session {first.session} was reaped "
                    f"and a newcomer reports session {truth}, but {form} answered {got!r}"
                )


class _Declared(Forest):
    """A declared world's processes as forest records (nothing runs)."""

    def __init__(self, world: DeclaredWorld) -> None:
        super().__init__()
        self.world = world
        self.self_pid = world.self_pid()
        self.self_session = world.table[self.self_pid]
        for pid, session in sorted(world.table.items()):
            if pid != self.self_pid and pid not in world.denied:
                state = "exited" if pid in world.exited else "alive"
                self.procs.append(Proc(f"declared-{pid}", pid, None, session, state=state))
        self.procs += [Proc(f"declared-{pid}", pid, None, 0, state="gone") for pid in world.gone]
        holder = next((p for p in self.procs if p.state == "alive"), None)
        if holder is not None:
            holder.tids = sorted(world.threads)

    def names_process(self, pid: int) -> bool:
        return bool(self.world.names_process(pid))


def judge_declared(backend: Any, world: DeclaredWorld) -> Judgement:
    """Every declared process, thread, exited and gone PID, judged on every
    query form against the declaration."""
    judgement = Judgement()
    _judge_forest(backend, _Declared(world), judgement, isolated=False)
    return judgement
