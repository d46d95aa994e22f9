"""Mutation run over the pure core: which small changes to the code would the fast tests not notice?

A habit, not a gate (it is not part of tests/run or CI): run it after changing a parser, the probe or
``clean``, read the survivors, and add the test each one asks for. mutmut (in the ``test`` extra:
``pip install -e '.[test]'``) changes one thing at a time in a copy of the code (``<`` to ``<=``, a string to
``"XX...XX"``, a ``return`` to ``None``...) and runs the tests that cover the changed function; a
mutant the tests still pass on "survived".

    python benchmarks/mutation.py                         # every module below, ~15 min on 2 cores
    python benchmarks/mutation.py --only probe,text       # modules whose path contains a word
    python benchmarks/mutation.py --show                  # and the diff of every surviving mutant
    python benchmarks/mutation.py --budget 300            # seconds per module at most (default 600)
    python benchmarks/mutation.py --security-only         # only clean, the probe's builders, patterns

Each module runs in its own scratch copy of the tree (under --workdir, default a temporary
directory), against only the fast, pure tests named below, with Hypothesis derandomized (the ``ci``
profile) so that two runs of the same code agree. The report gives per module: mutants, killed,
survived, the survival rate, and the survivors of the security-relevant code by name (``clean``,
the probe's command builder, the host-pattern parser): those should be none, or equivalent
mutants that no test can tell apart (listed in EQUIVALENT, with the reason; the report names them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Target:
    path: str  # the module mutated
    tests: tuple[str, ...]  # the fast, pure tests run against it
    # functions whose survivors matter for security (empty: none); "*": every function of the module
    security: tuple[str, ...] = ()


TARGETS = (
    Target(
        "fleetrst/measure/probe.py",
        ("tests/measure/", "tests/test_security.py"),
        security=("_seconds", "_sample_script", "_sleep_script", "probe_command", "watch_command"),
    ),
    Target("fleetrst/measure/counters.py", ("tests/measure/test_counters.py", "tests/measure/test_probe.py")),
    Target("fleetrst/measure/rules.py", ("tests/measure/test_rules.py",)),
    Target("fleetrst/measure/trends.py", ("tests/measure/test_trends.py",)),
    Target("fleetrst/investigate/ss.py", ("tests/investigate/test_parsers.py",)),
    Target("fleetrst/investigate/lsof.py", ("tests/investigate/test_parsers.py",)),
    Target("fleetrst/investigate/tcpdump.py", ("tests/investigate/test_parsers.py",)),
    Target(
        "fleetrst/inventory/patterns.py",
        ("tests/inventory/test_patterns.py", "tests/inventory/test_pattern_parsing.py"),
        security=("*",),
    ),
    Target(
        "fleetrst/render/text.py", ("tests/render/test_clean.py", "tests/render/test_fleet.py"), ("clean",)
    ),
)

# Survivors of the security-relevant code that no test can kill, because they change nothing a caller
# can see: (function, text on the mutated line, why). Matched on the mutant's diff, not its number.
EQUIVALENT = (
    # f"{seconds:.3f}" holds only digits and one dot: "XX0XX" strips what "0" strips, "XX.XX" what "."
    ("_seconds", 'rstrip("XX0XX")', "no X in a number: strips the same characters"),
    ("_seconds", 'rstrip("XX.XX")', "no X in a number: strips the same characters"),
    # _CONTROL matches nothing from U+00A0 to U+2027: the escape's width only differs for U+0100,
    # which never reaches the lambda
    ("clean", "ord(m.group()) <= 0x100", "U+0100 is not a control character"),
    ("clean", "ord(m.group()) < 257", "U+0100 is not a control character"),
    # codec names are case-insensitive
    ("expand_limit", 'encoding="UTF-8"', "the same codec as utf-8"),
    # hosts[start : len + 2] is hosts[start : len]: a slice stops at the end of the list
    ("apply_subscript", "end = len(hosts) + 1 if", "slicing past the end of a list stops at its end"),
)

_NAME = re.compile(r"^\s*(\S+): (\w+)\s*$")


@dataclass
class Outcome:
    target: Target
    counts: dict[str, int]
    survivors: list[str]
    seconds: float
    finished: bool

    @property
    def tested(self) -> int:
        """Mutants the tests ran against to a verdict (not those no test covers, nor those the budget cut)."""
        return sum(self.counts.get(k, 0) for k in ("killed", "timeout", "survived", "suspicious", "segfault"))

    @property
    def survival(self) -> float:
        return self.counts.get("survived", 0) / self.tested if self.tested else 0.0

    def function(self, mutant: str) -> str:
        # fleetrst.render.text.x_clean__mutmut_14 -> clean (x_ + name, or xǁClassǁmethod for methods)
        short = mutant.rsplit(".", 1)[-1]
        return short[2:].rsplit("__mutmut_", 1)[0] if short.startswith("x") else short

    def security_survivors(self) -> list[str]:
        wanted = self.target.security
        return [m for m in self.survivors if wanted and ("*" in wanted or self.function(m) in wanted)]


def equivalent(outcome: Outcome, mutant: str, diff: str) -> str | None:
    """Why ``mutant`` is an equivalent mutant (see EQUIVALENT), or None."""
    added = [line for line in diff.splitlines() if line.startswith("+ ")]
    for function, text, why in EQUIVALENT:
        if outcome.function(mutant) == function and any(text in line for line in added):
            return why
    return None


def _scratch(workdir: Path, target: Target) -> Path:
    where = workdir / re.sub(r"[^A-Za-z0-9]+", "_", target.path)
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc")
    shutil.copytree(ROOT / "fleetrst", where / "fleetrst", ignore=ignore)
    shutil.copytree(ROOT / "tests", where / "tests", ignore=ignore)
    config = {
        "source_paths": ["fleetrst/"],
        "only_mutate": [target.path],
        "pytest_add_cli_args_test_selection": list(target.tests),
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-m", "not fleet", "-q", "-x"],
        "use_git_change_detection": False,
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in config.items()]
    pyproject = (ROOT / "pyproject.toml").read_text()
    (where / "pyproject.toml").write_text(pyproject + "\n[tool.mutmut]\n" + "\n".join(lines) + "\n")
    return where


def security_names(target: Target) -> list[str]:
    """mutmut name patterns for the mutants of the target's security-relevant functions."""
    module = target.path.removesuffix(".py").replace("/", ".")
    if "*" in target.security:
        return [f"{module}.*"]
    return [f"{module}.x_{function}__mutmut_*" for function in target.security]


