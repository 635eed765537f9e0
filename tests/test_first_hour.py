"""A kit user's first hour (issue 17): the traps found by trying the
library as a new user would, each pinned by a test.

- ``sessionid_cffi.testing.strategies`` without Hypothesis says what to install;
- ``fake_sessions(users=..., owners=...)`` fills both the login and the owner;
- ``inspect.getsource`` finds the public classes where they are published;
- "only my login's processes" refuses in session 0, where every system
  process is (``processes_in_my_login``), checked on real logins.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

import sessionid_cffi
import sessionid_cffi.lowlevel
from sessionid_cffi.testing import FakeSessions
from sessionid_cffi.testing import fake_sessions as fake  # the fixture has the name

LINUX = sys.platform.startswith("linux")
IS_ROOT = LINUX and os.geteuid() == 0
OWN = os.getpid()

# Makes Hypothesis absent in a child, as in an environment without the
# [testing] extra: the import system's own error for a missing module.
NO_HYPOTHESIS = """
import sys

class NoHypothesis:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "hypothesis":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoHypothesis())
"""


def test_strategies_without_hypothesis_say_what_to_install() -> None:
    code = NO_HYPOTHESIS + textwrap.dedent(
        """
        import sessionid_cffi.testing  # the kit itself needs no Hypothesis
        try:
            import sessionid_cffi.testing.strategies
        except ImportError as err:
            import json
            print(json.dumps([type(err).__name__, err.name, str(err)]))
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    kind, name, message = json.loads(run.stdout)
    assert (kind, name) == ("ModuleNotFoundError", "hypothesis"), run.stdout
    assert 'pip install "sessionid-cffi[testing]"' in message, run.stdout


