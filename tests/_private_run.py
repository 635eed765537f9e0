"""Run a piece of a test in a forked child that has a private /run, or is PID 1.

``in_private_run(files, scene)``: the child enters a private mount namespace
(``unshare -m --propagation private`` done by hand: unshare(CLONE_NEWNS),
then / made recursively private so nothing leaks back to the host), mounts a
tmpfs on /run holding ``files`` (paths relative to /run, e.g.
``systemd/seats/seat0``), calls ``scene()`` and sends its result back.

``as_pid_one(scene)``: the child enters a new PID namespace and forks once
more; ``scene()`` runs in the grandchild, which is PID 1 there (the usual
container init), while /proc is still the host's.

Why a fork and not a subprocess: the scene runs the code this process has
imported, so under mutation testing (tools/mutation.py) it runs the mutant,
where a new interpreter would import the installed, unmutated package. Both
need root (CAP_SYS_ADMIN) and Linux; callers mark their tests ``needs_root``.

systemd-logind's state files, as it writes them (KEY=value lines):
``seats/seat0`` names the seat's active session (``ACTIVE=3``) and
``sessions/<name>`` its audit id (``AUDIT=3``); see :func:`logind_files`.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import traceback
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def logind_files(active: str | None, sessions: dict[str, int | None]) -> dict[str, str]:
    """The files of a logind state under /run: seat0 with ``ACTIVE=active``
    (no ACTIVE line when None) and one ``sessions/<name>`` per session, with
    ``AUDIT=<id>`` when the id is given."""
    seat = "IS_SEAT0=1\nCAN_MULTI_SESSION=1\n" + (f"ACTIVE={active}\n" if active else "")
    files = {"systemd/seats/seat0": seat}
    for name, audit in sessions.items():
        body = "# This is private data. Do not parse.\nUID=0\nUSER=root\nACTIVE=1\n"
        files[f"systemd/sessions/{name}"] = body + (f"AUDIT={audit}\n" if audit else "")
    return files


def _in_child(work: Callable[[], T]) -> T:
    """Run ``work`` in a forked child; return what it returned or fail with
    the child's traceback."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read_end)
        try:
            outcome: tuple[str, object] = ("ok", work())
        except BaseException:
            outcome = ("error", traceback.format_exc())
        try:
            data = pickle.dumps(outcome)
        except Exception:
            data = pickle.dumps(("error", f"cannot send back {outcome!r}"))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(data)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise AssertionError(f"the scene's child died without an answer (wait status {status})")
    kind, value = pickle.loads(data)
    if kind == "error":
        raise AssertionError(f"in the scene's child:\n{value}")
    return value  # type: ignore[no-any-return]


def in_private_run(files: dict[str, str], scene: Callable[[], T]) -> T:
    """``scene()`` with a private tmpfs on /run holding ``files``."""

    def work() -> T:
        libc = _libc()
        _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _check(
            libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /"
        )
        _check(libc.mount(b"tmpfs", b"/run", b"tmpfs", 0, b"mode=0755"), "mount tmpfs /run")
        for name, text in files.items():
            path = os.path.join("/run", name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
        return scene()

    return _in_child(work)


def as_pid_one(scene: Callable[[], T]) -> T:
    """``scene()`` as PID 1 of a new PID namespace that has no procfs of its own."""

    def work() -> T:
        _check(_libc().unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
        return _in_child(lambda: (os.getpid(), scene()))  # type: ignore[return-value]

    pid, result = _in_child(work)  # type: ignore[misc]
    assert pid == 1, f"the scene ran as PID {pid}, not 1"
    return result  # type: ignore[no-any-return]
