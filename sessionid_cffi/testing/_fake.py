"""``fake_sessions``: install an in-memory process table for the code under test.

The swap is process-wide, like ``unittest.mock.patch``: every thread of the
process sees the fake while it is installed (code under test often answers
from worker threads, which must see it too). Two threads of one process
cannot each have their own table at the same time: the newest open swap
answers for everybody.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from .._backend import pop_swap, push_swap
from .._errors import ProcessNotFoundError
from ..emulation.model import ModelBackend

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .._records import ProcessRecord


class CallerNotInFakeError(BaseException):
    """The code under test asked about the calling process, which the fake
    table does not hold: pass ``self_session=`` to ``fake_sessions``.

    Not a ``SessionIdError`` (nor an ``Exception``): code under test that
    treats "not found" as "not mine", or catches every ``Exception``, must
    not pass for that wrong reason. It derives from ``BaseException``, as
    ``pytest.fail`` does, so that the test fails loudly.
    """


class FakeSessions(ModelBackend):
    """The ``ModelBackend`` that ``fake_sessions`` installs.

    It answers like any model, except that asking about the calling process
    when the table does not hold it raises ``CallerNotInFakeError``. Used as
    a context manager (the fixture's form), leaving the block uninstalls it.

    In listings (``process_records()``, ``sessions()``, ``sessionid ps``)
    ``users`` (``{session: name}``, the user logged in to the session) fills
    both ``login`` and ``user`` (the owner) of the session's processes, and
    ``owners`` (``{pid: name}``) overrides the owner of single processes.
    """

    _installed = False

    def __init__(
        self,
        table: Mapping[int, int] | None = None,
        *,
        owners: Mapping[int, str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(table, **options)
        #: ``{pid: owner name}``, for the processes whose owner is not the
        #: user of their session (``su``, ``sudo``, services in session 0).
        self.owners = dict(owners or {})

    def process_records(self, fields: frozenset[str] | None = None) -> list[ProcessRecord]:
        """The model's records, with ``user`` (the owner) from ``owners``,
        else from ``users`` (the session's user), else None."""
        owners, users = self.owners, self.users
        return [
            record._replace(user=owners.get(record.pid, users.get(record.session_id)))
            for record in super().process_records(fields)
        ]

    def reap(self, pid: int) -> None:
        super().reap(pid)
        self.owners.pop(pid, None)

    def __copy__(self) -> FakeSessions:
        clone = super().__copy__()
        assert isinstance(clone, FakeSessions)
        clone.owners = dict(self.owners)  # check_contract reaps in its copy
        clone._installed = False
        return clone

    def session_id(self, pid: int) -> int:
        try:
            return super().session_id(pid)
        except ProcessNotFoundError:
            own = os.getpid()
            if pid == own or (self.aliasing and pid & ~3 == own & ~3):
                raise CallerNotInFakeError(
                    f"the code under test asked about the calling process (PID {pid}), "
                    "but the fake table does not hold it: pass self_session=N to "
                    "fake_sessions() to put the caller in session N"
                ) from None
            raise

    def __enter__(self) -> FakeSessions:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._installed:
            self._installed = False
            pop_swap(self)


# Their public home (sessionid_cffi.testing) from the start, not only once the
# package's lazy loader publishes them: annotations such as fake_sessions'
# Iterator[FakeSessions] then name the public path in help() and the docs.
CallerNotInFakeError.__module__ = FakeSessions.__module__ = "sessionid_cffi.testing"


def make_fake(
    table: Mapping[int, int] | None = None,
    *,
    threads: Iterable[int] = (),
    zombies: Iterable[int] = (),
    denied: Iterable[int] = (),
    console_session: int | None = None,
    users: Mapping[int, str] | None = None,
    owners: Mapping[int, str] | None = None,
    commands: Mapping[int, str] | None = None,
    aliasing: bool = False,
    self_session: int | None = None,
) -> FakeSessions:
    """The FakeSessions model ``fake_sessions`` installs (not installed)."""
    rows = dict(table or {})
    if self_session is not None:
        own = os.getpid()
        if rows.get(own, self_session) != self_session:
            raise ValueError(
                f"self_session={self_session} but the table puts this process "
                f"(PID {own}) in session {rows[own]}"
            )
        rows[own] = self_session
    return FakeSessions(
        rows,
        threads=threads,
        zombies=zombies,
        denied=denied,
        console_session=console_session,
        users=users,
        owners=owners,
        commands=commands,
        aliasing=aliasing,
    )


def install(model: FakeSessions) -> FakeSessions:
    """Install ``model`` now; leaving it as a context manager uninstalls it."""
    push_swap(model)  # what use_backend(model).__enter__() does
    model._installed = True
    return model


@contextmanager
def fake_sessions(
    table: Mapping[int, int] | None = None,
    *,
    threads: Iterable[int] = (),
    zombies: Iterable[int] = (),
    denied: Iterable[int] = (),
    console_session: int | None = None,
    users: Mapping[int, str] | None = None,
    owners: Mapping[int, str] | None = None,
    commands: Mapping[int, str] | None = None,
    aliasing: bool = False,
    self_session: int | None = None,
) -> Iterator[FakeSessions]:
    """Make every query inside the ``with`` block answer from ``table``.

    ``table`` maps PIDs to sessions. ``threads`` are thread ids (they answer
    ERROR_INVALID_PARAMETER, like missing PIDs), ``zombies`` are PIDs of the
    table that exited but still answer, ``denied`` are PIDs of the table that
    answer ERROR_ACCESS_DENIED; ``console_session`` is what
    ``active_console_session_id()`` returns; ``commands`` maps PIDs to
    process names; ``aliasing=True`` follows Windows in ignoring a PID's two
    low bits (PIDs and thread ids must then be multiples of 4).

    Names, for ``sessions()`` and listings: ``users`` maps sessions to the
    user logged in to each; it sets ``SessionInfo.user`` and, for every
    process of the session, both ``ProcessRecord.login`` (the session's
    user) and ``ProcessRecord.user`` (the owner, usually the same).
    ``owners`` maps PIDs to the owner's name where it differs (``su``,
    ``sudo``, services in session 0): it sets ``ProcessRecord.user`` only.
    ``users={1: "alice"}, owners={4343: "root"}`` makes 4343 a process that
    alice started as root.

    ``self_session=N`` puts the calling process (``os.getpid()``) in the
    table in session N. Without it, asking about the calling process
    (``current_session_id()``, or its PID) raises ``CallerNotInFakeError``,
    never ``ProcessNotFoundError``: a world without the caller is a test
    set-up mistake, not an answer.

    Yields the model (a ``ModelBackend``), which the test may change while
    the block runs (``spawn``, ``set_session``, ``exit``, ``reap``,
    ``add_thread``). Works on every OS: nothing real is asked. The swap is
    process-wide (every thread sees the fake, like ``mock.patch``); swaps
    nest, and the previous backend is back after the block, even on error.
    Concurrent blocks with different tables in threads of one process are
    not supported: the newest open block answers for all threads.
    """
    model = make_fake(
        table,
        threads=threads,
        zombies=zombies,
        denied=denied,
        console_session=console_session,
        users=users,
        owners=owners,
        commands=commands,
        aliasing=aliasing,
        self_session=self_session,
    )
    with install(model):
        yield model
