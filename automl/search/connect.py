"""Joining a running Ray cluster (`ray.address`): a cluster that cannot be reached is one line.

Ray itself waits: minutes for an address where nothing listens or where another service
answers (its dashboard's port), ~20 s of retries when the cluster wants an authentication token
this process lacks, then a traceback.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from automl.config.schema import ConfigError
from automl.config.values import ray_address_problem
from automl.console import first_line

log = logging.getLogger("automl.sweep")

CONNECT_TIMEOUT_S = 3.0
AUTH_HINT = (
    "a cluster with token authentication (Ray 2.60's default for one started on localhost) "
    "needs RAY_AUTH_MODE=token here, and RAY_AUTH_TOKEN off its head node (README, Clusters)"
)


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Something must answer at HOST:PORT before Ray is asked to join it; `auto` is the
    address Ray finds on this machine, found as Ray finds it (or its refusal, said now rather
    than after the data were read)."""
    problem = ray_address_problem(address)
    if problem:
        raise ConfigError(f"config: ray.address: {problem}")
    key = "ray.address"
    if address == "auto":
        address = _auto_address()
        if not address:
            return
        key = "ray.address: auto"  # where the address came from, in each line below
    host, _, port = address.rpartition(":")
    try:
        connection = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s)
    except socket.gaierror:
        raise ConfigError(f"config: {key}: {address}: no such host {host!r}") from None
    except OSError as err:
        why = err.strerror or type(err).__name__
        raise ConfigError(
            f"config: {key}: nothing answers at {address} ({why}); is the cluster up "
            "(`ray status` on its head)? An empty ray.address starts a private one"
        ) from None
    with connection:
        if os.environ.get("RAY_USE_TLS", "").lower() in ("1", "true"):
            return  # a TLS handshake first: not probed
        answer = _speaks_http2(connection, timeout_s)
        if answer is None:  # a slow head (a busy GCS, a tunnel) is not refused for it
            log.warning(
                "ray.address: %s said nothing in %.0f s to an HTTP/2 greeting (as a Ray head "
                "answers); joining it anyway: Ray may wait for minutes if it is no Ray head",
                address, timeout_s,
            )  # fmt: skip
        elif not answer:
            raise ConfigError(
                f"config: {key}: {address} answers, but not as a Ray cluster's head "
                "(its GCS port, 6379 unless `ray start --head --port` set another); the "
                "dashboard (8265) or an MLflow server there made Ray wait for minutes"
            )


def _auto_address() -> str:
    """The HOST:PORT `ray.init(address="auto")` joins (RAY_ADDRESS first, then the cluster
    started on this machine), through Ray's own lookup; "" where this Ray has no such lookup
    (a private function: Ray itself is then asked, after the data)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:
        return ""
    problem = ray_address_problem(os.environ.get("RAY_ADDRESS"))
    if problem:
        raise ConfigError(f"config: ray.address: auto (RAY_ADDRESS): {problem}")
    try:
        return canonicalize_bootstrap_address("auto") or ""
    except ConnectionError as err:
        raise connection_error("auto", err) from None
    except ValueError as err:  # an address Ray cannot parse
        raise ConfigError(f"config: ray.address: auto: {first_line(err)}") from None


# An HTTP/2 client's first bytes and an empty SETTINGS frame: a gRPC server (Ray's GCS)
# answers with a SETTINGS frame of its own (type 4, the frame header's fourth byte)
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _speaks_http2(connection: socket.socket, timeout_s: float) -> bool | None:
    """Whether the server answers HTTP/2 as gRPC does: False where it answers otherwise (an
    HTTP/1 server: Ray's dashboard, MLflow) or hangs up; None where it says nothing in time."""
    deadline = time.monotonic() + timeout_s
    head = b""
    try:
        connection.sendall(_HTTP2_PREFACE)
        while len(head) < 9:
            left = deadline - time.monotonic()
            if left <= 0:
                return None if not head else False
            connection.settimeout(left)
            chunk = connection.recv(9 - len(head))
            if not chunk:  # hung up
                return False
            head += chunk
    except TimeoutError:
        return None if not head else False
    except OSError:  # reset
        return False
    return head[3] == 4


def connection_error(address: str, err: Exception) -> ConfigError:
    """Ray's refusal to join (a ConnectionError; a RuntimeError where this process's own
    authentication setup fails), as the one line a user can act on."""
    if address == "auto" and "Could not find any running Ray instance" in str(err):
        return ConfigError(
            "config: ray.address: auto, but no Ray cluster runs on this machine (start one with "
            "`ray start --head`, or leave ray.address empty for a private one)"
        )
    # Ray's version mismatch names the versions on later lines; a ConnectionError may carry
    # the RuntimeError that says why as its cause
    text = " ".join(f"{err} {err.__cause__ or ''}".split())
    if "No node info found" in text:  # (after Ray's 60 s of looking for a raylet here)
        return ConfigError(
            f"config: ray.address: {address}: this machine is not a node of that cluster (a "
            "driver runs on one), or its node IP differs from the one the cluster knows "
            "(`ray start --node-ip-address`): run the sweep on a node, or submit it with "
            "`ray job submit`"
        )
    if text.startswith("Version mismatch"):
        return ConfigError(
            f"config: ray.address: {address}: {text[:400]} (run the cluster's Ray and Python "
            "versions here)"
        )
    first = first_line(err).rstrip(".")
    if address == "auto":  # e.g. several clusters run here: Ray's own words say which
        return ConfigError(f"config: ray.address: auto: {first}")
    return ConfigError(f"config: ray.address: {first}; {AUTH_HINT}")
