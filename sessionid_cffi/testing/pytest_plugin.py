"""pytest plugin (entry point ``pytest11``): fixtures of the test kit.

Loaded by pytest in every project that installs sessionid-cffi; it only
defines fixtures, so it changes nothing unless a test asks for one, and it
imports the kit only when a fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..emulation.model import ModelBackend


@pytest.fixture
def fake_sessions() -> Iterator[Callable[..., ModelBackend]]:
    """Install a fake process table for the rest of the test.

    Call it like the ``sessionid_cffi.testing.fake_sessions`` context manager
    (same arguments); it returns the ModelBackend, which stays installed until
    the test ends. Calling it again installs a newer table on top::

        def test_same_session(fake_sessions):
            fake_sessions({4242: 1}, self_session=1)
            assert same_session_as_me(4242)
    """
    from . import fake_sessions as context

    with ExitStack() as stack:

        def install(table: Any = None, **options: Any) -> ModelBackend:
            return stack.enter_context(context(table, **options))

        yield install
