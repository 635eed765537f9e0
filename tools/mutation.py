"""Mutation testing of the emulation backends (``tox -e mutation``).

Runs mutmut (3.x) over the emulation backends (``emulation/procfs.py``,
``emulation/model.py``, and ``emulation/details.py``, the session details
procfs reads) and the test kit (every module of
``sessionid_cffi/testing/`` but its ``__init__``) with the fast suites, then
judges the result against a committed list of equivalent mutants and a
target score. ``--modules backends`` or ``--modules kit`` runs one part;
``--also`` adds the rest of the package (CLI, records, errors, lowlevel,
kernel32) to measure it, without a target of its own.

Why a staging copy: emulation/ ships as ``sessionid_cffi.emulation`` through
pyproject's package-dir, so mutmut would name ``emulation/model.py``'s
functions ``emulation.model.*`` while the tests import
``sessionid_cffi.emulation.model``: no test would ever reach a mutant. The
stage is a tree where emulation/ physically sits at
``sessionid_cffi/emulation/``; mutmut runs there.

The equivalents list (tests/mutants/equivalent.txt) is keyed by what
survives line shifts and edits elsewhere: the function's name and the
mutated source lines before and after, never mutmut's mutant numbers::

    [ProcfsBackend.session_id]
    - if pid == 0 or pid > PID_MAX_LIMIT:
    + if pid == 0 or pid >= PID_MAX_LIMIT:
    why: PID_MAX_LIMIT itself is refused later by the missing /proc entry

A key names exactly one mutant: where one function has several mutants
with the same diff text (the same line twice), the n-th of them in source
order is ``[function #n]`` (the first is plain ``[function]``), so that a new
survivor cannot hide behind an entry written for another.

Score = killed / (total - equivalent); "no tests" and "survived" both count
as not killed, a timeout as killed (a test noticed the hang); the raw score
(killed / total) is printed beside it, per module and in all. The run
exits 1 below ``--target`` (judged over the gated modules: backends and
kit, not ``--also``) or when an equivalents entry matches no surviving
mutant (stale: the mutant is killed now, or the code changed), and prints
every surviving, non-equivalent mutant in the list's format, ready to triage.
A listed mutant that the run killed runs once more, alone, before its entry
counts as stale: killed again, the entry is stale; survived, a test is flaky
(printed as FLAKY, not failed on), since a busy runner's noise must not turn
the gate red.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EQUIVALENTS = REPO / "tests" / "mutants" / "equivalent.txt"
DEFAULT_STAGE = REPO / ".tox" / "mutation-stage"
# Module paths inside the stage (emulation/ mapped as in the wheel).
BACKENDS = [
    "sessionid_cffi/emulation/procfs.py",
    "sessionid_cffi/emulation/model.py",
    "sessionid_cffi/emulation/details.py",
]
# The kit: every module of sessionid_cffi/testing/ but the re-exporting
# __init__, so that a new kit module joins the gate without an edit here.
KIT = sorted(
    f"sessionid_cffi/testing/{path.name}"
    for path in (REPO / "sessionid_cffi" / "testing").glob("*.py")
    if path.name != "__init__.py"
)
# The rest of the package, measured with --also (no target of its own yet).
ALSO = [
    "sessionid_cffi/__init__.py",
    "sessionid_cffi/_cli.py",
    "sessionid_cffi/_records.py",
    "sessionid_cffi/_errors.py",
    "sessionid_cffi/_interface.py",
    "sessionid_cffi/lowlevel.py",
]
PARTS = {"backends": BACKENDS, "kit": KIT}
# The fast suites: seconds, not minutes; no Wine, no sshd, no wheel builds.
FAST_TESTS = [
    "tests/test_procfs.py",
    "tests/test_contract.py",
    "tests/test_api.py",
    "tests/test_bulk.py",
    "tests/test_untrusted_procfs.py",
    "tests/test_kit.py",
    "tests/test_mutants_procfs.py",
    "tests/test_mutants_model.py",
    "tests/test_session_details.py",
    "tests/test_mutants_details.py",
]
# The kit's fast suites: its rules, worlds, generated-world judging, fakes and
# strategies driven on in-memory backends and simulated forests (well under a
# second a test), and its process helpers. The live suites (test_contract,
# test_differential, the generated worlds of test_kit, marker ``worlds``) run
# real process worlds, seconds each: they run in every CI test env, not here.
KIT_TESTS = ["tests/test_kit_rules.py", "tests/test_kit.py", "tests/test_processes.py"]
# Tests of the kit's suites that judge nothing of the stage: a fresh pytest
# project in a subprocess imports the installed package, never the mutants.
KIT_DESELECT = ["tests/test_kit.py::test_fixture_in_a_fresh_project"]
# The same for --also: it runs ``python -m`` from a planted folder to show that
# plain ``-m`` imports from there, which PYTHONSAFEPATH (set for the stage's
# children, see run_mutmut) rightly prevents; the installed package answers.
ALSO_DESELECT = [
    "tests/test_cli.py::test_the_recommended_forms_import_nothing_from_the_working_folder",
]
# What --also adds: the CLI's and the public API's fast suites.
ALSO_TESTS = ["tests/test_cli.py", "tests/test_hostile_input.py"]
KILLED = {"killed", "timeout", "segfault"}
# mutmut's exit-code meanings (mutmut/stats.py), kept here so that a result
# file is read the same way whatever mutmut version wrote it.
STATUS_BY_EXIT_CODE = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    37: "caught by type check",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
}

# (function, removed lines, added lines, occurrence: 1 for the first mutant
# of that function with this diff text, 2 for the next, ...)
Key = tuple[str, tuple[str, ...], tuple[str, ...], int]


# Written into every stage this tool makes: a directory without it was not
# made here, and is never deleted (a mistaken ``--stage /tmp`` or ``--stage ~``
# must not wipe anything).
STAGE_MARKER = ".sessionid-mutation-stage"


def build_stage(stage: Path, reuse: bool) -> None:
    """Lay out the package as the wheel does; keep mutmut's mutants/ if reusing."""
    if stage.exists():
        if not (stage / STAGE_MARKER).is_file() and (not stage.is_dir() or any(stage.iterdir())):
            raise SystemExit(
                f"--stage {stage}: not a stage this tool made (no {STAGE_MARKER} in it); "
                "refusing to delete or fill it: name a new or empty directory"
            )
        if not reuse:
            shutil.rmtree(stage)
    stage.mkdir(parents=True, exist_ok=True)
    (stage / STAGE_MARKER).write_text("made by tools/mutation.py; deleted by its next run\n")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in ("sessionid_cffi", "tests", "docs"):  # docs: tests run their examples
        shutil.rmtree(stage / name, ignore_errors=True)
        shutil.copytree(REPO / name, stage / name, ignore=ignore)
    shutil.copytree(REPO / "emulation", stage / "sessionid_cffi" / "emulation", ignore=ignore)


