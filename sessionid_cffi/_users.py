"""``users()``: psutil.users()' view, built from the kernel's sessions
instead of utmp (which Debian 13, openSUSE and most containers no longer
keep). Loaded on first use."""

import sys

from ._records import _named_tuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple

    from ._records import ProcessRecord

    class suser(NamedTuple):  # noqa: N801 - psutil's name, so reprs match
        name: str | None
        terminal: str | None
        host: str | None
        started: float | None
        pid: int | None

else:
    suser = _named_tuple(
        "suser",
        "One terminal of a login session, as ``psutil.users()`` lists it.",
        (
            ("name", "The login user's name (the session's ``user``)."),
            ("terminal", "The terminal (``pts/0``), or on Windows the WinStation name."),
            (
                "host",
                "Where the login came from (``SessionInfo.host``); for a local login"
                " '' on Linux (as utmp holds it) and None on Windows (as psutil gives it).",
            ),
            ("started", "When the login started on that terminal, as a POSIX timestamp."),
            ("pid", "PID of the first process of the login on that terminal (the shell)."),
        ),
        5,
    )


def users() -> "list[suser]":
    """One ``suser(name, terminal, host, started, pid)`` per terminal of a
    login session, psutil.users()' fields with psutil's meanings, from the
    kernel's sessions: on Linux ``pid`` is the earliest process of the
    login on that terminal (the one sshd or login started there, which is
    what utmp records) and ``started`` its start time; a login without a
    terminal (``ssh host cmd``) is not listed, as utmp does not list it.
    Windows: one entry per session with a user (terminal the WinStation,
    pid the session's earliest process where known). Session 0 never."""
    from . import process_records, sessions

    infos = [info for info in sessions() if info.session_id != 0 and info.user is not None]
    local = "" if sys.platform.startswith("linux") else None
    wanted = {info.session_id for info in infos}
    on_tty: dict[tuple[int, str], list[ProcessRecord]] = {}
    for record in process_records(("tty", "started", "ppid")):
        if record.tty is not None and record.session_id in wanted:
            on_tty.setdefault((record.session_id, record.tty), []).append(record)
    listed = []
    for info in infos:
        host = info.host if info.host is not None else local
        terminals = sorted(tty for session, tty in on_tty if session == info.session_id)
        if not terminals and info.tty is not None:
            listed.append(suser(info.user, info.tty, host, info.since, info.leader))
        for tty in terminals:
            first = _first(on_tty[info.session_id, tty])
            listed.append(suser(info.user, tty, host, first.started, first.pid))
    return listed


def _first(members: "list[ProcessRecord]") -> "ProcessRecord":
    """The earliest-started process (ties: the one whose parent is not on
    the terminal, then the lowest PID), as sessions() picks a leader."""
    pids = {record.pid for record in members}
    return min(
        members,
        key=lambda r: (r.started is None, r.started or 0.0, r.ppid in pids, r.pid),
    )
