"""The logic worker process: NATS in, database threads, NATS out.

Upstream envelopes arrive on im.logic.upstream (queue group logic-group), are decoded as they arrive
and queued by partition (sends by conversation, other frames by user). Database threads take batches,
each from one partition that no other thread holds, the fullest first (ORM work runs there, off the
event loop, on each thread's persistent connection); once a batch's transaction has committed, its
answers and pushes are published: one Downstream per access node per batch. On PostgreSQL two
threads store two batches at once without waiting for each other's conversation locks, and a
partition's batches are stored in arrival order; one sender's next message only reaches a worker
after the previous one was acknowledged (the access node's send window), so per-sender order does
not depend on batch order.

Faults: an unreachable database is retried with backoff (the batch is idempotent: sends are deduped
by (sender, client_msg_id)); SIGTERM stops the subscription, finishes what was already received and
exits. Messages lost in a crash were never acknowledged; clients resend them and the dedup makes
that safe.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import InterfaceError, OperationalError, close_old_connections, connection

from imsite import nats_subjects
from imsite.logging import bind
from messaging.worker.batching import PartitionedBatcher
from messaging.worker.handlers import Inbound, Outbox, handle_batch, inbound
from messaging.worker.routing import route
from realtime.presence import PresenceStore, open_presence

logger = logging.getLogger(__name__)


def _handle_on_db_thread(batch: list[Inbound]) -> Outbox:
    try:
        return handle_batch(batch)
    except (OperationalError, InterfaceError):
        connection.close()  # start the retry on a fresh connection
        raise


class LogicWorker:
    def __init__(
        self,
        *,
        nats_url: str,
        name: str = "",
        batch_size: int = 1024,
        batch_wait: float = 0.002,
        retry_limit_seconds: float = 300.0,
        presence_factory: Callable[[Any], Any] | None = None,
        db_threads: int | None = None,
    ) -> None:
        self.nats_url = nats_url
        self.name = name or f"logic-{os.getpid()}"
        self.retry_limit_seconds = retry_limit_seconds
        self._presence_factory = presence_factory or (lambda js: open_presence(js))
        # SQLite takes one writer at a time: a second thread would only wait for the lock.
        self.db_threads = db_threads if db_threads is not None else (1 if connection.vendor == "sqlite" else 2)
        # Two partitions per database thread: each thread takes the fullest one that is free.
        self.batcher: PartitionedBatcher[Inbound] = PartitionedBatcher(
            2 * self.db_threads, max_size=batch_size, max_wait=batch_wait
        )
        self._db = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"logic-db-{i}") for i in range(self.db_threads)
        ]
        self._stopping = asyncio.Event()
        self._failure: list[BaseException] = []  # appended to from database threads too
        self._subscription: Any = None
        self.batches = 0
        self.stored = 0

    def request_stop(self) -> None:
        """SIGTERM: take no more work, finish what is in hand, exit."""
        if not self._stopping.is_set():
            logger.info("logic worker stopping", extra={"pending": len(self.batcher)})
            self._stopping.set()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        import nats

        bind(worker=self.name)
        # A thread back from the database waits for the GIL up to this long while another thread
        # runs Python; on the conversation locks' critical path that wait is paid several times a
        # batch (the default, 5 ms, cost W5 a tenth of its throughput).
        sys.setswitchinterval(0.0005)

        async def on_error(exc: Exception) -> None:
            logger.warning("nats connection error", extra={"error": repr(exc)})

        nc = await nats.connect(
            self.nats_url,
            name=self.name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            error_cb=on_error,
            pending_size=64 * 1024 * 1024,
        )
        presence: PresenceStore = await self._presence_factory(nc.jetstream())
        # Everything loaded so far (Django, the apps, the clients) lives as long as the process: keep
        # it out of the collector's passes. And start a pass after 20,000 net new objects rather
        # than 700: a batch in hand holds thousands, so the default ran a pass every few messages
        # (W5: 220 passes, a tenth of the run's time, for 50,000 messages).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 10, 10)
        # No callback: messages wait in the subscription's queue and _take_in moves all that are
        # there at each wake-up (a callback costs a coroutine and a queue round per message).
        self._subscription = await nc.subscribe(
            nats_subjects.LOGIC_UPSTREAM,
            queue=nats_subjects.LOGIC_QUEUE_GROUP,
            pending_msgs_limit=200_000,
            pending_bytes_limit=512 * 1024 * 1024,
        )
        intake = asyncio.create_task(self._take_in(self._subscription))
        await nc.flush()
        stopper = asyncio.create_task(self._unsubscribe_on_stop(intake))
        logger.info("logic worker ready", extra={"natsUrl": self.nats_url})
        if ready is not None:
            ready.set()
        # Sends are partitioned by conversation (other frames by user) and no partition is in two
        # threads' hands at once: a conversation's sends are stored in arrival order, and two
        # batches run side by side instead of queueing for each other's conversation locks (a batch
        # locks its conversations in id order, so a send of the web process still waits its turn
        # without deadlock). Each database thread takes its batches itself and hands the committed
        # ones' outboxes to the event loop, which routes and publishes them while the next is stored.
        loop = asyncio.get_running_loop()
        publishing: set[asyncio.Task[None]] = set()
        failure = self._failure

        async def publish(outbox: Outbox) -> None:
            try:
                for node_id, payload in await route(outbox, presence):
                    await nc.publish(nats_subjects.access_downstream(node_id), payload)
                self.batches += 1
                self.stored += outbox.stored
            except BaseException as exc:
                failure.append(exc)
                self.request_stop()
                raise

        def start_publishing(outbox: Outbox) -> None:
            task = asyncio.create_task(publish(outbox))
            publishing.add(task)
            task.add_done_callback(publishing.discard)

        def hand_over(outbox: Outbox) -> None:  # on a database thread
            loop.call_soon_threadsafe(start_publishing, outbox)

        try:
            consumers = [loop.run_in_executor(executor, self._consume, hand_over, loop) for executor in self._db]
            for outcome in await asyncio.gather(*consumers, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    failure.append(outcome)
            # The outboxes handed over were scheduled before the consumers' results: all are tasks now.
            await asyncio.gather(*publishing, return_exceptions=True)
            if failure:
                raise failure[0]
        finally:
            stopper.cancel()
            await presence.close()
            try:
                await nc.drain()
            except Exception as exc:
                logger.warning("nats drain failed", extra={"error": repr(exc)})
            intake.cancel()
            for executor in self._db:
                executor.shutdown(wait=True)
            logger.info("logic worker stopped", extra={"batches": self.batches, "stored": self.stored})

    async def _take_in(self, subscription: Any) -> None:
        """Decodes the subscription's messages into their partitions."""
        # nats-py keeps a callback-less subscription's messages in _pending_queue and counts their
        # bytes in _pending_size (its slow-consumer limit); next_msg() does the same bookkeeping.
        queue: asyncio.Queue[Any] = subscription._pending_queue
        put = self.batcher.put
        partitions = self.batcher.partitions
        while True:
            taken = [await queue.get()]
            for _ in range(queue.qsize()):
                taken.append(queue.get_nowait())
            for msg in taken:
                data = msg.data
                subscription._pending_size -= len(data)
                try:
                    for item, key in inbound(data):
                        # Snowflake ids share their low bits (a sequence that is mostly 0): mix them.
                        put((key * 0x9E3779B97F4A7C15 >> 64) % partitions, item)
                except Exception:  # a bug, not bad input (inbound refuses that): drop, keep going
                    logger.exception("upstream message dropped", extra={"size": len(data)})
                finally:
                    queue.task_done()  # Subscription.drain waits for every message to be done

    async def _unsubscribe_on_stop(self, intake: asyncio.Task[None]) -> None:
        await self._stopping.wait()
        if self._subscription is not None:
            try:
                # Unsubscribes, lets the server send what it still had for us, and waits until
                # _take_in has taken all of it: nothing received is dropped.
                await self._subscription.drain()
            except Exception as exc:
                logger.warning("unsubscribe failed", extra={"error": repr(exc)})
        intake.cancel()
        self.batcher.close()

    def _consume(self, hand_over: Callable[[Outbox], None], loop: asyncio.AbstractEventLoop) -> None:
        """A database thread's life: batches stored then handed over, until the input closes or the
        worker fails."""
        batcher = self.batcher
        try:
            while not self._failure:
                taken = batcher.take()
                if taken is None:
                    break
                partition, batch = taken
                try:
                    hand_over(self._handle(batch))
                finally:
                    batcher.release(partition)  # after the hand-over: a partition's pushes stay in order
        except BaseException as exc:
            self._failure.append(exc)  # the other threads stop after their batch in hand
            loop.call_soon_threadsafe(self.request_stop)
            raise
        finally:
            close_old_connections()

    def _handle(self, batch: list[Inbound]) -> Outbox:
        delay = 0.05
        started = time.monotonic()
        while True:
            try:
                return _handle_on_db_thread(batch)
            except (OperationalError, InterfaceError) as exc:
                waited = time.monotonic() - started
                if waited > self.retry_limit_seconds:
                    logger.error(
                        "database unreachable too long: batch abandoned unacknowledged", extra={"size": len(batch)}
                    )
                    raise
                logger.warning(
                    "database error; batch will be retried",
                    extra={"error": repr(exc), "retryInSeconds": delay, "size": len(batch)},
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
