"""A Basic login is checked only by the tracking server itself: a redirect is a refusal, and the
caller's ``Authorization`` header never follows it to another address."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from watcher.approvals.identity import Unverified, verify_caller
from watcher.testing import free_port


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_a_redirect_of_users_current_is_a_refusal_and_the_login_stays_home():
    seen: list[str | None] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"user": {"username": "mallory"}}')

        def log_message(self, *args: object) -> None:
            pass

    other, other_url = _serve(Elsewhere)

    class Redirecting(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"{other_url}/api/2.0/mlflow/users/current")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    tracking, tracking_url = _serve(Redirecting)
    try:
        with pytest.raises(Unverified, match="302"):
            verify_caller({"authorization": "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ="}, tracking_url, None)
        assert seen == []  # the caller's login never reached the other address
    finally:
        tracking.shutdown()
        other.shutdown()
