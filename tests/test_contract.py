"""The contract C1-C11, written once (sessionid_cffi.testing.contract) and
run here on every backend this machine has: the live one (procfs on Linux,
kernel32 on Windows) and the in-memory model.

Which rules are universal and which per platform is stated by the worlds:
C10 expects aliasing of PID+1..+3 on Windows and none on Linux; C5 holds an
exited child as a zombie on Linux and by an open handle on Windows. On the
live backend C2, C4, C5 and C7 also judge the generated world of real
processes (sessionid_cffi.testing._generated).

Nothing partial passes silently: a rule the world checked only in part
fails where this machine allows all of it (Linux as root: logins, a PID
namespace, PID reuse; and the model) and is skipped with the left-out part
as the reason elsewhere (Wine: no logins; Linux without root: no reuse). A
rule whose scene cannot be set up at all is skipped with the reason (C6 on
a live machine where nothing is denied to the caller: it is proven with
hidepid mounts in test_procfs.py).
"""

from __future__ import annotations

import os
import sys

import pytest

from sessionid_cffi.testing import RULES, LibraryLevel, PartlyChecked, RuleSkipped, World
from sessionid_cffi.testing._forest import can_login

LINUX = sys.platform.startswith("linux")
#: Whether this machine lets the live world build every part of every rule.
LIVE_IN_FULL = LINUX and os.geteuid() == 0 and can_login()


@pytest.mark.parametrize("rule", sorted(RULES, key=lambda name: int(name[1:])))
def test_contract_rule(rule: str, backend: object, world: World) -> None:
    native = hasattr(backend, "native_process_id_to_session_id")
    library_level = {"C8"} | (set() if native else {"C9"})
    library = None
    try:
        RULES[rule](backend, world)  # type: ignore[arg-type]
    except RuleSkipped as why:
        pytest.skip(f"{rule}: {why}")
    except LibraryLevel as why:
        library = str(why)
    except PartlyChecked as why:
        live = getattr(backend, "name", "") != "model"
        if not live or LIVE_IN_FULL:
            pytest.fail(f"{rule} held only in part where all of it can be checked: {why}")
        pytest.skip(f"{rule} held, but only in part here: {why}")
    assert (library is not None) == (rule in library_level), (rule, library)
