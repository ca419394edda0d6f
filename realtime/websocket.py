"""The WebSocket fallback at /ws: a Channels consumer that is one more transport of the access node.

Each daphne process is an access node of its own (node id `ws-<host>-<pid>`, or WS_NODE_ID): it starts
one AccessNode on daphne's event loop at the first WebSocket and attaches every consumer to it, so the
WebSocket gets the very session core, NATS routing, presence and kicks of the WebTransport node. Pushes
reach this process on im.access.{node}.downstream and are written to its own sockets; nothing goes
through the channel layer, which drops messages past its capacity (../shared/notes/channels.md).

Each binary WebSocket message is one frame (API.md). A text message is nobody's frame: it goes to the
session core like any malformed frame (Error back, and the error budget closes a client that persists).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections import deque
from collections.abc import Iterable
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from realtime.node import AccessNode, Connection, session_config

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
NORMAL_CLOSURE = 1000


def websocket_node_id() -> str:
    """This process's node id: a NATS subject token naming the host and the process."""
    configured: str = settings.WS_NODE_ID
    if configured:
        return configured
    return _UNSAFE.sub("-", f"ws-{socket.gethostname()}-{os.getpid()}")[:64]


class _ProcessNode:
    """The one AccessNode of this process, started on first use on the loop that serves the sockets."""

    def __init__(self) -> None:
        self._node: AccessNode | None = None
        self._starting: asyncio.Task[AccessNode] | None = None

    async def get(self) -> AccessNode:
        if self._node is not None:
            return self._node
        if self._starting is None:  # every connection arriving meanwhile waits for the same start
            self._starting = asyncio.get_running_loop().create_task(self._start())
        try:
            return await asyncio.shield(self._starting)
        except Exception:
            self._starting = None  # the next connection tries again (NATS may be back by then)
            raise

    async def _start(self) -> AccessNode:
        node = AccessNode(websocket_node_id(), settings.NATS_URL, config=session_config())
        await node.start()
        logger.info("websocket access node ready", extra={"nodeId": node.node_id})
        self._node = node
        return node


process_node = _ProcessNode()


def _unsent_in_twisted(send: Any) -> int:
    """Bytes daphne's Twisted transport holds for this socket and has not written yet.

    daphne hands the consumer `partial(server.handle_reply, protocol)`; the protocol's TCP transport
    keeps unwritten data in dataBuffer (from offset) and _tempDataBuffer. A slow reader makes them
    grow, which is what the session core needs to see. Anything unexpected reads as 0.
    """
    protocol = next(iter(getattr(send, "args", ())), None)
    transport = getattr(protocol, "transport", None)
    if transport is None:
        return 0
    try:
        buffered = len(transport.dataBuffer) - int(transport.offset)
        return max(0, buffered) + int(transport._tempDataLen)
    except (AttributeError, TypeError, ValueError):
        return 0


def _close_reason(reason: str) -> str:
    """At most 123 UTF-8 bytes, the WebSocket limit (a longer reason fails the close), cut on a character."""
    return reason.encode()[:123].decode(errors="ignore")


class WebSocketTransport:
    """The node's view of one consumer: frames go out in order through one writer task."""

    __slots__ = ("_consumer", "_outbox", "_queued", "_writer", "closed")

    def __init__(self, consumer: SessionConsumer) -> None:
        self._consumer = consumer
        self._outbox: deque[bytes | tuple[int, str]] = deque()  # frames, then maybe one close
        self._queued = 0
        self._writer: asyncio.Task[None] | None = None
        self.closed = False

    @property
    def pending_bytes(self) -> int:
        return self._queued + _unsent_in_twisted(self._consumer.base_send)

    def send_many(self, frames: Iterable[bytes]) -> None:
        if self.closed:
            return
        for frame in frames:
            self._outbox.append(frame)
            self._queued += len(frame)
        self._wake()

    def close(self, code: int = 0, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        # a plain int: autobahn refuses an IntEnum (ErrorCode) as a close code, and the socket stayed open
        self._outbox.append((int(code) or NORMAL_CLOSURE, reason))
        self._wake()

    def _wake(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        send = self._consumer.base_send
        while self._outbox:
            item = self._outbox.popleft()
            try:
                if isinstance(item, bytes):
                    self._queued -= len(item)
                    await send({"type": "websocket.send", "bytes": item})
                else:
                    code, reason = item
                    # Close codes are 1000 or 3000-4999; the session core's are 4000-4999.
                    await send({"type": "websocket.close", "code": code, "reason": _close_reason(reason)})
                    self._outbox.clear()
            except Exception:  # the socket went away under us: its disconnect ends the session
                logger.debug("websocket write failed", exc_info=True)
                self._outbox.clear()
                self._queued = 0
                return


class SessionConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # channels ships no types
    """/ws: one client session."""

    # No alias is configured under this name, so Channels gives the consumer no channel-layer channel:
    # delivery is the node's (see the module docstring), and a per-socket layer receive costs memory.
    channel_layer_alias = "websocket-sessions-use-no-layer"
    connection: Connection | None = None
    transport: WebSocketTransport | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' AsyncConsumer.__call__ for a consumer without a channel layer. Channels waits on
        the socket and the layer together (a new task and an asyncio.wait for every frame); with
        no layer the socket's messages are awaited one by one, and a frame goes straight to the
        session."""
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.receive" and self.connection is not None:
                    data = message.get("bytes")
                    self.connection.on_frame(data if data is not None else (message.get("text") or "").encode())
                else:
                    await self.dispatch(message)
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch first runs close_old_connections through sync_to_async: a thread hop
        # for every frame received, a fifth of daphne's event loop in W1. This consumer never uses
        # the ORM: the node's database work runs on its own threads, which look after their
        # connections.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        try:
            node = await process_node.get()
        except Exception:
            logger.exception("websocket access node could not start; refusing the connection")
            await self.close(code=4503)
            return
        await self.accept()
        self.transport = WebSocketTransport(self)
        self.connection = node.attach(self.transport)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.connection is None:
            return
        if bytes_data is not None:
            self.connection.on_frame(bytes_data)
        else:
            self.connection.on_frame((text_data or "").encode())

    async def disconnect(self, code: int) -> None:
        if self.transport is not None:
            self.transport.closed = True
        if self.connection is not None:
            self.connection.on_closed()
