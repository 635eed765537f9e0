"""Linux backend: the kernel audit login session, read from procfs.

Mapping (see docs/linux.md):
- session = ``/proc/<pid>/sessionid``, the audit session the kernel assigns
  at login (pam_loginuid) and children inherit; unset (4294967295) is
  session 0, the system/services session (audit ids start at 1);
- a kernel without audit support has no ``sessionid`` file: the logind
  session in ``/proc/<pid>/cgroup`` (``session-N.scope`` or
  ``session-cN.scope``) is used instead, and no session scope means 0;
- ENOENT/ESRCH -> 87, EACCES/EPERM -> 5, others to the nearest Win32 code.

Test seam: every step that touches the kernel goes through this module's
global ``os`` (``os.open``, ``os.read``, ``os.pidfd_open``, ``os.listdir``,
``os.readlink``, ``os.close``), looked up at call time. tests/test_pid_reuse.py
replaces it with a proxy that kills a process and starts a newcomer on its
PID between two steps; keep those calls spelled ``os.<name>`` (or bound from
``os`` inside the call) so that seam keeps reaching every step.
"""

import os
from errno import EINVAL, ENOENT, ENOSYS, EPERM, ESRCH

from .._errors import (
    ERROR_INVALID_DATA,
    ERROR_NOT_SUPPORTED,
    BackendUnavailableError,
    SessionIdError,
    answers_for,
    error_from_oserror,
    not_found,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .._records import ProcessRecord, SessionInfo

AUDIT_UNSET = 4294967295
# The kernel's hard ceiling for pid_max (PID_MAX_LIMIT, include/linux/threads.h):
# PIDs are allocated below pid_max, so this and anything above names no
# process, and is refused without a syscall.
PID_MAX_LIMIT = 4194304
_DWORD_DIGITS = 10
# One process's files: never follow a symlink (procfs has none there) and
# never block (a FIFO in a tree that is not procfs would wait for a writer).
_O_FILE = (
    os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
)  # not O_CLOEXEC: absent on Windows, and os.open sets it anyway (PEP 446)
# A cgroup file lists every hierarchy (up to a path each): read it whole, up to this.
_CGROUP_LIMIT = 1 << 20
# The bulk pass opens /proc itself with the same defences; O_DIRECTORY is
# absent on Windows, where this module must still import.
_O_DIRECTORY = _O_FILE | getattr(os, "O_DIRECTORY", 0)
# How many distinct sessionid contents a backend keeps parsed (a bound, not a tuning).
_PARSED_LIMIT = 1024
# A process that exited (or is hidden from us) since /proc was listed.
_GONE = (FileNotFoundError, ProcessLookupError, PermissionError)


def parse_sessionid(pid: int, path: str, data: bytes) -> int:
    """Turn the bytes of a ``sessionid`` file into a session number."""
    digits = data[:-1] if data.endswith(b"\n") else data
    if not digits.isdigit() or len(digits) > _DWORD_DIGITS or not digits.isascii():
        raise _malformed(pid, path, data)
    value = int(digits)
    if value == AUDIT_UNSET:
        return 0
    if value > AUDIT_UNSET:
        raise _malformed(pid, path, data)
    return value


def parse_cgroup(pid: int, path: str, data: bytes) -> int:
    """The logind session in a ``cgroup`` file, for kernels without audit:
    ``/user.slice/user-1000.slice/session-3.scope`` -> 3,
    ``.../session-c3.scope`` -> 3, anything else -> 0.

    Lines are ``id:controllers:path``. Only logind's own place counts, whole
    components: a user can make ``session-7.scope`` under its delegated
    ``user@UID.service`` (or any name there), which is no login, so such a
    path answers 0; a session scope at logind's place must be a whole
    ``session-N.scope`` or ``session-cN.scope`` (logind names a session
    after its audit id, or ``c`` and a counter without audit), else the
    file is malformed. The first line at logind's place decides."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    paths = []
    for line in lines:
        hierarchy, _, rest = line.partition(b":")
        _, colon, cgroup_path = rest.partition(b":")
        if not hierarchy.isdigit() or not hierarchy.isascii() or not colon:
            raise _malformed(pid, path, data)
        if not cgroup_path.startswith(b"/"):
            raise _malformed(pid, path, data)
        paths.append(cgroup_path)
    if not paths:
        raise _malformed(pid, path, data)  # procfs lists at least one hierarchy
    for cgroup_path in paths:
        components = cgroup_path.split(b"/")
        if len(components) != 4 or components[1] != b"user.slice":
            continue
        user, scope = components[2], components[3]
        uid = user[5:-6]
        if not (user.startswith(b"user-") and user.endswith(b".slice") and _is_number(uid)):
            continue
        if not scope.startswith(b"session-"):
            continue
        name = scope[8:-6] if scope.endswith(b".scope") else b""
        if name.startswith(b"c"):
            name = name[1:]
        if not _is_number(name):
            raise _malformed(pid, path, data)
        value = int(name)
        if value >= AUDIT_UNSET:
            raise _malformed(pid, path, data)
        return value
    return 0


def _is_number(digits: bytes) -> bool:
    """ASCII digits of a DWORD's length at most (no sign, no space)."""
    return digits.isdigit() and digits.isascii() and len(digits) <= _DWORD_DIGITS


def _malformed(pid: int, path: str, data: bytes) -> SessionIdError:
    shown = data[:40] + (b"..." if len(data) > 40 else b"")
    return SessionIdError(
        pid,
        ERROR_INVALID_DATA,
        f"{path} holds {shown!r}, which is not a session id; is proc_root a real procfs?",
        None,
    )


class ProcfsBackend:
    """Answers the Win32 contract from a procfs mount.

    ``proc_root`` is a procfs mount, or a tree laid out like one (it must
    have a ``self`` entry, which is how a missing procfs is told apart from
    a missing process). ``live`` says whether that tree shows this kernel's
    processes in the caller's PID namespace (default: when ``proc_root`` is
    ``/proc``): then ``pidfd_open`` tells processes from threads cheaply;
    otherwise the ``Tgid:`` line of ``status`` does. ``run_root`` is where
    systemd-logind keeps its state (for the console session).
    """

    name = "procfs"

    def __init__(
        self, proc_root: str = "/proc", *, live: bool | None = None, run_root: str = "/run"
    ) -> None:
        if not isinstance(proc_root, str) or not proc_root:
            raise TypeError(f"proc_root must be a non-empty str, not {proc_root!r}")
        self.proc_root = proc_root.rstrip("/") or "/"
        self.live = proc_root == "/proc" if live is None else live
        self.run_root = run_root
        # Whether pidfd_open tells threads apart here (off once it is missing).
        self._pidfd = self.live
        # The os.getpid() for which proc_root was seen to be this PID
        # namespace's procfs (0: not yet, or another process since a fork).
        self._namespace_checked_for = 0
        # sessionid contents already parsed: {b"4294967295": 0, b"3": 3, ...}
        self._parsed: dict[bytes, int] = {}

    def __repr__(self) -> str:
        return f"ProcfsBackend(proc_root={self.proc_root!r}, live={self.live})"

    # -- one process ---------------------------------------------------
    # OS errors are translated in one place per entry point (session_id,
    # session_ids(None), the listing), with error_from_oserror; the steps
    # below let OSError through, or raise the library's errors for what
    # only they know (a thread id, malformed content).
    def session_id(self, pid: int) -> int:
        if pid == 0 or pid >= PID_MAX_LIMIT:
            # PID 0 is the idle task, never a process; higher PIDs cannot exist.
            raise not_found(pid, "no such process", ESRCH)
        entry = str(pid)
        if self.live:
            own = os.getpid()
            if pid == own:
                # /proc/self is the caller in any PID namespace; a process is no thread.
                entry = "self"
            elif own != self._namespace_checked_for:
                self._check_pid_namespace(pid, own)
        check_thread = entry != "self"
        path = f"{self.proc_root}/{entry}/sessionid"
        try:
            try:
                data = self._read_process_file(pid, path, check_thread)
            except FileNotFoundError:
                if self._has_audit():
                    raise
                path = f"{self.proc_root}/{entry}/cgroup"
                return parse_cgroup(
                    pid, path, self._read_process_file(pid, path, check_thread, whole=True)
                )
        except SessionIdError:
            raise
        except OSError as err:
            raise error_from_oserror(pid, err, err.filename or path) from err
        # Most processes share a few sessions: parse each distinct content
        # once (a dict lookup instead of a parse: ~0.2 us of a ~9 us query).
        session = self._parsed.get(data)
        if session is None:
            session = parse_sessionid(pid, path, data)
            if len(self._parsed) >= _PARSED_LIMIT:
                self._parsed.clear()
            self._parsed[data] = session
        return session

    def _check_pid_namespace(self, pid: int | None, own: int) -> None:
        """Refuse to answer from a procfs of another PID namespace.

        After ``unshare -pf`` without a procfs of its own, ``/proc/<N>`` is
        the host's process N, not this namespace's: any answer would belong
        to another process. ``/proc/self`` still names the caller, under the
        number that procfs uses for it, which tells the two apart. The
        verdict is kept for this PID only: a child forked into a new
        namespace (a new PID) looks again.
        """
        try:
            shown = os.readlink(f"{self.proc_root}/self")
        except OSError:
            return  # no procfs at all: the read itself says so
        if shown != str(own):
            asked = "any process but itself" if pid is None else f"process {pid}"
            raise BackendUnavailableError(
                pid,
                ERROR_NOT_SUPPORTED,
                f"cannot answer for {asked}: {self.proc_root} belongs to another PID "
                f"namespace (it shows this process as {shown}, os.getpid() is {own}); "
                "mount a procfs for this namespace, for example with "
                "unshare --pid --fork --mount-proc",
                None,
            )
        self._namespace_checked_for = own

    def _read_process_file(
        self, pid: int, path: str, check_thread: bool, whole: bool = False
    ) -> bytes:
        """Read ``path`` of process ``pid``, refusing thread ids.

        The file is opened before the thread check and read after it: an
        open procfs file stays bound to the task it was opened for, so if
        the PID was reaped and reused in between, the read fails (ESRCH)
        instead of answering for the newcomer. ``whole`` reads up to
        _CGROUP_LIMIT bytes (more is refused as malformed), else 64.
        """
        try:
            fd = os.open(path, _O_FILE)
        except PermissionError:
            # hidepid=1 denies another user's files, thread ids' too; the
            # thread check does not need them (pidfd_open is no procfs
            # file), so a thread id still answers 87, not 5 (C4).
            if check_thread:
                self._check_not_thread(pid)
            raise
        try:
            if check_thread:
                if self._pidfd:
                    # pidfd_open refuses thread ids; inline, not through
                    # _check_not_thread: one call less per query (~0.1 us).
                    try:
                        os.close(os.pidfd_open(pid))
                    except (OSError, AttributeError) as err:
                        self._check_not_thread(pid, err)
                else:
                    self._check_not_thread(pid)
            # One read: procfs answers these small files in full.
            data = os.read(fd, 64)
            if whole:
                data = _read_rest(fd, data, pid, path)
        finally:
            os.close(fd)
        return data

    def _check_not_thread(self, pid: int, pidfd_error: Exception | None = None) -> None:
        """ProcessNotFoundError if ``pid`` is a thread id (or exited); other
        OS errors go through to the caller's translation.

        ``pidfd_error``: how pidfd_open(pid) just failed, if it was tried.
        """
        if self._pidfd and pidfd_error is None:
            try:
                os.close(os.pidfd_open(pid))
                return
            except (OSError, AttributeError) as err:
                pidfd_error = err
        if isinstance(pidfd_error, OSError):
            code = pidfd_error.errno
            if code in (ENOENT, EINVAL):
                # pidfd_open refuses non-leader threads (older kernels: EINVAL).
                raise not_found(pid, "it is a thread id, not a process id", code) from pidfd_error
            if code == ESRCH:
                raise not_found(pid, "the process exited", ESRCH) from pidfd_error
            if code not in (ENOSYS, EPERM):
                # Named here: the error holds no file name, and the caller's
                # fallback (the sessionid path) is not what failed.
                raise error_from_oserror(pid, pidfd_error, "pidfd_open") from pidfd_error
        if pidfd_error is not None:
            # No pidfd_open here (old kernel, seccomp, or a Python built
            # without os.pidfd_open): use status from now on.
            self._pidfd = False
        path = f"{self.proc_root}/{pid}/status"
        fd = os.open(path, _O_FILE)
        try:
            status = os.read(fd, 1024)
        except OSError as err:
            raise error_from_oserror(pid, err, path) from err  # read() names no file
        finally:
            os.close(fd)
        start = status.find(b"\nTgid:")
        end = status.find(b"\n", start + 1)
        tgid = status[start + 6 : end].strip() if start >= 0 and end > 0 else b""
        if not tgid.isdigit() or not tgid.isascii():
            raise _malformed(pid, path, status)
        if int(tgid) != pid:
            raise not_found(pid, f"it is a thread id of process {int(tgid)}, not a process id")

    def _has_audit(self) -> bool:
        """Whether the kernel has audit sessions; fails if procfs is absent."""
        if os.path.exists(f"{self.proc_root}/self/sessionid"):
            return True
        if not os.path.exists(f"{self.proc_root}/self"):
            raise BackendUnavailableError(
                None,
                ERROR_NOT_SUPPORTED,
                f"no procfs at {self.proc_root} (nothing at {self.proc_root}/self); "
                "mount it with: mount -t proc proc /proc",
                ENOENT,
            )
        return False

    # -- the console and bulk queries ----------------------------------
    def console_session_id(self) -> int | None:
        """Active session of seat0 as systemd-logind records it, else None.

        logind names sessions after their audit session id when the kernel
        has one; otherwise ``cN``, mapped to N as in ``parse_cgroup``.
        """
        fields = _read_env_file(f"{self.run_root}/systemd/seats/seat0")
        name = fields.get("ACTIVE", "")
        if not name or "/" in name or "\0" in name or name.startswith("."):
            return None  # not a session name: never read a file outside sessions/
        audit = _read_env_file(f"{self.run_root}/systemd/sessions/{name}").get("AUDIT", "")
        for candidate in (audit, name, name[1:] if name.startswith("c") else ""):
            if candidate.isdigit() and candidate.isascii() and 0 < int(candidate) < AUDIT_UNSET:
                return int(candidate)
        return None

    def session_details(
        self, infos: "list[SessionInfo]", members: "dict[int, list[ProcessRecord]]"
    ) -> "list[SessionInfo]":
        """``infos`` with host, service and idle filled (``sessions()`` calls
        this with each session's records, leader first). The reading lives
        in .details, loaded here on first use: a query never pays for it."""
        from .details import describe

        return describe(self.proc_root, self.run_root, infos, members, self._has_audit())

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        if pids is not None:
            return answers_for(self.session_id, pids)
        return self._scan()

    def _open_root(self) -> tuple[int, list[bytes]]:
        """A descriptor of the procfs root and its entries. Files are then
        opened relative to it: the kernel walks ``<pid>/<file>`` instead of
        the whole path, which makes a pass as fast as a C loop. Entries are
        bytes, as the kernel gives them: str paths cost an encoding a call
        (~0.2 us of ~4 us an open). A procfs of another PID namespace is
        refused: its entries are not our PIDs."""
        root = self.proc_root
        if self.live and os.getpid() != self._namespace_checked_for:
            self._check_pid_namespace(None, os.getpid())
        root_fd = -1
        try:
            root_fd = os.open(root, _O_DIRECTORY)
            # By path, not root_fd: a descriptor lists as str. One more open
            # of /proc (~3 us) against an encoding per process saved.
            return root_fd, os.listdir(os.fsencode(root))
        except OSError as err:
            if root_fd >= 0:
                os.close(root_fd)
            raise error_from_oserror(None, err, f"list {root}") from err

    def _scan(self) -> dict[int, int]:
        """Every process in one pass; readdir lists processes only, never
        thread ids, so no thread check is needed. A process that exits or
        is hidden from us between the listing and the read is left out."""
        root_fd, names = self._open_root()
        name = b""
        try:
            if not self._has_audit():
                return self._scan_cgroups(names)
            found = {}
            # Most processes share a few sessions: parse each distinct content once.
            parsed: dict[bytes, int] = {}
            # Local names: three global+attribute lookups fewer per process,
            # about 0.1 ms of ~6 ms a pass over 1,000 processes, where
            # session_ids() runs at 1.2x of its 1.25x budget (benchmarks).
            op, rd, cl = os.open, os.read, os.close
            for name in names:
                if not name.isdigit():
                    continue
                path = name + b"/sessionid"
                try:
                    fd = op(path, _O_FILE, dir_fd=root_fd)
                    try:
                        data = rd(fd, 64)
                    finally:
                        cl(fd)
                except _GONE:
                    continue  # exited since the listing, or hidden from us
                pid = int(name)
                session = parsed.get(data)
                if session is None:
                    session = parsed[data] = parse_sessionid(pid, os.fsdecode(path), data)
                found[pid] = session
            return found
        except SessionIdError:
            raise
        except OSError as err:
            # Any other failure to read an entry (no descriptor left, ...)
            # is said as such: never a silently shorter table.
            where = f"{self.proc_root}/{os.fsdecode(name)}/sessionid"
            raise error_from_oserror(int(name), err, where) from err
        finally:
            os.close(root_fd)

    def _scan_cgroups(self, names: list[bytes]) -> dict[int, int]:
        """The listing without audit: each process as ``session_id`` asks.
        A cgroup path is partly chosen by users (delegated cgroups): one
        that is malformed fails that process's own query, and leaves only
        that process out of the listing."""
        found: dict[int, int] = {}
        for name in names:
            if not name.isdigit():
                continue
            pid = int(name)
            try:
                found[pid] = self.session_id(pid)
            except (ProcessLookupError, PermissionError):
                continue
            except SessionIdError as err:
                if err.winerror != ERROR_INVALID_DATA:
                    raise
        return found

    def process_records(self, fields: frozenset[str] | None = None) -> "list[ProcessRecord]":
        """A ``ProcessRecord`` of every process, in one pass; only the
        files that ``fields`` need are read (None: every field).

        Files, per process: ``sessionid`` (``cgroup`` without audit) always;
        ``stat`` for ppid, tty and start time; ``comm`` for comm when stat
        is not read anyway; ``cmdline`` for args; the owner from one
        ``stat`` of the directory ``/proc/<pid>``, whose owner the kernel
        keeps at the effective uid even for a process that is not dumpable
        (the files inside then show root), which is how procps reads it
        too (one syscall, where ``status`` costs three times more); the login
        uid from ``loginuid``, once a session: the kernel gives every write
        of ``loginuid`` a new session id (and an unset one to an unset
        loginuid), so a session has exactly one login uid.

        Consistency: the session file is opened first and read last. A
        procfs file stays bound to the process it was opened for and fails
        (ESRCH) once that process is reaped, so a successful last read
        proves the process held its PID while the other files were read:
        no field can come from a newcomer that reused the PID (the
        ``loginuid`` of a new session is read after that, so the session
        file is read once more after it). Processes that vanish (or are
        hidden) mid-pass are left out.
        """
        from .._records import RECORD_FIELDS, ProcessRecord

        wanted = frozenset(RECORD_FIELDS) if fields is None else fields
        need_stat = not wanted.isdisjoint(("ppid", "tty", "started"))
        need_comm = "comm" in wanted and not need_stat
        need_owner = not wanted.isdisjoint(("uid", "user"))
        need_login = not wanted.isdisjoint(("luid", "login"))
        need_args = "args" in wanted
        audit = self._has_audit()
        session_file, session_size = (b"/sessionid", 64) if audit else (b"/cgroup", 65536)
        parse = parse_sessionid if audit else parse_cgroup
        root_fd, names = self._open_root()
        logins: dict[int, tuple[int | None, str | None]] = {0: (None, None)}
        user_names: dict[int, str | None] = {}
        parsed: dict[bytes, int] = {}
        records: list[ProcessRecord] = []
        op, rd, cl, st = os.open, os.read, os.close, os.stat
        # Built as the tuple it is: ProcessRecord's checking constructor
        # costs ~1 us a record, and these eleven values are already in order.
        new_tuple = tuple.__new__
        try:
            clock = _BootClock(self.proc_root) if "started" in wanted else None
            for name in names:
                if not name.isdigit():
                    continue
                path = name + session_file
                try:
                    first = op(path, _O_FILE, dir_fd=root_fd)
                except _GONE:
                    continue
                except OSError as err:
                    where = f"{self.proc_root}/{os.fsdecode(path)}"
                    raise error_from_oserror(int(name), err, where) from err
                pid = int(name)
                ppid = uid = user = tty = comm = args = started = None
                try:
                    if need_stat:
                        ppid, tty_nr, ticks, comm = _parse_stat(
                            pid, _read_at(root_fd, name + b"/stat", 1024)
                        )
                        tty = _tty_name(tty_nr, self.proc_root) if tty_nr else None
                        if clock is not None:
                            started = clock.time_of(ticks)
                    elif need_comm:
                        comm = _text(_read_at(root_fd, name + b"/comm", 64).rstrip(b"\n"))
                    if need_owner:
                        # The directory, never a file in it: see the docstring.
                        uid = st(name, dir_fd=root_fd).st_uid
                        if uid in user_names:
                            user = user_names[uid]
                        else:
                            user = user_names[uid] = _passwd_name(uid)
                    if need_args:
                        args = _args_text(_read_all_at(root_fd, name + b"/cmdline"))
                    data = rd(first, session_size)  # last: see the docstring
                    try:
                        if not audit:  # read whole, as session_id reads it
                            data = _read_rest(first, data, pid, os.fsdecode(path))
                        session = parsed.get(data)
                        if session is None:
                            session = parsed[data] = parse(pid, os.fsdecode(path), data)
                    except SessionIdError:
                        if audit:
                            raise  # the kernel wrote it: proc_root is no procfs
                        continue  # a cgroup path users shaped: only this record fails
                    if need_login and session not in logins:
                        luid = None
                        if audit:
                            luid = _login_uid(pid, _read_at(root_fd, name + b"/loginuid", 64))
                            if os.pread(first, session_size, 0) != data:
                                continue  # changed login meanwhile: not one consistent record
                        logins[session] = (luid, None if luid is None else _passwd_name(luid))
                except _GONE:
                    continue
                except SessionIdError:
                    raise  # malformed content (13): already the library's error
                except OSError as err:
                    where = f"{self.proc_root}/{os.fsdecode(name)}"
                    raise error_from_oserror(pid, err, where) from err
                finally:
                    cl(first)
                luid, login = logins[session] if need_login else (None, None)
                records.append(
                    new_tuple(
                        ProcessRecord,
                        (pid, session, ppid, uid, user, luid, login, tty, comm, args, started),
                    )
                )
        finally:
            cl(root_fd)
        return records


def _read_rest(fd: int, data: bytes, pid: int, path: str) -> bytes:
    """``data`` (a first read of ``fd``) and the rest of the file, up to
    _CGROUP_LIMIT bytes in all; a longer file is refused as malformed."""
    chunks, size = [data], len(data)
    while chunks[-1] and size <= _CGROUP_LIMIT:
        chunks.append(os.read(fd, 65536))
        size += len(chunks[-1])
    data = b"".join(chunks)
    if size > _CGROUP_LIMIT:
        raise _malformed(pid, path, data)
    return data


def _read_env_file(path: str) -> dict[str, str]:
    """KEY=value lines of a systemd state file; {} when it is absent."""
    try:
        with open(path, encoding="utf-8", errors="replace", opener=_open_nonblocking) as file:
            lines = file.read(65536).splitlines()
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return {}
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _open_nonblocking(path: str, flags: int) -> int:
    """Opener that never waits on a FIFO planted where a state file should be."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


# -- helpers of process_records ---------------------------------------------


def _read_at(root_fd: int, path: bytes, size: int) -> bytes:
    """One read of a small procfs file (procfs answers these in full)."""
    fd = os.open(path, _O_FILE, dir_fd=root_fd)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


# cmdline holds the whole argument vector (up to ARG_MAX, megabytes); args
# keeps its first 128 KiB (131072 bytes) exactly, as docs/linux.md says.
_ARGS_LIMIT = 1 << 17


def _read_all_at(root_fd: int, path: bytes) -> bytes:
    """The first _ARGS_LIMIT bytes of a file, never a byte more read: one
    small read for the usual short command line, then large ones."""
    fd = os.open(path, _O_FILE, dir_fd=root_fd)
    try:
        chunks, size, want = [], 0, 4096
        while size < _ARGS_LIMIT:
            chunk = os.read(fd, min(want, _ARGS_LIMIT - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            want = 65536
        return b"".join(chunks)
    finally:
        os.close(fd)


def _text(data: bytes) -> str:
    # A byte that is not UTF-8 becomes a lone surrogate (U+DC80-U+DCFF, as
    # os.fsdecode does), which no valid text holds: os.fsencode() gives the
    # bytes back, and the CLI shows it as ? and JSON as a \udcXX escape.
    return data.decode("utf-8", "surrogateescape")


def _args_text(cmdline: bytes) -> str | None:
    """``cmdline``'s NUL-separated arguments joined by spaces, without the
    NULs that end it (a process that rewrote its title, as setproctitle
    does, pads its old argument space with them); None when empty (kernel
    threads and zombies have no command line)."""
    cmdline = cmdline.rstrip(b"\0")
    return _text(cmdline.replace(b"\0", b" ")) if cmdline else None


def _parse_stat(pid: int, data: bytes) -> tuple[int, int, int, str]:
    """``(ppid, tty_nr, starttime in clock ticks, comm)`` of a ``stat`` line:
    ``pid (comm) state ppid pgrp session tty_nr ... starttime(22nd) ...``.
    comm may hold spaces and parentheses: it ends at the last ``)``."""
    open_at, close_at = data.find(b"("), data.rfind(b")")
    rest = data[close_at + 2 :].split()
    if open_at < 0 or close_at < open_at or len(rest) < 20:
        raise _malformed(pid, f"/proc/{pid}/stat", data)
    try:
        return int(rest[1]), int(rest[4]), int(rest[19]), _text(data[open_at + 1 : close_at])
    except ValueError:
        raise _malformed(pid, f"/proc/{pid}/stat", data) from None


def _login_uid(pid: int, data: bytes) -> int | None:
    """A ``loginuid`` file as a number, None when unset (2**32-1)."""
    # The same format as sessionid: a DWORD, unset read as 0.
    uid = parse_sessionid(pid, f"/proc/{pid}/loginuid", data)
    return None if uid == 0 and not data.startswith(b"0") else uid


def _passwd_name(uid: int) -> str | None:
    """The passwd name of ``uid``, None where passwd has no entry (the uid
    field still says who it is: a name is never a number in a string)."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


