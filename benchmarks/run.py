#!/usr/bin/env python3
"""Benchmarks for the targets in docs/design.md (Linux).

One command, run from the repository root as root or any user::

    python benchmarks/run.py [--processes 1000] [--rounds 21] [--out PATH]
                             [--memory-processes 300] [--memory-args 2000000]
                             [--only speed|memory|kill]
                             [--kill-processes 1000] [--kill-rounds 5]
                             [--ssh-logins 10]

What it does, in one run on one process table:

1. makes sure it runs in a virtual environment with the project installed
   from this working tree (``benchmarks/.venv``, created on first use with
   ``python -m venv`` + ``pip install .``, reinstalled on every run), and
   re-executes itself there; inside a tox env it uses that env as it is;
2. starts ``--processes`` extra sleeping processes (killed at the end);
3. compiles the C baselines with the system ``cc -O2``;
4. measures every target, candidate and baseline interleaved round by
   round so that drift on a shared machine hits both alike, and reports
   medians and the ratio candidate / baseline:

   - one ``process_id_to_session_id(pid)`` of another process against the
     hand-written ``int(open(f"/proc/{pid}/sessionid").read())`` (<= 0.6x);
   - ``session_ids()`` for every process against a C loop over
     ``/proc/*/sessionid`` (<= 1.25x);
   - ``sessionid ps`` as a whole process (the console script, startup
     included) against ``ps -eo pid,sess,luid,user,comm`` (<= 0.5x);
   - ``python -c "import sessionid_cffi as s; s.current_session_id()"``
     against ``python -c pass``, both in the venv (<= 1.15x);
   - ``sessionid sessions`` against ``ps -eo pid,luid,user,tty,lstart,comm``,
     which reads the same facts (<= 1.0x); as root with OpenSSH, with
     ``--ssh-logins`` real logins through a private sshd in the table, so
     FROM, SERVICE and IDLE read sshd's sockets and the terminals;
   - peak memory (ru_maxrss from wait4) of ``sessionid ps -o pid,args``
     against ``ps -eo pid,args`` on ``--memory-processes`` more processes
     with ``--memory-args`` bytes of arguments each (<= 2x ps plus the
     interpreter, ``python -c pass``), and both times for information;
   - as root, for information: ``kill_session(n, SIGKILL)`` (in process)
     and ``sessionid kill -s KILL n`` on a login of ``--kill-processes``
     sleepers, beside ``kill -KILL`` of the same PIDs and ``pkill -KILL -s``
     (their job-control session), each on a fresh login, interleaved
     (``--kill-rounds``);
   - and, for information, ``sessionid`` with no argument,
     ``process_records()`` and a C loop that opens relative
     to a descriptor of /proc (``openat``), as the library does.

5. prints a table and writes JSON to ``benchmarks/results/latest.json``.

The Windows-lane targets (cffi vs ctypes vs pywin32 under Wine) are not
measured here; see docs/performance.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv"

C_LOOP = r"""
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Every /proc/<pid>/sessionid: open, read, close, parse. With at != 0 the
   files are opened relative to a descriptor of /proc (openat). */
static long scan(int at) {
    DIR *dir = opendir("/proc");
    int root = dirfd(dir);
    struct dirent *entry;
    char path[64], buf[32];
    long count = 0;
    unsigned long sum = 0;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        int fd;
        if (at) {
            snprintf(path, sizeof path, "%s/sessionid", entry->d_name);
            fd = openat(root, path, O_RDONLY | O_CLOEXEC);
        } else {
            snprintf(path, sizeof path, "/proc/%s/sessionid", entry->d_name);
            fd = open(path, O_RDONLY | O_CLOEXEC);
        }
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = 0;
        sum += strtoul(buf, NULL, 10);
        count++;
    }
    closedir(dir);
    if (sum == 1) puts("");  /* keep the parse */
    return count;
}

int main(int argc, char **argv) {
    int at = argc > 1 && argv[1][0] == 'a';
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    for (int i = 0; i < reps; i++) {
        double t = now();
        long n = scan(at);
        t = now() - t;
        printf("%ld %.9f\n", n, t);
    }
    return 0;
}
"""

# Runs in the venv: timings of the library's in-process calls, printed as JSON.
INPROCESS = r"""
import json, sys, time
import sessionid_cffi as s
from sessionid_cffi import get_backend
what, pid, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
clock = time.perf_counter
def hand(pid=pid):
    return int(open(f"/proc/{pid}/sessionid").read())
