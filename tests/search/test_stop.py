"""A stop signal during `Tuner.fit` is seen whenever it comes, with Ray's own Ctrl-C handler (the
real one, ray/tune/tune.py) in place as in a sweep: before the sweep's callback chained in front
of it, through it, and for SIGTERM; the handlers are put back after `fit`."""

from __future__ import annotations

import os
import signal

import pytest
from ray.tune.tune import _setup_signal_catching

from automl.search.stop import FitStop, SweepInterrupted, during_fit, forward_to_ray, sigterm_stops


@pytest.fixture
def own_handlers() -> None:
    """Python's defaults around each test, whatever pytest had set."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for s, handler in before.items():
        signal.signal(s, handler)


@pytest.mark.usefixtures("own_handlers")
@pytest.mark.parametrize("chained", ["never", "before", "after"])
def test_ctrl_c_during_fit_is_seen_before_or_after_the_callback_chains_in(chained: str) -> None:
    """`after`: the Ctrl-C came while Ray loaded a restored experiment, between putting in its
    handler and calling the callback's setup."""
    stop = FitStop()
    with during_fit(stop):
        ray_stopped = _setup_signal_catching()  # what Tuner.fit does first
        if chained == "before":
            forward_to_ray(stop)  # the sweep callback's setup, a moment later
        os.kill(os.getpid(), signal.SIGINT)
        if chained == "after":
            forward_to_ray(stop)
        assert ray_stopped.is_set()  # Ray ends the run gracefully ...
    assert stop.signum == signal.SIGINT  # ... and the sweep knows it was stopped
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    assert signal.getsignal(signal.SIGUSR1) is not None


@pytest.mark.usefixtures("own_handlers")
def test_a_fit_nobody_stopped_is_not_taken_for_a_stopped_one() -> None:
    stop = FitStop()
    with during_fit(stop):
        _setup_signal_catching()
        forward_to_ray(stop)
    assert stop.signum is None
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.usefixtures("own_handlers")
def test_sigterm_stops_as_ctrl_c_and_a_second_signal_ends_at_once() -> None:
    stop = FitStop()
    with sigterm_stops("s"), during_fit(stop):
        ray_stopped = _setup_signal_catching()
        forward_to_ray(stop)
        os.kill(os.getpid(), signal.SIGTERM)
        assert ray_stopped.is_set() and stop.signum == signal.SIGTERM
        with pytest.raises(SweepInterrupted) as second:
            os.kill(os.getpid(), signal.SIGTERM)
        assert second.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


@pytest.mark.usefixtures("own_handlers")
def test_sigterm_outside_fit_raises_what_the_command_reports() -> None:
    with sigterm_stops("s"), pytest.raises(SweepInterrupted) as stopped:
        os.kill(os.getpid(), signal.SIGTERM)
    assert stopped.value.signum == signal.SIGTERM
