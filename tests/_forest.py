"""The project's use of the kit's process forests (sessionid_cffi.testing._forest).

The forests themselves (agents, ``RealForest``, ``SimForest``, the oracle
``expected_model`` and ``compare``) are the kit's: ``check_contract``'s
generated live world is built by the same machinery. Here: the Windows
handle walker for failure messages (tests/_handles.py), the sizing knob of
the suite's forest tests and the end-of-run summary of what they exercised.
"""

from __future__ import annotations

import json
import os

from _handles import describe_holders, holders

from sessionid_cffi.testing import _forest as _kit
from sessionid_cffi.testing._forest import (
    AGENT,
    AUDIT_UNSET,
    BOOT,
    LINUX,
    STATS,
    WINDOWS,
    Forest,
    ForestError,
    Proc,
    SimForest,
    answer,
    can_login,
    compare,
    mapped,
    names_process,
    own_raw_session,
)

__all__ = [
    "AGENT",
    "AUDIT_UNSET",
    "BOOT",
    "LINUX",
    "SECONDS",
    "STATS",
    "WINDOWS",
    "Forest",
    "ForestError",
    "Proc",
    "RealForest",
    "SimForest",
    "answer",
    "can_login",
    "compare",
    "install_summary",
    "mapped",
    "names_process",
    "own_raw_session",
    "scaled_examples",
    "stats_path",
]

#: Wall-clock seconds spent in tests that use forests.
SECONDS = [0.0]


class RealForest(_kit.RealForest):
    """The kit's forest, naming who holds a lingering Windows process."""

    def holders(self, proc: Proc) -> str:
        return describe_holders(holders(proc.pid, proc.started_at))

    def holds_itself(self, proc: Proc) -> bool:
        return os.getpid() in holders(proc.pid, proc.started_at)


# -- sizing and reporting ----------------------------------------------------------
def scaled_examples(default: int, long: int) -> int:
    """``default`` examples under the default Hypothesis profile, ``long`` under
    the long one (any profile with more than 100 examples counts as long);
    ``$SESSIONID_FORESTS`` overrides both."""
    from hypothesis import settings

    override = os.environ.get("SESSIONID_FORESTS")
    if override:
        return int(override)
    return long if settings().max_examples > 100 else default


def stats_path() -> str:
    import tempfile

    return os.environ.get("SESSIONID_FOREST_STATS") or os.path.join(
        tempfile.gettempdir(), "sessionid-cffi-forest-stats.json"
    )


class _Summary:
    """pytest plugin object: prints and records STATS at the end of the run."""

    def pytest_terminal_summary(self, terminalreporter: object) -> None:
        if not STATS["forests"] and not STATS["simulated_runs"]:
            return
        record: dict[str, float] = dict(STATS, seconds=round(SECONDS[0], 1))
        with open(stats_path(), "w", encoding="utf-8") as file:
            json.dump(record, file, indent=1)
        text = ", ".join(f"{key} {value}" for key, value in record.items())
        terminalreporter.write_line(  # type: ignore[attr-defined]
            f"process forests: {text} (recorded in {stats_path()})"
        )


def install_summary(config: object) -> None:
    """Register the end-of-run summary of STATS (once per pytest run)."""
    manager = config.pluginmanager  # type: ignore[attr-defined]
    if not manager.has_plugin("sessionid-forest-summary"):
        manager.register(_Summary(), "sessionid-forest-summary")
