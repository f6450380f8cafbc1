"""`automl-export`: re-export the best (or a named) trial of a finished sweep.

automl-export outputs/default                    # the best trial again -> outputs/default/best
automl-export outputs/default --trial 3a44a028   # -> outputs/default/trial-3a44a028
                                                 #    (needs sweep.keep_checkpoints=true)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from automl.export.reexport import ExportError, reexport


def main(argv: list[str] | None = None) -> None:
    from automl.cli.app import user_errors
    from automl.console import setup_logging

    parser = argparse.ArgumentParser(prog="automl-export", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="outputs/<sweep> of a finished sweep")
    parser.add_argument("--trial", help="trial id (default: the sweep's best)")
    parser.add_argument(
        "--out",
        type=Path,
        help="target folder (default: <sweep_dir>/best, or <sweep_dir>/trial-<id> for --trial)",
    )
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
