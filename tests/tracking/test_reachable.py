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
