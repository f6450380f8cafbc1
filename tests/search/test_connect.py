"""A cluster that cannot be joined (`ray.address`) is one line at once, not Ray's minutes of
retries and a traceback."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

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


def test_a_ray_clusters_head_passes(shared_ray: Any) -> None:
    import ray

    shared_ray()
    check_reachable(ray.get_runtime_context().gcs_address)


def test_an_address_where_another_service_answers_fails_in_seconds() -> None:
    """The dashboard's port (8265, which `ray job submit` takes) or an MLflow server: Ray
    waited for minutes, printing its C++ warnings."""
    import http.server
    import threading

    quiet = type(
        "Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *args: None}
    )
    server = http.server.HTTPServer(("127.0.0.1", 0), quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"127.0.0.1:{server.server_address[1]}"
        with pytest.raises(ConfigError, match="answers, but not as a Ray cluster's head"):
            check_reachable(address)
    finally:
        server.shutdown()
        server.server_close()


def test_a_head_that_says_nothing_in_time_is_joined_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A busy head or a slow tunnel is not refused for a slow answer; one that hangs up is."""
    with socket.socket() as silent:  # accepts, says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        check_reachable(f"127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.5)
        assert time.monotonic() - started < 3
    assert "said nothing in 0 s to an HTTP/2 greeting" in caplog.text
    with socket.socket() as rude:  # accepts, and hangs up at once

        def hang_up() -> None:
            connection, _ = rude.accept()
            connection.close()

        rude.bind(("127.0.0.1", 0))
        rude.listen()
        import threading

        threading.Thread(target=hang_up, daemon=True).start()
        with pytest.raises(ConfigError, match="answers, but not as a Ray cluster's head"):
            check_reachable(f"127.0.0.1:{rude.getsockname()[1]}", timeout_s=2.0)


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
    outside = RuntimeError("No node info found matching attributes: '' ...")  # no raylet here
    assert str(connection_error("10.0.0.1:6379", outside)) == (
        "config: ray.address: 10.0.0.1:6379: this machine is not a node of that cluster (a "
        "driver runs on one), or its node IP differs from the one the cluster knows (`ray start "
        "--node-ip-address`): run the sweep on a node, or submit it with `ray job submit`"
    )
    wrapped = ConnectionError("Failed to connect")
    wrapped.__cause__ = outside
    assert "not a node of that cluster" in str(connection_error("10.0.0.1:6379", wrapped))
    mismatch = RuntimeError(
        "Version mismatch: The cluster was started with:\n    Ray: 2.59.0\n    Python: 3.10.4\n"
        "This process on node 10.0.0.2 was started with:\n    Ray: 2.60.0\n    Python: 3.11.7\n"
    )
    message = str(connection_error("auto", mismatch))
    assert "Ray: 2.59.0 Python: 3.10.4" in message and "Ray: 2.60.0" in message
    assert "\n" not in message and "RAY_AUTH_MODE" not in message
    several = ConnectionError("Found multiple active Ray instances: {'a', 'b'}. Please ...")
    assert str(connection_error("auto", several)).startswith(
        "config: ray.address: auto: Found multiple active Ray instances: {'a', 'b'}"
    )


def test_auto_is_the_address_ray_would_join_checked_before_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`auto` was left to Ray, asked only after the data were read and tokenized; it is
    resolved as Ray resolves it (RAY_ADDRESS first, then this machine's cluster) and probed."""
    import ray
    from conftest import compose_sweep_config

    import automl.search.sweep as sweep_module

    ray.shutdown()  # (the session's shared instance: a sweep would use it and ask no address)
    port = _closed_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")  # where Ray's `auto` would go
    with pytest.raises(
        ConfigError, match=f"^config: ray.address: auto: nothing answers at [0-9.]+:{port} "
    ):  # (Ray names localhost by this machine's IP)
        check_reachable("auto")
    for given, said in [
        ("ray://head:10001", r"auto \(RAY_ADDRESS\): ray://head:10001: Ray Client"),
        ("headnode", r"auto \(RAY_ADDRESS\): 'headnode' is not HOST:PORT"),
    ]:
        monkeypatch.setenv("RAY_ADDRESS", given)
        with pytest.raises(ConfigError, match=f"^config: ray.address: {said}"):
            check_reachable("auto")
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")

    def read_first(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data were read before the address was tried")

    monkeypatch.setattr(sweep_module, "prepare_data_for_models", read_first)
    conf = compose_sweep_config(tmp_path, "experiment=smoke", "ray.address=auto")
    with pytest.raises(ConfigError, match=f"nothing answers at [0-9.]+:{port} "):
        sweep_module.run_sweep(conf)


def test_local_is_a_private_instance_as_empty_is() -> None:
    from automl.config.schema import Config, RayConfig
    from automl.search.plan import cluster_address

    for given, expected in [(None, None), ("", None), ("local", None), ("auto", "auto")]:
        assert cluster_address(Config(ray=RayConfig(address=given))) == expected


def test_a_sweep_names_a_wrong_address_before_reading_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The address was first tried after the data were read and tokenized (minutes for a
    large Hub dataset)."""
    import ray
    from conftest import compose_sweep_config

    import automl.search.sweep as sweep_module

    ray.shutdown()  # (the session's shared instance: a sweep would use it and ask no address)

    def read_first(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data were read before the address was tried")

    monkeypatch.setattr(sweep_module, "prepare_data_for_models", read_first)
    port = _closed_port()
    conf = compose_sweep_config(tmp_path, "experiment=smoke", f"ray.address=127.0.0.1:{port}")
    with pytest.raises(ConfigError, match=f"nothing answers at 127.0.0.1:{port}"):
        sweep_module.run_sweep(conf)