class _BootClock:
    """Turns ``stat``'s start time (clock ticks since boot) into a POSIX
    timestamp with the boot time (``btime`` in ``/proc/stat``), as ps does.

    A tree without a ``stat`` file (laid out like procfs, not one: a real
    procfs always has it) has no boot time: start times are then unknown
    (None), and every other field still answers. A ``stat`` that is there
    but holds no boot time is refused (13), as any other malformed file."""

    def __init__(self, proc_root: str) -> None:
        self.ticks_per_second = os.sysconf("SC_CLK_TCK")
        self.boot: int | None = 0
        path = f"{proc_root}/stat"
        try:
            with open(path, "rb", opener=_open_nonblocking) as file:
                lines = file.read(1 << 20).splitlines()
        except FileNotFoundError:
            self.boot, lines = None, []
        except OSError as err:
            raise error_from_oserror(None, err, f"read {path}") from err
        for line in lines:
            if line.startswith(b"btime ") and line[6:].isdigit() and line[6:].isascii():
                self.boot = int(line[6:])
        if self.boot == 0:
            raise SessionIdError(
                None, ERROR_INVALID_DATA, f"no boot time (btime) in {proc_root}/stat", None
            )

    def time_of(self, ticks: int) -> float | None:
        return None if self.boot is None else self.boot + ticks / self.ticks_per_second


