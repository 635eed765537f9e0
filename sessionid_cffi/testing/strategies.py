"""Hypothesis strategies for process tables (needs ``hypothesis``:
``pip install "sessionid-cffi[testing]"``; without it importing this module
raises ModuleNotFoundError, an ImportError, saying so).

- ``pids()``: PIDs as the OS hands them out (Linux: 1 ... 4194304; Windows:
  multiples of 4);
- ``session_numbers()``: sessions, with session 0 (system and services)
  common (``session_ids`` is its deprecated old name: it read like
  ``sessionid_cffi.session_ids``, which lists processes);
- ``process_tables()``: ``{pid: session}`` tables that look like a machine:
  a few system processes in session 0 and users' processes spread over a
  handful of login sessions;
- ``model_backends()``: ready ModelBackends from such tables, with some
  thread ids, exited-but-unreaped PIDs and access-denied PIDs; every one
  keeps the contract (``check_contract`` passes on it).

Every strategy takes ``windows=True`` for Windows-style PIDs (multiples of 4,
and with ``model_backends`` the PID aliasing of rule C10).
"""

from __future__ import annotations

import os
import warnings

try:
    from hypothesis import strategies as st
except ModuleNotFoundError as err:
    if err.name is None or err.name.partition(".")[0] != "hypothesis":
        raise  # something Hypothesis itself needs: its own message says best
    raise ModuleNotFoundError(
        "sessionid_cffi.testing.strategies needs Hypothesis, which is not installed: "
        'pip install "sessionid-cffi[testing]"',
        name=err.name,
    ) from err

from ..emulation.model import ModelBackend

__all__ = ["model_backends", "pids", "process_tables", "session_numbers"]

DWORD_MAX = 0xFFFFFFFF
#: Linux's hard ceiling for PIDs (PID_MAX_LIMIT).
LINUX_PID_MAX = 4194304
#: The highest PID Windows hands out in practice is far below 2**32; stay
#: in the range real machines show, as multiples of 4.
WINDOWS_PID_MAX = 4 * 2**22
#: Audit session ids and Windows sessions are DWORDs; 2**32-1 means "none".
SESSION_MAX = DWORD_MAX - 1


def pids(*, windows: bool = False, max_value: int | None = None) -> st.SearchStrategy[int]:
    """PIDs that can name a process: 1 ... 4194304 on Linux (PID 1 is init),
    multiples of 4 from 4 (the System process) on Windows."""
    if windows:
        top = (WINDOWS_PID_MAX if max_value is None else max_value) // 4
        if top < 1:
            raise ValueError(f"max_value={max_value} leaves no Windows PID (multiples of 4)")
        return st.integers(1, top).map(lambda n: n * 4)
    top = LINUX_PID_MAX if max_value is None else max_value
    if top < 1:
        raise ValueError(f"max_value={max_value} leaves no PID")
    return st.integers(1, top)


def session_numbers(*, max_value: int = SESSION_MAX) -> st.SearchStrategy[int]:
    """Session numbers: 0 (system, services) often, small interactive
    sessions usually, any DWORD up to ``max_value`` sometimes."""
    if not 0 <= max_value <= DWORD_MAX:
        raise ValueError(f"max_value must be a DWORD, got {max_value}")
    return st.one_of(
        st.just(0),
        st.integers(0, min(max_value, 16)),
        st.integers(0, max_value),
    )


@st.composite
def process_tables(
    draw: st.DrawFn,
    *,
    windows: bool = False,
    min_size: int = 0,
    max_size: int = 30,
    sessions: st.SearchStrategy[int] | None = None,
) -> dict[int, int]:
    """``{pid: session}``: system processes in session 0, the rest spread
    over a few login sessions, as on a real machine.

    ``sessions`` draws the login sessions (default: ``session_numbers()``
    without 0); PIDs are unique and come from ``pids(windows=windows)``.
    The table never holds the calling process's own PID: it describes the
    other processes, and ``fake_sessions(table, self_session=...)`` adds the
    caller (a table that already placed it could contradict that).
    """
    if not 0 <= min_size <= max_size:
        raise ValueError(f"need 0 <= min_size <= max_size, got {min_size}, {max_size}")
    # Windows ignores a PID's low two bits, so none of the caller's aliases either.
    mask = ~3 if windows else ~0
    own = os.getpid()
    logins = draw(
        st.lists(
            sessions if sessions is not None else session_numbers().filter(bool),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    pid_list = draw(
        st.lists(
            pids(windows=windows).filter(lambda pid: pid & mask != own & mask),
            min_size=min_size,
            max_size=max_size,
            unique=True,
        )
    )
    table = {}
    for pid in pid_list:
        # Low PIDs start at boot, before anyone logs in: mostly system.
        system = draw(st.booleans()) if pid < 400 else draw(st.integers(0, 4)) == 0
        table[pid] = 0 if system else draw(st.sampled_from(logins))
    return table


@st.composite
def model_backends(
    draw: st.DrawFn,
    *,
    windows: bool = False,
    max_size: int = 30,
    include_caller: bool = True,
) -> ModelBackend:
    """ModelBackends built from ``process_tables()``, with thread ids (never
    PIDs of the table), zombies and access-denied PIDs drawn from the table.

    ``include_caller`` puts the calling process in the table (in a login
    session, or in session 0), so that ``current_session_id()`` and
    ``check_contract`` find it; without it (and with ``windows=True`` when
    the caller's PID is not a multiple of 4) the table is never empty and
    its lowest PID, which stands in for the caller, is neither denied nor a
    zombie. With ``windows=True`` the model aliases
    PID+1..+3 to PID, as Windows does.
    """
    own = os.getpid()
    # With windows=True on a non-Windows test machine the caller's PID may not
    # be a multiple of 4; it is left out then (Windows PIDs always are).
    include_caller = include_caller and not (windows and own % 4)
    # Without the caller, the table needs a process that can stand in for it
    # (check_contract acts from the lowest PID that is neither denied nor a
    # zombie): never an empty table then.
    table = draw(
        process_tables(windows=windows, max_size=max_size, min_size=0 if include_caller else 1)
    )
    if include_caller:
        table[own] = draw(st.sampled_from(sorted(set(table.values()) | {0})))
        stand_in = own
    else:
        stand_in = min(table)
    others = [pid for pid in sorted(table) if pid != stand_in]
    zombies = draw(st.lists(st.sampled_from(others), unique=True, max_size=3)) if others else []
    denied = draw(st.lists(st.sampled_from(others), unique=True, max_size=3)) if others else []
    threads = draw(
        st.lists(pids(windows=windows), unique=True, max_size=4).map(
            lambda tids: [tid for tid in tids if tid not in table]
        )
    )
    console = draw(st.none() | st.sampled_from(sorted(set(table.values()) - {0}) or [1]))
    return ModelBackend(
        table,
        threads=threads,
        zombies=zombies,
        denied=denied,
        console_session=console,
        aliasing=windows,
    )


def __getattr__(name: str) -> object:
    if name == "session_ids":
        warnings.warn(
            "sessionid_cffi.testing.strategies.session_ids is deprecated: use "
            "session_numbers (the old name read like sessionid_cffi.session_ids)",
            DeprecationWarning,
            stacklevel=2,
        )
        return session_numbers
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
