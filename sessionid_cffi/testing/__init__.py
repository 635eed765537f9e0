"""Test kit: fake sessions for your tests, and the contract as a check.

- ``check_contract(backend)`` runs the contract rules C1-C10 against any
  backend and raises ``ContractViolation`` with a readable report.
- ``ModelBackend`` is the in-memory backend (``sessionid_cffi.emulation.model``).
"""

from ..emulation.model import ModelBackend
from .contract import RULES, ContractReport, ContractViolation, RuleSkipped, check_contract

__all__ = [
    "RULES",
    "ContractReport",
    "ContractViolation",
    "ModelBackend",
    "RuleSkipped",
    "check_contract",
]
