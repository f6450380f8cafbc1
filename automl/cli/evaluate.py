"""`automl-evaluate`: score an exported model on a labelled CSV or JSON Lines file (or a
dataset saved with `save_to_disk`).

automl-evaluate outputs/default/best new_tickets.csv
automl-evaluate outputs/v2/best tickets.csv --text-column body --label-column queue --out v2.json
automl-evaluate models:/default@champion new_tickets.csv          # the registered champion
automl-evaluate outputs/default/best saved_dataset/ --split test  # a `save_to_disk` folder
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from automl.cli.app import user_errors
    from automl.config.paths import write_text_atomic
    from automl.config.schema import ConfigError, DataConfig
    from automl.config.values import FILE_FORMATS
    from automl.console import setup_logging
    from automl.export.evaluation import table_lines
    from automl.export.rescore import REGISTRY_SCHEMES, read_rows, registered_folder, rescore

    parser = argparse.ArgumentParser(
        prog="automl-evaluate",
        description=__doc__.split("\n\n", 1)[0].replace("\n", " "),  # its first sentence
        epilog="examples:\n" + __doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model", help="an exported model folder (outputs/<sweep>/best), or a registered model "
        "(models:/<name>@champion, models:/<name>/<version>)",
    )  # fmt: skip
    parser.add_argument(
        "data", type=Path, help="a labelled .csv/.tsv or .jsonl file, or a dataset folder "
        "written by `save_to_disk`",
    )  # fmt: skip
    parser.add_argument("--split", help="the split of a dataset folder (default: test)")
    parser.add_argument("--format", choices=("csv", "jsonl"), help="default: by the file's suffix")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--out", type=Path, help="also write the full evaluation (JSON) here")
    parser.add_argument(
        "--tracking-uri", help="the MLflow store of a models:/ URI (default: $MLFLOW_TRACKING_URI, "
        "else sqlite:///mlflow.db)",
    )  # fmt: skip
    parser.add_argument(
        "--trust-remote-code", action="store_true",
        help="run the model's own code (a model trained with model.trust_remote_code=true)",
    )  # fmt: skip
    parser.add_argument("--debug", action="store_true", help="full tracebacks")
    args = parser.parse_args(argv)
    setup_logging(args.debug)
    try:
        saved = args.data.is_dir() and not args.format  # a `save_to_disk` folder
        fmt = "hf" if saved else args.format or FILE_FORMATS.get(args.data.suffix.lower())
        if fmt is None and not args.data.exists():  # a mistyped folder: not "say which format"
            raise ConfigError(f"{args.data}: no such file or folder")
        if fmt is None:
            raise ConfigError(f"{args.data}: a .csv or .jsonl file? say which with --format")
        if args.split is not None and not saved:  # a file is scored whole
            raise ConfigError(f"--split is for a dataset folder, not a file ({args.data})")
        if args.text_column.strip() == args.label_column.strip():  # as a sweep refuses it
            raise ConfigError(
                f"--label-column names the same column as --text-column ({args.text_column!r}): "
                "the model would read its own label"
            )
        if args.out is not None:
            _check_out(args.out)
        data = DataConfig(
            source=fmt, path="" if saved else str(args.data),
            hf_name=str(args.data) if saved else "", text_column=args.text_column,
            label_column=args.label_column,
        )  # fmt: skip
        registered = args.model.startswith(REGISTRY_SCHEMES)
        if args.tracking_uri and not registered:
            raise ConfigError(f"--tracking-uri is for a models:/ URI, not a folder ({args.model})")
        # a bad file: one line before any model loads
        rows = read_rows(data, split=args.split or "test")
        if registered:
            with registered_folder(args.model, args.tracking_uri) as folder:
                evaluation = rescore(folder, rows, args.trust_remote_code)
            evaluation["model"] = args.model
        else:
            evaluation = rescore(Path(args.model), rows, args.trust_remote_code)
    except user_errors() as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print("\n".join(table_lines(evaluation, name=args.data.name)), file=sys.stderr)
    if args.out is not None:
        try:  # checked creatable before scoring; the disk may have filled since
            args.out.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(args.out, json.dumps(evaluation, indent=2))
        except OSError as err:
            if args.debug:
                raise
            print(f"error: --out {args.out}: {err.strerror or err}", file=sys.stderr)
            sys.exit(2)
    keys = ("model", "data", "num_examples", "accuracy", "macro_f1", "balanced_accuracy",
            "unknown_labels", "trained_on", "unseen")  # fmt: skip
    print(json.dumps({k: evaluation[k] for k in keys if k in evaluation}))


def _check_out(path: Path) -> None:
    """--out replaces only an evaluation this command wrote, never another file."""
    from automl.config.paths import not_creatable
    from automl.config.schema import ConfigError

    if path.is_dir():
        raise ConfigError(f"--out {path}: a folder; name the JSON file to write")
    if path.exists():
        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            earlier = None
        # `unknown_labels`: only this command writes it (a sweep's test_evaluation.json, which
        # the model card and the report read, has a confusion matrix too)
        if not (isinstance(earlier, dict) and "unknown_labels" in earlier):
            raise ConfigError(
                f"--out {path}: exists and is not an automl-evaluate output; it is left alone"
            )
    problem = not_creatable(path)  # a folder that is not there, or not writable
    if problem:
        raise ConfigError(f"--out {path}: {problem}")


if __name__ == "__main__":
    main()
