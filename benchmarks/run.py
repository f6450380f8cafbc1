"""`make bench`: run the benchmarks and write benchmarks/results/results.{json,md}.

python -m benchmarks.run                 # a and b
python -m benchmarks.run --only a        # one of them
python -m benchmarks.run --quick         # a tiny smoke version (debugging the benchmarks)

c (search efficiency) and d (pruning savings) were retired on 2026-12-07: they judged each
search by the validation accuracy it selected on, ours by its best epoch and the Trainer by its
last. `make race` (benchmarks/race.py: every system's pick scored on a held-out test split) and
benchmarks/pruning.py (savings at equal test accuracy) measure them now.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="a,b", help="comma-separated: a,b")
    parser.add_argument("--quick", action="store_true", help="tiny smoke version")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    if only & {"c", "d"}:
        parser.error(
            "--only: c and d were retired (judged on validation): `make race` and "
            "`python -m benchmarks.pruning` measure search and pruning on held-out test data"
        )
    if unknown := sorted(only - {"a", "b"}):
        parser.error(f"--only: unknown {', '.join(unknown)}; choose from a, b")
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
    benchmarks: list[dict[str, Any]] = []
    if "a" in only:
        from benchmarks import throughput

        benchmarks.append(throughput.run(quick=quick))
    if "b" in only:
        from benchmarks import overhead

        benchmarks.append(overhead.run(quick=quick))
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
