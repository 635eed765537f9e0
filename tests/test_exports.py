"""The public surface, guarded (in the style of trio's ``test_exports``).

For each public module: ``dir()`` offers exactly the names in ``__all__``;
every exported class and function reports a public ``__module__`` from which
it can be imported again (help(), reprs, tracebacks and pickles show public
paths); ``help()`` lists nothing else. ``surface_problems`` does the
checking, and ``test_a_leaked_name_is_caught`` proves it catches a leak in
the real package, not only in the tests' imagination.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pydoc
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import sessionid_cffi
import sessionid_cffi.lowlevel
import sessionid_cffi.testing
from sessionid_cffi._errors import answers_for
from sessionid_cffi.testing._worlds import LiveWorld

PUBLIC_MODULES = ["sessionid_cffi", "sessionid_cffi.lowlevel", "sessionid_cffi.testing"]


def is_public_path(path: str) -> bool:
    return not any(part.startswith("_") for part in path.split("."))


def surface_problems(module: ModuleType) -> list[str]:
    """Everything wrong with ``module``'s public surface, as sentences."""
    problems = []
    exported = list(module.__all__)
    if sorted(dir(module)) != sorted(exported):
        extra = sorted(set(dir(module)) - set(exported))
        missing = sorted(set(exported) - set(dir(module)))
        problems.append(f"dir() offers {extra} beyond __all__ and lacks {missing}")
    for name in exported:
        if name.startswith("_") and name != "__version__":
            problems.append(f"__all__ exports the private name {name!r}")
            continue
        try:
            value = getattr(module, name)
        except AttributeError:
            problems.append(f"__all__ names {name!r}, which does not exist")
            continue
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        home = value.__module__
        if not is_public_path(home):
            problems.append(f"{module.__name__}.{name} reports the private module {home!r}")
        elif getattr(importlib.import_module(home), value.__qualname__, None) is not value:
            where = f"{home}.{value.__qualname__}"
            problems.append(f"{module.__name__}.{name} cannot be found at {where}")
    return problems


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_modules_offer_only_their_public_names(name: str) -> None:
    assert surface_problems(importlib.import_module(name)) == []


def test_a_leaked_name_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    assert surface_problems(sessionid_cffi) == []
    # dir() offering every global again, as it did before.
    everything = sorted(set(vars(sessionid_cffi)) | set(sessionid_cffi.__all__))
    monkeypatch.setattr(sessionid_cffi, "__dir__", lambda: everything)
    [problem] = surface_problems(sessionid_cffi)
    assert problem.startswith("dir() offers [")
    assert "'checked_pid'" in problem
    monkeypatch.undo()
    # A helper of a private module exported as it is.
    monkeypatch.setattr(sessionid_cffi, "answers_for", answers_for, raising=False)
    monkeypatch.setattr(sessionid_cffi, "__all__", [*sessionid_cffi.__all__, "answers_for"])
    assert surface_problems(sessionid_cffi) == [
        "sessionid_cffi.answers_for reports the private module 'sessionid_cffi._errors'"
    ]


def test_dir_hides_the_package_helpers() -> None:
    offered = set(dir(sessionid_cffi))
    for helper in ("checked_pid", "BACKEND_ATTRIBUTES", "_load_lazy"):
        assert hasattr(sessionid_cffi, helper)  # still there for code that imports them
        assert helper not in offered


PACKAGE_DIR = Path(sessionid_cffi.__file__).parent


def upward_imports(path: Path, source: str | None = None) -> list[str]:
    """What the module at ``path`` (or ``source`` in its place) imports from
    the package's ``__init__`` that is not public API (the facade's exported names and public
    submodules): machinery belongs in ._backend and is imported from there."""
    import ast

    depth = len(path.relative_to(PACKAGE_DIR).parts)  # 1: sessionid_cffi/x.py
    allowed = {*sessionid_cffi.__all__, "__version__", "lowlevel", "testing"}
    found = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.ImportFrom) and node.module is None and node.level == depth:
            found += [f"{path.name}: {a.name}" for a in node.names if a.name not in allowed]
    return found


def test_the_package_modules_import_machinery_from_backend_not_the_facade() -> None:
    modules = [p for p in PACKAGE_DIR.rglob("*.py") if p != PACKAGE_DIR / "__init__.py"]
    assert len(modules) > 10
    assert [problem for path in modules for problem in upward_imports(path)] == []


def test_an_upward_import_is_caught() -> None:
    module = PACKAGE_DIR / "testing" / "contract.py"
    source = "from .. import checked_pid, use_backend\nfrom .._backend import push_swap\n"
    assert upward_imports(module, source) == ["contract.py: checked_pid"]
    source = "from . import get_backend, _load_lazy\nfrom .. import checked_pid\n"
    assert upward_imports(PACKAGE_DIR / "lowlevel.py", source) == ["lowlevel.py: _load_lazy"]


def test_star_import_gives_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from sessionid_cffi import *", namespace)  # what users type
    assert sorted(set(namespace) - {"__builtins__"}) == sorted(sessionid_cffi.__all__)


