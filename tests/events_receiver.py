"""A local HTTP receiver for the outgoing-events tests: records every request, answers a settable status."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int
    at: float = field(default_factory=time.time)


class Receiver:
    """``url`` takes POSTs; ``status`` is what it answers; ``requests`` what it got (every attempt)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[Received] = []
        self._cond = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = owner.status
                with owner._cond:
                    owner.requests.append(Received({k.lower(): v for k, v in self.headers.items()}, body, status))
                    owner._cond.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def delivered(self) -> list[Received]:
        with self._cond:
            return [r for r in self.requests if 200 <= r.status < 300]

    def wait(self, check, timeout: float, what: str = "condition") -> list[Received]:
        """Wait until ``check(delivered requests)`` is true; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.requests if 200 <= r.status < 300]
                if check(got):
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver: no {what} within {timeout}s; got {len(self.requests)} requests")
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
