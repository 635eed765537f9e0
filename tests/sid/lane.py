"""Run the project's pytest suite under Debian sid's CPython 3.14 and 3.15.

Usage (as root on Linux, from anywhere)::

    python tests/sid/lane.py [--python 3.14] [--python 3.15] [--wheel PROJECT.whl]
                             [--provision-only] [-- PYTEST_ARGS...]

The interpreters are Debian's own packages (``python3.14``, ``python3.15``);
they need sid's libc, so they run in a sid chroot. The first run builds it
with debootstrap (about a minute) and caches it, with a wheelhouse and a
venv of the test tools per Python, in ``$SESSIONID_SID_CACHE`` or
``~/.cache/sessionid-cffi-sid``; a cache that is missing, of another
CACHE_VERSION or broken is rebuilt. Every run installs the project's wheel
(built once outside) into each venv and runs pytest there, from a copy of
the checkout, as root: the real-login (sshd with PAM), locked-down and
PID-reuse tests included. Each run gets its own mount namespace
(``unshare -m``) in which the chroot is a mount point of its own (tests
call ``unshare -m --propagation private`` inside), with /proc, /dev
(ptys) and fresh /tmp and /run; nothing is left mounted afterwards. Those
tests skip where they cannot run, so the lane fails if one of them skips.

debootstrap uses the Debian archive that apt uses here (/etc/apt/sources.list
and sources.list.d), else Debian's default; ``$SESSIONID_SID_MIRROR`` overrides.
The chroot needs no network: the test tools' wheels are downloaded outside
by this machine's pip (its index and certificates) and installed inside
with ``--no-index``. Without PYTEST_ARGS the non-slow suite runs
(``-m "not slow" tests``): the slow tests build sdists and wheels with
build isolation, which needs the package index inside. Stdlib only.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the lanes' shared part
from _lane import STAMP, LaneError, is_done, log, mark_done, pip, stamp_key, tox_wheel

REPO_ROOT = Path(__file__).resolve().parents[2]

# Bump to rebuild every cache (a change of the recipe below does too).
CACHE_VERSION = 1
PYTHONS = ("3.14", "3.15")
# procps: the ps-comparison tests; openssh: tests/test_login.py's private
# sshd (its PAM stack runs pam_loginuid); util-linux and mount: unshare and
# mount for the locked-down and PID-reuse tests. Nothing in the suite compiles.
PACKAGES = [
    *(f"python{v}{suffix}" for v in PYTHONS for suffix in ("", "-venv")),
    "ca-certificates",
    "procps",
    "openssh-server",
    "openssh-client",
    "util-linux",
    "mount",
]
# The test tools, as in pyproject.toml's "test" group, plus the project's
# own dependency (cffi) and cffi's (pycparser).
REQUIREMENTS = [
    "cffi",
    "hypothesis>=6.100",
    "pytest>=8",
    "jsonschema>=4.18",
    "coverage[toml]>=7",
    "mypy>=1.11",
]
# Debian's default mirror; the lane uses the one apt uses here when it finds it.
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
DEFAULT_PYTEST_ARGS = ["-m", "not slow", "tests"]
# As root in the lane's chroot these never skip: a skip there means the
# chroot lost what they need (a mount namespace, /proc, sshd), so the lane fails.
MUST_RUN = ("tests.test_login", "tests.test_locked_down", "tests.test_pid_reuse")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LANE_DIR = "/opt/sessionid-lane"  # inside the chroot

# Runs in a fresh mount namespace (unshare -m, private propagation): the
# chroot becomes a mount point of its own, with the kernel's /proc, the
# host's /dev (and /dev/pts, /dev/shm) and empty /tmp and /run.
ENTER = """\
set -e
root=$1; shift
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
exec chroot "$root" "$@"
"""


def main(argv: list[str]) -> int:
    args, pytest_args = parse_args(argv)
    pythons = args.python or list(PYTHONS)
    try:
        check_host()
        cache = Path(
            os.environ.get("SESSIONID_SID_CACHE") or Path.home() / ".cache/sessionid-cffi-sid"
        ).resolve()
        cache.mkdir(parents=True, exist_ok=True)
        # One lane at a time per cache (tox -p runs sid314 and sid315 at once).
        with open(cache / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            root = provision_root(cache)
            for version in pythons:
                provision_venv(cache, root, version)
            if args.provision_only:
                print(root)
                return 0
            return run_suites(root, pythons, args.wheel, pytest_args or DEFAULT_PYTEST_ARGS)
    except LaneError as err:
        print(f"lane.py: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(
        prog="lane.py",
        description="Run the pytest suite under Debian sid's CPython 3.14 and 3.15 (root, Linux).",
        epilog="Arguments after -- go to pytest (default: -m 'not slow' tests), run from a copy"
        " of the repository.",
    )
    parser.add_argument(
        "--python", action="append", choices=PYTHONS, help="repeatable (default: every one)"
    )
    parser.add_argument(
        "--wheel", type=Path, help="project wheel (default: $TOX_PACKAGE, else build one)"
    )
    parser.add_argument(
        "--provision-only", action="store_true", help="provision, print the chroot's path, stop"
    )
    return parser.parse_args(argv[:split]), argv[split + 1 :]


def check_host() -> None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        raise LaneError("the sid lane needs root on Linux (debootstrap, chroot, mounts)")
    for tool in ("unshare", "mount", "chroot"):
        if shutil.which(tool) is None:
            raise LaneError(f"{tool} is not installed (apt-get install util-linux coreutils)")
    if shutil.which("debootstrap") is None:
        if shutil.which("apt-get") is None:
            raise LaneError("debootstrap is not installed (install Debian's debootstrap)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "debootstrap"]):
            log(f"debootstrap is missing, running: {' '.join(command)}")
            if subprocess.run(command, env=env, stdout=sys.stderr, check=False).returncode:
                raise LaneError(f"{' '.join(command)} failed (see its output above)")


def apt_mirror() -> str:
    """The Debian archive apt uses here (not its security archive), else Debian's default."""
    override = os.environ.get("SESSIONID_SID_MIRROR")
    if override:
        return override
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split("#")[0].split()
            # One-line format ("deb URI suite ...") and deb822 ("URIs: URI").
            if path.suffix == ".sources" and words[:1] == ["URIs:"]:
                uris = words[1:]
            elif words[:1] == ["deb"]:
                uris = [w for w in words[1:] if not w.startswith("[")][:1]
            else:
                continue
            for uri in uris:
                if uri.rstrip("/").endswith("/debian"):
                    return uri.rstrip("/")
    return DEFAULT_MIRROR