def test_pytest_importorskip_skips_the_strategies_without_hypothesis() -> None:
    code = NO_HYPOTHESIS + textwrap.dedent(
        """
        import pytest
        try:
            pytest.importorskip("sessionid_cffi.testing.strategies")
        except pytest.skip.Exception as skipped:
            print("skipped:", skipped.msg)
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.startswith("skipped:"), run.stdout + run.stderr
    assert "sessionid-cffi[testing]" in run.stdout


# -- fake_sessions: which of owner and login users= sets ----------------------


def records_by_pid() -> dict[int, tuple[str | None, str | None]]:
    return {r.pid: (r.user, r.login) for r in sessionid_cffi.process_records(["user", "login"])}


def test_fake_users_are_the_login_and_the_owner_of_their_sessions_processes() -> None:
    with fake({4242: 1, 4343: 2, 4444: 0}, self_session=1, users={1: "alice"}):
        assert records_by_pid() == {
            4242: ("alice", "alice"),
            OWN: ("alice", "alice"),
            4343: (None, None),  # session 2 has no user in the table
            4444: (None, None),
        }
        infos = {info.session_id: info.user for info in sessionid_cffi.sessions()}
        assert infos == {0: None, 1: "alice", 2: None}


def test_fake_owners_set_the_owner_of_single_processes_only() -> None:
    with fake(
        {4242: 1, 4343: 1, 4444: 0},
        self_session=1,
        users={1: "alice"},
        owners={4343: "root", 4444: "www-data"},
    ) as model:
        assert records_by_pid() == {
            4242: ("alice", "alice"),
            4343: ("root", "alice"),  # alice ran sudo: her login, root's process
            4444: ("www-data", None),  # a service in session 0: no login
            OWN: ("alice", "alice"),
        }
        assert [i.user for i in sessionid_cffi.sessions()] == [None, "alice"]
        model.spawn(4545, 1, "editor")
        model.owners[4545] = "bob"
        model.reap(4343)
        assert records_by_pid()[4545] == ("bob", "alice")
        assert 4343 not in model.owners  # a reaped PID's owner goes with it


def test_a_copy_of_a_fake_keeps_its_own_owners() -> None:
    """check_contract works on a copy and reaps its children there."""
    with fake({4242: 1}, self_session=1, owners={4242: "root"}) as model:
        clone = copy.copy(model)
        clone.reap(4242)
        assert model.owners == {4242: "root"}
        assert records_by_pid()[4242] == ("root", None)


def test_the_fixture_takes_owners_too(fake_sessions: Callable[..., FakeSessions]) -> None:
    fake_sessions({4242: 1}, self_session=1, users={1: "alice"}, owners={4242: "root"})
    assert records_by_pid()[4242] == ("root", "alice")


# -- inspect.getsource finds the public classes ------------------------------

GETSOURCE_CLASSES = [
    *(
        ("sessionid_cffi.lowlevel", name)
        for name in sorted(sessionid_cffi.lowlevel.__all__)
        if inspect.isclass(getattr(sessionid_cffi.lowlevel, name))
    ),
    ("sessionid_cffi", "Backend"),
    ("sessionid_cffi", "use_backend"),
    ("sessionid_cffi", "NotInLoginError"),
]


@pytest.mark.parametrize(("module", "name"), GETSOURCE_CLASSES)
def test_getsource_finds_the_class_where_it_is_published(module: str, name: str) -> None:
    value = getattr(sys.modules[module], name)
    assert value.__module__ == ("sessionid_cffi.lowlevel" if name == "Backend" else module)
    # Its own definition (after any decorator). inspect looks for it in the
    # file of the module that __module__ names: a class defined elsewhere
    # and published there raises OSError (3.11 and 3.13 alike).
    assert class_line(inspect.getsource(value)).startswith(f"class {name}(")


def class_line(source: str) -> str:
    return next(line for line in source.splitlines() if not line.startswith("@"))


def test_getsource_of_backend_in_a_fresh_interpreter() -> None:
    """The package's lazy ``Backend`` first, with nothing else imported:
    it must load the module it reports (inspect looks the file up there)."""
    code = "import inspect, sessionid_cffi as s; print(inspect.getsource(s.Backend))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert class_line(run.stdout) == "class Backend(Protocol):", run.stderr


# -- the session-0 trap ------------------------------------------------------


def test_in_a_fake_session_0_my_login_has_no_processes_to_give() -> None:
    with fake({1: 0, 4242: 0, 4343: 1}, self_session=0):
        assert sessionid_cffi.processes_in_session(0) == sorted([1, 4242, OWN])  # the trap
        with pytest.raises(sessionid_cffi.NotInLoginError) as caught:
            sessionid_cffi.processes_in_my_login()
    err = caught.value
    assert (err.winerror, err.pid) == (sessionid_cffi.ERROR_NO_SUCH_LOGON_SESSION, OWN)
    assert isinstance(err, sessionid_cffi.SessionIdError)
    assert "session 0" in str(err)


def test_in_a_fake_login_my_login_is_my_session() -> None:
    with fake({1: 0, 4242: 3, 4343: 1, 4444: 3}, self_session=3):
        assert sessionid_cffi.processes_in_my_login() == sorted([4242, 4444, OWN])


# A real child: with a uid given it starts a login (writes its loginuid),
# with "unset" it leaves any login (root may write 4294967295: session 0).
# Then it starts a grandchild, which inherits its session, reads its own
# session from the inside and asks the library.
REAL_CHILD = """
import json, os, subprocess, sys
import sessionid_cffi
open("/proc/self/loginuid", "w").write(sys.argv[1])
session = int(open("/proc/self/sessionid").read())
sleeper = subprocess.Popen(["sleep", "60"])
try:
    try:
        answer = sessionid_cffi.processes_in_my_login()
    except sessionid_cffi.NotInLoginError as err:
        answer = [type(err).__name__, err.winerror, err.pid]
    session_zero = sessionid_cffi.processes_in_session(0)
finally:
    sleeper.kill()
    sleeper.wait()
print(json.dumps({"pid": os.getpid(), "sleeper": sleeper.pid, "session": session,
                  "answer": answer, "init_in_0": 1 in session_zero}))
"""


def run_real_child(loginuid: str) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-c", REAL_CHILD, loginuid], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    facts: dict[str, Any] = json.loads(run.stdout)
    return facts


@pytest.mark.skipif(not IS_ROOT, reason="needs root on Linux: writes /proc/self/loginuid")
def test_in_a_real_login_my_login_is_the_child_and_its_grandchild() -> None:
    facts = run_real_child("1000")
    assert facts["session"] not in (0, 2**32 - 1)  # the child's own reading: a login
    assert facts["answer"] == sorted([facts["pid"], facts["sleeper"]])
    assert OWN not in facts["answer"]


@pytest.mark.skipif(not IS_ROOT, reason="needs root on Linux: writes /proc/self/loginuid")
def test_in_real_session_0_my_login_is_refused() -> None:
    facts = run_real_child("4294967295")
    assert facts["session"] == 2**32 - 1  # unset, from the inside: session 0
    assert facts["init_in_0"] is True  # what the recipe would have signalled
    assert facts["answer"] == ["NotInLoginError", 1312, facts["pid"]]


# -- the API page's checker (docs/check_html.py) -----------------------------
# Entries as Sphinx 9 rendered them before the fix (tox -e docs, api.html).

PROSE_TYPE = """<dl class="py property">
<dt class="sig sig-object py" id="sessionid_cffi.ProcessRecord.login">
<span class="sig-name descname"><span class="pre">login</span></span></dt>
<dd><p>the user of its session).</p>
<dl class="field-list simple">
<dt class="field-odd">Type<span class="colon">:</span></dt>
<dd class="field-odd"><p>The name of <code class="docutils literal notranslate">
<span class="pre">luid</span></code>, or None (Windows</p>
</dd>
</dl>
</dd></dl>
"""

OBJECT_PARAMETERS = """<dl class="py class">
<dt class="sig sig-object py" id="sessionid_cffi.ProcessRecord">
<span class="sig-name descname"><span class="pre">ProcessRecord</span></span></dt>
<dd><p>One process.</p>
<dl class="field-list simple">
<dt class="field-odd">Parameters<span class="colon">:</span></dt>
<dd class="field-odd"><ul class="simple">
<li><p><strong>values</strong> (<em>object</em>)</p></li>
<li><p><strong>named</strong> (<em>object</em>)</p></li>
</ul>
</dd>
</dl>
</dd></dl>
"""


def check_html_problems(html: str) -> list[str]:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "check_html.py"
    spec = importlib.util.spec_from_file_location("check_html", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found: list[str] = module.problems(html)
    return found


def test_check_html_catches_prose_as_a_type_and_object_parameters() -> None:
    assert check_html_problems(PROSE_TYPE) == [
        "sessionid_cffi.ProcessRecord.login shows prose as its type: "
        "'The name of luid, or None (Windows'"
    ]
    assert check_html_problems(OBJECT_PARAMETERS) == [
        "sessionid_cffi.ProcessRecord shows a parameter 'values' typed object",
        "sessionid_cffi.ProcessRecord shows a parameter 'named' typed object",
    ]
    fixed = PROSE_TYPE.replace("The name of <code", "dict[str, int] | <code").replace(
        "or None (Windows", "None"
    )
    assert check_html_problems(fixed) == []  # dict[str, int] | luid, None: a type


def test_records_show_their_fields_as_their_signature() -> None:
    """help(), inspect.signature and the API page show the fields, not
    ``(*values, **named)``; a listing never pays for importing inspect."""
    signature = inspect.signature(sessionid_cffi.ProcessRecord)
    assert list(signature.parameters) == list(sessionid_cffi.ProcessRecord._fields)
    assert [p.default for p in signature.parameters.values()][:3] == [
        inspect.Parameter.empty,
        inspect.Parameter.empty,
        None,
    ]
    # What the signature promises, a call takes.
    bound = signature.bind(4242, 2, comm="sh")
    assert sessionid_cffi.ProcessRecord(*bound.args, **bound.kwargs).comm == "sh"
    info = inspect.signature(sessionid_cffi.SessionInfo)
    assert list(info.parameters) == list(sessionid_cffi.SessionInfo._fields)
    code = (
        "import sys, sessionid_cffi as s; s.process_records(); s.sessions(); "
        "print('inspect' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip() == "False", run.stderr
