"""Fixtures shared by the suite: the backends this machine can run, and
real login sessions on Linux (root only)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest


def _setup_problem() -> str | None:
    """What a checkout set up without CONTRIBUTING.md's steps lacks, as one
    line that says what to run (instead of a traceback, or ten failures)."""
    import importlib.util

    # The Wine lane's Windows wheel set has no jsonschema (test_cli.py skips
    # the schema check there).
    wanted = ["hypothesis"] if sys.platform == "win32" else ["hypothesis", "jsonschema"]
    missing = [name for name in wanted if importlib.util.find_spec(name) is None]
    if missing:
        return (
            f"the tests need {' and '.join(missing)}: run `python -m pip install --group test`"
            " (pip >= 25.1; see CONTRIBUTING.md)"
        )
    import sessionid_cffi

    try:
        import sessionid_cffi.emulation
    except ImportError:
        return (
            f"{os.path.dirname(sessionid_cffi.__file__)} is the checkout's package, which lacks"
            " emulation/ (mapped in only at install): run `python -m pip install -e .`"
            " (see CONTRIBUTING.md)"
        )
    return None


_problem = _setup_problem()
if _problem:
    # One line and pytest's usage-error status; pytest.exit() and UsageError
    # here would come wrapped in "ImportError while loading conftest".
    print(f"ERROR: {_problem}", file=sys.stderr)
    raise SystemExit(4)

from hypothesis import HealthCheck, settings

from sessionid_cffi import get_backend
from sessionid_cffi.testing import ModelBackend
from sessionid_cffi.testing._processes import start_process
from sessionid_cffi.testing._worlds import LiveWorld, World, world_for

LINUX = sys.platform.startswith("linux")
WINDOWS = sys.platform == "win32"
IS_ROOT = LINUX and os.geteuid() == 0

# The backend fixtures hold no per-example state, so @given may share them.
# Generation speed depends on the machine (Wine, a loaded CI runner), not on
# the code under test: too_slow would only make the run flaky.
_suppressed = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
for _name, _examples in (("default", 100), ("long", 2000)):
    settings.register_profile(
        _name, max_examples=_examples, deadline=None, suppress_health_check=_suppressed
    )
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

needs_root = pytest.mark.skipif(
    not IS_ROOT, reason="needs root on Linux: creates login sessions or mounts procfs"
)
linux_only = pytest.mark.skipif(not LINUX, reason="Linux-specific rule (procfs)")
windows_only = pytest.mark.skipif(not WINDOWS, reason="Windows-specific rule (kernel32)")


def live_backend_name() -> str:
    return "kernel32" if WINDOWS else "procfs"


def make_model() -> ModelBackend:
    """A model with the caller in session 1, a system process and a denied one."""
    own = os.getpid()
    return ModelBackend({own: 1, own + 1000: 0, own + 2000: 2}, denied=[own + 2000])


@pytest.fixture(params=["live", "model"])
def backend(request: pytest.FixtureRequest) -> object:
    """Every backend this machine can run: the platform's live one and the model."""
    if request.param == "live":
        live = get_backend()
        assert live.name == live_backend_name()
        return live
    return make_model()


@pytest.fixture
def world(backend: object) -> World:
    return world_for(backend)


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A running Python child that waits for its stdin; killed afterwards."""
    process = start_process(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def thread_id() -> Iterator[int]:
    """The native id of a live thread that is not the main thread."""
    with LiveWorld().thread_id() as tid:
        assert tid is not None
        assert tid != os.getpid()
        yield tid


class Login:
    """A real child process in a fresh audit login session (Linux, root)."""

    def __init__(self, uid: int = 1000) -> None:
        code = (
            "import sys, time\n"
            f"open('/proc/self/loginuid', 'w').write('{uid}')\n"
            "print(open('/proc/self/sessionid').read(), flush=True)\n"
            "sys.stdin.read()\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        # Ground truth: what the child itself read from its own sessionid.
        self.session = int(self.process.stdout.readline())
        self.pid = self.process.pid
        self.uid = uid

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def login(request: pytest.FixtureRequest) -> Iterator[Login]:
    """A login of uid 1000; parametrized indirectly with "named", of an
    account this machine has (uid 1000 has none in most container images)."""
    if not IS_ROOT:
        pytest.skip("needs root on Linux: writes /proc/self/loginuid to start a login")
    uid = 1000
    if getattr(request, "param", None) == "named":
        import pwd

        named = [entry.pw_uid for entry in pwd.getpwall() if entry.pw_uid != 0]
        if not named:
            pytest.skip("passwd names no account but root")
        uid = min(named)
    session = Login(uid)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture(autouse=True, scope="session")
def _neutral_working_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run the tests from a folder of their own. A ``python -c`` child
    started in the checkout (or an unpacked sdist) would import its
    ``sessionid_cffi/`` folder, which lacks ``emulation/`` (mapped in only at
    install), instead of the installed package. pytest removes the folder."""
    checkout = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(checkout)
