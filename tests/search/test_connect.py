"""A cluster that cannot be joined (`ray.address`) is one line at once, not Ray's minutes of
retries and a traceback."""

from __future__ import annotations

import socket

import pytest

from automl.config.schema import ConfigError
from automl.search.connect import check_reachable, connection_error


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_address_where_nothing_listens_fails_at_once() -> None:
    """The refusal of one connection attempt, not Ray's own join (it waited minutes here)."""
    port = _closed_port()
    with pytest.raises(ConfigError, match=rf"nothing answers at 127.0.0.1:{port} \(Connection"):
        check_reachable(f"127.0.0.1:{port}")


def test_an_address_that_answers_passes() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("ray://10.0.0.1:10001", "Ray Client \\(ray://\\) is not supported"),
        ("headnode", "'headnode' is not HOST:PORT or auto"),
        ("headnode:port", "'headnode:port' is not HOST:PORT or auto"),
        ("no-such-host.invalid:6379", "no such host 'no-such-host.invalid'"),
    ],
)
def test_addresses_ray_cannot_use_here_are_named(address: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        check_reachable(address)


def test_ray_refusing_to_join_is_one_line_with_what_to_do() -> None:
    refused = ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379.\nmore detail")
    message = str(connection_error("10.0.0.1:6379", refused))
    assert "\n" not in message
    assert message.startswith("config: ray.address: Failed to connect to Ray cluster at 10.0.0.1")
    assert "RAY_AUTH_MODE=token" in message  # the usual cause since Ray 2.60
    none_running = ConnectionError("Could not find any running Ray instance. Please ...")
    assert "no Ray cluster runs on this machine" in str(connection_error("auto", none_running))
    several = ConnectionError("Found multiple active Ray instances: {'a', 'b'}. Please ...")
    assert str(connection_error("auto", several)).startswith(
        "config: ray.address: auto: Found multiple active Ray instances: {'a', 'b'}"
    )


def test_local_is_a_private_instance_as_empty_is() -> None:
    from automl.config.schema import Config, RayConfig
    from automl.search.plan import cluster_address

    for given, expected in [(None, None), ("", None), ("local", None), ("auto", "auto")]:
        assert cluster_address(Config(ray=RayConfig(address=given))) == expected
