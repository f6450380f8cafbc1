"""What every command-line entry point shares: Hydra composition and one-line input errors."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import logging
import math
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from automl.config.paths import not_creatable
from automl.config.resolve import to_config
from automl.config.schema import CONF_DIR, Config, ConfigError, register_configs
from automl.config.values import unread_settings
from automl.console import first_line, setup_logging

log = logging.getLogger("automl")


def user_errors() -> tuple[type[Exception], ...]:
    """Errors caused by input (or a tracking store that failed during a sweep), reported as
    one line (a traceback only with debug=true)."""
    from automl.config.space_params import SearchSpaceError
    from automl.data.task import DataError
    from automl.model.load import ModelError
    from automl.tracking.uri import StoreError

    return (ConfigError, DataError, ModelError, SearchSpaceError, StoreError)


def composition_error(err: BaseException) -> str:
    """Hydra's report of a bad override, on one line: each message of the chain by its first
    line (the rest is key/type detail), and a config group's options where Hydra lists them."""
    from hydra.errors import OverrideParseException

    if isinstance(err, OverrideParseException) and "LexerNoViableAlt" in str(err):
        key, _, value = str(err.override).partition("=")
        items = value.split(",")  # a `-m` list: each item its own quotes
        if any(item.startswith("~") for item in items):  # the shell ate the quotes
            quoted = ",".join(f"'{item}'" if item.startswith("~") else item for item in items)
            return (
                f"cannot parse the override {err.override!r}: a value starting with `~` needs "
                f"Hydra's quotes inside the shell's: \"{key}={quoted}\""
            )
        return (  # Hydra names only its lexer's exception
            f"cannot parse the override {err.override!r}: write key=value with no spaces "
            "around `=`, and quote a value that holds spaces or characters beyond ASCII "
            "(key='value')"
        )
    parts: list[str] = []
    cause: BaseException | None = err
    while cause is not None:
        paragraphs = [p.split("\n") for p in str(cause).strip().split("\n\n")]
        first = paragraphs[0][0].strip().rstrip(".")
        if first and first not in parts:
            parts.append(first)
        for lines in paragraphs[1:]:
            if lines[0].startswith("Available options in"):
                listed = itertools.takewhile(lambda ln: ln[:1].isspace(), lines[1:])
                options = ", ".join(ln.strip() for ln in listed)
                parts.append(f"{lines[0].rstrip(':')}: {options}")
        cause = cause.__cause__
    return ": ".join(parts)


