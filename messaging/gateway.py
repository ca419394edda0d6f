"""The REST send path: POST /conversations/{id}/messages goes through the logic worker like a
realtime send, so both take the same checks, dedup, seqs and pushes.

The web process acts as a small access node of its own (node id "rest-<host>-<pid>"): it wraps the
SendMessage in an Upstream envelope on im.logic.upstream, each request as its own connection id,
and waits for the worker's MessageAck or SendError on its own downstream subject.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
from typing import Any

from django.conf import settings

from imsite import nats_subjects
from imsite.errors import Blocked, Forbidden, InvalidInput, NotFound, ServiceError, ServiceUnavailable
from imsite.nats_bridge import bridge
from schema.codec import (
    FrameError,
    MessageAck,
    SendError,
    SendErrorCode,
    SendMessage,
    Upstream,
    decode_downstream,
    decode_frame,
    encode_frame,
    encode_upstream,
)

logger = logging.getLogger(__name__)

NODE_ID = f"rest-{socket.gethostname()}-{os.getpid()}"


class WorkerUnavailable(Exception):
    """No answer from a logic worker in time: the message may or may not be stored."""


class _Gateway:
    def __init__(self) -> None:
        self._connection_ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[MessageAck | SendError]] = {}
        self._subscribed: asyncio.Lock | None = None
        self._ready = False

    async def _subscribe(self) -> Any:
        nc = await bridge.connection(timeout=3.0)
        if self._subscribed is None:
            self._subscribed = asyncio.Lock()
        async with self._subscribed:
            if not self._ready:
                await nc.subscribe(nats_subjects.access_downstream(NODE_ID), cb=self._on_downstream)
                await nc.flush()
                self._ready = True
        return nc

    async def _on_downstream(self, msg: Any) -> None:
        try:
            downstream = decode_downstream(msg.data)
        except FrameError as exc:
            logger.error("undecodable downstream for the REST gateway", extra={"error": str(exc)})
            return
        for delivery in downstream.deliveries:
            for connection_id in delivery.connection_ids:
                future = self._waiting.pop(connection_id, None)
                if future is None or future.done():
                    continue
                frame = decode_frame(delivery.frame)
                if isinstance(frame, MessageAck | SendError):
                    future.set_result(frame)

    async def _send(
        self, upstream_fields: dict[str, Any], frame: SendMessage, timeout: float
    ) -> MessageAck | SendError:
        nc = await self._subscribe()
        connection_id = next(self._connection_ids)
        future: asyncio.Future[MessageAck | SendError] = asyncio.get_running_loop().create_future()
        self._waiting[connection_id] = future
        payload = encode_upstream(
            Upstream(
                frame=encode_frame(frame),
                node_id=NODE_ID,
                connection_id=connection_id,
                received_at=int(time.time() * 1000),
                **upstream_fields,
            )
        )
        try:
            await nc.publish(nats_subjects.LOGIC_UPSTREAM, payload)
            return await asyncio.wait_for(future, timeout)
        finally:
            self._waiting.pop(connection_id, None)

    def send(
        self, *, user_id: int, session_id: int, device_id: str, frame: SendMessage, timeout: float | None = None
    ) -> MessageAck | SendError:
        if timeout is None:
            timeout = float(settings.REST_SEND_TIMEOUT_SECONDS)
        fields = {"user_id": user_id, "session_id": session_id, "device_id": device_id}
        try:
            return bridge.run(lambda: self._send(fields, frame, timeout), timeout=timeout + 4.0)
        except TimeoutError as exc:
            raise WorkerUnavailable(str(exc) or "no logic worker answered in time") from exc


gateway = _Gateway()


def send_error_as_service_error(error: SendError) -> ServiceError:
    """The REST answer to a refused send (a non-member learns nothing about the conversation)."""
    code = error.code
    if code in (SendErrorCode.NOT_MEMBER, SendErrorCode.CONVERSATION_NOT_FOUND):
        return NotFound("No such conversation.")
    if code == SendErrorCode.BLOCKED:
        return Blocked(error.reason or "You cannot message this user.")
    if code == SendErrorCode.NOT_FRIENDS:
        return Forbidden(error.reason or "Direct messages need a friendship.")
    if code == SendErrorCode.BODY_TOO_LARGE:
        return InvalidInput(error.reason or "The message body is too large.", field="body")
    if code == SendErrorCode.UNAVAILABLE:
        return ServiceUnavailable(error.reason or "Not stored; send it again with the same clientMsgId.")
    return InvalidInput(error.reason or "The message was refused.", field="body")
