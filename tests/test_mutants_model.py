"""The model backend's changes (spawn, set_session, exit, reap, threads) as
users' tests drive them; written against mutants that survived the rest of
the fast suite (tools/mutation.py). Truth is the sequence of events the test
itself made."""

from __future__ import annotations

import copy

import pytest

from sessionid_cffi import AccessDeniedError, ProcessNotFoundError, ProcessRecord
from sessionid_cffi.testing import ModelBackend


def test_set_session_moves_a_process_to_a_new_login() -> None:
    model = ModelBackend({10: 1, 11: 1})
    model.set_session(10, 7)
    assert (model.session_id(10), model.session_id(11)) == (7, 1)
    assert model.processes() == {10: 7, 11: 1}
    with pytest.raises(KeyError) as unknown:
        model.set_session(12, 7)
    assert unknown.value.args == (12,)
    with pytest.raises(TypeError, match="session must be an int"):
        model.set_session(10, "7")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="session must be a DWORD"):
        model.set_session(10, 2**32)
    assert model.session_id(10) == 7  # a refused change changes nothing


def test_spawn_refuses_what_cannot_be_a_new_process() -> None:
    model = ModelBackend({10: 1}, threads=[11])
    with pytest.raises(ValueError, match="PID 10 is already in use"):
        model.spawn(10, 2)
    with pytest.raises(ValueError, match="PID 11 is already in use"):
        model.spawn(11, 2)  # a live thread's id
    with pytest.raises(ValueError, match="PID 0 never names a process"):
        model.spawn(0, 2)
    with pytest.raises(TypeError, match="PID must be an int"):
        model.spawn("12", 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="PID must be a DWORD"):
        model.spawn(2**32, 2)
    with pytest.raises(ValueError, match="session must be a DWORD"):
        model.spawn(12, -1)
    with pytest.raises(ValueError, match="multiples of 4"):
        ModelBackend({8: 1}, aliasing=True).spawn(13, 1)
    assert model.processes() == {10: 1}
    model.spawn(12, 2, "sh")
    assert model.session_id(12) == 2
    assert ProcessRecord(12, 2, comm="sh") in model.process_records()


def test_exit_of_an_unknown_pid_names_it() -> None:
    model = ModelBackend({10: 1})
    with pytest.raises(KeyError) as unknown:
        model.exit(11)
    assert unknown.value.args == (11,)


def test_a_reused_pid_is_neither_zombie_nor_denied() -> None:
    model = ModelBackend({10: 1, 11: 2}, denied=[11])
    model.exit(10)
    assert model.zombies == {10}
    model.reap(10)
    model.reap(11)
    model.spawn(10, 3)  # the PIDs come back for new processes
    model.spawn(11, 4)
    assert model.zombies == set()
    assert (model.session_id(10), model.session_id(11)) == (3, 4)
    assert model.session_ids(None) == {10: 3, 11: 4}


def test_threads_come_and_go() -> None:
    model = ModelBackend({10: 1})
    model.add_thread(20)
    with pytest.raises(ProcessNotFoundError, match="thread id"):
        model.session_id(20)
    with pytest.raises(ValueError, match="thread id 10 is already a PID"):
        model.add_thread(10)
    with pytest.raises(TypeError, match="thread id must be an int"):
        model.add_thread(2.0)  # type: ignore[arg-type]
    model.remove_thread(20)
    assert model.threads() == set()
    model.spawn(20, 5)  # its id is free for a process now
    assert model.session_id(20) == 5


def test_repr_shows_table_and_zombies() -> None:
    model = ModelBackend({10: 1, 12: 2}, denied=[10])
    model.exit(12)
    assert repr(model) == "ModelBackend({10: 1, 12: 2}, zombies=[12])"
    assert model.session_id(12) == 2  # a zombie answers until reaped
    with pytest.raises(AccessDeniedError):
        model.session_id(10)


def test_a_copy_keeps_its_own_names() -> None:
    # check_contract changes a copy: the original's names must not follow.
    model = ModelBackend({10: 1}, users={1: "alice"}, commands={10: "sh"})
    clone = copy.copy(model)
    model.users[1] = "bob"
    model.commands[10] = "bash"
    assert clone.process_records() == [ProcessRecord(10, 1, login="alice", comm="sh")]
    assert model.process_records() == [ProcessRecord(10, 1, login="bob", comm="bash")]
