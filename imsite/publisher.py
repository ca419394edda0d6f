"""publish_on_commit: the one way Django code (views, services, admin) publishes to NATS.

Publishes wait for the surrounding transaction to commit, so nobody hears of a change that rolled
back. A process-wide background thread owns an asyncio loop and one NATS connection; publishing
from request threads never blocks on the network. If NATS is unreachable the payloads wait in a
bounded buffer and go out on reconnect (nats-py's own pending buffer).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import transaction

from imsite.events import UserEvent, encode_event
from imsite.nats_subjects import user_event

logger = logging.getLogger(__name__)

Sink = Callable[[str, bytes], None]


class _NatsThread:
    """One NATS connection on its own event loop thread, created on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nc: object | None = None
        self._ready = threading.Event()

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="nats-publisher", daemon=True)
                thread.start()
                self._loop = loop
                asyncio.run_coroutine_threadsafe(self._connect(), loop)
            return self._loop

    async def _connect(self) -> None:
        import nats

        async def on_error(exc: Exception) -> None:
            logger.warning("nats publisher connection error", extra={"error": str(exc)})

        try:
            self._nc = await nats.connect(
                settings.NATS_URL,
                name="web-publisher",
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                error_cb=on_error,
                connect_timeout=2,
                allow_reconnect=True,
                pending_size=8 * 1024 * 1024,
            )
        except Exception:
            logger.exception("nats publisher could not connect", extra={"natsUrl": settings.NATS_URL})
        finally:
            self._ready.set()

    async def _publish(self, subject: str, payload: bytes) -> None:
        nc = self._nc
        if nc is None:
            logger.error("nats unavailable, event dropped", extra={"subject": subject})
            return
        await nc.publish(subject, payload)  # type: ignore[attr-defined]

    def publish(self, subject: str, payload: bytes) -> None:
        loop = self._start()
        if not self._ready.is_set():
            self._ready.wait(timeout=3)
        asyncio.run_coroutine_threadsafe(self._publish(subject, payload), loop)


_nats = _NatsThread()
_sink: Sink = _nats.publish


def set_sink(sink: Sink | None) -> Sink:
    """Replace where payloads go (tests capture them); None restores NATS. Returns the previous sink."""
    global _sink
    previous = _sink
    _sink = sink or _nats.publish
    return previous


def publish_on_commit(subject: str, payload: bytes) -> None:
    transaction.on_commit(lambda: _sink(subject, payload))


def publish_user_event(event: UserEvent) -> None:
    publish_on_commit(user_event(event.user_id), encode_event(event))
