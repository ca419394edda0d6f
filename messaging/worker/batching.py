"""Collects incoming NATS messages (decoded) into batches bounded by count and by a short wait."""

from __future__ import annotations

import collections
import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class Batcher(Generic[T]):
    """The NATS subscription callback (event loop) feeds `put`; a database thread calls `next_batch`.

    A batch is closed when it holds `max_size` items or `max_wait` seconds after its first item
    arrived, whichever comes first, so a lone message waits a few milliseconds at most. The
    database thread waits here rather than on the event loop: a loop busy taking in thousands of
    messages would otherwise hold back every batch for as long (W5: 15 ms a batch).
    """

    def __init__(self, *, max_size: int = 512, max_wait: float = 0.002) -> None:
        self.max_size = max_size
        self.max_wait = max_wait
        self._items: collections.deque[T] = collections.deque()
        self._changed = threading.Condition(threading.Lock())
        self._closed = False

    def put(self, item: T) -> None:
        """From one thread only (the event loop's)."""
        items = self._items
        items.append(item)  # atomic; the lock is taken only to wake the waiter, when it can act:
        size = len(items)  # a first item, or a full batch (waiting is decided under the lock)
        if size == 1 or size == self.max_size:
            with self._changed:
                self._changed.notify()

    def close(self) -> None:
        """No more input: next_batch returns what is left, then an empty list."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __len__(self) -> int:
        return len(self._items)

    def next_batch(self) -> list[T]:
        """Blocks until a batch is due; an empty list once closed and drained."""
        items = self._items
        with self._changed:
            while not items:
                if self._closed:
                    return []
                self._changed.wait()
            if len(items) < self.max_size and not self._closed:
                deadline = time.monotonic() + self.max_wait
                while len(items) < self.max_size and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._changed.wait(remaining)
            count = min(len(items), self.max_size)
            return [items.popleft() for _ in range(count)]
