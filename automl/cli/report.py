"""`automl-report`: an offline HTML report of a finished sweep, built from its summary.json.

automl-report outputs/smoke                                 # -> outputs/smoke/report/index.html
automl-report outputs/smoke --tracking-uri sqlite:///mlflow.db   # and log it to the sweep's run
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from automl.console import first_line
from automl.report.page import REPORT_DIR, ReportError, build_report, load_summary, report_files

T = TypeVar("T")


def check_report_store(uri: str) -> None:
    """The store to log to must already hold the sweep: a SQLite file that does not exist would
    be created (a new, empty store) just to find no run in it; a server must answer."""
    from automl.tracking.uri import sqlite_file, store_problem

    database = sqlite_file(uri)  # None for `file:` URI filenames: SQLite opens those itself
    if database is not None and not database.is_file():
        raise ReportError(f"--tracking-uri: {database}: no such MLflow store")
    problem = store_problem(uri)  # a scheme MLflow can use; a server that answers
    if problem:
        raise ReportError(f"--tracking-uri: {problem}")


def find_sweep_run(uri: str, sweep: str, run_id: str | None = None) -> str:
    """The sweep's MLflow parent run: the one its summary.json names, else (a summary written
    before sweeps recorded it) the latest parent run of that sweep name, in any experiment."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    if run_id:
        try:
            run = client.get_run(run_id)
        except MlflowException as err:
            if err.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise  # a refused login, a server error: said as it is (main)
            raise ReportError(
                f"sweep {sweep!r} logged to MLflow run {run_id}, which is not at the tracking URI"
            ) from None
        if run.info.lifecycle_stage != "active":  # a report logged there lands in the trash,
            raise ReportError(  # which `mlflow gc` empties
                f"sweep {sweep!r} logged to MLflow run {run_id}, which was deleted: restore it "
                "in the MLflow UI (or `mlflow runs restore`) first"
            )
        return run_id
    experiments = [x.experiment_id for x in client.search_experiments()]
    runs = client.search_runs(
        experiments,
        filter_string=f"tags.automl.sweep = '{sweep}' and tags.automl.role = 'sweep'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    ) if experiments else []  # fmt: skip
    if not runs:
        raise ReportError(f"no MLflow run of sweep {sweep!r} at the tracking URI")
    return str(runs[0].info.run_id)


def _logged_to(uri: str, call: Callable[[], T]) -> T:
    """A store's failure (an older schema, an unwritable artifact root) as one line."""
    from automl.provenance import masked_line, redact

    try:
        return call()
    except ReportError:
        raise
    except Exception as err:
        raise ReportError(f"cannot log the report to {redact(uri)}: {masked_line(err)}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="automl-report",
        description="Write an HTML report (plots + trial table) of a finished sweep.",
    )
    parser.add_argument("sweep_dir", type=Path, help="a sweep's output folder, e.g. outputs/smoke")
    parser.add_argument(
        "--tracking-uri",
        help="also log the report to the sweep's MLflow parent run (under report/)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        run_id = None
        if args.tracking_uri:  # the run found before the report is drawn (and the old one gone)
            check_report_store(args.tracking_uri)
            summary = load_summary(args.sweep_dir.resolve())
            if "mlflow_run_id" in summary and not summary["mlflow_run_id"]:
                raise ReportError(
                    f"sweep {summary['sweep']!r} ran with tracking.enabled=false: it has no "
                    "MLflow run to log the report to"
                )
            run_id = _logged_to(args.tracking_uri, lambda: find_sweep_run(
                args.tracking_uri, summary["sweep"], summary.get("mlflow_run_id")
            ))  # fmt: skip
        try:
            index = build_report(args.sweep_dir)
        except ReportError:
            raise
        except OSError as err:  # a folder we may read but not write (a colleague's results)
            where = f"{err.filename}: {err.strerror}" if err.filename else str(err)
            raise ReportError(f"cannot write the report: {where}") from None
        except Exception as err:  # a plot that fails to draw; the earlier report is kept
            raise ReportError(
                f"cannot draw the report ({type(err).__name__}: {first_line(err)}); the earlier "
                "report, if any, is unchanged"
            ) from None
        if args.tracking_uri and run_id is not None:
            from mlflow.tracking import MlflowClient

            from automl.provenance import redact

            client = MlflowClient(args.tracking_uri)

            def log_report() -> None:
                for path in report_files(index.parent):
                    client.log_artifact(run_id, str(path), REPORT_DIR)

            _logged_to(args.tracking_uri, log_report)
            print(f"logged to run {run_id} at {redact(args.tracking_uri)}", file=sys.stderr)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