# Unix98 pseudo-terminal slaves: majors 136-143 (pts/0 ... pts/2047).
_PTS_MAJORS = range(136, 144)
_tty_drivers: list[tuple[int, int, int, str]] = []


def _tty_name(tty_nr: int, proc_root: str) -> str:
    """The device name of ``stat``'s ``tty_nr`` (``pts/3``, ``tty1``,
    ``ttyS0``, ``console``), from ``/proc/tty/drivers`` for other devices;
    ``major:minor`` when no driver claims it."""
    major = (tty_nr >> 8) & 0xFFF
    minor = (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if major in _PTS_MAJORS:
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    if not _tty_drivers:
        _tty_drivers.extend(_read_tty_drivers(proc_root))
    for driver_major, low, high, device in _tty_drivers:
        if driver_major == major and low <= minor <= high:
            return device if low == high else f"{device}{minor}"
    return f"{major}:{minor}"


def _read_tty_drivers(proc_root: str) -> list[tuple[int, int, int, str]]:
    """``(major, first minor, last minor, name)`` of each ``/proc/tty/drivers``
    line (``name /dev/ttyS 4 64-111 serial``); a sentinel when unreadable."""
    drivers = [(-1, 0, 0, "")]
    try:
        with open(f"{proc_root}/tty/drivers", "rb", opener=_open_nonblocking) as file:
            lines = file.read(1 << 16).splitlines()
    except OSError:
        return drivers
    for line in lines:
        parts = line.split()
        if len(parts) < 4 or not parts[2].isdigit():
            continue
        low, _, high = parts[3].partition(b"-")
        if low.isdigit() and (high or low).isdigit() and parts[1].startswith(b"/dev/"):
            drivers.append((int(parts[2]), int(low), int(high or low), _text(parts[1][5:])))
    return drivers
