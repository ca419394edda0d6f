"""The cyclic GC of long-lived processes that hold thousands of connections (the access node, the
load generator).

A session holds ~300 tracked objects (aioquic's connection most of them), and with the default
thresholds a full collection runs at every 25% of heap growth: at 2,000 sessions it paused the loop
for up to 1.5 s (measured), and handshakes and Auth frames queued behind it timed out. Objects alive
at start-up are frozen (never scanned again), full ones run on a timer: one pause every
GC_FULL_SECONDS instead of many while sessions pile up. Young collections stay small: a collection of
the middle generation scans every object that survived the young ones since the last, and while
sessions open most do; at (20,000, 10) those passes took 100-160 ms (measured with gc.callbacks in W3,
every 5-8 s in both the node and the load generator, the spikes of its connect latency), at (5,000, 5)
20-30 ms.
"""

from __future__ import annotations

import asyncio
import gc

GC_THRESHOLDS = (5_000, 5, 1_000)
GC_FULL_SECONDS = 300.0


def tune_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def collect_periodically(interval: float = GC_FULL_SECONDS) -> None:
    while True:
        await asyncio.sleep(interval)
        gc.collect()