def run_target(target: Target, workdir: Path, budget: float, children: int, only_security: bool) -> Outcome:
    where = _scratch(workdir, target)
    names = security_names(target) if only_security else []
    env = {**os.environ, "FLEETRST_HYPOTHESIS_PROFILE": "ci", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("CI", None)
    start = time.monotonic()
    with (where / "mutmut-run.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *names],
            cwd=where,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=budget)
            finished = proc.returncode == 0
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            finished = False
    seconds = time.monotonic() - start
    subprocess.run(
        [sys.executable, "-m", "mutmut", "export-cicd-stats"], cwd=where, env=env, capture_output=True
    )
    stats_file = where / "mutants" / "mutmut-cicd-stats.json"
    counts: dict[str, int] = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    listed = subprocess.run(
        [sys.executable, "-m", "mutmut", "results"], cwd=where, env=env, capture_output=True, text=True
    ).stdout
    survivors = [
        m.group(1) for line in listed.splitlines() if (m := _NAME.match(line)) and m.group(2) == "survived"
    ]
    return Outcome(target, counts, survivors, seconds, finished)


def diff_of(workdir: Path, outcome: Outcome, name: str) -> str:
    where = workdir / re.sub(r"[^A-Za-z0-9]+", "_", outcome.target.path)
    return subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name], cwd=where, capture_output=True, text=True
    ).stdout


def show(workdir: Path, outcome: Outcome, names: list[str]) -> None:
    for name in names:
        print(f"--- {name}\n{diff_of(workdir, outcome, name).strip()}\n")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma-separated words: modules whose path holds one")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per module at most (600)")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2, help="mutants run at once")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the scratch copies here")
    parser.add_argument("--show", action="store_true", help="print the diff of every survivor")
    parser.add_argument(
        "--security-only", action="store_true", help="only the security-relevant functions' mutants (quick)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if (
        shutil.which("mutmut") is None
        and subprocess.run([sys.executable, "-c", "import mutmut"], capture_output=True).returncode
    ):
        print("mutation.py needs mutmut: pip install -e '.[test]'", file=sys.stderr)
        return 2
    words = [w for w in args.only.split(",") if w]
    targets = [t for t in TARGETS if not words or any(w in t.path for w in words)]
    if args.security_only:
        targets = [t for t in targets if t.security]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fleetrst-mutation-"))
    outcomes: list[Outcome] = []
    for target in targets:
        print(f"mutating {target.path} against {' '.join(target.tests)} ...", flush=True)
        outcomes.append(run_target(target, workdir, args.budget, args.children, args.security_only))

    header = ("module", "mutants", "run", "killed", "survived", "survival", "time")
    print("\n{:<34} {:>8} {:>5} {:>7} {:>9} {:>9} {:>7}".format(*header))
    for o in outcomes:
        c = o.counts
        killed = c.get("killed", 0) + c.get("timeout", 0)
        cut = "" if o.finished else "  (cut at the budget: partial)"
        print(
            f"{o.target.path:<34} {c.get('total', 0):>8} {o.tested:>5} {killed:>7} "
            f"{c.get('survived', 0):>9} {o.survival:>8.0%} {o.seconds:>6.0f}s{cut}"
        )
    security: list[str] = []
    judged: list[tuple[str, str]] = []
    for o in outcomes:
        for m in o.security_survivors():
            why = equivalent(o, m, diff_of(workdir, o, m))
            if why is None:
                security.append(m)
            else:
                judged.append((m, why))
    print(f"\nsurvivors in security-relevant code: {len(security)}")
    for m in security:
        print(f"  {m}")
    for m, why in judged:
        print(f"  (equivalent, not counted) {m}: {why}")
    if args.show:
        for o in outcomes:
            show(workdir, o, o.survivors)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    o.target.path: {
                        "counts": o.counts,
                        "survival": round(o.survival, 4),
                        "survivors": o.survivors,
                        "finished": o.finished,
                        "seconds": round(o.seconds),
                    }
                    for o in outcomes
                },
                indent=2,
            )
        )
    print(f"\nscratch copies (mutmut browse / show inside): {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
