"""Test kit: fake sessions for your tests, and the contract as a check.

- ``fake_sessions(table)`` is a context manager that makes the library answer
  from an in-memory table ``{pid: session}`` on any OS (process-wide, like
  ``mock.patch``); the pytest plugin offers it as the ``fake_sessions``
  fixture too, usable plainly or in a ``with`` statement.
- ``check_contract(backend)`` runs the contract rules C1-C11 against any
  backend, judging its answers against truth it did not compute, and raises
  ``ContractViolation`` with a readable report.
- ``World`` is what the rules act on; ``World.declare(table, threads=...,
  denied=..., exited=..., gone=...)`` declares the world of a fake of your
  own, so that ``check_contract(fake, world=...)`` judges it in full.
- ``ModelBackend`` is the in-memory backend (``sessionid_cffi.emulation.model``).
- ``sessionid_cffi.testing.strategies`` (needs Hypothesis, imported only when
  you import it): ``pids()``, ``session_numbers()``, ``process_tables()``,
  ``model_backends()``.

Importing ``sessionid_cffi`` never imports this kit.
"""

from __future__ import annotations

from .._backend import load_lazy as _load_lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..emulation.model import ModelBackend
    from ._fake import CallerNotInFakeError, FakeSessions, fake_sessions
    from ._worlds import World
    from .contract import (
        RULES,
        ContractReport,
        ContractViolation,
        LibraryLevel,
        PartlyChecked,
        RuleSkipped,
        check_contract,
    )

__all__ = [
    "RULES",
    "CallerNotInFakeError",
    "ContractReport",
    "ContractViolation",
    "FakeSessions",
    "LibraryLevel",
    "ModelBackend",
    "PartlyChecked",
    "RuleSkipped",
    "World",
    "check_contract",
    "fake_sessions",
]

# Loaded on first use, so that the pytest plugin (imported by pytest in every
# project that installs the library) costs nothing until a fixture is used.
_LAZY = {
    "ModelBackend": "..emulation.model",
    "fake_sessions": "._fake",
    "FakeSessions": "._fake",
    "CallerNotInFakeError": "._fake",
    "LibraryLevel": ".contract",
    "PartlyChecked": ".contract",
    "RULES": ".contract",
    "ContractReport": ".contract",
    "ContractViolation": ".contract",
    "RuleSkipped": ".contract",
    "check_contract": ".contract",
    "World": "._worlds",
}


def __getattr__(name: str) -> object:
    return _load_lazy(__name__, _LAZY, name)


def __dir__() -> list[str]:
    return sorted(__all__)
