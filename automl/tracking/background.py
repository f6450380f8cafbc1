"""The trials' MLflow writes in a process of their own, so Ray Tune's driver loop neither waits on
the store nor spends its CPU on it.

Ray calls the sweep's callback in its control loop, and each trial's writes cost the MLflow client
about 12 ms of CPU (SQLAlchemy and the store, five writes). In the driver's process that CPU
comes out of the loop's time even from a thread, because of the GIL: 200 one-second trials took
106.9 s with a writer thread, as with no thread, against 104.3 s when the same calls did nothing
and 104.6 s when they only slept (benchmarks/results/overhead_dummy_3_rounds_writer_thread/,
2026-12-05). A spawned process takes the CPU elsewhere; the driver only queues a small tuple.
MLflow's own asynchronous logging (`log_batch(..., synchronous=False)`) is a thread of the same
process and leaves run creation and ending synchronous, so it is not used here.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_FLUSH, _STOP = "__flush__", "__stop__"
_POLL_S = 1.0


class BackgroundWriter:
    """Calls methods of `factory(*args)`, an object built in a spawned process, one at a time in
    the order submitted. A call that fails is a warning from that process and the next one still
    runs (MLflow mirrors the sweep's own records; a lost write must not stop the sweep)."""

    def __init__(self, factory: Callable[..., Any], *args: Any) -> None:
        self._factory, self._args = factory, args
        self.failures = 0  # known after a flush
        self._process: Any = None
        self._inbox: Any = None
        self._outbox: Any = None

    def start(self) -> None:
        """Start the process now (it imports MLflow, ~1.5 s, while the driver goes on)."""
        if self._process is not None:
            return
        spawn = multiprocessing.get_context("spawn")  # not fork: the driver runs Ray's threads
        self._inbox, self._outbox = spawn.Queue(), spawn.Queue()
        self._process = spawn.Process(
            target=_serve,
            args=(self._factory, self._args, self._inbox, self._outbox),
            name="mlflow-writer",
            daemon=True,  # ends with the driver, however the driver ends
        )
        self._process.start()

    def submit(self, method: str, *args: Any) -> None:
        self.start()
        self._inbox.put((method, args))

    def flush(self) -> None:
        """Wait until every call submitted so far has run. A writer that died (killed, out of
        memory) is a warning, not a wait forever."""
        if self._process is None:
            return
        self._inbox.put((_FLUSH, ()))
        while True:
            try:
                self.failures = self._outbox.get(timeout=_POLL_S)
                return
            except queue.Empty:
                if not self._process.is_alive():
                    log.warning(
                        "the MLflow writer process ended (exit code %s); trial writes since "
                        "then are not in MLflow", self._process.exitcode,
                    )  # fmt: skip
                    self._process = None
                    return

    def close(self) -> None:
        """Flush, then end the process (a later `submit` starts a new one)."""
        self.flush()
        if self._process is None:
            return
        self._inbox.put((_STOP, ()))
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
        self._process = None

    # Ray pickles the sweep's callbacks with the experiment (tuner.pkl): a process does not
    # pickle, and a copy starts its own when first used
    def __getstate__(self) -> dict[str, Any]:
        return {"factory": self._factory, "args": self._args}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["factory"], *state["args"])  # type: ignore[misc]


def _serve(factory: Callable[..., Any], args: tuple[Any, ...], inbox: Any, outbox: Any) -> None:
    """The writer process: build the target, then run calls until told to stop or the driver is
    gone (its queued calls still run first)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's; it closes this writer
    to_stderr = logging.StreamHandler(sys.stderr)  # whatever the imports did to the root logger
    to_stderr.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(to_stderr)
    log.propagate = False
    failures = 0
    try:
        target = factory(*args)
    except Exception as exc:  # noqa: BLE001 - every write then fails, each one a count
        target = None
        log.warning("MLflow writer could not start: %s", _one_line(exc))
    driver = multiprocessing.parent_process()
    while True:
        try:
            method, call_args = inbox.get(timeout=_POLL_S)
        except queue.Empty:
            if driver is not None and not driver.is_alive():
                return
            continue
        if method == _STOP:
            return
        if method == _FLUSH:
            outbox.put(failures)
            continue
        try:
            if target is None:
                raise RuntimeError("the writer has no MLflow client")
            getattr(target, method)(*call_args)
        except Exception as exc:  # noqa: BLE001 - reported, and the next write still runs
            failures += 1
            log.warning("MLflow write failed (%s): %s", method, _one_line(exc))


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}"
