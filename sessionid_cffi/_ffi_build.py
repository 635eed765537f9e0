"""Generates ``_kernel32_ffi.py``, the out-of-line ABI-mode cffi module.

Out-of-line ABI mode parses this cdef once, here, and writes a small
pure-Python module that needs only ``_cffi_backend`` at run time: importing
the package never pays for cffi's C parser, and installing needs no
compiler. Run ``python -m sessionid_cffi._ffi_build`` after editing CDEF;
``--check`` fails if the committed module differs (CI runs it).

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
    WTSDomainName = 7
} WTS_INFO_CLASS;

BOOL WINAPI WTSEnumerateProcessesW(HANDLE hServer, DWORD Reserved, DWORD Version,
                                   PWTS_PROCESS_INFOW *ppProcessInfo, DWORD *pCount);
BOOL WINAPI WTSQuerySessionInformationW(HANDLE hServer, DWORD SessionId,
                                        WTS_INFO_CLASS WTSInfoClass,
                                        LPWSTR *ppBuffer, DWORD *pBytesReturned);
void WINAPI WTSFreeMemory(PVOID pMemory);
"""

MODULE = Path(__file__).with_name("_kernel32_ffi.py")


def generate(target: Path) -> None:
    import cffi

    ffibuilder = cffi.FFI()
    ffibuilder.cdef(CDEF)
    ffibuilder.set_source("sessionid_cffi._kernel32_ffi", None)
    ffibuilder.emit_python_code(str(target))


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp, MODULE.name)
            generate(fresh)
            if fresh.read_bytes() != MODULE.read_bytes():
                stale = f"{MODULE} is stale: run python -m sessionid_cffi._ffi_build"
                print(stale, file=sys.stderr)
                return 1
        print(f"{MODULE.name} matches CDEF")
        return 0
    generate(MODULE)
    print(f"wrote {MODULE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
