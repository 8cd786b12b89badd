"""The ``nats`` output: one JetStream publish per event, the CloudEvent in binary mode.

Subject ``<subject>.<type-suffix>.<model>`` (``mlops.registry.alias.moved.churn``); the model's
characters that a subject token cannot hold become ``_`` (the data keeps the real name). Headers:
the ``ce-*`` attributes and ``content-type`` (the CloudEvents binary mode), and ``Nats-Msg-Id`` =
the event id, so JetStream drops a second publish of the same event (within the stream's duplicate
window); a replay publishes ``<id>.replay.<n>``, which the stream stores, and keeps ``ce-id``.

nats-py is asyncio only: the output owns one event loop, run in its own thread, and ``send`` (any
thread) waits on a coroutine submitted to it. The connection reconnects by itself when the server
restarts; a publish that gets no acknowledgement is ``retry`` (at least once: the next attempt
carries the same ``Nats-Msg-Id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import nats
from nats.aio.client import Client
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from watcher.config.events import NatsOutputConfig
from watcher.events.model import DeliveryResult, OutgoingEvent
from watcher.obs.logs import get_logger
from watcher.obs.redact import redact

log = get_logger("watcher.events.nats")
T = TypeVar("T")
_SUBJECT_UNSAFE = frozenset(" .*>")
DUPLICATE_WINDOW_SECONDS = 3600.0
"""The duplicate window of a stream this output creates: a publish repeated within an hour (a
retry after a NATS restart or a daemon kill) is dropped by JetStream. A stream that exists is
used as it is."""
_GRACE_SECONDS = 2.0  # on top of the timeouts of the connect, the stream check and the publish


def subject_token(model: str) -> str:
    """``model`` as one subject token: spaces, dots, ``*``, ``>`` and non-printable characters -> ``_``."""
    token = "".join("_" if ch in _SUBJECT_UNSAFE or not ch.isprintable() or ch.isspace() else ch
                    for ch in model)
    return token or "_"


def event_subject(prefix: str, event: OutgoingEvent) -> str:
    """``<prefix>.<type-suffix>.<model token>``, e.g. ``mlops.registry.alias.moved.churn``."""
    return f"{prefix}.{event.short_type}.{subject_token(event.model)}"


def message_id(event: OutgoingEvent) -> str:
    """``Nats-Msg-Id``: the event id, or ``<id>.replay.<n>`` for the n-th replay."""
    return f"{event.id}.replay.{event.replay}" if event.replay else event.id


def nats_message(event: OutgoingEvent) -> tuple[dict[str, str], bytes]:
    """The headers (``ce-*``, ``content-type``, ``Nats-Msg-Id``) and the body (the data) of one event."""
    binary, body = event.binary()
    headers = {name.lower(): value for name, value in binary.items()}
    headers["Nats-Msg-Id"] = message_id(event)
    return headers, body


class NatsOutput:
    """A JetStream publisher with its own event loop thread (see the module docstring)."""

    def __init__(self, config: NatsOutputConfig) -> None:
        self.name = config.name
        self._config = config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Client | None = None
        self._stream_ready = False
        self._last_error: str | None = None
        self._lock = threading.Lock()

    # ---- the Output protocol -------------------------------------------------------------------
    def send(self, event: OutgoingEvent) -> DeliveryResult:
        """Publish ``event`` and wait for JetStream's ack: ``delivered`` (also for a duplicate the
        stream dropped), else ``retry`` with the reason."""
        headers, body = nats_message(event)
        subject = event_subject(self._config.subject, event)
        try:
            self._call(self._publish(subject, headers, body), self._config.timeout_seconds * 3 + _GRACE_SECONDS)
        except Exception as exc:  # noqa: BLE001 - every failure to get an ack is a retry
            return DeliveryResult("retry", self._error_text(exc))
        return DeliveryResult("delivered", None)

    def check(self) -> str | None:
        """Connect and ask for the account's JetStream info (nothing published): None when JetStream
        answers, else the reason."""
        try:
            self._call(self._check(), self._config.timeout_seconds + _GRACE_SECONDS)
        except Exception as exc:  # noqa: BLE001 - the reason is the answer
            return self._error_text(exc)
        return None

    def close(self) -> None:
        """Drain and close the connection, then stop the loop and its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):  # closing a dead connection: nothing left to do
            asyncio.run_coroutine_threadsafe(self._disconnect(), loop).result(self._config.timeout_seconds + 1)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()

    # ---- the loop thread -----------------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                                name=f"events-nats-{self.name}")
                self._thread.start()
            loop = self._loop
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise TimeoutError(f"no answer from NATS within {timeout:g} s") from None

    async def _connection(self) -> Client:
        if self._nc is not None and not self._nc.is_closed:
            return self._nc
        self._stream_ready = False
        self._last_error = None
        connecting = nats.connect(
            self._config.url, name=f"registry-watcher/{self.name}",
            connect_timeout=max(1, int(self._config.timeout_seconds)),
            allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=1,
            error_cb=self._on_error, disconnected_cb=self._on_disconnected, reconnected_cb=self._on_reconnected)
        try:
            self._nc = await asyncio.wait_for(connecting, self._config.timeout_seconds)
        except asyncio.TimeoutError:
            raise ConnectionError(f"cannot connect within {self._config.timeout_seconds:g} s: "
                                  f"{self._last_error or 'no answer'}") from None
        return self._nc

    async def _publish(self, subject: str, headers: dict[str, str], body: bytes) -> None:
        nc = await self._connection()
        js = nc.jetstream(timeout=self._config.timeout_seconds)
        if not self._stream_ready:
            await self._ensure_stream(nc)
        try:
            await js.publish(subject, body, headers=headers, timeout=self._config.timeout_seconds)
        except nats.js.errors.NoStreamResponseError:
            self._stream_ready = False  # the stream was deleted under us: made again at the next attempt
            raise

    async def _ensure_stream(self, nc: Client) -> None:
        jsm = nc.jsm(timeout=self._config.timeout_seconds)
        try:
            await jsm.stream_info(self._config.stream)
        except NotFoundError:
            await jsm.add_stream(StreamConfig(name=self._config.stream, subjects=[f"{self._config.subject}.>"],
                                              duplicate_window=DUPLICATE_WINDOW_SECONDS))
            log.info("events_nats_stream_created", output=self.name, stream=self._config.stream,
                     subjects=f"{self._config.subject}.>")
        self._stream_ready = True

    async def _check(self) -> None:
        nc = await self._connection()
        await nc.jsm(timeout=self._config.timeout_seconds).account_info()

    async def _disconnect(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            await nc.close()

    async def _on_error(self, exc: Exception) -> None:
        """Kept for the outcome of the attempt that needed the connection (reported there)."""
        self._last_error = f"{type(exc).__name__}: {exc}".rstrip(": ")

    async def _on_disconnected(self) -> None:
        if self._nc is not None:  # not our own close()
            log.warning("events_nats_disconnected", output=self.name)

    async def _on_reconnected(self) -> None:
        log.info("events_nats_reconnected", output=self.name)

    def _error_text(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}".rstrip(": ")
        return redact(text.replace(self._config.url, "<nats url>"))
