"""In-memory model of the contract: a table ``{pid: session}``.

It is the oracle of the property tests and the fake that users install in
their own tests (``sessionid_cffi.testing.fake_sessions``). It keeps every
rule of the contract: missing PIDs, thread ids and PID 0 answer 87, denied
PIDs answer 5, zombies answer until reaped, and with ``aliasing=True`` it
follows Windows in ignoring a PID's low two bits (C10).
"""

from __future__ import annotations

from threading import Lock

from .._errors import access_denied, answers_for, not_found

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from .._records import ProcessRecord

_DWORD_MAX = 0xFFFFFFFF


def _check_dword(value: object, what: str) -> int:
    if type(value) is not int:
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value <= _DWORD_MAX:
        raise ValueError(f"{what} must be a DWORD (0 ... 2**32-1), got {value}")
    return value


class ModelBackend:
    """A process table kept in memory.

    ``table`` maps PIDs to sessions; ``threads`` are thread ids (not
    processes); ``zombies`` are PIDs of the table that exited but are not
    reaped (they still answer); ``denied`` are PIDs of the table the caller
    may not inspect; ``console_session`` is what the console query returns;
    ``users`` maps sessions to user names and ``commands`` maps PIDs to
    process names (for listings: ``process_records``, ``sessions()``, the
    ``sessionid ps`` tool); both answer None where the map has no entry.
    ``aliasing=True`` follows Windows in ignoring a PID's low two bits
    (C10; PIDs and thread ids must then be multiples of 4).

    The contract's methods (``session_id``, ``console_session_id``,
    ``session_ids``, ``process_records``) answer from the table; the others
    change it as processes come and go, safely from several threads.
    ValueError or TypeError for a PID, thread id or session that the model
    cannot hold (not a DWORD, PID 0, a PID in use, ...).
    """

    name = "model"

    def __init__(
        self,
        table: Mapping[int, int] | None = None,
        *,
        threads: Iterable[int] = (),
        zombies: Iterable[int] = (),
        denied: Iterable[int] = (),
        console_session: int | None = None,
        users: Mapping[int, str] | None = None,
        commands: Mapping[int, str] | None = None,
        aliasing: bool = False,
    ) -> None:
        self._lock = Lock()
        self.aliasing = bool(aliasing)
        self._table: dict[int, int] = {}
        for pid, session in dict(table or {}).items():
            self._check_new_pid(_check_dword(pid, "PID"))
            self._table[pid] = _check_dword(session, f"session of PID {pid}")
        self._threads: set[int] = set()
        for tid in threads:
            self._check_new_thread(_check_dword(tid, "thread id"))
            self._threads.add(tid)
        self.zombies = {_check_dword(pid, "zombie PID") for pid in zombies}
        self.denied = {_check_dword(pid, "denied PID") for pid in denied}
        for what, pids in (("zombies", self.zombies), ("denied", self.denied)):
            stray = pids - self._table.keys()
            if stray:
                raise ValueError(f"{what} must be PIDs of the table; not in it: {sorted(stray)}")
        self.console_session = (
            None if console_session is None else _check_dword(console_session, "console_session")
        )
        self.users = dict(users or {})
        self.commands = dict(commands or {})

    def __repr__(self) -> str:
        return f"ModelBackend({self._table!r}, zombies={sorted(self.zombies)})"

    def _check_new_pid(self, pid: int) -> None:
        if pid == 0:
            raise ValueError("PID 0 never names a process (Windows: idle; Linux: the idle task)")
        if self.aliasing and pid & 3:
            raise ValueError(f"with aliasing=True PIDs are multiples of 4, got {pid}")

    def _check_new_thread(self, tid: int) -> None:
        if self.aliasing and tid & 3:
            # Windows hands out thread and process ids from one pool, all
            # multiples of 4: tid+1..+3 alias the thread, never a process.
            raise ValueError(f"with aliasing=True thread ids are multiples of 4, got {tid}")
        if tid in self._table:
            raise ValueError(f"thread id {tid} is already a PID of the table")

    def __copy__(self) -> ModelBackend:
        """An independent model with the same table (``check_contract``
        changes a copy, never a model that code may be using)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        with self._lock:
            clone._table = dict(self._table)
            clone._threads = set(self._threads)
            clone.zombies = set(self.zombies)
            clone.denied = set(self.denied)
        clone.users = dict(self.users)
        clone.commands = dict(self.commands)
        clone._lock = Lock()
        return clone

    # -- the contract ---------------------------------------------------
    def session_id(self, pid: int) -> int:
        """The session of ``pid`` in the table (zombies too).

        Raises ProcessNotFoundError (87) for a PID the table does not hold,
        a thread id or PID 0, and AccessDeniedError (5) for a denied PID.
        With ``aliasing=True`` PID+1 ... PID+3 answer as PID does.
        """
        key = pid & ~3 if self.aliasing else pid
        session = self._table.get(key)
        if session is None or key == 0:
            is_thread = key in self._threads
            reason = "it is a thread id, not a process id" if is_thread else "no such process"
            raise not_found(pid, reason)
        if key in self.denied:
            raise access_denied(pid, "the model marks it as denied")
        return session

    def console_session_id(self) -> int | None:
        """``console_session`` as given (None: no console session)."""
        return self.console_session

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        """``{pid: session}`` for each of ``pids`` that answers (those not
        found and those denied are left out), or for every PID of the table
        but the denied ones when ``pids`` is None."""
        if pids is None:
            table = dict(self._table)
            return {pid: s for pid, s in table.items() if pid not in self.denied}
        return answers_for(self.session_id, pids)

    def process_records(self, fields: frozenset[str] | None = None) -> list[ProcessRecord]:
        """A ``ProcessRecord`` of every PID the caller may inspect (zombies
        included, denied PIDs left out, as in session_ids): ``login`` from
        ``users``, ``comm`` from ``commands``; the model has no other
        fields (None). ``fields`` is a hint: the model has it all at hand."""
        from .._records import ProcessRecord

        with self._lock:
            table = dict(self._table)
            denied = set(self.denied)
        users, commands = self.users, self.commands
        return [
            ProcessRecord(pid, session, login=users.get(session), comm=commands.get(pid))
            for pid, session in table.items()
            if pid not in denied
        ]

    # -- changes, as processes come and go -------------------------------
    def processes(self) -> dict[int, int]:
        """A copy of the table (zombies and denied PIDs included)."""
        return dict(self._table)

    def spawn(self, pid: int, session: int, command: str | None = None) -> None:
        """A new process ``pid`` in ``session`` (the parent's, or a new login),
        named ``command`` in listings when given.

        ValueError if ``pid`` is already a PID or thread id of the model, is
        0, or (with ``aliasing=True``) is not a multiple of 4; TypeError or
        ValueError for a ``pid`` or ``session`` that is not a DWORD.
        """
        with self._lock:
            self._check_new_pid(_check_dword(pid, "PID"))
            if pid in self._table or pid in self._threads:
                raise ValueError(f"PID {pid} is already in use")
            self._table[pid] = _check_dword(session, "session")
            if command is not None:
                self.commands[pid] = command

    def set_session(self, pid: int, session: int) -> None:
        """Process ``pid`` started a new login (Linux: wrote loginuid) and is
        in ``session`` from now on; KeyError if the table lacks ``pid``."""
        with self._lock:
            if pid not in self._table:
                raise KeyError(pid)
            self._table[pid] = _check_dword(session, "session")

    def exit(self, pid: int) -> None:
        """Process ``pid`` exited but is not reaped yet: it still answers
        (a zombie); KeyError if the table lacks ``pid``."""
        with self._lock:
            if pid not in self._table:
                raise KeyError(pid)
            self.zombies.add(pid)

    def reap(self, pid: int) -> None:
        """Process ``pid`` is gone: from now on it answers 87, and its
        zombie, denied and command entries go with it; KeyError if the
        table lacks ``pid``."""
        with self._lock:
            del self._table[pid]
            self.zombies.discard(pid)
            self.denied.discard(pid)
            self.commands.pop(pid, None)

    def threads(self) -> set[int]:
        """A copy of the thread ids the model knows (they answer 87)."""
        return set(self._threads)

    def add_thread(self, tid: int) -> None:
        """A thread ``tid`` started in some process: its id is not a process id (87)."""
        with self._lock:
            self._check_new_thread(_check_dword(tid, "thread id"))
            self._threads.add(tid)

    def remove_thread(self, tid: int) -> None:
        """Thread ``tid`` ended; its id names nothing now (still 87)."""
        with self._lock:
            self._threads.discard(tid)
