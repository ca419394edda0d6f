"""Collects incoming NATS messages (decoded) into batches bounded by count and by a short wait."""

from __future__ import annotations

import collections
import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class PartitionedBatcher(Generic[T]):
    """Items in `partitions` first-in first-out queues, fed by the event loop (`put`); database
    threads take batches (`take`), each from one queue, and no queue is in two threads' hands at
    once, so a queue's batches are stored one after another, in order.

    A thread takes the fullest queue that no other thread holds, so the threads share the load
    however it falls on the queues (with a fixed queue per thread, the thread whose queue held the
    backlog set the pace while the other waited for input). A batch is closed when it holds
    `max_size` items or `max_wait` seconds after the thread took the queue, whichever comes first,
    so a lone message waits a few milliseconds at most. Threads wait here rather than on the event
    loop: a loop busy taking in thousands of messages would otherwise hold back every batch.
    """

    def __init__(self, partitions: int, *, max_size: int = 512, max_wait: float = 0.002) -> None:
        self.max_size = max_size
        self.max_wait = max_wait
        self._queues: list[collections.deque[T]] = [collections.deque() for _ in range(partitions)]
        self._held = [False] * partitions
        self._changed = threading.Condition(threading.Lock())
        self._closed = False

    def put(self, partition: int, item: T) -> None:
        """From one thread only (the event loop's)."""
        queue = self._queues[partition]
        queue.append(item)  # atomic; the lock is taken only to wake a waiter, when one can act:
        size = len(queue)  # a first item, or a full batch (waiting is decided under the lock)
        if size == 1 or size == self.max_size:
            with self._changed:
                self._changed.notify_all()

    def close(self) -> None:
        """No more input: take returns what is left, then None."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues)

    @property
    def partitions(self) -> int:
        return len(self._queues)

    def take(self) -> tuple[int, list[T]] | None:
        """Blocks until a batch is due: (its queue, its items); None once closed and drained.
        The queue stays held until `release`."""
        queues, held = self._queues, self._held
        with self._changed:
            while True:
                free = [p for p, queue in enumerate(queues) if queue and not held[p]]
                if free:
                    break
                if self._closed and not any(queues):
                    return None
                self._changed.wait()
            partition = max(free, key=lambda p: len(queues[p]))
            held[partition] = True
            queue = queues[partition]
            if len(queue) < self.max_size and not self._closed:
                deadline = time.monotonic() + self.max_wait
                while len(queue) < self.max_size and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._changed.wait(remaining)
            count = min(len(queue), self.max_size)
            return partition, [queue.popleft() for _ in range(count)]

    def release(self, partition: int) -> None:
        """The batch taken from this queue is done: another thread may take the queue."""
        with self._changed:
            self._held[partition] = False
            self._changed.notify_all()
