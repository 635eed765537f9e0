"""Generates ``sessionid_cffi/_generated_ffi.py``, the out-of-line ABI-mode cffi module.

A build tool, kept out of the package and its wheel: the runtime needs only
the module it writes.

Out-of-line ABI mode parses this cdef once, here, and writes a small
pure-Python module that needs only ``_cffi_backend`` at run time: importing
the package never pays for cffi's C parser, and installing needs no
compiler. Run ``python tools/ffi_build.py`` after editing CDEF; ``--check``
(``tox -e lint``) fails if the committed module differs. The output depends
on cffi's version, so both run with the version pinned in GENERATED_WITH.

The prototypes are Microsoft's, letter for letter. DWORD is declared as
``unsigned int`` because cffi predefines DWORD only on Windows and
``unsigned long`` is 64 bits on Linux: ``unsigned int`` is 32 bits on both,
so ``ffi.new("DWORD *")`` means the same thing everywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

CDEF = """
typedef unsigned int DWORD;
typedef int BOOL;
typedef void *HANDLE;
typedef void *PVOID;
typedef void *PSID;
typedef wchar_t WCHAR;
typedef WCHAR *LPWSTR;

/* processthreadsapi.h (kernel32.dll) */
BOOL WINAPI ProcessIdToSessionId(DWORD dwProcessId, DWORD *pSessionId);
/* sysinfoapi.h (kernel32.dll): where wtsapi32.dll and advapi32.dll are loaded from */
typedef unsigned int UINT;
UINT WINAPI GetSystemDirectoryW(LPWSTR lpBuffer, UINT uSize);
/* winbase.h (kernel32.dll) */
DWORD WINAPI WTSGetActiveConsoleSessionId(void);

/* wtsapi32.h (wtsapi32.dll): the whole process table in one call */
typedef struct _WTS_PROCESS_INFOW {
    DWORD SessionId;
    DWORD ProcessId;
    LPWSTR pProcessName;
    PSID pUserSid;
} WTS_PROCESS_INFOW, *PWTS_PROCESS_INFOW;

typedef enum _WTS_INFO_CLASS {
    WTSUserName = 5,
    WTSWinStationName = 6,
    WTSDomainName = 7,
    WTSConnectState = 8,
    WTSClientName = 10,
    WTSClientAddress = 14,
    WTSClientProtocolType = 16,
    WTSSessionInfo = 24
} WTS_INFO_CLASS;

/* WTSQuerySessionInformationW(WTSClientAddress): where a remote session's
   client is; AF_INET: the IPv4 address in Address[2..5] */
typedef unsigned char BYTE;
typedef struct _WTS_CLIENT_ADDRESS {
    DWORD AddressFamily;
    BYTE Address[20];
} WTS_CLIENT_ADDRESS, *PWTS_CLIENT_ADDRESS;

/* the sessions, with no process of theirs needed */
typedef enum _WTS_CONNECTSTATE_CLASS {
    WTSActive, WTSConnected, WTSConnectQuery, WTSShadow, WTSDisconnected,
    WTSIdle, WTSListen, WTSReset, WTSDown, WTSInit
} WTS_CONNECTSTATE_CLASS;

typedef struct _WTS_SESSION_INFOW {
    DWORD SessionId;
    LPWSTR pWinStationName;
    WTS_CONNECTSTATE_CLASS State;
} WTS_SESSION_INFOW, *PWTS_SESSION_INFOW;

/* LARGE_INTEGER is a union of one 64-bit integer with its halves: same layout */
typedef long long LARGE_INTEGER;

typedef struct _WTSINFOW {
    WTS_CONNECTSTATE_CLASS State;
    DWORD SessionId;
    DWORD IncomingBytes;
    DWORD OutgoingBytes;
    DWORD IncomingFrames;
    DWORD OutgoingFrames;
    DWORD IncomingCompressedBytes;
    DWORD OutgoingCompressedBytes;
    WCHAR WinStationName[32];
    WCHAR Domain[17];
    WCHAR UserName[21];
    LARGE_INTEGER ConnectTime;
    LARGE_INTEGER DisconnectTime;
    LARGE_INTEGER LastInputTime;
    LARGE_INTEGER LogonTime;
    LARGE_INTEGER CurrentTime;
} WTSINFOW, *PWTSINFOW;

BOOL WINAPI WTSEnumerateSessionsW(HANDLE hServer, DWORD Reserved, DWORD Version,
                                  PWTS_SESSION_INFOW *ppSessionInfo, DWORD *pCount);

BOOL WINAPI WTSEnumerateProcessesW(HANDLE hServer, DWORD Reserved, DWORD Version,
                                   PWTS_PROCESS_INFOW *ppProcessInfo, DWORD *pCount);
BOOL WINAPI WTSQuerySessionInformationW(HANDLE hServer, DWORD SessionId,
                                        WTS_INFO_CLASS WTSInfoClass,
                                        LPWSTR *ppBuffer, DWORD *pBytesReturned);
void WINAPI WTSFreeMemory(PVOID pMemory);

/* winbase.h, securitybaseapi.h (advapi32.dll): a process owner's account name */
typedef const WCHAR *LPCWSTR;
typedef enum _SID_NAME_USE {
    SidTypeUser = 1
} SID_NAME_USE, *PSID_NAME_USE;
BOOL WINAPI LookupAccountSidW(LPCWSTR lpSystemName, PSID Sid, LPWSTR Name, DWORD *cchName,
                              LPWSTR ReferencedDomainName, DWORD *cchReferencedDomainName,
                              PSID_NAME_USE peUse);
DWORD WINAPI GetLengthSid(PSID pSid);

/* processthreadsapi.h, handleapi.h (kernel32.dll): kill_session's pinned targets */
HANDLE WINAPI OpenProcess(DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwProcessId);
BOOL WINAPI TerminateProcess(HANDLE hProcess, UINT uExitCode);
BOOL WINAPI CloseHandle(HANDLE hObject);
DWORD WINAPI GetProcessId(HANDLE Process);
/* synchapi.h: whether a pinned process has exited, and waiting for it to end */
DWORD WINAPI WaitForSingleObject(HANDLE hHandle, DWORD dwMilliseconds);
/* errhandlingapi.h: lets a test stand in for a denial Wine never gives */
void WINAPI SetLastError(DWORD dwErrCode);
"""

MODULE = Path(__file__).resolve().parent.parent / "sessionid_cffi" / "_generated_ffi.py"
# The cffi that wrote the committed module; tox's lint env installs exactly it.
GENERATED_WITH = "2.1.1"


def generate(target: Path) -> None:
    import cffi

    ffibuilder = cffi.FFI()
    ffibuilder.cdef(CDEF)
    ffibuilder.set_source("sessionid_cffi._generated_ffi", None)
    ffibuilder.emit_python_code(str(target))


def main(argv: list[str]) -> int:
    import cffi

    if cffi.__version__ != GENERATED_WITH:
        print(
            f"cffi {cffi.__version__} is installed, the module is generated with "
            f"cffi {GENERATED_WITH}: pip install cffi=={GENERATED_WITH} (or tox -e lint)",
            file=sys.stderr,
        )
        return 2
    if argv[1:] == ["--check"]:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp, MODULE.name)
            generate(fresh)
            if fresh.read_bytes() != MODULE.read_bytes():
                stale = f"{MODULE} is stale: run python tools/ffi_build.py"
                print(stale, file=sys.stderr)
                return 1
        print(f"{MODULE.name} matches CDEF")
        return 0
    generate(MODULE)
    print(f"wrote {MODULE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