def provision_root(cache: Path) -> Path:
    """Build the sid chroot with debootstrap, unless a sound one is cached."""
    root = cache / "root"
    key = stamp_key(CACHE_VERSION, PACKAGES)
    if is_done(root, key) and root_is_sound(root):
        return root
    mirror = apt_mirror()
    log(f"building a Debian sid chroot in {root} from {mirror} (about a minute)")
    started = time.monotonic()
    remove_tree(root)
    building = cache / "root.building"
    remove_tree(building)
    # In a mount namespace of its own: the /proc and /sys that debootstrap
    # mounts in the tree go away with it, even when it fails half-way.
    command = ["unshare", "-m", "--propagation", "private"]
    command += ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
    command += ["sid", str(building), mirror]
    if subprocess.run(command, stdout=sys.stderr, check=False).returncode:
        raise LaneError(
            f"debootstrap failed (see its output above; {building}/debootstrap/debootstrap.log)"
        )
    building.replace(root)
    mark_done(root, key)
    log(f"chroot built in {time.monotonic() - started:.0f} s")
    return root


def root_is_sound(root: Path) -> bool:
    needed = [f"usr/bin/python{v}" for v in PYTHONS] + ["usr/sbin/sshd", "usr/bin/ps"]
    if not all((root / path).exists() for path in needed):
        return False
    probe = subprocess.run(
        ["chroot", str(root), "/usr/bin/env", "-i", f"PATH={PATH}", "python3.14", "-c", "pass"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def provision_venv(cache: Path, root: Path, version: str) -> None:
    """A venv of the test tools in the chroot, from wheels downloaded outside."""
    tag = version.replace(".", "")
    venv = root / LANE_DIR.lstrip("/") / f"venv{tag}"
    key = stamp_key(CACHE_VERSION, REQUIREMENTS, (root / STAMP).read_text())
    if is_done(venv, key):
        return
    log(f"provisioning the test tools for Python {version}")
    remove_tree(venv)
    wheels = root / LANE_DIR.lstrip("/") / f"wheels{tag}"
    remove_tree(wheels)
    target = [f"--python-version={version}", "--implementation=cp", "--only-binary=:all:"]
    target += [f"--platform={p}" for p in PLATFORMS]
    pip("download", "-q", "-d", str(wheels), *target, *REQUIREMENTS)
    inside = f"{LANE_DIR}/venv{tag}"
    enter(root, [f"python{version}", "-m", "venv", inside])
    install = [f"{inside}/bin/python", "-m", "pip", "install", "-q", "--no-index"]
    install += ["--disable-pip-version-check", f"--find-links={LANE_DIR}/wheels{tag}"]
    if enter(root, [*install, *REQUIREMENTS]):
        raise LaneError(f"installing the test tools into {venv} failed (see pip's output above)")
    mark_done(venv, key)


def run_suites(root: Path, pythons: list[str], wheel: Path | None, pytest_args: list[str]) -> int:
    status = 0
    runs = root / "var/tmp"
    with tempfile.TemporaryDirectory(prefix="sessionid-sid-", dir=runs) as tmp:
        dist = project_wheel(wheel, Path(tmp, "dist"))
        src = Path(tmp, "src")
        copy_checkout(src, Path(tmp, "checkout.tar"))
        inside = "/" + str(Path(tmp).relative_to(root))
        for version in pythons:
            tag = version.replace(".", "")
            python = f"{LANE_DIR}/venv{tag}/bin/python"
            install = [python, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
            install += ["--disable-pip-version-check", "--force-reinstall"]
            if enter(root, [*install, f"{inside}/dist/{dist.name}"]):
                raise LaneError(f"installing {dist.name} for Python {version} failed (see above)")
            log(f"Python {version}: pytest {' '.join(pytest_args)}")
            started = time.monotonic()
            # -I: the copy's sessionid_cffi/ (without emulation/) must not
            # shadow the installed wheel.
            command = [python, "-I", "-X", "faulthandler", "-m", "pytest"]
            command += [f"--junitxml={inside}/junit{tag}.xml", *pytest_args]
            storage = f"{LANE_DIR}/hypothesis{tag}"
            code = enter(root, command, cwd=f"{inside}/src", hypothesis=storage)
            log(f"Python {version}: pytest exit {code} in {time.monotonic() - started:.0f} s")
            skipped = skipped_must_run(Path(tmp, f"junit{tag}.xml"))
            if skipped:
                log(f"Python {version}: these must run here but skipped: {'; '.join(skipped)}")
                code = code or 1
            status = status or code
    return status


def skipped_must_run(junit: Path) -> list[str]:
    """The MUST_RUN tests that pytest's JUnit report lists as skipped."""
    if not junit.is_file():
        return []  # pytest ended before writing it: its exit status says so
    found = []
    for case in ET.parse(junit).iter("testcase"):
        skip = case.find("skipped")
        if skip is not None and case.get("classname", "").startswith(MUST_RUN):
            found.append(f"{case.get('name')}: {skip.get('message', '')}")
    return found


def enter(root: Path, command: list[str], cwd: str = "/", hypothesis: str = "") -> int:
    """Run command in the chroot, in a mount namespace of its own; its exit status."""
    env = [f"PATH={PATH}", "HOME=/root", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"]
    env += [
        f"{k}={v}" for k, v in os.environ.items() if k.startswith(("SESSIONID_", "HYPOTHESIS_"))
    ]
    if hypothesis:
        env.append(f"HYPOTHESIS_STORAGE_DIRECTORY={hypothesis}")
    shell = ["/usr/bin/env", "-i", *env, "sh", "-c", 'cd "$0" && exec "$@"', cwd, *command]
    full = ["unshare", "-m", "--propagation", "private", "sh", "-c", ENTER, "enter", str(root)]
    return subprocess.run([*full, *shell], stdin=subprocess.DEVNULL, check=False).returncode


def copy_checkout(src: Path, tar: Path) -> None:
    """Copy the checkout's tracked and new files (git), else all but build output."""
    src.mkdir()
    git = shutil.which("git")
    listed = None
    if git and (REPO_ROOT / ".git").exists():
        listing = ["ls-files", "-z", "--cached", "--others", "--exclude-standard"]
        done = subprocess.run(
            [git, "-C", str(REPO_ROOT), *listing],
            capture_output=True,
            check=False,
        )
        if done.returncode == 0:
            listed = [name for name in done.stdout.decode().split("\0") if name]
    if listed is None:
        ignore = shutil.ignore_patterns(".git", ".tox", ".venv", "__pycache__", "dist", "build")
        shutil.copytree(REPO_ROOT, src, ignore=ignore, dirs_exist_ok=True)
        return
    for name in listed:
        source = REPO_ROOT / name
        if source.is_file():  # a deleted, not yet committed file is still listed
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, src / name)


def project_wheel(given: Path | None, dist: Path) -> Path:
    """Copy the --wheel, else the wheel tox built, else one built now, into dist."""
    if given is None:
        given = tox_wheel()
    dist.mkdir(parents=True)
    if given is None:
        log(f"building the project wheel from {REPO_ROOT}")
        pip("wheel", "-q", "--no-deps", "-w", str(dist), str(REPO_ROOT))
        return next(dist.glob("*.whl"))
    if not given.is_file():
        raise LaneError(f"no project wheel at {given} (pass an existing file to --wheel)")
    if given.stem.split("-")[-1] != "any":
        raise LaneError(f"{given.name} is not a pure wheel (build a py3-none-any wheel)")
    return Path(shutil.copy2(given, dist))


def remove_tree(path: Path) -> None:
    """Remove a cached tree, unless something is mounted inside (a lane still running)."""
    if not path.exists():
        return
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            if (line.split()[4] + "/").startswith(prefix):
                raise LaneError(f"{line.split()[4]} is mounted: unmount it before rebuilding")
    shutil.rmtree(path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
