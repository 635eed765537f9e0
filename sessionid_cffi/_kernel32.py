"""Windows backend: kernel32.dll through the cffi ABI-mode binding.

``kernel32.dll`` is a KnownDLL: Windows maps it from System32 whatever a
search would find. The other DLLs (``wtsapi32.dll``, ``advapi32.dll``) are
loaded by their full path in the System32 folder (GetSystemDirectoryW), so
no DLL planted in the working or the program's folder can stand in. The
Win32 last error is read with ``ffi.getwinerror()`` right after the call, in
the same thread (cffi saves it per thread). Every string the API returns is
read with a length bound: the size it reports, or the documented maximum.
"""

from __future__ import annotations

from ._errors import (
    ERROR_ACCESS_DENIED,
    ERROR_GEN_FAILURE,
    ERROR_INVALID_PARAMETER,
    SessionIdError,
    access_denied,
    answers_for,
    not_found,
)
from ._generated_ffi import ffi

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._records import ProcessRecord, SessionInfo

# WTSGetActiveConsoleSessionId's answer when no session is attached.
NO_CONSOLE_SESSION = 0xFFFFFFFF
WTS_CURRENT_SERVER_HANDLE = ffi.NULL
# Seconds from 1601-01-01 (FILETIME's epoch) to 1970-01-01.
_FILETIME_TO_POSIX = 11644473600
ERROR_INSUFFICIENT_BUFFER = 122
# LookupAccountSidW's buffers, in characters: account names have at most 256
# (UNLEN), domain names less; a longer answer is asked once more at its size.
_ACCOUNT_CHARS = 257
# The longest strings the API returns without a size: an image name is a
# file name (MAX_PATH, 260, at most; 32767 is the longest path Windows
# has); a WinStation name has 32 characters at most (WINSTATIONNAME_LENGTH).
_IMAGE_CHARS = 32767
_STATION_CHARS = 33
# A listing is taken again when a session changed identity meanwhile.
_LISTING_ATTEMPTS = 3
# The most bytes one WTSQuerySessionInformationW answer may hold (the
# largest, WTSINFOW, has 216): a bigger size is a bad answer, not read.
_WTS_ANSWER_MAX = 65536
# WTS_CLIENT_ADDRESS.AddressFamily values (winsock's AF_INET, AF_INET6).
_AF_INET, _AF_INET6 = 2, 23
# service from the WinStation name's listener part (before "#"): Console,
# Services (session 0), RDP-Tcp#N; other listeners give their own name.
_SERVICES = {"console": "console", "services": "services", "rdp-tcp": "rdp"}

kernel32 = ffi.dlopen("kernel32.dll")
# Bound once: looking a function up on the library object costs a lookup per call.
_process_id_to_session_id = kernel32.ProcessIdToSessionId


def system_directory() -> str:
    """The System32 folder, as GetSystemDirectoryW tells it."""
    size = 260
    for _attempt in range(2):
        buffer = ffi.new("WCHAR[]", size)
        length = int(kernel32.GetSystemDirectoryW(buffer, size))
        if 0 < length < size:
            return str(ffi.string(buffer, length))
        if length == 0:
            break
        size = length  # too small: the answer is the size needed, NUL included
    code, message = ffi.getwinerror()
    raise SessionIdError(
        None, code or ERROR_GEN_FAILURE, f"GetSystemDirectoryW failed: {message}", None
    )


def error_for(pid: int, winerror: int, message: str) -> SessionIdError:
    """The library error for a Win32 error code from ProcessIdToSessionId."""
    if winerror == ERROR_INVALID_PARAMETER:
        return not_found(pid, message, None)
    if winerror == ERROR_ACCESS_DENIED:
        return access_denied(pid, message, None)
    return SessionIdError(pid, winerror, f"ProcessIdToSessionId({pid}) failed: {message}", None)


def station_service(station: str | None) -> str | None:
    """What started a session, from its WinStation name: ``console``,
    ``rdp`` (``RDP-Tcp#N``), ``services`` (session 0); another listener
    (a second RDP listener, Citrix's ``ICA-tcp#N``) gives its own name in
    lower case; None for no name (a disconnected session has none)."""
    listener = (station or "").split("#", 1)[0].lower()
    return _SERVICES.get(listener, listener) or None


