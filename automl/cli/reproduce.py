"""`automl-reproduce`: re-train an exported trial from its provenance.json and compare the metric.

automl-reproduce outputs/default/best/provenance.json            # exit 1 if it differs > 0.005
automl-reproduce outputs/smoke/best/provenance.json --data my/copy.csv --tolerance 0.01
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from automl.cli.app import user_errors
    from automl.console import quiet_libraries, setup_logging
    from automl.export.reproduce import ReproduceError, reproduce

    parser = argparse.ArgumentParser(prog="automl-reproduce", description=__doc__.splitlines()[0])
    parser.add_argument(
        "provenance", type=Path, help="<export dir>/provenance.json, or the export's folder"
    )
    parser.add_argument("--tolerance", type=float, default=0.005, help="largest |difference|")
    parser.add_argument(
        "--data",
        help="the data file (or save_to_disk folder), if not where recorded; separate "
        "validation and test files are looked for beside it under their recorded names",
    )
    parser.add_argument(
        "--model", help="the base-model folder, where it is not at the recorded path"
    )
    parser.add_argument("--device", default="cpu", help="cpu (deterministic) | cuda | auto")
    parser.add_argument(
        "--trust-remote-code", action="store_true",
        help="run the model's own code again (a trial trained with model.trust_remote_code=true)",
    )  # fmt: skip
    parser.add_argument("--debug", action="store_true", help="full tracebacks")
    args = parser.parse_args(argv)
    setup_logging(args.debug)
    quiet_libraries()
    try:
        outcome = reproduce(
            args.provenance, tolerance=args.tolerance, data_path=args.data, device=args.device,
            model_path=args.model, trust_remote_code=args.trust_remote_code,
        )  # fmt: skip
    except (ReproduceError, *user_errors()) as err:  # type: ignore[misc]
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(
        f"{outcome.metric} at epoch {outcome.epoch}: recorded {outcome.recorded:.4f}, "
        f"reproduced {outcome.reproduced:.4f} "
        f"({'matches' if outcome.matches else 'DIFFERS'} within {outcome.tolerance})",
        file=sys.stderr,
    )
    print(json.dumps(outcome.as_dict()), flush=True)
    if not outcome.matches:
        sys.exit(1)


if __name__ == "__main__":
    main()