def lib(pid=pid, f=s.process_id_to_session_id):
    return f(pid)
assert hand() == lib() or hand() == 4294967295 and lib() == 0
out = {}
if what == "single":
    for name, f in (("hand", hand), ("lib", lib)):
        for _ in range(200):
            f()
    samples = {"hand": [], "lib": []}
    for _ in range(reps):
        for name, f in (("hand", hand), ("lib", lib)):
            t = clock()
            for _ in range(1000):
                f()
            samples[name].append((clock() - t) / 1000)
    out = samples
elif what == "bulk":
    backend = get_backend()
    # What `sessionid ps` asks for with its default columns.
    fields = frozenset(("pid", "session_id", "user", "login", "comm"))
    s.session_ids(); backend.process_records(fields)
    samples = {"session_ids": [], "process_records": [], "count": len(s.session_ids())}
    for _ in range(reps):
        t = clock(); s.session_ids(); samples["session_ids"].append(clock() - t)
        t = clock(); backend.process_records(fields); samples["process_records"].append(clock() - t)
    out = samples
print(json.dumps(out))
"""


def in_venv() -> bool:
    return sys.prefix != sys.base_prefix


def ensure_venv(argv: list[str]) -> None:
    """Re-execute in benchmarks/.venv with this tree installed, unless
    already in a venv (tox) that has the project and its script."""
    script = Path(sys.executable).with_name("sessionid")
    if in_venv() and script.exists():
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        # The console script measured below is written by pip: pip < 25
        # (bundled with Python <= 3.13.1) writes one that imports re first,
        # ~7 ms of the installer's own before our code runs (see
        # docs/performance.md), so the venv gets a current pip, as tox's do.
        upgraded = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--upgrade", "pip>=25"], check=False
        )
        if upgraded.returncode != 0:
            print("warning: could not upgrade pip; sessionid_ps includes the old wrapper")
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], check=True)
    else:
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--force-reinstall",
                str(ROOT),
            ],
            check=True,
        )
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *argv])  # noqa: S606


# A process that only holds its arguments: the memory benchmark's table.
HOLDER = r"""
#include <unistd.h>
int main(void) { pause(); return 0; }
"""
# One argument may be 128 KiB at most (MAX_ARG_STRLEN): big argument lists
# are made of pieces this long.
ARG_PIECE = 100_000


def spawn_holders(binary: Path, count: int, size: int) -> list[subprocess.Popen[bytes]]:
    """``count`` processes whose command lines hold ``size`` bytes."""
    pieces = ["a" * ARG_PIECE] * max(1, size // ARG_PIECE)
    return [subprocess.Popen([str(binary), *pieces], env={}) for _ in range(count)]


def peak_rss(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(peak resident memory in MiB, seconds) of one run of ``command``,
    as the kernel counted it for that child (wait4's ru_maxrss)."""
    start = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=NEUTRAL
    )
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, command)
    return usage.ru_maxrss / 1024, elapsed


