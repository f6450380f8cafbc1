"""`automl-export`: re-export the best (or a named) trial of a finished sweep.

automl-export outputs/default                    # the best trial again -> outputs/default/best
automl-export outputs/default --trial 3a44a028 --out exported/   # needs sweep.keep_checkpoints=true
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from automl.config import from_dict


class ExportError(ValueError):
    """The sweep folder or trial cannot be exported; one line naming what is missing."""


def find_checkpoint(row: dict[str, Any]) -> Path:
    """The trial's surviving checkpoint folder (recorded in summary.json)."""
    folder = Path(row.get("checkpoint") or "")
    if not row.get("checkpoint") or not folder.is_dir():
        raise ExportError(
            f"trial {row['trial_id']}: its checkpoint is gone "
            "(only the best trial's is kept unless sweep.keep_checkpoints=true)"
        )
    return folder


def reexport(sweep_dir: Path, trial_id: str | None = None, out_dir: Path | None = None) -> Path:
    from automl.export import export_checkpoint, sweep_provenance
    from automl.trainable import trial_config

    summary_path, config_path = sweep_dir / "summary.json", sweep_dir / "config.json"
    for path in (summary_path, config_path):
        if not path.is_file():
            raise ExportError(f"{path}: not found (is {sweep_dir} a finished sweep's folder?)")
    summary: dict[str, Any] = json.loads(summary_path.read_text())
    base = json.loads(config_path.read_text())
    trial_id = trial_id or summary.get("best_trial") or ""
    rows = {row["trial_id"]: row for row in summary["trials"]}
    if trial_id not in rows:
        raise ExportError(f"{summary_path}: no trial {trial_id!r} (trials: {', '.join(rows)})")
    row = rows[trial_id]
    conf = from_dict(base)
    checkpoint = find_checkpoint(row)
    provenance = sweep_provenance(
        conf,
        trial_id,
        row["best_value"],
        row["params"],
        summary["num_trials"],
        summary.get("data", ""),
    )
    return export_checkpoint(
        trial_config(base, row["params"]),
        checkpoint,
        out_dir or sweep_dir / "best",
        label_names=summary["label_names"],
        provenance=provenance,
    )


def main(argv: list[str] | None = None) -> None:
    from automl.cli import setup_logging, user_errors

    parser = argparse.ArgumentParser(prog="automl-export", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="outputs/<sweep> of a finished sweep")
    parser.add_argument("--trial", help="trial id (default: the sweep's best)")
    parser.add_argument("--out", type=Path, help="target folder (default: <sweep_dir>/best)")
    parser.add_argument("--debug", action="store_true", help="full tracebacks")
    args = parser.parse_args(argv)
    setup_logging(args.debug)
    try:
        path = reexport(args.sweep_dir, args.trial, args.out)
    except (ExportError, *user_errors()) as err:  # type: ignore[misc]
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps({"exported": str(path)}))


if __name__ == "__main__":
    main()
