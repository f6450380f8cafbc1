"""Stopping a sweep from outside: Ctrl-C, or SIGTERM (a scheduler's time limit, a preempted node).

Ray Tune catches Ctrl-C itself: it saves the experiment and `Tuner.fit` returns as if the trials
were done. The sweep must instead stop, export nothing and leave its state resumable
(`sweep.resume=true`), so each stop is raised as `SweepInterrupted`, and the command exits
128 + the signal's number with one line.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


class SweepInterrupted(KeyboardInterrupt):
    """The sweep was stopped by a signal; `sweep.resume=true` continues it."""

    def __init__(self, sweep: str, signum: int) -> None:
        super().__init__(sweep)
        self.signum = signum  # the command exits 128 + signum


# Ray's Ctrl-C handler also answers SIGUSR1 and stays in place after `fit`
KEPT_SIGNALS = tuple(
    s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGUSR1", None)) if s is not None
)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigterm_stops(sweep: str) -> Iterator[None]:
    """For the whole sweep, SIGTERM raises `SweepInterrupted` (the MLflow run is marked KILLED,
    Ray is shut down) rather than ending the process where it stands: by default at once, and
    once Ray runs, in Ray's stack dump."""
    if not _in_main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise SweepInterrupted(sweep, signum)

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if before is None else before)


@dataclass
class FitStop:
    """The signal that stopped `Tuner.fit`, if one did (`forward_to_ray`, `during_fit`)."""

    signum: int | None = None
    sigint_before: Any = None  # the Ctrl-C handler before `fit`: Ray's puts it back on firing


def forward_to_ray(stopped: FitStop) -> None:
    """Called when Ray has put in its Ctrl-C handler (the sweep callback's `setup`): SIGTERM
    then takes the same way, Ray saving the experiment before `fit` returns; a second stop
    signal ends at once."""
    ray_handler = signal.getsignal(signal.SIGINT)
    if not _in_main_thread() or not callable(ray_handler):
        return
    if ray_catches_ctrl_c() and stopped.sigint_before is not None:
        if ray_handler is stopped.sigint_before:  # Ray's fired already (while it loaded state)
            stopped.signum = signal.SIGINT
            return

    def on_stop(signum: int, frame: Any) -> None:
        if stopped.signum is not None:  # the second one: skip Ray's save
            raise SweepInterrupted("", signum)
        stopped.signum = signum
        ray_handler(signal.SIGINT, frame)

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)


@contextmanager
def during_fit(stopped: FitStop) -> Iterator[None]:
    """Around `Tuner.fit`: records in `stopped` whether a signal stopped it, and puts the
    handlers back after it (Ray's own would swallow a Ctrl-C during the export). Ray's handler
    puts back the one it found as soon as it fires, so finding that one again after `fit`
    means it fired, even if the signal came before the callback chained in front of it."""
    if not _in_main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in KEPT_SIGNALS}
    stopped.sigint_before = before[signal.SIGINT]
    try:
        yield
    finally:
        now = signal.getsignal(signal.SIGINT)
        if stopped.signum is None and ray_catches_ctrl_c() and now is before[signal.SIGINT]:
            stopped.signum = signal.SIGINT
        for s, handler in before.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)


def ray_catches_ctrl_c() -> bool:
    """Whether Ray Tune puts in its Ctrl-C handler (it does in the main thread unless told not
    to: ray/tune/tune.py `_setup_signal_catching`)."""
    return _in_main_thread() and not int(os.getenv("TUNE_DISABLE_SIGINT_HANDLER", "0"))
