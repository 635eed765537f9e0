"""Install surfaces, tried as distributors and library authors meet them.

- A checkout without symlinks (``git -c core.symlinks=false clone``, Git for
  Windows' default) builds the same wheel as an ordinary clone, and the
  wheel holds the package (with ``emulation/`` as ``sessionid_cffi.emulation``)
  and no build tool.
- The sdist carries what the tests and docs need: unpacked, it builds a
  wheel, and its own ``pytest -m "not slow"`` passes against that wheel.
- The wheel installs the man page and the bash and zsh completions under
  the environment's prefix, where man and the shells look, and they work.
- A downstream client is type-checked against the installed wheel:
  ``mypy --strict`` rejects a str PID and keeps the backend type that
  ``use_backend`` was given.

The clones are of this checkout's last commit (what a user clones), built
with setuptools' own PEP 517 hooks in a private build environment. Those
four are marked ``slow``: the sdist test runs the whole non-slow suite
again (minutes). Two more, quick: committed benchmark results hold only
what reproduces them, never a path of the machine that ran them; every
pytest marker the project registers is used by a test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

WINDOWS_REASON = "builds with POSIX venv paths; the Wine lane installs a wheel already"


def run(*command: str | Path, cwd: Path | None = None, timeout: float = 600) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SESSIONID_"))},
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def venv_with(path: Path, *requirements: str) -> Path:
    """A fresh venv at ``path`` (no pip of its own), with ``requirements``
    installed by this interpreter's pip; returns its python."""
    run(sys.executable, "-m", "venv", "--without-pip", path, timeout=120)
    python = path / "bin" / "python"
    if requirements:
        run(
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "--python",
            python,
            "install",
            "-q",
            *requirements,
        )
    return python


