"""Joining a running Ray cluster (`ray.address`): a cluster that cannot be reached is one line.

Ray itself waits: minutes for an address where nothing listens, ~20 s of retries when the
cluster wants an authentication token this process lacks, then a traceback.
"""

from __future__ import annotations

import socket

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
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except socket.gaierror:
        raise ConfigError(f"config: ray.address: {address}: no such host {host!r}") from None
    except OSError as err:
        why = err.strerror or type(err).__name__
        raise ConfigError(
            f"config: ray.address: nothing answers at {address} ({why}); is the cluster up "
            "(`ray status` on its head)? An empty ray.address starts a private one"
        ) from None


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
