"""Windows-lane benchmark: the cffi binding against ctypes and pywin32, in
one Windows process under Wine. Run with

    python tests/wine/lane.py -- benchmarks/bench_windows.py -s -q

(or ``tox -e wine -- benchmarks/bench_windows.py -s -q``). It prints a table
of medians and writes benchmarks/results/windows.json. Targets (docs/design.md):
the raw cffi call at most 0.8x ctypes; process_id_to_session_id on another
process within 1.1x of pywin32's win32ts.ProcessIdToSessionId;
current_session_id() no slower than pywin32 on the own PID.
"""

from __future__ import annotations

import ctypes
import json
import os
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import pytest

import sessionid_cffi as s

pytestmark = pytest.mark.skipif(sys.platform != "win32", reason="Windows-lane benchmark")

ROUNDS = 15


def per_call(functions: dict[str, tuple[Callable[[], object], int]]) -> dict[str, float]:
    """Median seconds per call of each function; the rounds interleave the
    functions, so a slow moment of the machine hits all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(ROUNDS):
        for name, (function, number) in functions.items():
            samples[name].append(timeit.Timer(function).timeit(number) / number)
    return {name: statistics.median(values) for name, values in samples.items()}


def test_windows_lane_benchmark() -> None:
    import win32ts

    from sessionid_cffi._kernel32 import _process_id_to_session_id as cffi_call

    own = os.getpid()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        out = s.ffi.new("DWORD *")
        c_out = ctypes.c_ulong()
        c_call = ctypes.windll.kernel32.ProcessIdToSessionId  # type: ignore[attr-defined]
        c_ref = ctypes.byref(c_out)
        # ctypes keeping the last error, the guarantee cffi gives every call
        # (ffi.getwinerror): what a ctypes binding needs to report failures.
        c_le_call = ctypes.WinDLL("kernel32", use_last_error=True).ProcessIdToSessionId  # type: ignore[attr-defined]
        s.current_session_id()  # first call loads the backend
        rows = per_call(
            {
                "own: bare cffi call (kernel32 via the binding)": (
                    lambda: cffi_call(own, out),
                    50_000,
                ),
                "own: sessionid_cffi.ProcessIdToSessionId (raw API, checked)": (
                    lambda: s.ProcessIdToSessionId(own, out),
                    50_000,
                ),
                "own: ctypes": (lambda: c_call(own, c_ref), 50_000),
                "own: ctypes, use_last_error=True": (lambda: c_le_call(own, c_ref), 50_000),
                "own: pywin32 win32ts.ProcessIdToSessionId": (
                    lambda: win32ts.ProcessIdToSessionId(own),
                    50_000,
                ),
                "own: current_session_id()": (s.current_session_id, 50_000),
                "other: process_id_to_session_id(child)": (
                    lambda: s.process_id_to_session_id(child.pid),
                    300,
                ),
                "other: pywin32 win32ts.ProcessIdToSessionId(child)": (
                    lambda: win32ts.ProcessIdToSessionId(child.pid),
                    300,
                ),
            }
        )
    finally:
        child.kill()
        child.wait()
    us = {name: seconds * 1e6 for name, seconds in rows.items()}
    ratios = {
        "raw cffi call / ctypes (target <= 0.8)": us[
            "own: bare cffi call (kernel32 via the binding)"
        ]
        / us["own: ctypes"],
        "raw cffi call / ctypes with use_last_error": us[
            "own: bare cffi call (kernel32 via the binding)"
        ]
        / us["own: ctypes, use_last_error=True"],
        "raw API (checked) / ctypes": us[
            "own: sessionid_cffi.ProcessIdToSessionId (raw API, checked)"
        ]
        / us["own: ctypes"],
        "process_id_to_session_id(other) / pywin32 (target <= 1.1)": us[
            "other: process_id_to_session_id(child)"
        ]
        / us["other: pywin32 win32ts.ProcessIdToSessionId(child)"],
        "current_session_id() / pywin32 own (target <= 1.0)": us["own: current_session_id()"]
        / us["own: pywin32 win32ts.ProcessIdToSessionId"],
    }
    print(f"\nWindows lane, CPython {sys.version.split()[0]}, medians of {ROUNDS} rounds")
    for name, value in us.items():
        print(f"  {value:9.3f} us  {name}")
    for name, value in ratios.items():
        print(f"  {value:9.2f} x   {name}")
    result = {"python": sys.version, "per_call_us": us, "ratios": ratios}
    target = Path(__file__).resolve().parent / "results" / "windows.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    assert all(value > 0 for value in us.values())