def check_overrides(
    overrides: list[str], check_job: Callable[[Config], object] | None = None
) -> None:
    """Compose the config as Hydra is about to, so that a bad override (unknown key, wrong type,
    missing option) is a one-line ConfigError: Hydra itself reports it in several lines, before
    any code of ours runs. With `-m` every job of the grid is composed and checked before the
    first one runs (multirun_jobs), its data read (file, columns, labels) and checked by
    `check_job` (a sweep's: its search space against its model), so a later job's bad input
    does not fail after the earlier jobs' compute. Hydra's config flags (-cn, -cp, -cd) are
    composed with; --cfg composes only (it prints, runs nothing); --help, --info and the like
    are left to Hydra."""
    from hydra import compose
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    args = _hydra_command_line(overrides)
    if args is None or any(getattr(args, flag, None) for flag in HYDRA_ONLY_FLAGS):
        return  # argparse's refusal (usage, exit 2), or a flag that runs nothing of ours
    config_dir = _primary_config_dir(args.config_path)
    if config_dir is None:
        return  # a `pkg://` config path: left to Hydra
    for flag, folder in (("--config-path", config_dir), ("--config-dir", args.config_dir)):
        if folder is not None and not Path(folder).is_dir():
            raise ConfigError(f"config: {flag}: {folder}: no such folder")
    config_name = args.config_name or "config"
    modes = [a.lstrip("+") for a in args.overrides if a.lstrip("+").startswith("hydra.mode=")]
    overrides = [a for a in args.overrides if not a.lstrip("+").startswith("hydra.mode=")]
    printing = args.cfg is not None  # --cfg job: the config printed, no job run
    register_configs()
    try:
        sweep_dirs = [  # Hydra's record of a multirun: set to a folder of its own?
            a.split("=", 1)[1] for a in overrides if a.lstrip("+").startswith("hydra.sweep.dir=")
        ]
        own_record = bool(sweep_dirs) and "paths.output_dir" not in sweep_dirs[-1]
        record = sweep_dirs[-1] if own_record else ""  # unless still to be worked out (${..})
        record_problem = not_creatable(record, True) if record and "${" not in record else None
        with _hydra_initialized(config_dir, args.config_dir):
            primary = _primary_with_hydra(config_name, overrides)
            # -m, or `hydra.mode=MULTIRUN` on the command line or in the config
            mode = modes[-1].split("=", 1)[1] if modes else str(primary.hydra.get("mode"))
            multirun = args.multirun or mode.upper().endswith("MULTIRUN")  # (-r: Hydra too)
            if multirun:  # the grid: the command line's and the config's sweeper's values
                overrides = [*overrides, *_sweeper_params(primary.hydra, overrides)]
            else:  # Hydra says "Ambiguous value for argument"
                _refuse_a_sweep_in_one_run(overrides)
            try:
                jobs = multirun_jobs(overrides) if multirun else [overrides]
            except ValueError as err:  # Python's own refusal of a sweep (`range(1,5,0)`)
                raise ConfigError(f"config: command line: {err}") from None
            if jobs is None:
                return
            if multirun and not printing and record_problem:  # Hydra writes it before a job
                raise ConfigError(f"config: hydra.sweep.dir: {record_problem}")
            swept = swept_groups(overrides) if multirun else set()
            unread: dict[str, list[str]] = {}  # key -> the jobs' lines refusing it
            checked: list[tuple[list[str], Config]] = []  # each job, composed and checked
            for job in jobs:
                composed = compose(config_name=config_name, overrides=job)
                if multirun and not printing:  # values too: a single run checks them itself
                    # a swept group's settings may be read by another of its jobs only
                    conf = to_config(composed, swept_groups=swept)
                    # Hydra writes its record of the multirun there (conf/config.yaml) before
                    # the first job, unless told where else
                    problem = None if own_record else not_creatable(conf.paths.output_dir, True)
                    if problem:
                        raise ConfigError(f"config: paths.output_dir: {problem}")
                    for key, problem in unread_settings(conf).items():
                        unread.setdefault(key, []).append(f"config: {key}: {problem}")
                    checked.append((job, conf))
                    if check_job is not None:
                        with _naming(job):
                            check_job(conf)
            for refusals in unread.values():  # a setting no job of the grid reads
                if len(refusals) == len(jobs):
                    raise ConfigError(refusals[0])
            data_read: set[str] = set()  # each job's data settings, read once (a seed of
            for job, conf in checked:  # its own makes no file or column bad)
                settings = repr(dataclasses.replace(conf.data, seed=0))
                if settings not in data_read:
                    data_read.add(settings)
                    with _naming(job):
                        check_data_readable(conf)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"config: {composition_error(err)}") from None


# Hydra's flags that run no job of ours: left to Hydra whatever the overrides
HYDRA_ONLY_FLAGS = (
    "help",
    "hydra_help",
    "version",
    "shell_completion",
    "info",
    "experimental_rerun",
)


def _hydra_command_line(argv: list[str]) -> Any:
    """`argv` as Hydra's own parser reads it (overrides, -m, -cn, ...); None where argparse
    refuses it (Hydra then prints its usage and exits 2: not said twice)."""
    import argparse

    from hydra._internal.utils import get_args_parser

    class Refused(Exception):
        pass

    def refuse(message: str) -> None:
        raise Refused(message)

    if "--version" in argv:  # argparse would print it (and Hydra again)
        return None
    parser = get_args_parser()
    parser.allow_abbrev = False  # `--vers` would print the version here, then Hydra again
    parser.error = refuse  # type: ignore[method-assign,assignment]
    try:
        return parser.parse_args(argv)
    except (Refused, argparse.ArgumentError, SystemExit):
        return None


