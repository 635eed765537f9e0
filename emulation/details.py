"""Session details on Linux: where a login came from, what started it, and
how long its terminal has been idle (``w``'s FROM and IDLE, ``loginctl``'s
RemoteHost and Service). Loaded on the first ``sessions()``, never at import.

Sources, most trusted first (docs/linux.md, "Session details"):
- systemd-logind's state file ``<run_root>/systemd/sessions/<name>`` for the
  session (matched by its ``AUDIT=`` line; without kernel audit, by name as
  ``parse_cgroup`` maps it): ``REMOTE_HOST`` and ``SERVICE`` are what
  ``loginctl`` shows, so the answer agrees with it.
- the host of an ssh login: the peer address of the TCP connection held by
  the session's leader (sshd's per-login process, owned by root: a user can
  neither forge nor unset it); where the caller may not read the leader's
  descriptors (not root), ``SSH_CONNECTION`` in the environment of the
  process sshd started, which the user of that login can change, so it
  only ever speaks for its own session.
- the service: the leader's process name (``sshd``, ``login``, ``cron``...),
  only for a login a root-owned process started (``verified``).
- idle: now minus the access time of the terminal's device (``/dev/pts/3``),
  as ``w`` computes it; the kernel refreshes that time on input at most
  every 8 seconds.

Every read is bounded, never follows a symlink or waits on a FIFO, and a
file that cannot be read (another user's process, hidepid, a process that
exited) gives None for that detail, never an error.
"""

import os
import stat as _stat
import sys
import time

from .procfs import _O_FILE, AUDIT_UNSET

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .._records import ProcessRecord, SessionInfo

# Bounds of what is read: an environment (SSH_CONNECTION is among the first
# variables sshd sets), a TCP table (~150 bytes a connection), a logind file.
_ENV_LIMIT = 1 << 17
_NET_LIMIT = 1 << 23
_STATE_LIMIT = 1 << 16
# How many descriptors of a leader and how many logind files are looked at.
_FD_LIMIT = 1024
_STATE_FILES_LIMIT = 65536
_SSHD_NAMES = frozenset(("sshd", "sshd-session"))
# Leader's process name -> service, as PAM (and loginctl) names it; measured
# cases in docs/linux.md. su and runuser become su-l / runuser-l with -l.
_SERVICES = {
    "sshd": "sshd",
    "sshd-session": "sshd",
    "login": "login",
    "cron": "cron",
    "atd": "atd",
    "su": "su",
    "runuser": "runuser",
    "systemd": "systemd-user",
}
_LOGIN_FLAGS = frozenset((b"-", b"-l", b"--login"))
# TCP states in /proc/net/tcp: 01 is ESTABLISHED.
_ESTABLISHED = "01"


def describe(
    proc_root: str,
    run_root: str,
    infos: "list[SessionInfo]",
    members: "dict[int, list[ProcessRecord]]",
    audit: bool,
) -> "list[SessionInfo]":
    """``infos`` with host, service and idle filled where they can be told,
    reading the backend's ``proc_root`` and ``run_root``. ``members`` holds
    each session's records, its leader first."""
    logind = logind_sessions(run_root, audit)
    now = time.time()
    # TCP tables already read, per network namespace: the kernel walks its
    # whole connection hash for each read (~5 ms a table here), so once a call.
    tables: dict[str, dict[str, str]] = {}
    described = []
    for info in infos:
        if info.session_id == 0:
            described.append(info)
            continue
        state = logind.get(info.session_id)
        if state is not None and state.get("UID", str(info.uid)) != str(info.uid):
            state = None  # another user's session: not this one's record
        leader = members[info.session_id][0] if info.leader is not None else None
        if state is not None:
            host = state.get("REMOTE_HOST") or None
            service = state.get("SERVICE") or None
        else:
            service = _service(proc_root, leader) if info.verified else None
            host = None
            if service == "sshd" and leader is not None:
                host = _socket_host(proc_root, leader, tables)
                if host is None:
                    host = _environment_host(proc_root, members[info.session_id])
        idle = idle_seconds(info.tty, now)
        described.append(info._replace(host=host, service=service, idle=idle))
    return described


# -- systemd-logind -------------------------------------------------------