def borrow_runner_tools(python: Path) -> None:
    """Let ``python``'s venv import pytest, Hypothesis, cffi and mypy from
    this environment, after its own packages (so its copy of the library wins)."""
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    Path(site, "runner_tools.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A python with setuptools, to call its PEP 517 hooks directly."""
    if not shutil.which("git"):
        pytest.skip("needs git")
    return venv_with(tmp_path_factory.mktemp("build") / "venv", "setuptools>=77")


def build(builder: Path, source: Path, kind: str, out: Path) -> Path:
    """Build a ``kind`` ("wheel" or "sdist") of ``source`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    name = (
        run(
            builder,
            "-c",
            f"from setuptools import build_meta; print(build_meta.build_{kind}({str(out)!r}))",
            cwd=source,
        )
        .strip()
        .splitlines()[-1]
    )
    return out / name


# What the wheel installs under the environment's prefix (tools/cli_docs.py).
DATA_FILES = (
    "share/bash-completion/completions/sessionid",
    "share/man/man1/sessionid.1",
    "share/zsh/site-functions/_sessionid",
)


def clone(target: Path, *options: str) -> Path:
    run("git", *options, "clone", "-q", REPO, target)
    return target


def wheel_contents(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason=WINDOWS_REASON)
def test_a_checkout_without_symlinks_builds_the_same_wheel(builder: Path, tmp_path: Path) -> None:
    plain = clone(tmp_path / "plain")
    flat = clone(tmp_path / "flat", "-c", "core.symlinks=false")
    # Nothing in the tree may depend on a link: such a checkout has none.
    links = [p for p in plain.rglob("*") if p.is_symlink() and ".git" not in p.parts]
    assert links == []
    ordinary = wheel_contents(build(builder, plain, "wheel", tmp_path / "dist-plain"))
    without = wheel_contents(build(builder, flat, "wheel", tmp_path / "dist-flat"))
    assert sorted(without) == sorted(ordinary)
    assert without == ordinary
    names = set(ordinary)
    assert "sessionid_cffi/emulation/procfs.py" in names
    assert "sessionid_cffi/emulation/model.py" in names
    assert "sessionid_cffi/py.typed" in names
    # No bare top-level emulation package, no build tool, no tests; the
    # data files (man page, completions) in the wheel's .data folder.
    dist_info = next(n.split("/")[0] for n in names if ".dist-info/" in n)
    data = dist_info.replace(".dist-info", ".data")
    assert {name.split("/")[0] for name in names} == {"sessionid_cffi", dist_info, data}
    assert sorted(n for n in names if n.startswith(data)) == [
        f"{data}/data/{path}" for path in sorted(DATA_FILES)
    ]
    assert not [name for name in names if "ffi_build" in name]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason=WINDOWS_REASON)
def test_the_unpacked_sdist_passes_its_own_tests(builder: Path, tmp_path: Path) -> None:
    source = clone(tmp_path / "clone")
    sdist = build(builder, source, "sdist", tmp_path / "dist")
    with tarfile.open(sdist) as archive:
        if hasattr(tarfile, "data_filter"):  # 3.12, and security releases of 3.10/3.11
            archive.extractall(tmp_path / "unpacked", filter="data")
        else:
            archive.extractall(tmp_path / "unpacked")  # our own sdist
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    for needed in (
        "tests/conftest.py",
        "tests/_forest.py",
        "tests/_handles.py",
        "tests/wine/lane.py",
        "tests/_lane.py",
        "docs/conf.py",
        "docs/changelog.md",
        "docs/design.md",
        "tox.ini",
        "tools/ffi_build.py",
        "benchmarks/run.py",
        "README.md",
        "LICENSE",
    ):
        assert (unpacked / needed).is_file(), f"the sdist lacks {needed}"
    # Distributors build the wheel from the unpacked sdist, then test it.
    wheel = build(builder, unpacked, "wheel", tmp_path / "wheel")
    python = venv_with(tmp_path / "venv", "--no-deps", "--no-index", str(wheel))
    borrow_runner_tools(python)
    # -I: the unpacked tree's own sessionid_cffi/ folder is not importable
    # (it lacks emulation/), so the suite must run against the installed wheel.
    output = run(
        python,
        "-I",
        "-m",
        "pytest",
        "-q",
        "-m",
        "not slow",
        "-p",
        "no:cacheprovider",
        "-x",
        cwd=unpacked,
        timeout=1800,
    )
    assert " passed" in output
    assert " failed" not in output
    where = run(
        python, "-I", "-c", "import sessionid_cffi; print(sessionid_cffi.__file__)", cwd=unpacked
    )
    assert where.startswith(str(tmp_path / "venv"))


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason=WINDOWS_REASON)
def test_the_wheel_installs_the_man_page_and_completions_under_the_prefix(
    builder: Path, tmp_path: Path
) -> None:
    source = clone(tmp_path / "clone")
    wheel = build(builder, source, "wheel", tmp_path / "dist")
    prefix = tmp_path / "venv"
    venv_with(prefix, "--no-deps", "--no-index", str(wheel))
    for path in DATA_FILES:  # where man, bash-completion and zsh look
        installed = prefix / path
        assert installed.is_file(), path
        assert installed.read_bytes() == (source / path).read_bytes()
    if shutil.which("man"):
        page = subprocess.run(
            ["man", "-P", "cat", "-l", str(prefix / DATA_FILES[1])],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "MANWIDTH": "100"},
        )
        assert page.returncode == 0, page.stderr
        assert "--forest" in page.stdout.replace("\u2010", "-")
    if shutil.which("bash"):
        script = (
            f"source {prefix / DATA_FILES[0]}\n"
            "COMP_WORDS=(sessionid ps --fo); COMP_CWORD=2; _sessionid\n"
            'echo "${COMPREPLY[*]}"\n'
        )
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
        assert done.stdout.split() == ["--format", "--forest"], done
    if shutil.which("zsh"):
        done = subprocess.run(
            ["zsh", "-n", str(prefix / DATA_FILES[2])], capture_output=True, text=True, timeout=60
        )
        assert (done.returncode, done.stderr) == (0, "")


CLIENT = """
    import os

    import sessionid_cffi
    from sessionid_cffi.testing import ModelBackend


    def good() -> int:
        with sessionid_cffi.use_backend(ModelBackend({os.getpid(): 1})) as backend:
            kept: ModelBackend = backend  # use_backend hands back the type it was given
            kept.spawn(os.getpid(), 4242)
            return sessionid_cffi.process_id_to_session_id(4242)


    def bad() -> int:
        return sessionid_cffi.process_id_to_session_id("4242")
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason=WINDOWS_REASON)
def test_mypy_rejects_a_str_pid_in_a_client_of_the_installed_wheel(
    builder: Path, tmp_path: Path
) -> None:
    pytest.importorskip("mypy", reason="needs mypy (the test dependency group has it)")
    source = clone(tmp_path / "clone")
    wheel = build(builder, source, "wheel", tmp_path / "dist")
    python = venv_with(tmp_path / "venv", "--no-deps", "--no-index", str(wheel))
    client = tmp_path / "client" / "client.py"
    client.parent.mkdir()
    client.write_text(textwrap.dedent(CLIENT).lstrip(), encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--python-executable",
            str(python),
            client.name,
        ],
        cwd=client.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    # Exactly one error, on bad()'s line: the str PID.
    assert len(errors) == 1, result.stdout + result.stderr
    line = (
        textwrap.dedent(CLIENT)
        .lstrip()
        .splitlines()
        .index('    return sessionid_cffi.process_id_to_session_id("4242")')
        + 1
    )
    assert errors[0].startswith(f"client.py:{line}: error: Argument 1 to ")
    assert '"str"; expected "SupportsIndex"' in errors[0]


def test_committed_benchmark_results_hold_no_local_paths() -> None:
    results = sorted((REPO / "benchmarks" / "results").glob("*.json"))
    if not results:
        pytest.skip("no committed benchmark results here")
    for path in results:
        document = json.loads(path.read_text(encoding="utf-8"))
        strings = list(_strings(document))
        local = [s for s in strings if s.startswith(("/", "~")) or re.match(r"[A-Za-z]:[\\/]", s)]
        assert local == [], f"{path.name} records local paths"
        machine = document.get("machine")
        if machine is not None:
            assert set(machine) <= {
                "kernel",
                "python",
                "cpus",
                "processes_in_proc",
                "extra_sleepers",
                "rounds",
                "memory_processes",
                "memory_args_bytes",
            }, f"{path.name}: {sorted(machine)}"


def _strings(value: object) -> Iterator[str]:
    """Every string in a JSON document, keys and values."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_every_registered_marker_is_used() -> None:
    config = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^markers = \[\n(.*?)^\]", config, re.M | re.S)
    assert block is not None
    registered = re.findall(r'^\s*"(\w+):', block[1], re.M)
    assert registered
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "tests").rglob("*.py"))
    unused = [name for name in registered if f"pytest.mark.{name}" not in sources]
    assert unused == [], f"registered but used by no test: {unused}"
