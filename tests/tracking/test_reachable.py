"""An HTTP tracking server is asked whether it answers before a sweep spends compute: one that
answers must pass however it answers, one that does not is one line."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from automl.config.schema import ConfigError
from automl.tracking.uri import check_reachable

SEEN: list[str | None] = []


class _AuthProxy(BaseHTTPRequestHandler):
    """Answers 200 to alice:pw, 401 to anyone else (an authenticating proxy)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        SEEN.append(self.headers.get("Authorization"))
        good = "Basic " + base64.b64encode(b"alice:pw").decode()
        self.send_response(200 if self.headers.get("Authorization") == good else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _AuthProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_a_server_that_answers_passes_with_credentials_or_a_refusal(proxy: int) -> None:
    """urllib took `alice:pw@host` for the host name ("Name or service not known"), and a 401
    from an authenticating proxy for no answer: both refused a server MLflow could use."""
    SEEN.clear()
    check_reachable(f"http://alice:pw@127.0.0.1:{proxy}")
    assert SEEN[-1] == "Basic " + base64.b64encode(b"alice:pw").decode()
    check_reachable(f"http://127.0.0.1:{proxy}/")  # 401: it answered
    assert SEEN[-1] is None


def test_a_server_that_does_not_answer_is_one_line_without_the_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    with pytest.raises(ConfigError) as err:
        check_reachable(f"http://alice:s3cret@127.0.0.1:{port}", timeout_s=2)
    message = str(err.value)
    assert message.startswith("config: tracking.uri: ") and "does not answer" in message
    assert "s3cret" not in message and "\n" not in message


class _Down(BaseHTTPRequestHandler):
    """A proxy whose MLflow behind it is down (502), or a server that is not MLflow (404)."""

    code = 502

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(self.code)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("code", "said"), [(502, "answered HTTP 502 at /health"), (404, "cannot be used")]
)
def test_an_answer_that_is_an_error_is_refused(code: int, said: str) -> None:
    """Only a login refusal says the server is there: a 502 passed, then each MLflow call
    retried for minutes. A 404 at /health is asked of MLflow's API (a server without /health
    may have it): this one has neither."""
    handler = type("Down", (_Down,), {"code": code})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ConfigError, match=said):
            check_reachable(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()


def test_a_password_that_breaks_the_url_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        check_reachable("http://alice:pa/ss@127.0.0.1:1", timeout_s=1)
    assert "is not a valid URL" in str(err.value) and "pa/ss" not in str(err.value)


def test_credentials_do_not_follow_a_redirect_to_another_host(proxy: int) -> None:
    """urllib copied the Authorization header onto the redirected request: the password went
    to whatever host the server named."""

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{proxy}/login")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    SEEN.clear()
    try:
        check_reachable(f"http://alice:pw@127.0.0.1:{server.server_address[1]}")  # 401 there
    finally:
        server.shutdown()
    assert SEEN == [None]  # the redirected request reached the proxy without the password


def test_a_registry_apart_from_the_store_is_checked_before_any_compute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """$MLFLOW_REGISTRY_URI registers the export: one that did not answer failed the sweep at
    its very end, after every trial, and the tracking store's check never looked at it."""
    from automl.tracking.uri import check_registry

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"http://alice:s3cret@127.0.0.1:{port}")
    with pytest.raises(ConfigError) as err:
        check_registry(store)
    message = str(err.value)
    assert message.startswith("config: MLFLOW_REGISTRY_URI: ") and "does not answer" in message
    assert "s3cret" not in message and "tracking.uri" not in message
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite://")  # in memory: gone with the command
    with pytest.raises(ConfigError, match=r"^config: MLFLOW_REGISTRY_URI: sqlite://: an in-memory"):
        check_registry(store)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store)  # the store itself: checked as the store
    check_registry(store)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    check_registry(store)
