"""`make bench`: run the benchmarks and write benchmarks/results/results.{json,md}.

python -m benchmarks.run                 # everything (~30 min on 2 CPU cores)
python -m benchmarks.run --only a,b      # some of them
python -m benchmarks.run --quick         # a tiny smoke version (debugging the benchmarks)
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, progress, quiet
from benchmarks.report import RESULTS, markdown, write

BUDGET_S = 29 * 60  # `make bench` must stay within 30 minutes on 2 cores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default="a,b,c,d", help="comma-separated: a,b,c,d (d reuses c's runs)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny smoke version")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    out = args.out.resolve()
    quiet()
    # MLflow puts the artifacts of a SQLite store in ./mlruns: run in a temp folder so nothing
    # lands in the repository (the results folder is an absolute path).
    with tempfile.TemporaryDirectory(prefix="bench-") as work, contextlib.chdir(work):
        results = run_all(only, args.quick)
    path = write(results, out)
    print(markdown(results))
    progress(f"wrote {path} and results.json in {results['wall_s'] / 60:.1f} min")
    return 0


def run_all(only: set[str], quick: bool) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + BUDGET_S
    benchmarks: list[dict[str, Any]] = []
    if "a" in only:
        from benchmarks import throughput

        benchmarks.append(throughput.run(quick=quick))
    if "b" in only:
        from benchmarks import overhead

        benchmarks.append(overhead.run(quick=quick))
    if only & {"c", "d"}:
        from benchmarks import search

        benchmarks.append(search.run(quick=quick, deadline=deadline))
    from automl.provenance import git_commit

    return {
        "machine": machine(),
        "git_commit": git_commit(),  # the code measured
        "quick": quick,
        "wall_s": time.monotonic() - started,
        "benchmarks": benchmarks,
    }


if __name__ == "__main__":
    sys.exit(main())
