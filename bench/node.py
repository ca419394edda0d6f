"""A simulated access node: it wraps client frames in Upstream envelopes for im.logic.upstream, as
an access node does, and collects what comes back on its im.access.{node}.downstream subject.

Used by the logic-worker system tests and by the W5 bench; it speaks the real NATS subjects and
the real envelopes, so what it sees is what an access node sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from imsite import nats_subjects
from schema.codec import AnyFrame, Upstream, decode_downstream, decode_frame, encode_frame, encode_upstream


def upstream_bytes(
    frame: AnyFrame | bytes,
    *,
    user_id: int,
    node_id: str,
    connection_id: int,
    session_id: int = 1,
    more: Sequence[AnyFrame | bytes] = (),
) -> bytes:
    raw = frame if isinstance(frame, bytes) else encode_frame(frame)
    return encode_upstream(
        Upstream(
            frame=raw,
            more_frames=tuple(f if isinstance(f, bytes) else encode_frame(f) for f in more),
            user_id=user_id,
            device_id=f"dev-{connection_id}",
            session_id=session_id,
            node_id=node_id,
            connection_id=connection_id,
            received_at=int(time.time() * 1000),
        )
    )


class SimNode:
    def __init__(self, nats_url: str, node_id: str, *, decode: bool = True) -> None:
        self.nats_url = nats_url
        self.node_id = node_id
        self.decode = decode
        self.received: dict[int, list[Any]] = defaultdict(list)
        self.deliveries = 0
        self._changed = asyncio.Event()
        self.nc: Any = None
        self.on_delivery: Callable[[int, bytes], None] | None = None

    async def start(self) -> SimNode:
        import nats

        self.nc = await nats.connect(self.nats_url, name=f"sim-{self.node_id}", max_reconnect_attempts=-1)

        async def on_downstream(msg: Any) -> None:
            for delivery in decode_downstream(msg.data).deliveries:
                for connection_id in delivery.connection_ids:
                    self.deliveries += 1
                    if self.on_delivery is not None:
                        self.on_delivery(connection_id, delivery.frame)
                    if self.decode:
                        self.received[connection_id].append(decode_frame(delivery.frame))
            self._changed.set()

        await self.nc.subscribe(nats_subjects.access_downstream(self.node_id), cb=on_downstream)
        await self.nc.flush()
        return self

    async def send(self, frame: AnyFrame | bytes, *, user_id: int, connection_id: int, session_id: int = 1) -> None:
        payload = upstream_bytes(
            frame, user_id=user_id, node_id=self.node_id, connection_id=connection_id, session_id=session_id
        )
        await self.nc.publish(nats_subjects.LOGIC_UPSTREAM, payload)

    async def publish_raw(self, payload: bytes) -> None:
        await self.nc.publish(nats_subjects.LOGIC_UPSTREAM, payload)

    async def flush(self) -> None:
        await self.nc.flush()

    def frames(self, connection_id: int, kind: type | None = None) -> list[Any]:
        frames = self.received.get(connection_id, [])
        return [f for f in frames if kind is None or isinstance(f, kind)]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s on node {self.node_id}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))

    async def close(self) -> None:
        if self.nc is not None:
            await self.nc.drain()
