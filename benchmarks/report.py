"""Write `benchmarks/results/results.json` and `results.md` from the benchmarks' dicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.common import short_commit

RESULTS = Path(__file__).resolve().parent / "results"


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "not reached"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "%":
        return f"{value:.0f} %"
    if unit == "points":
        return f"{value:+.1f} points"
    return f"{value:.3g} {unit}"


# A figure with no goal of its own (a reference point) has passed=None.
MET = {True: "yes", False: "**no**", None: "-"}


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Measured {m['date']} on {m['cpus']} CPU cores, no GPU, torch {m['torch']} (CPU), "
        f"transformers {m['transformers']}, at {short_commit(results.get('git_commit'))}; "
        f"`make bench` took {results['wall_s'] / 60:.1f} min.",
        "",
        "| figure | measured | goal | met |",
        "| --- | --- | --- | --- |",
    ]
    for bench in results["benchmarks"]:
        for f in bench["figures"]:
            lines.append(
                f"| {f['figure']} | {fmt_value(f['value'], f['unit'])} | {f['goal']} | "
                f"{MET[f['passed']]} |"
            )
    lines.append("")
    for bench in results["benchmarks"]:
        lines.append(f"- **{bench['name']}**: {bench['setup']}")
        for f in bench["figures"]:
            if f.get("note"):
                lines.append(f"  - {f['figure']}: {f['note']}")
    return "\n".join(lines) + "\n"


def write(results: dict[str, Any], folder: Path = RESULTS, table: str | None = None) -> Path:
    """results.json (every measurement) and results.md (`table`, else `make bench`'s table)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=2, default=str))
    path = folder / "results.md"
    path.write_text(markdown(results) if table is None else table)
    return path
