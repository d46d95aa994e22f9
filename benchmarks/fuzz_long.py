"""A long fuzz run: every property test of the suite with many times more examples, random each time.

CI replays fixed examples (tests/conftest.py: the ``ci`` profile is derandomized, so a red build is
never luck and a green one never hides a draw it did not make); new inputs are explored here, by
hand or on a schedule, not in the gate. Failures found are kept in ``.hypothesis/`` and replayed
first by every later run on this machine; the falsifying example is printed, to be added to the
test as an ``@example(...)`` once understood.

    python benchmarks/fuzz_long.py                      # 2,000 examples a property (20x CI)
    python benchmarks/fuzz_long.py --examples 2000 -k probe
    python benchmarks/fuzz_long.py --examples 50000 tests/inventory/test_fuzz.py

It runs pytest on the non-fleet tests with the ``long`` Hypothesis profile, which collects only the
property tests; extra arguments go to pytest.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=2_000,
        help="examples for a property that runs 100 in CI (default 2000)",
    )
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (paths, -k EXPR, -x ...)")
    args, extra = parser.parse_known_args()
    env = {
        **os.environ,
        "FLEETRST_HYPOTHESIS_PROFILE": "long",
        "FLEETRST_FUZZ_EXAMPLES": str(args.examples),
    }
    env.pop("CI", None)  # the long run is random by design, whatever the environment says
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "not fleet"]
    argv += ["--hypothesis-show-statistics", "-q", "--durations=15", *args.pytest_args, *extra]
    start = time.monotonic()
    code = subprocess.run(argv, cwd=ROOT, env=env, check=False).returncode
    print(f"fuzz_long: {args.examples} examples a property, {time.monotonic() - start:.0f}s, exit {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