def write_config(stage: Path, files: list[str], tests: list[str], pytest_args: list[str]) -> None:
    """The repo's pyproject (pytest settings) plus a [tool.mutmut] for the stage."""

    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(json.dumps(item) for item in items) + "]"

    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    text += (
        "\n[tool.mutmut]\n"
        'source_paths = ["sessionid_cffi"]\n'
        f"only_mutate = {toml_list(files)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        f"pytest_add_cli_args = {toml_list(pytest_args)}\n"
        # mutmut runs the tests in mutants/: the docs whose examples they run go too.
        'also_copy = ["docs"]\n'
        # The stage is not a git checkout; mutmut must not ask git what changed.
        "use_git_change_detection = false\n"
    )
    (stage / "pyproject.toml").write_text(text, encoding="utf-8")


def run_mutmut(stage: Path, names: list[str], children: int) -> int:
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *names]
    # Tests start Python children ("-c" code, cwd = the stage's mutants/):
    # without PYTHONSAFEPATH they would import the mutated copy from their
    # cwd, whose trampolines need mutmut and its config (unreadable after a
    # child drops to nobody). Children use the installed package instead.
    environment = {**os.environ, "PYTHONSAFEPATH": "1"}
    return subprocess.run(command, cwd=stage, env=environment, check=False).returncode


