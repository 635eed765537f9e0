"""What the Wine and sid lanes (tests/wine/lane.py, tests/sid/lane.py) share:
their one-line errors, pip, the stamps that mark a cached step done, the
wheel tox built, and their log lines. Stdlib only, as the lanes are."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

#: Written last into a cached folder: the key of the recipe that made it.
STAMP = ".lane-stamp"


class LaneError(Exception):
    """A failure reported as one line: what went wrong (how to fix it)."""


def pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", *args]
    # pip's output goes to stderr, so that --provision-only prints only the path.
    if subprocess.run(command, stdout=sys.stderr, check=False).returncode:
        raise LaneError(
            f"pip {args[0]} failed (see pip's output above; it needs the package index)"
        )


def stamp_key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def is_done(folder: Path, key: str) -> bool:
    """Tell whether a step is done: its stamp, written last, holds the current key."""
    stamp = folder / STAMP
    return stamp.is_file() and stamp.read_text() == key


def mark_done(folder: Path, key: str) -> None:
    (folder / STAMP).write_text(key)


def tox_wheel() -> Path | None:
    """The wheel tox built for this env, if any: tox 4 sets TOX_PACKAGE
    (os.pathsep-joined paths) when it built the package."""
    wheels = [p for p in os.environ.get("TOX_PACKAGE", "").split(os.pathsep) if p.endswith(".whl")]
    return Path(wheels[0]) if wheels else None


def log(message: str) -> None:
    print(f"lane.py: {message}", file=sys.stderr, flush=True)