def _refuse_a_sweep_in_one_run(overrides: list[str]) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for o in OverridesParser.create().parse_overrides(overrides):
        if o.is_sweep_override():
            raise ConfigError(
                f"config: {o.input_line}: several values make a multirun: add -m (a list value "
                f"is written in brackets: {o.get_key_element()}=[a,b])"
            )


def _primary_with_hydra(config_name: str, overrides: list[str]) -> Any:
    """The primary config with its `hydra` node (its mode, its sweeper's grid), composed with
    the overrides that set one value (the swept ones would make it a multirun's job)."""
    from hydra import compose
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [str(o.input_line) for o in parsed if not o.is_sweep_override()]
    return compose(config_name=config_name, overrides=fixed, return_hydra_config=True)


def _sweeper_params(hydra_node: Any, overrides: list[str]) -> list[str]:
    """A config's own grid (`hydra.sweeper.params`, in a config named with -cn) as overrides,
    each key the command line does not sweep or set itself (it wins, as in Hydra's sweeper)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    given = {o.key_or_group for o in OverridesParser.create().parse_overrides(overrides)}
    params = hydra_node.sweeper.get("params") or {}
    return [f"{key}={value}" for key, value in params.items() if key not in given]


@contextlib.contextmanager
def _hydra_initialized(config_dir: Path, extra_dir: str | None) -> Iterator[None]:
    """Hydra set up to compose as its app will: the primary config folder, and a `-cd` folder
    searched first (as Hydra's own command line puts it: `initialize_config_dir` takes one
    folder only, and a primary config of the user's lives in theirs)."""
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    backup = get_gh_backup()
    version.setbase(None)
    try:
        search_path = create_config_search_path(str(config_dir.absolute()))
        if extra_dir:
            search_path.prepend(
                provider="command-line",
                path=f"file://{Path(extra_dir).absolute()}",
                anchor=SearchPathQuery(provider="schema"),
            )
        Hydra.create_main_hydra2(task_name="app", config_search_path=search_path)
        yield
    finally:
        restore_gh_from_backup(backup)


def _primary_config_dir(config_path: str | None) -> Path | None:
    """The folder Hydra reads the primary config from: conf/, or an absolute `--config-path`;
    None for a `pkg://` path (left to Hydra). A relative one is refused: Hydra reads it as a
    Python package, not a folder of the current one, and says so in three lines."""
    if config_path is None:
        return CONF_DIR
    if config_path.startswith("pkg://"):
        return None
    folder = Path(config_path.removeprefix("file://"))
    if not folder.is_absolute():  # (`--config-path=~/conf`: the shell leaves that ~ alone)
        try:
            suggested = folder.expanduser().absolute()
        except RuntimeError:  # `~nosuchuser/conf`, or no home folder
            suggested = folder.absolute()
        raise ConfigError(
            f"config: --config-path: {config_path}: give an absolute folder (Hydra reads a "
            f"relative one as a Python package): -cp {suggested}"
        )
    return folder


@contextlib.contextmanager
def _naming(job: list[str]) -> Iterator[None]:
    """A job's bad input names the job: `model=tiny_bert` says which of the grid."""
    try:
        yield
    except user_errors() as err:  # (the error itself: DataFileMissing's constructor takes a
        err.args = (f"job {' '.join(job)}: {err}",)  # path, and its `.path` is read later)
        raise err from None


def check_data_readable(conf: Config) -> None:
    """A multirun job's data read as its run will read it (file, columns, labels, splits,
    `data.quality=fail`'s problems), so that a missing file or column of a later job fails
    before the first job's compute. A Hub dataset is left to its run: not downloaded for a
    check."""
    from pathlib import Path

    from automl.data.load import load_task_data
    from automl.data.quality import enforce_before_tokens

    if conf.data.source == "hf" and not Path(conf.data.hf_name).is_dir():
        return  # as a dry run: `check_hub_dataset` is the run's
    data_log = logging.getLogger("automl.data")
    level = data_log.level
    data_log.setLevel(logging.ERROR)  # its warnings are the job's to give, in its own log
    try:
        task = load_task_data(conf.data)
        enforce_before_tokens(task, conf.data.quality, conf.data.min_class_examples)
    finally:
        data_log.setLevel(level)


GRID_CHECKED_UP_TO = 100  # jobs: composing one takes ~0.1 s here
GROUPS = ("model", "data")  # the config groups whose options read settings of their own


def swept_groups(overrides: list[str]) -> set[str]:
    """The config groups a multirun's command line sweeps (`model=minilm,hf`): a job of one
    option may carry a setting that only another option reads."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:  # Hydra reports it itself
        return set()
    return {o.key_or_group for o in parsed if o.is_sweep_override()} & set(GROUPS)


def grid_overrides() -> list[str]:
    """What a multirun sweeps: its command line's overrides and its sweeper's `params` (a
    config's `hydra.sweeper.params`, used with `-cn`, say)."""
    from hydra.core.hydra_config import HydraConfig

    overrides = argv_overrides()
    if not HydraConfig.initialized():
        return overrides
    return [*overrides, *_sweeper_params(HydraConfig.get(), overrides)]


def argv_overrides() -> list[str]:
    """This process's overrides as Hydra reads them from its command line (flags and their
    values left out); [] where they do not parse."""
    args = _hydra_command_line(sys.argv[1:])
    return list(args.overrides or []) if args is not None else []


def multirun_jobs(overrides: list[str]) -> list[list[str]] | None:
    """The overrides of a multirun as the jobs to check: the whole grid, so that a combination
    two values make bad together (`data.val_fraction` + `data.test_fraction` >= 1) fails before
    the first job rather than in the middle of the multirun. A grid over GRID_CHECKED_UP_TO
    jobs is checked one job per value (each key's other values with the rest at their first),
    which still catches every bad single value. None where Hydra alone can expand."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob

    parsed = OverridesParser.create().parse_overrides(overrides)
    if any(o.is_sweep_override() and isinstance(o.value(), Glob) for o in parsed):
        return None  # `glob(...)` needs Hydra's config loader: left to Hydra
    options = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        if o.is_sweep_override()
        else [str(o.input_line)]
        for o in parsed
    ]
    empty = next((o for o, values in zip(parsed, options, strict=True) if not values), None)
    if empty is not None:  # Hydra would run no job at all, and exit 0
        raise ValueError(f"{empty.input_line} sweeps no value: the multirun would run nothing")
    if math.prod(len(values) for values in options) <= GRID_CHECKED_UP_TO:
        return [list(job) for job in itertools.product(*options)]
    first = [values[0] for values in options]
    jobs = [first]
    for i, values in enumerate(options):
        jobs += [[*first[:i], value, *first[i + 1 :]] for value in values[1:]]
    return jobs


def multirun_job() -> int | None:
    """The job number inside Hydra's multirun (`-m`), None in a single run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_conf = HydraConfig.get()
    return int(hydra_conf.job.num) if hydra_conf.mode == RunMode.MULTIRUN else None


def names_each_job(key: str) -> bool:
    """Whether the multirun's command line gives each job a value of `key` of its own: it is
    the only key swept, over distinct values (`sweep.name=a,b`); with any other key swept too,
    jobs share its values."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import QuotedString
    from hydra.errors import HydraException

    if HydraConfig.initialized() and HydraConfig.get().sweeper.get("params"):
        return False  # values swept from a config: not on the command line
    try:
        parsed = OverridesParser.create().parse_overrides(argv_overrides())
        swept = [o for o in parsed if o.is_sweep_override()]
        if len(swept) != 1 or swept[0].get_key_element() != key:
            return False
        values = [
            v.text if isinstance(v, QuotedString) else str(v) for v in swept[0].sweep_iterator()
        ]
    except (HydraException, SystemExit):
        return False
    return len(set(values)) == len(values)


def command_line_values() -> dict[str, str]:
    """The values this run's command line set (`overridden_values`); {} outside a Hydra app.
    In a multirun, the job's own values."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    return overridden_values(list(HydraConfig.get().overrides.task))


def overridden_values(overrides: list[str]) -> dict[str, str]:
    """Hydra overrides -> {key: value as typed}; `+`/`++` keys by their key, a group
    (`model=hf`) by its name; deletions (`~key`) set nothing."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return {o.key_or_group: str(o.get_value_string()) for o in parsed if not o.is_delete()}


def hydra_app(
    run: Callable[[Config], Any],
    came_to_nothing: Callable[[Any], str | None] | None = None,
    check_job: Callable[[Config], object] | None = None,
) -> Callable[[], None]:
    """Wrap `run(conf)` as a Hydra app whose input errors exit 2 with one line on stderr;
    `check_job(conf)` checks each job of a multirun before the first one runs.
    Where `came_to_nothing(result)` says why a run left its job undone (a sweep that exported
    no model, or did not register it; a training that diverged), the command exits 1 after
    its last job (a multirun goes on), with one line naming each, so a script or a CI job
    notices."""
    register_configs()
    failed: list[str] = []
    entered: list[bool] = []  # a job began: what it raises is its own, not Hydra's flags'

    @hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="config")
    def _main(cfg: DictConfig) -> None:
        entered.append(True)
        debug = bool(cfg.get("debug", False))
        setup_logging(debug)
        try:
            # a multirun job of a grid that sweeps a group (checked as a whole before it ran)
            swept = swept_groups(grid_overrides()) if multirun_job() is not None else set()
            try:  # an interpolation resolves here (`${oc.env:DATA}` with DATA unset)
                conf = to_config(cfg, swept_groups=swept)
            except OmegaConfBaseException as err:
                raise ConfigError(f"config: {composition_error(err)}") from err
            result = run(conf)
        except user_errors() as err:
            if debug:
                raise
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        why = came_to_nothing(result) if came_to_nothing is not None else None
        if why:
            failed.append(why)

    @functools.wraps(run)
    def main() -> None:
        failed.clear()
        entered.clear()
        if not (CONF_DIR / "config.yaml").is_file():  # Hydra would not say which folder
            print(
                f"error: {CONF_DIR}: no config.yaml here; the commands read conf/ and "
                "search_spaces/ from the source tree (install it editable: make install, or "
                "pip install -e .), or set AUTOML_CONF_DIR and AUTOML_SEARCH_SPACE_DIR",
                file=sys.stderr,
            )
            sys.exit(2)
        try:
            try:  # (a grid's check may take a while: a Ctrl-C there is one line too)
                check_overrides(sys.argv[1:], check_job)
            except user_errors() as err:
                print(f"error: {err}", file=sys.stderr)
                sys.exit(2)
            try:
                _main()
            except ValueError as err:  # Hydra's flags refused together (`-m --cfg job`)
                if entered:
                    raise
                first = first_line(err)
                print(f"error: command line: {first}", file=sys.stderr)
                sys.exit(2)
        except (HydraException, OmegaConfBaseException) as err:
            # Hydra's own flags (--help, --info, --cfg) compose outside its error report; a
            # job's (HYDRA_FULL_ERROR=1, a debugger) is raised as it is
            if entered:
                raise
            print(f"error: config: {composition_error(err)}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt as err:  # one line (a sweep says how to resume), 128 + signal
            signum = int(getattr(err, "signum", signal.SIGINT))
            by = "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signal.Signals(signum).name
            print(f"error: stopped by {by}", file=sys.stderr)
            sys.exit(128 + signum)
        finally:  # a later job's bad input (exit 2) or crash still reports the earlier ones
            if failed:
                print(f"error: {'; '.join(failed)}", file=sys.stderr)
        if failed:
            sys.exit(1)

    return main