class Kernel32Backend:
    """Calls the real ``ProcessIdToSessionId`` in kernel32.dll."""

    name = "kernel32"
    #: A Windows process never changes session: current_session_id() keeps
    #: its answer (the library's one own-session cache, in the package).
    session_is_fixed = True

    def __init__(self) -> None:
        # DLLs beyond kernel32, opened at their first use: {file name: library}.
        self._dlls: dict[str, Any] = {}

    def __repr__(self) -> str:
        return "Kernel32Backend()"

    def session_id(self, pid: int) -> int:
        out = ffi.new("DWORD *")
        if not _process_id_to_session_id(pid, out):
            code, message = ffi.getwinerror()
            if not code:  # FALSE without a last error is still a failure (see below)
                code, message = ERROR_GEN_FAILURE, "failed without setting a last error"
            raise error_for(pid, code, message)
        return int(out[0])

    def native_process_id_to_session_id(self, pid: int, out: object) -> int:
        """The raw call on a checked out-pointer: 0, or the Win32 last error.

        kernel32 returning FALSE without setting a last error is still a
        failure: it is reported as ERROR_GEN_FAILURE (31), the code this
        library uses for a failure with no more precise cause, never as 0
        (which the caller would read as TRUE with ``*out`` unset).
        """
        if _process_id_to_session_id(pid, out):
            return 0
        return int(ffi.getwinerror()[0]) or ERROR_GEN_FAILURE

    def console_session_id(self) -> int | None:
        session = kernel32.WTSGetActiveConsoleSessionId()
        return None if session == NO_CONSOLE_SESSION else int(session)

    def _dll(self, name: str) -> Any:
        if name not in self._dlls:
            self._dlls[name] = ffi.dlopen(f"{system_directory()}\\{name}")
        return self._dlls[name]

    def _account_name(self, sid: Any, names: dict[bytes, str | None]) -> str | None:
        """The account name of ``sid`` (``SYSTEM``, ``alice``) without its
        domain, as WTSUserName names a session's user; None for a NULL SID
        or one that no account maps to. ``names`` keeps the answers by the
        SID's bytes: LookupAccountSidW may ask the LSA, a round trip each."""
        if sid == ffi.NULL:
            return None
        advapi32 = self._dll("advapi32.dll")
        key = bytes(ffi.buffer(sid, advapi32.GetLengthSid(sid)))
        if key not in names:
            names[key] = None
            sizes = (_ACCOUNT_CHARS, _ACCOUNT_CHARS)
            for _attempt in range(2):
                name, domain = ffi.new("WCHAR[]", sizes[0]), ffi.new("WCHAR[]", sizes[1])
                name_size, domain_size = ffi.new("DWORD *", sizes[0]), ffi.new("DWORD *", sizes[1])
                use = ffi.new("SID_NAME_USE *")
                if advapi32.LookupAccountSidW(
                    ffi.NULL, sid, name, name_size, domain, domain_size, use
                ):
                    names[key] = str(ffi.string(name, name_size[0])) or None
                    break
                if ffi.getwinerror()[0] != ERROR_INSUFFICIENT_BUFFER:
                    break  # ERROR_NONE_MAPPED (1332) and the like: no name
                sizes = (name_size[0], domain_size[0])
        return names[key]

    def _enumerate(self, owners: bool = False) -> list[tuple[int, int, str | None, str | None]]:
        """``(pid, session, process name, owner)`` of every process, from one
        WTSEnumerateProcessesW call; the idle process (PID 0, which
        ProcessIdToSessionId refuses) is left out. Each entry is one
        process of one snapshot, so its fields never mix processes. The
        owner (the account name of the entry's user SID) is looked up only
        when ``owners`` asks for it, else None."""
        wtsapi32 = self._dll("wtsapi32.dll")
        table = ffi.new("PWTS_PROCESS_INFOW *")
        count = ffi.new("DWORD *")
        if not wtsapi32.WTSEnumerateProcessesW(WTS_CURRENT_SERVER_HANDLE, 0, 1, table, count):
            code, message = ffi.getwinerror()
            raise SessionIdError(None, code, f"WTSEnumerateProcessesW failed: {message}", None)
        names: dict[bytes, str | None] = {}
        try:
            entries = table[0]
            found = []
            for i in range(count[0]):
                entry = entries[i]
                pid = int(entry.ProcessId)
                if pid == 0:
                    continue
                image = entry.pProcessName
                found.append(
                    (
                        pid,
                        int(entry.SessionId),
                        ffi.string(image, _IMAGE_CHARS) if image != ffi.NULL else None,
                        self._account_name(entry.pUserSid, names) if owners else None,
                    )
                )
        finally:
            wtsapi32.WTSFreeMemory(table[0])
        return found

    def session_ids(self, pids: list[int] | None) -> dict[int, int]:
        """Every process: one WTSEnumerateProcessesW call for the whole
        table. Given PIDs: each one asked like ``session_id`` asks it, so an
        exited process whose handle is still held (which the enumeration no
        longer lists) and PID+1..+3 answer exactly as they do one by one."""
        if pids is None:
            return {pid: session for pid, session, _name, _owner in self._enumerate()}
        return answers_for(self.session_id, pids)

    def _query(self, session: int, info_class: int) -> bytes | None:
        """What ``WTSQuerySessionInformationW`` answers for one information
        class of ``session``, copied out before the buffer is freed
        (``WTSFreeMemory``, in ``finally``); None where it fails, or answers
        with a NULL buffer, no bytes or more than _WTS_ANSWER_MAX. The one
        place that calls it: each field below only decodes these bytes."""
        wtsapi32 = self._dll("wtsapi32.dll")
        buffer = ffi.new("LPWSTR *")
        size = ffi.new("DWORD *")
        if not wtsapi32.WTSQuerySessionInformationW(
            WTS_CURRENT_SERVER_HANDLE, session, info_class, buffer, size
        ):
            return None
        try:
            if buffer[0] == ffi.NULL or not 0 < size[0] <= _WTS_ANSWER_MAX:
                return None
            return bytes(ffi.buffer(buffer[0], size[0]))
        finally:
            if buffer[0] != ffi.NULL:
                wtsapi32.WTSFreeMemory(buffer[0])

    def _text(self, session: int, info_class: int) -> str | None:
        """A string class (``WTSUserName``, ``WTSClientName``): its UTF-16
        up to the first NUL (the answer's size bounds it); None for no
        answer or an empty string."""
        data = self._query(session, info_class)
        if data is None:
            return None
        text = data[: len(data) // 2 * 2].decode("utf-16-le", "surrogatepass")
        return text.split("\0", 1)[0] or None

    def _struct(self, session: int, info_class: int, ctype: str) -> Any:
        """A structure class as a ``ctype`` owned by Python, or None where
        the answer is missing or shorter than the structure."""
        data = self._query(session, info_class)
        if data is None or len(data) < ffi.sizeof(ctype):
            return None
        value = ffi.new(f"{ctype} *")
        ffi.memmove(value, data, ffi.sizeof(ctype))
        return value

    def session_user(self, session: int) -> str | None:
        """``WTSQuerySessionInformationW(WTSUserName)``: the user logged on
        to ``session``, or None (no user, as in session 0, or no answer)."""
        return self._text(session, self._dll("wtsapi32.dll").WTSUserName)

    def _station_names(self) -> dict[int, str | None]:
        """``{session: WinStation name}`` from WTSEnumerateSessionsW, which
        also lists sessions with no process the caller can see; {} where it
        fails: station names only add to a listing that stands without them."""
        wtsapi32 = self._dll("wtsapi32.dll")
        table = ffi.new("PWTS_SESSION_INFOW *")
        count = ffi.new("DWORD *")
        if not wtsapi32.WTSEnumerateSessionsW(WTS_CURRENT_SERVER_HANDLE, 0, 1, table, count):
            return {}
        try:
            entries = table[0]
            stations: dict[int, str | None] = {}
            for i in range(count[0]):
                entry = entries[i]
                name = entry.pWinStationName
                stations[int(entry.SessionId)] = (
                    str(ffi.string(name, _STATION_CHARS)) or None if name != ffi.NULL else None
                )
        finally:
            wtsapi32.WTSFreeMemory(table[0])
        return stations

    def _session_info(self, session: int) -> Any:
        """``WTSQuerySessionInformationW(WTSSessionInfo)`` (a WTSINFOW), or None."""
        return self._struct(session, self._dll("wtsapi32.dll").WTSSessionInfo, "WTSINFOW")

    def logon_time(self, session: int) -> float | None:
        """``LogonTime`` of ``WTSQuerySessionInformationW(WTSSessionInfo)`` as
        a POSIX timestamp; None where Windows does not answer (or says 0)."""
        info = self._session_info(session)
        logon = int(info.LogonTime) if info is not None else 0
        # FILETIME: 100 ns ticks since 1601-01-01 UTC.
        return logon / 10_000_000 - _FILETIME_TO_POSIX if logon > 0 else None

    def session_host(self, session: int) -> str | None:
        """Where a remote session's client is: ``WTSClientAddress`` (IPv4 in
        bytes 2-5 of Address, IPv6 in bytes 0-15, as Microsoft documents
        WTS_CLIENT_ADDRESS), else ``WTSClientName`` (the client computer's
        name); None for a local session or no answer. The client reports
        both itself, so they say where it claims to be, as an ssh login's
        variables do on Linux."""
        wtsapi32 = self._dll("wtsapi32.dll")
        address = self._struct(session, wtsapi32.WTSClientAddress, "WTS_CLIENT_ADDRESS")
        if address is not None:
            raw = bytes(address.Address)
            if address.AddressFamily == _AF_INET and any(raw[2:6]):
                return ".".join(str(byte) for byte in raw[2:6])
            if address.AddressFamily == _AF_INET6 and any(raw[:16]):
                from ipaddress import IPv6Address

                return str(IPv6Address(raw[:16]))
        return self._text(session, wtsapi32.WTSClientName)

    def session_idle(self, session: int) -> float | None:
        """Seconds since the session last saw input: ``CurrentTime -
        LastInputTime`` of its WTSINFOW, for an active session
        (``WTSConnectState``, else WTSINFOW's State); None for a
        disconnected or listening session (no input device, as a Linux
        session without a terminal), where Windows keeps no last input
        time (0) or does not answer."""
        wtsapi32 = self._dll("wtsapi32.dll")
        info = self._session_info(session)
        if info is None:
            return None
        state = self._struct(session, wtsapi32.WTSConnectState, "WTS_CONNECTSTATE_CLASS")
        active = (state[0] if state is not None else info.State) == wtsapi32.WTSActive
        last, now = int(info.LastInputTime), int(info.CurrentTime)
        if not active or last <= 0 or now < last:
            return None
        return (now - last) / 10_000_000

    def process_records(self, fields: frozenset[str] | None = None) -> list[ProcessRecord]:
        """A ``ProcessRecord`` per process from one WTSEnumerateProcessesW
        call: ``comm`` is the image name Windows reports (``python.exe``),
        ``user`` the account name of the process's owner (its user SID, as
        ``LookupAccountSidW`` names it, without the domain; None where no
        account maps to it), ``login`` the user of its session
        (WTSQuerySessionInformationW, asked once a session), ``tty`` its
        session's WinStation name. Windows has no uid, ppid, args or start
        time here: those are None. Of ``fields`` only the owner matters:
        it is looked up only when ``user`` (or everything) is asked for."""
        from ._records import ProcessRecord

        owners = fields is None or "user" in fields
        stations, listed, identities = self._consistent_listing(owners)
        users = {session: user for session, (user, _since) in identities.items()}
        records: list[ProcessRecord] = []
        for pid, session, name, owner in listed:
            records.append(
                ProcessRecord(
                    pid,
                    session,
                    user=owner,
                    login=users[session],
                    tty=stations.get(session),
                    comm=name,
                )
            )
        return records

    def session_infos(self) -> list[SessionInfo]:
        """A ``SessionInfo`` for each session WTSEnumerateSessionsW lists and
        each that has a process, in ascending order: ``tty`` is the
        WinStation name, ``since`` the logon time where Windows tells it;
        ``host`` the client's address or name (``session_host``),
        ``service`` from the station name (``station_service``), ``idle``
        the seconds since its last input (``session_idle``); ``uid`` and
        ``leader`` are None (Windows has neither)."""
        from ._records import SessionInfo

        stations, listed, identities = self._consistent_listing(False)
        counts: dict[int, int] = {}
        for _pid, session, _name, _owner in listed:
            counts[session] = counts.get(session, 0) + 1
        console = self.console_session_id()
        return [
            SessionInfo(
                session,
                None,
                identities[session][0],
                None,
                stations.get(session),
                identities[session][1],
                counts.get(session, 0),
                session == console,
                host=self.session_host(session),
                service=station_service(stations.get(session)),
                idle=self.session_idle(session),
            )
            for session in sorted(identities)
        ]

    def _identity(self, session: int) -> tuple[str | None, float | None]:
        """What tells one logon of ``session`` from the next one that
        reuses its number: its user and its logon time."""
        return self.session_user(session), self.logon_time(session)

    def _consistent_listing(
        self, owners: bool
    ) -> tuple[
        dict[int, str | None],
        list[tuple[int, int, str | None, str | None]],
        dict[int, tuple[str | None, float | None]],
    ]:
        """The stations, the process list and each session's identity (user,
        logon time) as one view: the identities are asked before and after
        the process list, and the whole is taken again (up to
        _LISTING_ATTEMPTS times) when one changed, as when a session number
        is reused by a new logon between the calls; a session still changing
        after that gets no user and no logon time (None) rather than
        another logon's. A session that appears only in the process list
        (started meanwhile) is asked after it, twice."""
        for _attempt in range(_LISTING_ATTEMPTS):
            stations = self._station_names()
            before = {session: self._identity(session) for session in stations}
            listed = self._enumerate(owners)
            sessions = stations.keys() | {session for _pid, session, _name, _owner in listed}
            for session in sessions - before.keys():
                before[session] = self._identity(session)
            after = {session: self._identity(session) for session in sessions}
            changed = {session for session in sessions if after[session] != before[session]}
            if not changed:
                break
        for session in changed:
            after[session] = (None, None)
        return stations, listed, after