def logind_sessions(run_root: str, audit: bool) -> dict[int, dict[str, str]]:
    """``{session: fields}`` of logind's session state files, keyed as this
    backend numbers sessions: by ``AUDIT=`` where the kernel has audit
    (logind names a session after it, else ``c1``, ``c2``... which then are
    no audit session), else by name (``3`` or ``c3`` -> 3)."""
    folder = f"{run_root}/systemd/sessions"
    try:
        names = os.listdir(folder)
    except (OSError, ValueError):
        return {}
    found: dict[int, dict[str, str]] = {}
    for name in names[:_STATE_FILES_LIMIT]:
        if name.startswith(".") or name.endswith(".ref"):
            continue  # logind's temporary files and its FIFOs
        fields = read_state_file(f"{folder}/{name}")
        # Without audit, logind's name is the cgroup's: 3 or c3 -> 3.
        key = fields.get("AUDIT", "") if audit else name.removeprefix("c")
        if key.isdigit() and key.isascii() and 0 < int(key) < AUDIT_UNSET:
            found[int(key)] = fields
    return found


def read_state_file(path: str) -> dict[str, str]:
    """``KEY=value`` lines of a logind state file, values unescaped as
    systemd wrote them (``cescape``: ``\\n``, ``\\\\``, ``\\xNN``...); {} when
    the file is absent, not a regular file, or unreadable."""
    data = _read_bounded(path, _STATE_LIMIT)
    if data is None:
        return {}
    fields = {}
    for line in data.split(b"\n"):
        key, equals, value = line.partition(b"=")
        if not equals or line.startswith(b"#"):
            continue
        fields[key.decode("ascii", "replace")] = _unescape(value)
    return fields


def _unescape(value: bytes) -> str:
    """Undo systemd's cescape(): C escapes back to bytes, bytes to text
    (an invalid byte as a lone surrogate, as the rest of the package)."""
    if b"\\" in value:
        import codecs
        import contextlib

        with contextlib.suppress(ValueError):  # not cescape's: kept as it is
            value = codecs.escape_decode(value)[0]
    return value.decode("utf-8", "surrogateescape")


# -- the service ----------------------------------------------------------


def _service(proc_root: str, leader: "ProcessRecord | None") -> str | None:
    """The service of a login from its leader's process name, None when it
    is not one of the measured ones."""
    if leader is None or leader.comm is None:
        return None
    service = _SERVICES.get(leader.comm)
    if service in ("su", "runuser"):
        cmdline = _read_bounded(f"{proc_root}/{leader.pid}/cmdline", 4096) or b""
        if not _LOGIN_FLAGS.isdisjoint(cmdline.split(b"\0")[1:]):
            service += "-l"
    return service


# -- the host of an ssh login -------------------------------------------


def _socket_host(
    proc_root: str, leader: "ProcessRecord", tables: dict[str, dict[str, str]]
) -> str | None:
    """The remote address of the first established TCP connection among
    the leader's descriptors (sshd accepts the client's connection before
    it opens any other), or None when they cannot be read.

    ``tables`` keeps the connections read per network namespace.
    All reads go through one descriptor of ``/proc/<pid>``, which stays
    bound to that process: after checking that it is still the leader
    (same parent and name), a PID reused meanwhile cannot answer."""
    try:
        folder = os.open(f"{proc_root}/{leader.pid}", os.O_RDONLY | os.O_DIRECTORY)
    except (OSError, ValueError):
        return None
    try:
        stat_line = _read_at(folder, "stat", 1024) or b""
        close = stat_line.rfind(b")")
        fields = stat_line[close + 2 :].split()
        name = stat_line[stat_line.find(b"(") + 1 : close].decode("utf-8", "surrogateescape")
        if len(fields) < 2 or fields[1] != str(leader.ppid).encode() or name != leader.comm:
            return None
        inodes = _socket_inodes(folder)
        if not inodes:
            return None
        try:
            namespace = os.readlink("ns/net", dir_fd=folder)
        except OSError:
            namespace = f"of {leader.pid}"  # not shared: read for this process only
        connections = tables.get(namespace)
        if connections is None:
            connections = tables[namespace] = {}
            for table in ("net/tcp", "net/tcp6"):
                connections.update(_tcp_peers(_read_at(folder, table, _NET_LIMIT) or b""))
        for inode in inodes:
            if inode in connections:
                return connections[inode]
        return None
    finally:
        os.close(folder)


