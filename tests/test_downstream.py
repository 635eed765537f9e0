"""A throwaway downstream project that depends only on the installed wheel.

The wheel is built from this checkout (or taken from ``$SESSIONID_WHEEL``),
installed into a fresh virtual environment in tmp_path, and a small project
with its own test suite runs its pytest in a subprocess, from its own
folder. Its tests (a) fake sessions for their own function with the
``fake_sessions`` fixture and with the context manager, (b) run
``check_contract`` against the model and against the live backend, and (c)
see ``check_contract`` fail with a readable report on a broken backend.

The virtual environment borrows pytest, Hypothesis and cffi from the
environment running this test (a ``.pth`` line appends its site-packages
after the venv's own, so nothing is downloaded and the venv's copy of the
library wins); the test checks that the project imports the wheel's copy,
not this checkout nor the runner's.
Marked ``slow`` (about 15 s): deselect with ``-m "not slow"``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        sys.platform == "win32",
        reason="builds a wheel and a virtual environment; the Wine lane already runs "
        "the suite from an installed wheel",
    ),
]

PROJECT = {
    "mylib.py": '''
        """A downstream library: only signal processes of my own login."""
        import sessionid_cffi


        def same_session_as_me(pid):
            """Only signal processes of my own login (never from session 0)."""
            return pid in sessionid_cffi.processes_in_my_login()


        def my_processes(pids):
            mine = set(sessionid_cffi.processes_in_my_login())
            return sorted(p for p in set(pids) if p in mine)
    ''',
    "tests/test_mylib.py": """
        import os
        import sys

        import pytest
        from hypothesis import given
        from hypothesis import strategies as st

        import mylib
        import sessionid_cffi
        from sessionid_cffi.testing import (
            ContractViolation, ModelBackend, check_contract, fake_sessions as fake,
        )
        from sessionid_cffi.testing.strategies import process_tables


        def test_imports_the_installed_wheel():
            print("LIBRARY", sessionid_cffi.__file__)


        def test_with_the_fixture(fake_sessions):
            fake_sessions({4242: 1, 4343: 2}, self_session=1)
            assert mylib.same_session_as_me(4242)
            assert not mylib.same_session_as_me(4343)
            assert not mylib.same_session_as_me(4444)


        def test_with_the_context_manager():
            with fake(
                {4242: 1, 4343: 1, 4444: 0}, self_session=1, zombies=[4343], threads=[4245]
            ):
                assert mylib.my_processes([4242, 4343, 4444, 4245]) == [4242, 4343]
            assert sessionid_cffi.get_backend().name in ("procfs", "kernel32")


        def test_a_service_in_session_0_signals_nothing(fake_sessions):
            fake_sessions({1: 0, 4242: 0}, self_session=0)
            with pytest.raises(sessionid_cffi.NotInLoginError):
                mylib.same_session_as_me(1)


        @given(process_tables(windows=sys.platform == "win32"), st.integers(0, 3))
        def test_with_generated_tables(table, session):
            with fake(table, self_session=session):
                if session == 0:
                    with pytest.raises(sessionid_cffi.NotInLoginError):
                        mylib.my_processes(table)
                    return
                expected = sorted(p for p, s in table.items() if s == session)
                assert mylib.my_processes(table) == [p for p in expected if p != os.getpid()]


        def test_contract_on_the_model():
            report = check_contract(ModelBackend({os.getpid(): 1, os.getpid() + 100: 0}))
            # C8 and C9 are the library's doing for a model (not native): "library".
            assert len(report.kept) == 8 and list(report.skipped) == ["C6"], report
            assert sorted(report.library) == ["C8", "C9"], report


        def test_contract_on_the_live_backend():
            report = check_contract(sessionid_cffi.get_backend())
            assert not report.broken
            print(report)


        class ZeroForMissing(ModelBackend):
            def session_id(self, pid):
                try:
                    return super().session_id(pid)
                except sessionid_cffi.ProcessNotFoundError:
                    return 0


        def test_contract_catches_a_broken_backend():
            with pytest.raises(ContractViolation) as caught:
                check_contract(ZeroForMissing({os.getpid(): 1}))
            print(caught.value)
            assert "BROKEN C3" in str(caught.value)
    """,
}


def _wheel(tmp_path: Path) -> Path:
    """``$SESSIONID_WHEEL``, the wheel tox built (``$TOX_PACKAGE``), or a
    wheel built from this checkout; built wheels are cached by a hash of the
    packaged sources (pip's build isolation fetches setuptools, which is the
    slow part)."""
    tox_built = os.environ.get("TOX_PACKAGE", "").split(os.pathsep)
    given = os.environ.get("SESSIONID_WHEEL") or next(
        (p for p in tox_built if p.endswith(".whl")), None
    )
    if given:
        return Path(given)
    digest = hashlib.sha256()
    sources = [REPO / "pyproject.toml"]
    sources += sorted((REPO / "sessionid_cffi").rglob("*.py")) + sorted(
        (REPO / "emulation").rglob("*.py")
    )
    for path in sources:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    cache = Path(
        os.environ.get("SESSIONID_TEST_CACHE") or Path.home() / ".cache" / "sessionid-cffi-tests"
    )
    out = cache / f"wheel-{digest.hexdigest()[:16]}"
    found = sorted(out.glob("sessionid_cffi-*.whl"))
    if found:
        return found[0]
    building = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--disable-pip-version-check",
            "--no-deps",
            "-q",
            "-w",
            str(building),
            str(REPO),
        ],
        check=True,
        timeout=600,
    )
    (wheel,) = building.glob("sessionid_cffi-*.whl")
    out.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(wheel, out / wheel.name))


def test_a_downstream_project_uses_the_installed_wheel(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    python = venv / "bin" / "python"
    # This interpreter's pip installs into the venv (no pip bootstrap there).
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(python)]
    subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=120,
    )
    venv_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    # The test tools come from this environment, after the venv's own packages
    # (written after the install, or pip would find the runner's copy installed).
    Path(venv_site, "runner_tools.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    project = tmp_path / "project"
    for name, text in PROJECT.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    (project / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\npythonpath = ["."]\ntestpaths = ["tests"]\n', encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SESSIONID_"))}
    result = subprocess.run(
        [str(python), "-m", "pytest", "-v", "-s", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "8 passed" in output, output
    library = next(line for line in output.splitlines() if "LIBRARY " in line)
    assert str(venv) in library, library
    assert str(REPO) not in library, library
    # The broken backend's report names the rule and what went wrong.
    assert "BROKEN C3: C3: a PID naming no process" in output, output
    assert "but got session 0" in output, output
    # The live check ran on real processes.
    assert "on real processes of this machine" in output, output