def function_of(mutant: str) -> str:
    """``pkg.mod.xǁClassǁmethod__mutmut_3`` -> ``Class.method``; ``x_f`` -> ``f``."""
    mangled = mutant.partition("__mutmut_")[0].rpartition(".")[2]
    if "ǁ" in mangled:
        _, cls, method = mangled.split("ǁ")
        return f"{cls}.{method}"
    return mangled.removeprefix("x_")


def diff_text(mutant: str, path: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    removed: list[str] = []
    added: list[str] = []
    for line in get_diff_for_mutant(mutant, path=path).splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            removed.append(line[1:].strip())
        elif line.startswith("+"):
            added.append(line[1:].strip())
    return function_of(mutant), tuple(removed), tuple(added)


def read_equivalents(path: Path) -> dict[Key, str]:
    """Blocks of ``[function]``, ``- before`` lines, ``+ after`` lines, ``why: ...``."""
    equivalents: dict[Key, str] = {}
    function, why = "", ""
    removed: list[str] = []
    added: list[str] = []

    def close(line_number: int) -> None:
        if not function:
            return
        if not why:
            raise SystemExit(f"{path}:{line_number}: [{function}] has no 'why:' line")
        name, _, occurrence = function.partition(" #")
        if occurrence and (not occurrence.isdigit() or int(occurrence) < 2):
            raise SystemExit(f"{path}:{line_number}: [{function}]: write #2, #3, ... or nothing")
        key = (name, tuple(removed), tuple(added), int(occurrence or 1))
        if key in equivalents:
            raise SystemExit(f"{path}:{line_number}: [{function}] is listed twice")
        equivalents[key] = why

    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            close(number)
            function, removed, added, why = line[1:-1], [], [], ""
        elif line.startswith("- ") or line == "-":
            removed.append(line[2:].strip())
        elif line.startswith("+ ") or line == "+":
            added.append(line[2:].strip())
        elif line.startswith("why:"):
            why = line[4:].strip()
        else:
            raise SystemExit(f"{path}:{number}: cannot read {raw!r}")
    close(len(lines))
    return equivalents


def format_key(key: Key) -> str:
    function, removed, added, occurrence = key
    header = f"[{function}]" if occurrence == 1 else f"[{function} #{occurrence}]"
    return "\n".join([header, *(f"- {line}" for line in removed), *(f"+ {line}" for line in added)])


def mutant_number(mutant: str) -> int:
    return int(mutant.rpartition("__mutmut_")[2])


def keys_of(path: str, mutants: list[str], wanted: set[str]) -> dict[str, Key]:
    """The key of each mutant in ``wanted``. The occurrence counts every
    mutant of the function (killed ones too), in mutmut's order (source
    order), so a key stays with its mutant whatever else is killed."""
    by_function: dict[str, list[str]] = {}
    for mutant in mutants:
        by_function.setdefault(function_of(mutant), []).append(mutant)
    keys: dict[str, Key] = {}
    for members in by_function.values():
        if not wanted.intersection(members):
            continue
        seen: Counter[tuple[str, tuple[str, ...], tuple[str, ...]]] = Counter()
        for mutant in sorted(members, key=mutant_number):
            text = diff_text(mutant, path)
            seen[text] += 1
            if mutant in wanted:
                keys[mutant] = (*text, seen[text])
    return keys


def read_statuses(stage: Path, path: str) -> dict[str, str]:
    """mutmut's verdict on each mutant of ``path``, by mutant name."""
    meta = json.loads((stage / "mutants" / (path + ".meta")).read_text(encoding="utf-8"))
    return {
        mutant: "not checked" if code is None else STATUS_BY_EXIT_CODE.get(code, "suspicious")
        for mutant, code in meta["exit_code_by_key"].items()
    }


def listed_but_killed(
    path: str, status_of: dict[str, str], equivalents: dict[Key, str]
) -> dict[str, Key]:
    """The killed mutants of ``path`` that an equivalents entry names."""
    functions = {key[0] for key in equivalents}
    suspects = {
        m for m, status in status_of.items() if status in KILLED and function_of(m) in functions
    }
    keys = keys_of(path, list(status_of), suspects)
    return {m: key for m, key in keys.items() if m in suspects and key in equivalents}


def recheck_listed_kills(
    stage: Path, statuses: dict[str, dict[str, str]], equivalents: dict[Key, str]
) -> list[str]:
    """Run once more each listed mutant that this run killed; returns the
    ones that survive the second run (and marks them survived).

    A test that fails now and then on a busy runner (another job takes a
    PID, a child is slow and mutmut's timeout fires) "kills" whatever mutant
    it runs under; for a listed equivalent that would make its entry stale
    and fail the gate on noise. A second run, alone, tells the two apart:
    killed twice is a real kill (the entry is stale); killed once is a
    flaky test, printed so that it gets fixed."""
    killed = {path: listed_but_killed(path, kinds, equivalents) for path, kinds in statuses.items()}
    names = sorted(m for kills in killed.values() for m in kills)
    if not names:
        return []
    print(f"\nre-running {len(names)} listed mutant(s) this run killed: {' '.join(names)}")
    run_mutmut(stage, names, 1)
    flaky = []
    for path, kills in killed.items():
        again = read_statuses(stage, path)
        for mutant in kills:
            if again.get(mutant) not in KILLED:
                flaky.append(mutant)
                statuses[path][mutant] = again.get(mutant, "survived")
            else:
                statuses[path][mutant] = again[mutant]
    return flaky


def judge(
    stage: Path,
    files: list[str],
    measured: list[str],
    target: float,
    seconds: float,
    recheck: bool = True,
) -> int:
    """Score the gated ``files`` against ``target``; ``measured`` (``--also``)
    are reported beside them, never gated. With ``recheck``, a listed
    equivalent this run killed runs once more before its entry counts as
    stale (``recheck_listed_kills``)."""
    os.chdir(stage)  # mutmut's diff helpers read the stage's config and mutants/
    equivalents = read_equivalents(EQUIVALENTS)
    statuses = {path: read_statuses(stage, path) for path in files + measured}
    flaky = recheck_listed_kills(stage, statuses, equivalents) if recheck else []
    used: set[Key] = set()
    per_module: dict[str, Counter[str]] = {}
    open_survivors: list[tuple[str, Key, str]] = []
    by_function: Counter[str] = Counter()
    mutants_of: dict[str, list[str]] = {}
    for path in files + measured:
        counts = per_module[path] = Counter()
        status_of = statuses[path]
        mutants_of[path] = list(status_of)
        survivors = {m for m, status in status_of.items() if status not in KILLED}
        keys = keys_of(path, list(status_of), survivors)
        for mutant in sorted(status_of, key=lambda m: (function_of(m), mutant_number(m))):
            status = status_of[mutant]
            counts["total"] += 1
            if status in KILLED:
                counts["killed"] += 1
                continue
            key = keys[mutant]
            if key in equivalents:
                counts["equivalent"] += 1
                used.add(key)
                continue
            counts["no tests" if status == "no tests" else "survived"] += 1
            open_survivors.append((mutant, key, status))
            by_function[key[0]] += 1

    for mutant, key, status in open_survivors:
        print(f"\n# {mutant}: {status}\n{format_key(key)}")
    # An entry is judged when its function is in a module of this run, or
    # when the run covered every gated module (then an entry whose function
    # is nowhere names code that no longer exists): an entry for the kit is
    # not stale in a run of the backends alone.
    functions = {function_of(m) for path in per_module for m in mutants_of[path]}
    whole = set(BACKENDS + KIT) <= set(files)
    stale = [key for key in equivalents if key not in used and (key[0] in functions or whole)]
    for key in stale:
        print(f"\nSTALE: equivalents entry matches no surviving mutant now:\n{format_key(key)}")
    for mutant in flaky:
        print(
            f"\nFLAKY: {mutant} (listed as equivalent) was killed in the run and survived "
            "its re-run: a test fails under it only now and then; find that test and "
            "make it deterministic"
        )
    print("\nsurvivors by function:", dict(by_function.most_common()) or "none")
    print()
    for path, counts in per_module.items():
        print(_figures(path + ("" if path in files else " (--also, not gated)"), counts))
    gated: Counter[str] = Counter()
    for path in files:
        gated.update(per_module[path])
    score = _score(gated)
    print(_figures("gate", gated) + f" (target {target:.0%}), {seconds / 60:.1f} min")
    if stale:
        print(f"mutation: {len(stale)} stale equivalents entries: delete or re-key them")
    return 0 if score >= target and not stale else 1


def _score(counts: Counter[str]) -> float:
    judged = counts["total"] - counts["equivalent"]
    return counts["killed"] / judged if judged else 1.0


def _figures(name: str, counts: Counter[str]) -> str:
    raw = counts["killed"] / counts["total"] if counts["total"] else 1.0
    return (
        f"mutation {name}: total {counts['total']}, killed {counts['killed']}, "
        f"survived {counts['survived']}, equivalent {counts['equivalent']}, "
        f"no-test {counts['no tests']}, score {_score(counts):.1%} of non-equivalent, "
        f"raw {raw:.1%} (killed / all)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=Path, default=DEFAULT_STAGE)
    parser.add_argument(
        "--modules",
        choices=["all", "none", *PARTS],
        default="all",
        help="the gated part to run: backends, kit, all (default), or none (with --also)",
    )
    parser.add_argument(
        "--also",
        action="store_true",
        help="also measure the rest of the package (CLI, records, errors, lowlevel); not gated",
    )
    parser.add_argument("--target", type=float, default=0.90)
    parser.add_argument(
        "--max-children",
        type=int,
        default=1,
        help="mutants run at once (default 1: the machine, and CI's runner, is shared)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the stage's earlier results; rerun only the named or open mutants "
        "(mutmut then knows no tests of a function added since: run afresh for those)",
    )
    parser.add_argument("--report-only", action="store_true", help="judge the stage as it is")
    parser.add_argument("mutants", nargs="*", help="mutmut names to (re)run (with --reuse)")
    args = parser.parse_args()
    if sys.version_info < (3, 11):
        # PYTHONSAFEPATH (3.11) keeps the tests' Python children off the mutants.
        parser.error("needs Python 3.11 or newer")
    files = {"all": BACKENDS + KIT, "none": [], **PARTS}[args.modules]
    if not files and not args.also:
        parser.error("--modules none measures only --also: give --also")
    measured = ALSO if args.also else []
    stage = args.stage.resolve()
    started = time.monotonic()
    if not args.report_only:
        build_stage(stage, args.reuse)
        kit = set(KIT) <= set(files)
        wanted = (FAST_TESTS if files != KIT else []) + KIT_TESTS * kit + ALSO_TESTS * args.also
        tests = list(dict.fromkeys(test for test in wanted if (REPO / test).exists()))
        # The generated-world checks run real process worlds (seconds each):
        # the kit's mutants are judged by its fast suites instead, and for the
        # backends' mutants those checks would only add minutes each.
        pytest_args = ["-m", "not worlds"]
        deselect = KIT_DESELECT * kit + ALSO_DESELECT * args.also
        pytest_args += [f"--deselect={test}" for test in deselect]
        write_config(stage, files + measured, tests, pytest_args)
        code = run_mutmut(stage, args.mutants, args.max_children)
        if code != 0:
            print(f"mutmut run failed with exit code {code}", file=sys.stderr)
            return code
    elapsed = time.monotonic() - started
    return judge(stage, files, measured, args.target, elapsed, recheck=not args.report_only)


if __name__ == "__main__":
    sys.exit(main())
