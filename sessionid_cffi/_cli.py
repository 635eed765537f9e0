"""The ``sessionid`` command: which login session is a process in?

Exit codes: 0 ok, 1 some PID not found (or not inspectable), 2 usage error.
"""

from __future__ import annotations

import sys

from . import _api, _backend
from ._errors import SessionIdError
from ._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="sessionid",
        description="Print the login session of processes (Win32 ProcessIdToSessionId "
        "semantics: Windows sessions, Linux audit login sessions).",
        epilog="Exit status: 0 ok, 1 some PID not found or not inspectable, 2 usage error.",
    )
    parser.add_argument("pids", nargs="*", metavar="PID", help="process ids (default: this process)")
    parser.add_argument("--backend", metavar="NAME", help="kernel32, procfs or model (debugging)")
    parser.add_argument("--version", action="version", version=f"sessionid-cffi {__version__}")
    return parser


def _pid_arg(text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"not a PID: {text!r} (expected a whole number 0 ... 4294967295)")
    return _api.checked_pid(int(text))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        pids = [_pid_arg(text) for text in args.pids]
    except ValueError as err:
        parser.error(str(err))
    try:
        if args.backend:
            backend = _backend.make_builtin(args.backend)
        else:
            backend = _backend.get_backend()
        if not pids:
            print(_api.current_session_id() if not args.backend else backend.session_id(_own()))
            return EXIT_OK
        status = EXIT_OK
        for pid in pids:
            try:
                print(f"{pid} {backend.session_id(pid)}")
            except (ProcessLookupError, PermissionError) as err:
                print(f"sessionid: {err.strerror}", file=sys.stderr)
                status = EXIT_NOT_FOUND
        return status
    except SessionIdError as err:
        print(f"sessionid: {err.strerror}", file=sys.stderr)
        return EXIT_USAGE if err.pid is None else EXIT_NOT_FOUND


def _own() -> int:
    import os

    return os.getpid()


if __name__ == "__main__":
    sys.exit(main())
