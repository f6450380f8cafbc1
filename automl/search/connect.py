"""Joining a running Ray cluster (`ray.address`): a cluster that cannot be reached is one line.

Ray itself waits: minutes for an address where nothing listens or where another service
answers (its dashboard's port), ~20 s of retries when the cluster wants an authentication token
this process lacks, then a traceback.
"""

from __future__ import annotations

import os
import socket
import time

from automl.config.schema import ConfigError
from automl.config.values import ray_address_problem
from automl.console import first_line

CONNECT_TIMEOUT_S = 3.0
AUTH_HINT = (
    "a cluster with token authentication (Ray 2.60's default for one started on localhost) "
    "needs RAY_AUTH_MODE=token here, and RAY_AUTH_TOKEN off its head node (README, Clusters)"
)


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Something must answer at HOST:PORT before Ray is asked to join it; `auto` is left to Ray,
    which fails at once when no cluster runs on this machine."""
    problem = ray_address_problem(address)
    if problem:
        raise ConfigError(f"config: ray.address: {problem}")
    if address == "auto":
        return
    host, _, port = address.rpartition(":")
    try:
        connection = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s)
    except socket.gaierror:
        raise ConfigError(f"config: ray.address: {address}: no such host {host!r}") from None
    except OSError as err:
        why = err.strerror or type(err).__name__
        raise ConfigError(
            f"config: ray.address: nothing answers at {address} ({why}); is the cluster up "
            "(`ray status` on its head)? An empty ray.address starts a private one"
        ) from None
    with connection:
        if os.environ.get("RAY_USE_TLS", "").lower() in ("1", "true"):
            return  # a TLS handshake first: not probed
        if not _speaks_http2(connection, timeout_s):
            raise ConfigError(
                f"config: ray.address: {address} answers, but not as a Ray cluster's head "
                "(its GCS port, 6379 unless `ray start --head --port` set another); the "
                "dashboard (8265) or an MLflow server there made Ray wait for minutes"
            )


# An HTTP/2 client's first bytes and an empty SETTINGS frame: a gRPC server (Ray's GCS)
# answers with a SETTINGS frame of its own (type 4, the frame header's fourth byte)
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _speaks_http2(connection: socket.socket, timeout_s: float) -> bool:
    """Whether the server answers HTTP/2 as gRPC does. An HTTP/1 server (Ray's dashboard,
    MLflow) answers otherwise, and one that says nothing runs out the timeout."""
    deadline = time.monotonic() + timeout_s
    head = b""
    try:
        connection.sendall(_HTTP2_PREFACE)
        while len(head) < 9 and (left := deadline - time.monotonic()) > 0:
            connection.settimeout(left)
            chunk = connection.recv(9 - len(head))
            if not chunk:
                break
            head += chunk
    except OSError:  # a timeout, or a reset
        return False
    return len(head) == 9 and head[3] == 4


def connection_error(address: str, err: Exception) -> ConfigError:
    """Ray's refusal to join (a ConnectionError; a RuntimeError where this process's own
    authentication setup fails), as the one line a user can act on."""
    if address == "auto" and "Could not find any running Ray instance" in str(err):
        return ConfigError(
            "config: ray.address: auto, but no Ray cluster runs on this machine (start one with "
            "`ray start --head`, or leave ray.address empty for a private one)"
        )
    first = first_line(err).rstrip(".")
    if address == "auto":  # e.g. several clusters run here: Ray's own words say which
        return ConfigError(f"config: ray.address: auto: {first}")
    return ConfigError(f"config: ray.address: {first}; {AUTH_HINT}")
