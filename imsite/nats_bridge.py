"""A process-wide NATS connection for synchronous Django code (views, admin, management commands).

It lives on its own thread with its own event loop. Callers never wait for the network: publishes
are queued and go out as soon as the connection is up (a bounded queue: past its size the oldest
payloads are dropped, loudly), and `call` runs a coroutine on the loop for the few synchronous
readers that need NATS (presence lookups in the embedded mode).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from django.conf import settings

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_QUEUED = 10_000


class NatsBridge:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nc: Any = None
        self._queue: collections.deque[tuple[str, bytes]] = collections.deque()
        # Set on the bridge loop once connected (an asyncio.Event binds to a loop only when first awaited).
        self._connected = asyncio.Event()

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="nats-bridge", daemon=True).start()
                self._loop = loop
                asyncio.run_coroutine_threadsafe(self._connect_forever(), loop)
            return self._loop

    async def _connect_forever(self) -> None:
        import nats

        async def on_error(exc: Exception) -> None:
            logger.warning("nats bridge connection error", extra={"error": str(exc)})

        delay = 0.5
        while self._nc is None:
            try:
                self._nc = await nats.connect(
                    settings.NATS_URL,
                    name="django-bridge",
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    error_cb=on_error,
                )
            except Exception as exc:
                logger.warning(
                    "nats bridge cannot connect yet", extra={"natsUrl": settings.NATS_URL, "error": str(exc)}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self._connected.set()
        await self._flush()

    async def _flush(self) -> None:
        nc = self._nc
        if nc is None:
            return
        while self._queue:
            subject, payload = self._queue.popleft()
            await nc.publish(subject, payload)

    def publish(self, subject: str, payload: bytes) -> None:
        loop = self._ensure_started()
        with self._lock:
            if len(self._queue) >= MAX_QUEUED:
                dropped, _ = self._queue.popleft()
                logger.error("nats bridge queue full, oldest payload dropped", extra={"subject": dropped})
            self._queue.append((subject, payload))
        asyncio.run_coroutine_threadsafe(self._flush(), loop)

    def run(self, factory: Callable[[], Awaitable[T]], *, timeout: float = 2.0) -> T:
        """Run the coroutine `factory()` on the bridge loop and wait for its result (TimeoutError)."""
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(
            factory(),  # type: ignore[arg-type]
            self._ensure_started(),
        )
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    async def connection(self, timeout: float = 2.0) -> Any:
        """The NATS connection, from a coroutine running on the bridge loop."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"NATS at {settings.NATS_URL} is not reachable") from None
        return self._nc

    def close(self, timeout: float = 2.0) -> None:
        """Flush what is queued and close the connection (end of a process or a test session)."""
        if self._loop is None:
            return

        async def shutdown() -> None:
            await self._flush()
            if self._nc is not None:
                await self._nc.close()
                self._nc = None
                self._connected.clear()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout)
        except Exception as exc:
            logger.warning("nats bridge did not close cleanly", extra={"error": repr(exc)})

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._ensure_started()


bridge = NatsBridge()