def _socket_inodes(folder: int) -> list[str]:
    """Socket inodes of the process's descriptors, in descriptor order."""
    try:
        fd_dir = os.open("fd", os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
    except OSError:
        return []  # not ours to inspect (ptrace rules): root's sshd as a user
    try:
        names = sorted((name for name in os.listdir(fd_dir) if name.isdigit()), key=int)
        inodes = []
        for name in names[:_FD_LIMIT]:
            try:
                link = os.readlink(name, dir_fd=fd_dir)
            except OSError:
                continue  # closed meanwhile
            if link.startswith("socket:[") and link.endswith("]"):
                inodes.append(link[8:-1])
        return inodes
    except OSError:
        return []
    finally:
        os.close(fd_dir)


def _tcp_peers(table: bytes) -> dict[str, str]:
    """``{inode: remote address}`` of the established connections of a
    ``/proc/net/tcp`` or ``tcp6`` table (``sl local rem st ... uid timeout
    inode``; addresses in hex, each 32-bit word in the host's byte order)."""
    peers = {}
    for line in table.split(b"\n")[1:]:
        parts = line.split()
        if len(parts) < 10 or parts[3] != _ESTABLISHED.encode() or not parts[9].isdigit():
            continue
        address = _address(parts[2].partition(b":")[0])
        if address is not None:
            peers[parts[9].decode()] = address
    return peers


def _address(hex_words: bytes) -> str | None:
    """A kernel-format hex address as text; an IPv4-mapped IPv6 address as
    plain IPv4, as sshd shows it."""
    import ipaddress

    try:
        raw = bytes.fromhex(hex_words.decode("ascii"))
    except ValueError:
        return None
    if len(raw) not in (4, 16):
        return None
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    address = ipaddress.IPv6Address(raw)
    return str(address.ipv4_mapped or address)


def _environment_host(proc_root: str, members: "list[ProcessRecord]") -> str | None:
    """The client address in ``SSH_CONNECTION`` (else ``SSH_CLIENT``) of the
    earliest process of the session that sshd started (its parent is an
    sshd process of the session), None when that is unreadable or holds no
    valid address. Only this session's processes are read: a forged
    variable speaks for its own session only."""
    sshd_pids = {record.pid for record in members if record.comm in _SSHD_NAMES}
    for record in members:
        if record.ppid in sshd_pids and record.comm not in _SSHD_NAMES:
            data = _read_bounded(f"{proc_root}/{record.pid}/environ", _ENV_LIMIT)
            return None if data is None else environment_host(data)
    return None


def environment_host(environ: bytes) -> str | None:
    """The client address of an ``environ`` file's ``SSH_CONNECTION`` or
    ``SSH_CLIENT`` (``<client> <port> ...``), None when neither holds one."""
    import ipaddress

    variables = environ.split(b"\0")
    value = None
    for name in (b"SSH_CONNECTION=", b"SSH_CLIENT="):
        value = next((entry[len(name) :] for entry in variables if entry.startswith(name)), None)
        if value is not None:
            break
    client = value.split(b" ")[0] if value else b""
    try:
        address = ipaddress.ip_address(client.decode("ascii"))
    except ValueError:
        return None
    # An IPv4-mapped address as plain IPv4, as the socket path gives it (and
    # the same text on every Python: 3.13 changed how str() shows it).
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


# -- idle -------------------------------------------------------------------


def idle_seconds(tty: str | None, now: float, dev_root: str = "/dev") -> float | None:
    """Seconds since the terminal ``tty`` (``pts/3``) last saw input: now
    minus its device's access time, as ``w`` computes IDLE; None without a
    terminal or when the device is not there (another mount namespace)."""
    if tty is None or ".." in tty.split("/") or "\0" in tty:
        return None
    try:
        info = os.stat(f"{dev_root}/{tty}", follow_symlinks=False)
    except (OSError, ValueError):
        return None
    if not _stat.S_ISCHR(info.st_mode):
        return None
    return max(0.0, now - info.st_atime)


# -- bounded reads ------------------------------------------------------------


def _read_bounded(path: str, limit: int) -> bytes | None:
    """At most ``limit`` bytes of a regular or procfs file, None when it
    cannot be read; never follows a symlink or waits on a FIFO."""
    try:
        fd = os.open(path, _O_FILE)
    except (OSError, ValueError):
        return None
    try:
        return _read_fd(fd, limit)
    finally:
        os.close(fd)


def _read_at(folder: int, name: str, limit: int) -> bytes | None:
    try:
        fd = os.open(name, _O_FILE, dir_fd=folder)
    except OSError:
        return None
    try:
        return _read_fd(fd, limit)
    finally:
        os.close(fd)


def _read_fd(fd: int, limit: int) -> bytes | None:
    try:
        if _stat.S_ISFIFO(os.fstat(fd).st_mode):
            return None
        chunks, size = [], 0
        while size < limit:
            chunk = os.read(fd, min(65536, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
