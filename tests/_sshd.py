"""A private OpenSSH daemon with PAM, for real logins in the suite.

``sshd`` (a session-scoped pytest fixture) starts ``sshd -D`` on 127.0.0.1
and a free port, with its own host key, client key, ``authorized_keys`` and
configuration in a temporary folder, and ``UsePAM yes``: Debian's
``/etc/pam.d/sshd`` runs ``pam_loginuid``, so every login gets a fresh
kernel audit session, exactly as on a server. The daemon is always stopped
at the end. Skips (with the reason) only where sshd cannot run: not root,
not Linux, or no OpenSSH binaries.

Use it in a test module with ``from _sshd import Sshd, sshd``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

try:
    import pytest
except ImportError:  # benchmarks/run.py starts an Sshd where pytest is not installed
    pytest = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from collections.abc import Iterator

T = TypeVar("T")

CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {root}/host_key
UsePAM yes
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile {root}/authorized_keys
PidFile {root}/sshd.pid
StrictModes no
PrintMotd no
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Sshd:
    """A running private sshd; ``ssh()`` logs in as root with the test key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.log = root / "sshd.log"
        for name in ("host_key", "client_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)],
                check=True,
                timeout=60,
            )
        (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
        (root / "sshd_config").write_text(CONFIG.format(port=self.port, root=root))
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation chroot
        self.process = subprocess.Popen(
            [
                shutil.which("sshd") or "/usr/sbin/sshd",
                "-D",
                "-f",
                str(root / "sshd_config"),
                "-E",
                str(self.log),
            ],
        )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError("sshd did not listen within 20 s")

    def ssh_command(self, remote: str, *, tty: bool = False) -> list[str]:
        """The ssh command line that runs ``remote`` in a fresh login."""
        return [
            "ssh",
            "-i",
            str(self.root / "client_key"),
            "-p",
            str(self.port),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            f"UserKnownHostsFile={self.root / 'known_hosts'}",
            "-o",
            "LogLevel=ERROR",
            *(["-tt"] if tty else ["-T"]),
            "root@127.0.0.1",
            remote,
        ]

    def login(self, remote: str, *, tty: bool = False) -> subprocess.Popen[str]:
        """Start ``remote`` in a new login; its stdin and stdout are pipes."""
        return subprocess.Popen(
            self.ssh_command(remote, tty=tty),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _session_fixture(function: T) -> T:
    return function if pytest is None else pytest.fixture(scope="session")(function)


@_session_fixture
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("needs root on Linux: starts sshd, which logs in through PAM")
    missing = [
        tool
        for tool in ("sshd", "ssh", "ssh-keygen")
        if shutil.which(tool) is None and not (tool == "sshd" and os.path.exists("/usr/sbin/sshd"))
    ]
    if missing:
        pytest.skip(f"OpenSSH is not installed here (no {', '.join(missing)})")
    daemon = Sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield daemon
    finally:
        daemon.close()
