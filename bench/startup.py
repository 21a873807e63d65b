"""Start-up benchmark: how long a fresh process takes to import the code location, against
importing Dagster alone, measured in this run one after the other (median of repeats).

The webserver, the daemon and every run worker import the definitions, so this is paid
at each start and each run. Target: under 5 s.

    python -m bench.startup [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 5.0


def import_seconds(module: str, repeats: int) -> float:
    """Median wall time of ``python -c "import <module>"`` in fresh processes."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-W", "ignore", "-c", f"import {module}"], cwd=PROJECT_ROOT, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    baseline = import_seconds("dagster", args.repeats)
    definitions = import_seconds("pipeline.definitions", args.repeats)
    print(f"import dagster (baseline): {baseline:.2f} s")
    print(f"import pipeline.definitions: {definitions:.2f} s = {definitions / baseline:.2f} x the baseline")
    print(f"target {TARGET_S:.0f} s: {'met' if definitions < TARGET_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