def measure_memory(
    args: object, python: str, script: str, env: dict[str, str], workdir: Path
) -> dict[str, dict[str, object]]:
    """Peak memory of ``sessionid ps -o pid,args`` against procps on a table
    of large command lines (procps cuts each at 128 KiB, as the library)."""
    count: int = args.memory_processes  # type: ignore[attr-defined]
    size: int = args.memory_args  # type: ignore[attr-defined]
    rounds = max(3, args.rounds // 4)  # type: ignore[attr-defined]
    source = workdir / "holder.c"
    source.write_text(HOLDER)
    binary = workdir / "holder"
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-o", str(binary), str(source)], check=True)
    holders = spawn_holders(binary, count, size)
    commands = {
        "sessionid": [script, "ps", "-o", "pid,args"],
        "ps": ["ps", "-eo", "pid,args"],
        "python": [python, "-c", "pass"],
    }
    try:
        time.sleep(0.5)
        peaks: dict[str, list[float]] = {name: [] for name in commands}
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, command in commands.items():
                peak, elapsed = peak_rss(command, env)
                peaks[name].append(peak)
                times[name].append(elapsed)
    finally:
        for holder in holders:
            holder.kill()
        for holder in holders:
            holder.wait()
    cand = statistics.median(peaks["sessionid"])
    base = statistics.median(peaks["ps"])
    interpreter = statistics.median(peaks["python"])
    allowed = 2 * base + interpreter
    what = f"{count} processes with {size:,} bytes of arguments"
    print(
        f"  peak_memory_ps_args ({what}): sessionid {cand:.1f} MiB, ps {base:.1f} MiB, "
        f"python -c pass {interpreter:.1f} MiB; allowed {allowed:.1f} MiB",
        flush=True,
    )
    time_cand = statistics.median(times["sessionid"]) * 1000
    time_base = statistics.median(times["ps"]) * 1000
    print(f"  time_ps_args: {time_cand:.1f} ms vs {time_base:.1f} ms", flush=True)
    return {
        "peak_memory_ps_args": {
            "candidate": f"sessionid ps -o pid,args, peak RSS ({what})",
            "baseline": "ps -eo pid,args, peak RSS; target: <= 2x it + python -c pass",
            "unit": "MiB",
            "candidate_median": round(cand, 1),
            "baseline_median": round(base, 1),
            "interpreter_median": round(interpreter, 1),
            "ratio": round(cand / allowed, 3),
            "target": 1.0,
            "met": cand <= allowed,
            "samples": rounds,
        },
        "time_ps_args": {
            "candidate": f"sessionid ps -o pid,args ({what})",
            "baseline": "ps -eo pid,args",
            "unit": "ms",
            "candidate_median": round(time_cand, 1),
            "baseline_median": round(time_base, 1),
            "ratio": round(time_cand / time_base, 3),
            "target": None,
            "met": None,
            "samples": rounds,
        },
    }


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


# Every child runs in a neutral folder: run from the repository root, ``python
# -c`` would import the working tree instead of the installed package.
NEUTRAL = tempfile.gettempdir()


def time_process(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        env=env,
        cwd=NEUTRAL,
    )
    return time.perf_counter() - start


def spawn_sleepers(count: int) -> list[subprocess.Popen[bytes]]:
    sleep = shutil.which("sleep") or "/bin/sleep"
    return [subprocess.Popen([sleep, "3600"]) for _ in range(count)]


def compile_c(workdir: Path) -> Path:
    source = workdir / "loop.c"
    source.write_text(C_LOOP)
    binary = workdir / "loop"
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-o", str(binary), str(source)], check=True)
    return binary


def c_loop(binary: Path, mode: str, reps: int) -> list[float]:
    out = subprocess.run(
        [str(binary), mode, str(reps)], capture_output=True, text=True, check=True
    ).stdout
    return [float(line.split()[1]) for line in out.splitlines()]


def in_process(what: str, pid: int, reps: int) -> dict[str, list[float]]:
    out = subprocess.run(
        [sys.executable, "-c", INPROCESS, what, str(pid), str(reps)],
        capture_output=True,
        text=True,
        check=True,
        cwd=NEUTRAL,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


# A login of N sleepers: its own job-control session (for pkill -s) and a
# fresh audit session (root writes loginuid); prints both, then the PIDs.
KILL_LOGIN = r"""
import json, os, sys
os.setsid()
open("/proc/self/loginuid", "w").write("4000")
sleep = sys.argv[2]
pids = [os.posix_spawn(sleep, [sleep, "3600"], os.environ) for _ in range(int(sys.argv[1]))]
print(json.dumps([int(open("/proc/self/sessionid").read()), os.getsid(0), pids]), flush=True)
sys.stdin.read()
"""


def start_ssh_logins(count: int, tmp: Path) -> tuple[object, list[subprocess.Popen[str]]]:
    """As root with OpenSSH: a private sshd (tests/_sshd.py) and ``count``
    real PAM logins through it, half on a terminal (``ssh -tt``), so that
    ``sessionid sessions`` reads what its FROM, SERVICE and IDLE columns
    need (sshd's socket, the terminal's access time) as on a server. None
    and [] where that cannot run."""
    if os.geteuid() != 0 or not (shutil.which("sshd") or os.path.exists("/usr/sbin/sshd")):
        return None, []
    sys.path.insert(0, str(ROOT / "tests"))
    from _sshd import Sshd

    daemon = Sshd(tmp)
    logins = []
    for index in range(count):
        login = daemon.login("echo ready; exec sleep 3600", tty=index % 2 == 0)
        assert login.stdout is not None
        login.stdout.readline()
        logins.append(login)
    return daemon, logins


def stop_ssh_logins(daemon: object, logins: list[subprocess.Popen[str]]) -> None:
    for login in logins:
        login.kill()
        login.wait()
    if daemon is not None:
        daemon.close()  # type: ignore[attr-defined]


def start_kill_login(count: int) -> tuple[subprocess.Popen[str], int, int, list[int]]:
    sleep = shutil.which("sleep") or "/bin/sleep"
    login = subprocess.Popen(
        [sys.executable, "-c", KILL_LOGIN, str(count), sleep],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=NEUTRAL,
    )
    assert login.stdout is not None
    session, job_session, pids = json.loads(login.stdout.readline())
    return login, session, job_session, [login.pid, *pids]


def end_kill_login(login: subprocess.Popen[str], pids: list[int]) -> int:
    """End what a method left of the login; how many were left. A process
    that was sent SIGKILL may take a moment to die: wait for that first."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_running(pid) for pid in pids):
        time.sleep(0.05)
    left = 0
    for pid in pids:
        if _running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            left += 1
    login.wait()
    for stream in (login.stdin, login.stdout):
        if stream is not None:
            stream.close()
    return left


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def measure_kill(
    count: int, rounds: int, script: str, env: dict[str, str]
) -> dict[str, list[float]]:
    """Seconds per method to end a login of ``count`` + 1 processes."""
    import sessionid_cffi

    kill_binary = shutil.which("kill", path="/usr/bin:/bin") or "kill"
    samples: dict[str, list[float]] = {"kill_session": [], "sessionid": [], "kill": [], "pkill": []}
    for _ in range(rounds):
        for method, times in samples.items():
            login, session, job_session, pids = start_kill_login(count)
            start = time.perf_counter()
            if method == "kill_session":
                sessionid_cffi.kill_session(session, 9)
            elif method == "sessionid":
                command = [script, "kill", "-s", "KILL", str(session)]
                subprocess.run(command, stdout=subprocess.DEVNULL, check=True, env=env)
            elif method == "kill":
                subprocess.run([kill_binary, "-KILL", *map(str, pids)], check=True)
            else:
                subprocess.run(["pkill", "-KILL", "-s", str(job_session)], check=True)
            times.append(time.perf_counter() - start)
            left = end_kill_login(login, pids)
            if left:
                print(f"  warning: {method} left {left} processes of the login running")
    return samples


class _Skip(Exception):
    """--only memory or kill: the speed part is left out."""


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--processes", type=int, default=1000, help="extra sleeping processes (default 1000)"
    )
    parser.add_argument(
        "--rounds", type=int, default=21, help="rounds per measurement (default 21)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument(
        "--memory-processes",
        type=int,
        default=300,
        help="memory benchmark: processes with large command lines (default 300)",
    )
    parser.add_argument(
        "--memory-args",
        type=int,
        default=2_000_000,
        help="memory benchmark: bytes of arguments of each (default 2,000,000)",
    )
    parser.add_argument(
        "--only",
        choices=("speed", "memory", "kill"),
        help="run only the speed, the memory or the kill part",
    )
    parser.add_argument(
        "--kill-processes",
        type=int,
        default=1000,
        help="kill benchmark (root): processes of the login ended (default 1000)",
    )
    parser.add_argument(
        "--kill-rounds", type=int, default=5, help="kill benchmark: rounds (default 5)"
    )
    parser.add_argument(
        "--ssh-logins",
        type=int,
        default=10,
        help="speed (root, OpenSSH): logins through a private sshd, half on a tty (default 10)",
    )
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        parser.error("these benchmarks are for Linux (procfs)")
    ensure_venv(argv)

    python = sys.executable
    script = str(Path(python).with_name("sessionid"))
    env = {k: v for k, v in os.environ.items() if k != "SESSIONID_CFFI_BACKEND"}
    rounds = args.rounds
    results: dict[str, dict[str, object]] = {}

    def record(
        name: str,
        candidate: list[float],
        baseline: list[float],
        target: float | None,
        what: str,
        against: str,
        unit: str = "ms",
    ) -> None:
        scale = 1000.0 if unit == "ms" else 1e6
        cand = statistics.median(candidate) * scale
        base = statistics.median(baseline) * scale
        ratio = cand / base
        results[name] = {
            "candidate": what,
            "baseline": against,
            "unit": unit,
            "candidate_median": round(cand, 3),
            "baseline_median": round(base, 3),
            "ratio": round(ratio, 3),
            "target": target,
            "met": None if target is None else ratio <= target,
            "samples": len(candidate),
        }
        print(f"  {name}: {cand:.3f} {unit} vs {base:.3f} {unit} = {ratio:.2f}x", flush=True)

    def kill_rows() -> None:
        # Ending a login (root: it starts logins), for information.
        if os.geteuid() != 0 or not shutil.which("pkill"):
            print("  kill benchmarks skipped: they need root (logins) and pkill")
            return
        ended = measure_kill(args.kill_processes, args.kill_rounds, script, env)
        what = f"a login of {args.kill_processes} sleepers + its leader"
        record(
            "kill_session_vs_kill",
            ended["kill_session"],
            ended["kill"],
            None,
            f"kill_session(n, SIGKILL), in process: {what}",
            "kill -KILL <the same PIDs> (a process)",
        )
        record(
            "kill_session_vs_pkill",
            ended["kill_session"],
            ended["pkill"],
            None,
            f"kill_session(n, SIGKILL), in process: {what}",
            "pkill -KILL -s <its job-control session> (a process)",
        )
        record(
            "sessionid_kill_vs_pkill",
            ended["sessionid"],
            ended["pkill"],
            None,
            f"sessionid kill -s KILL n (console script): {what}",
            "pkill -KILL -s <its job-control session> (a process)",
        )

    if args.only in (None, "memory"):
        with tempfile.TemporaryDirectory() as tmp:
            results.update(measure_memory(args, python, script, env, Path(tmp)))
    table_size = None
    daemon: object = None
    ssh_logins: list[subprocess.Popen[str]] = []
    sleepers = spawn_sleepers(args.processes if args.only in (None, "speed") else 0)
    try:
        if args.only in (None, "kill"):
            kill_rows()
        if args.only in ("memory", "kill"):
            raise _Skip
        with tempfile.TemporaryDirectory() as tmp:
            binary = compile_c(Path(tmp))
            os.mkdir(Path(tmp, "sshd"))
            daemon, ssh_logins = start_ssh_logins(args.ssh_logins, Path(tmp, "sshd"))
            time.sleep(0.5)
            table_size = sum(1 for name in os.listdir("/proc") if name.isdigit())
            print(
                f"{table_size} processes in /proc ({args.processes} sleepers, "
                f"{len(ssh_logins)} ssh logins); "
                f"{rounds} rounds; python {platform.python_version()} in {sys.prefix}",
                flush=True,
            )
            other = sleepers[len(sleepers) // 2].pid

            # 1. one query of another process
            single = in_process("single", other, rounds)
            record(
                "single_query",
                single["lib"],
                single["hand"],
                0.6,
                "process_id_to_session_id(pid)",
                'int(open(f"/proc/{pid}/sessionid").read())',
                unit="us",
            )

            # 2. every process: session_ids() vs the C loops, interleaved
            lib_bulk: list[float] = []
            records: list[float] = []
            c_paths: list[float] = []
            c_at: list[float] = []
            for _ in range(rounds):
                c_paths += c_loop(binary, "paths", 3)
                c_at += c_loop(binary, "at", 3)
                bulk = in_process("bulk", other, 3)
                lib_bulk += bulk["session_ids"]
                records += bulk["process_records"]
            record(
                "session_ids_all",
                lib_bulk,
                c_paths,
                1.25,
                "session_ids()",
                'C loop: open("/proc/<pid>/sessionid") per process',
            )
            record(
                "session_ids_vs_c_openat",
                lib_bulk,
                c_at,
                None,
                "session_ids()",
                'C loop: openat(/proc fd, "<pid>/sessionid") per process',
            )
            record(
                "process_records_vs_c",
                records,
                c_paths,
                None,
                "process_records(ps default fields: sessionid, owner, comm, loginuid)",
                'C loop: open("/proc/<pid>/sessionid") per process',
            )

            # 3. whole processes, interleaved. The console script ends the
            # process without finalizing the interpreter (_cli.run); the same
            # command through main() and sys.exit shows what that saves.
            with_teardown = Path(tmp, "sessionid_with_teardown")
            with_teardown.write_text(
                "import sys\nfrom sessionid_cffi._cli import main\nsys.exit(main())\n"
            )
            commands = {
                "python_m_ps": [python, "-m", "sessionid_cffi", "ps"],
                "with_teardown_ps": [python, str(with_teardown), "ps"],
                "ps": ["ps", "-eo", "pid,sess,luid,user,comm"],
                "ps_sessions": ["ps", "-eo", "pid,luid,user,tty,lstart,comm"],
                "sessionid_ps": [script, "ps"],
                "sessionid_sessions": [script, "sessions"],
                "sessionid_own": [script],
                "pass": [python, "-c", "pass"],
                "import_query": [
                    python,
                    "-c",
                    "import sessionid_cffi as s; s.current_session_id()",
                ],
            }
            for command in commands.values():
                time_process(command, env)  # warm the page cache
            samples: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(rounds):
                for name, command in commands.items():
                    samples[name].append(time_process(command, env))
            record(
                "sessionid_ps",
                samples["sessionid_ps"],
                samples["ps"],
                0.5,
                "sessionid ps (console script)",
                "ps -eo pid,sess,luid,user,comm",
            )
            record(
                "import_and_query",
                samples["import_query"],
                samples["pass"],
                1.15,
                'python -c "import sessionid_cffi as s; s.current_session_id()"',
                "python -c pass",
            )
            record(
                "sessionid_no_args",
                samples["sessionid_own"],
                samples["pass"],
                None,
                "sessionid (own session, console script)",
                "python -c pass",
            )
            record(
                "sessionid_sessions",
                samples["sessionid_sessions"],
                samples["ps_sessions"],
                1.0,
                "sessionid sessions (console script)",
                "ps -eo pid,luid,user,tty,lstart,comm",
            )
            record(
                "python_m_sessionid_ps",
                samples["python_m_ps"],
                samples["ps"],
                None,
                "python -m sessionid_cffi ps",
                "ps -eo pid,sess,luid,user,comm",
            )
            record(
                "sessionid_ps_with_teardown",
                samples["with_teardown_ps"],
                samples["ps"],
                None,
                "sessionid ps ending with sys.exit (interpreter finalized)",
                "ps -eo pid,sess,luid,user,comm",
            )
    except _Skip:
        pass
    finally:
        stop_ssh_logins(daemon, ssh_logins)
        for sleeper in sleepers:
            sleeper.kill()
        for sleeper in sleepers:
            sleeper.wait()

    document = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "kernel": platform.release(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "processes_in_proc": table_size,
            # What reproduces the run, and no local path.
            "extra_sleepers": args.processes,
            "rounds": rounds,
            "memory_processes": args.memory_processes,
            "memory_args_bytes": args.memory_args,
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")

    print()
    print(f"| {'measurement':<26} | {'candidate':>11} | {'baseline':>11} | ratio | target | met |")
    print(f"|{'-' * 28}|{'-' * 13}|{'-' * 13}|-------|--------|-----|")
    for name, row in results.items():
        unit = row["unit"]
        target = row["target"]
        met = {True: "yes", False: "NO", None: "-"}[row["met"]]  # type: ignore[index]
        target_text = f"<={target}x" if target is not None else "-"
        print(
            f"| {name:<26} | {row['candidate_median']:>8.3f} {unit:<2} "
            f"| {row['baseline_median']:>8.3f} {unit:<2} | {row['ratio']:>5.2f} "
            f"| {target_text:>6} | {met:>3} |"
        )
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
