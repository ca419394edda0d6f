"""Collects incoming NATS messages (decoded) into batches bounded by count and by a short wait."""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, TypeVar

T = TypeVar("T")


class Batcher(Generic[T]):
    """A NATS subscription callback feeds `put`; the worker awaits `next_batch`.

    A batch is closed when it holds `max_size` payloads or `max_wait` seconds after its first
    payload arrived, whichever comes first, so a lone message waits a few milliseconds at most.
    """

    def __init__(self, *, max_size: int = 512, max_wait: float = 0.002) -> None:
        self.max_size = max_size
        self.max_wait = max_wait
        self._items: collections.deque[T] = collections.deque()
        self._arrived = asyncio.Event()
        self._closed = False

    def put(self, payload: T) -> None:
        self._items.append(payload)
        self._arrived.set()

    def close(self) -> None:
        """No more input: next_batch returns what is left, then an empty list."""
        self._closed = True
        self._arrived.set()

    def __len__(self) -> int:
        return len(self._items)

    async def next_batch(self) -> list[T]:
        while not self._items:
            if self._closed:
                return []
            self._arrived.clear()
            await self._arrived.wait()
        if len(self._items) < self.max_size and not self._closed:
            deadline = asyncio.get_running_loop().time() + self.max_wait
            while len(self._items) < self.max_size and not self._closed:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
        count = min(len(self._items), self.max_size)
        return [self._items.popleft() for _ in range(count)]