def help_names(module: ModuleType) -> set[str]:
    """The names help(module) lists under CLASSES, FUNCTIONS and DATA."""
    text = pydoc.plain(pydoc.render_doc(module))
    names: set[str] = set()
    for section in ("CLASSES", "FUNCTIONS", "DATA"):
        match = re.search(rf"^{section}\n(.*?)(?=^\S)", text, re.M | re.S)
        if match:
            # Entries sit at four spaces: "name(...)", "name = ...", "class Name(...)".
            names |= set(re.findall(r"^    (?:class )?(\w+)\b(?!\.)", match[1], re.M))
    # The root of the class tree, and the module hooks pydoc always shows.
    return {name for name in names if name != "builtins" and not name.startswith("__")}


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_help_lists_only_public_names(name: str) -> None:
    module = importlib.import_module(name)
    for exported in module.__all__:
        getattr(module, exported)  # load the lazy ones, so help() sees them
    listed = help_names(module)
    assert listed
    assert listed <= set(module.__all__)


def test_help_shows_usage_not_layout() -> None:
    description = pydoc.plain(pydoc.render_doc(sessionid_cffi)).split("PACKAGE CONTENTS")[0]
    assert "current_session_id()" in description
    assert "process_id_to_session_id(" in description
    for internal in ("_errors", "_interface", "_kernel32", "emulation.procfs", "ms to import"):
        assert internal not in description


def reaped_pid() -> int:
    """The PID of a child that has exited and is gone for good (Windows:
    no handle left), as the kit's live world makes one."""
    with LiveWorld().child() as child:
        assert child is not None
        assert child.reap()
        return child.pid


def test_error_repr_shows_the_pid_and_the_win32_code() -> None:
    pid = reaped_pid()
    with pytest.raises(sessionid_cffi.ProcessNotFoundError) as caught:
        sessionid_cffi.process_id_to_session_id(pid)
    text = repr(caught.value)
    assert text.startswith(f"ProcessNotFoundError(pid={pid}, winerror=87, ")
    assert f"errno={caught.value.errno!r})" in text


def test_an_uncaught_error_names_its_public_class() -> None:
    pid = reaped_pid()
    run = subprocess.run(
        [sys.executable, "-c", f"import sessionid_cffi as s; s.process_id_to_session_id({pid})"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("sessionid_cffi.ProcessNotFoundError: [WinError 87] ")


def test_lazy_names_get_their_public_home_on_first_use() -> None:
    # A fresh interpreter: no test has touched the lazy names yet.
    code = (
        "import sessionid_cffi as s, sessionid_cffi.testing as t;"
        "print(s.Backend.__module__, t.fake_sessions.__module__)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert run.stdout.split() == ["sessionid_cffi.lowlevel", "sessionid_cffi.testing"]


CODES = {name: getattr(sessionid_cffi, name) for name in dir(sessionid_cffi) if "ERROR_" in name}


def test_every_win32_code_the_docs_cite_is_exported() -> None:
    docs = Path(__file__).resolve().parents[1] / "docs"
    text = "\n".join(page.read_text(encoding="utf-8") for page in sorted(docs.glob("*.md")))
    named = re.findall(r"\b(ERROR_[A-Z_]+)`? \((\d+)\)", text)
    assert named
    for name, code in named:
        assert CODES.get(name) == int(code), f"docs cite {name} ({code})"
    # The Linux page maps errnos to bare codes: "EMFILE/ENFILE -> 4, ...".
    mapped = {int(code) for code in re.findall(r"-> (\d+)", (docs / "linux.md").read_text())}
    assert {4, 8, 13, 31} <= mapped
    assert mapped <= set(CODES.values())


@pytest.mark.parametrize("error", sorted(CODES, key=CODES.__getitem__))
def test_each_code_is_named_in_the_docstring_of_the_error_that_carries_it(error: str) -> None:
    classes = [
        sessionid_cffi.SessionIdError,
        sessionid_cffi.ProcessNotFoundError,
        sessionid_cffi.AccessDeniedError,
        sessionid_cffi.BackendUnavailableError,
        sessionid_cffi.NotInLoginError,
    ]
    mention = f"``{error}`` ({CODES[error]}"
    assert any(mention in (cls.__doc__ or "") for cls in classes)


def test_the_query_path_imports_neither_typing_nor_threading_nor_cffi() -> None:
    # Each costs a noticeable part of an interpreter's start (import plus one
    # query may cost 15 % more than a bare start: docs/design.md). Windows
    # needs cffi's runtime for kernel32, never its parser.
    costly = {"typing", "threading", "cffi", "pycparser"}
    if sys.platform != "win32":
        costly.add("_cffi_backend")
    code = (
        "import sys; before = set(sys.modules)\n"
        "import sessionid_cffi as s; s.current_session_id()\n"
        f"print(sorted(set({sorted(costly)!r}) & (set(sys.modules) - before)))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert run.stdout.strip() == "[]"


def test_kill_session_loads_on_first_use_only() -> None:
    # Importing the package must not pay for kill_session's module or signal.
    code = (
        "import sys, sessionid_cffi as s;"
        "print('sessionid_cffi._kill' in sys.modules, 'signal' in sys.modules);"
        "print(s.kill_session.__module__, s.KillTimeoutError.__module__)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert run.stdout.split() == ["False", "False", "sessionid_cffi", "sessionid_cffi"]
    assert issubclass(
        sessionid_cffi.KillTimeoutError, (sessionid_cffi.SessionIdError, TimeoutError)
    )
