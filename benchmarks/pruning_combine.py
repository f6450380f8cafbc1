"""Judge pruning on sweeps run apart: one table from several `benchmarks.pruning` results.

Unpruned histories (`--pruners none`, which the replay also reads) and the pruned sweeps of the
same seeds can run in separate invocations; this joins them, checks that every result describes
the same setup on the same kind of machine, and writes the usual table for the seeds that have
both sweeps.

python -m benchmarks.pruning_combine RESULT.json [RESULT.json ...] --out DIR
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from benchmarks.pruning import PRUNERS, load_result, markdown, summarize

_SEEDS = re.compile(r"; seeds \[[^\]]*\]$")  # how benchmarks.pruning ends its setup line


def combine(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several: the same setup and machine, each (pruner, seed) once."""
    setups = {_SEEDS.sub("", r["setup"]) for r in results}
    if len(setups) != 1:
        raise ValueError(f"the results describe different setups: {sorted(setups)}")
    machines = {(r["machine"]["cpus"], r["machine"]["torch"], r["machine"]["transformers"])
                for r in results}  # fmt: skip
    if len(machines) != 1:
        raise ValueError(f"the results come from different machines or versions: {machines}")
    runs, seen = [], set()
    for r in results:
        for run in r["runs"]:
            key = (run["pruner"], run["seed"])
            if key in seen:
                raise ValueError(f"two results hold the {key[0]} sweep of seed {key[1]}")
            seen.add(key)
            runs.append(run)
    both = sorted(s for s in {seed for _, seed in seen} if all((p, s) in seen for p in PRUNERS))
    if not both:
        raise ValueError(f"no seed has both sweeps ({', '.join(PRUNERS)})")
    judged = [run for run in runs if run["seed"] in both]
    return {
        "machine": results[0]["machine"],
        "wall_s": sum(r["wall_s"] for r in results),  # the compute the sources took, together
        "setup": f"{setups.pop()}; seeds {both}",
        "runs": judged,
        "summary": summarize(judged),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="benchmarks.pruning json files")
    parser.add_argument("--out", type=Path, required=True, help="folder for pruning.json/.md")
    args = parser.parse_args(argv)
    try:
        combined = combine([load_result(p) for p in args.results])
    except (ValueError, KeyError, TypeError) as e:
        parser.error(f"cannot combine: {type(e).__name__}: {e}")
    combined["sources"] = [str(p) for p in args.results]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pruning.json").write_text(json.dumps(combined, indent=2, default=str))
    (args.out / "pruning.md").write_text(markdown(combined))
    print(markdown(combined))
    return 0


if __name__ == "__main__":
    sys.exit(main())
