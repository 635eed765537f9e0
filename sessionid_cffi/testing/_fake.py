"""``fake_sessions``: install an in-memory process table for the code under test."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from .. import use_backend
from ..emulation.model import ModelBackend


@contextmanager
def fake_sessions(
    table: Mapping[int, int] | None = None,
    *,
    threads: Iterable[int] = (),
    zombies: Iterable[int] = (),
    denied: Iterable[int] = (),
    console_session: int | None = None,
    users: Mapping[int, str] | None = None,
    aliasing: bool = False,
    self_session: int | None = None,
) -> Iterator[ModelBackend]:
    """Make every query inside the ``with`` block answer from ``table``.

    ``table`` maps PIDs to sessions. ``threads`` are thread ids (they answer
    ERROR_INVALID_PARAMETER, like missing PIDs), ``zombies`` are PIDs of the
    table that exited but still answer, ``denied`` are PIDs of the table that
    answer ERROR_ACCESS_DENIED; ``console_session`` is what
    ``active_console_session_id()`` returns; ``aliasing=True`` follows Windows
    in ignoring a PID's two low bits (PIDs must then be multiples of 4).
    ``self_session``, when given, puts the calling process (``os.getpid()``)
    in the table in that session, so that ``current_session_id()`` answers.

    Yields the ModelBackend, which the test may change while the block runs
    (``spawn``, ``set_session``, ``exit``, ``reap``, ``add_thread``). Works on
    every OS: nothing real is asked. Swaps nest and are safe across threads;
    the previous backend is back after the block, even on error.
    """
    rows = dict(table or {})
    if self_session is not None:
        own = os.getpid()
        if rows.get(own, self_session) != self_session:
            raise ValueError(
                f"self_session={self_session} but the table puts this process "
                f"(PID {own}) in session {rows[own]}"
            )
        rows[own] = self_session
    model = ModelBackend(
        rows,
        threads=threads,
        zombies=zombies,
        denied=denied,
        console_session=console_session,
        users=users,
        aliasing=aliasing,
    )
    with use_backend(model):
        yield model
