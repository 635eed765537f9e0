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
    from ._fake import FakeSessions


@pytest.fixture
def fake_sessions() -> Iterator[Callable[..., FakeSessions]]:
    """Install a fake process table, for the rest of the test or for a block.

    Call it with the arguments of the ``sessionid_cffi.testing.fake_sessions``
    context manager. Called plainly it installs the table until the test
    ends and returns the model; used in a ``with`` statement it installs the
    table for the block only, like the context manager::

        def test_same_session(fake_sessions):
            fake_sessions({4242: 1}, self_session=1)
            assert same_session_as_me(4242)
            with fake_sessions({4242: 2}, self_session=1) as fake:
                assert not same_session_as_me(4242)

    With Hypothesis' ``@given``, use the context manager from
    ``sessionid_cffi.testing`` instead: a function-scoped fixture is shared
    by every example, which Hypothesis' health check refuses.
    """
    from ._fake import install, make_fake

    with ExitStack() as stack:

        def install_fake(table: Any = None, **options: Any) -> FakeSessions:
            model = install(make_fake(table, **options))
            stack.push(model.__exit__)  # a no-op if the test left a block already
            return model

        yield install_fake
