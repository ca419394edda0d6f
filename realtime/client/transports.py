"""Transports of the Python client: one connection that carries whole frames, whatever the wire.

Both implementations keep the frames they receive in a deque, so that `recv_batch` hands over everything
that arrived since the last call in one wake-up.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as websocket_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from realtime.webtransport_client import WebTransportClient, WebTransportClosed, connect_webtransport


class TransportError(ConnectionError):
    """The connection could not be opened (unreachable server, refused handshake, wrong certificate)."""


class TransportClosed(ConnectionError):
    """The connection is over; `code` and `reason` are the peer's when it said them (0 and "" otherwise)."""

    def __init__(self, code: int = 0, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class Transport(Protocol):
    """One connection carrying whole frames (FlatBuffers bytes) both ways."""

    async def send(self, frames: Sequence[bytes]) -> None:
        """Send these frames in order; TransportClosed when the connection is over."""
        ...

    async def recv_batch(self) -> list[bytes]:
        """Every frame received so far, waiting for at least one; TransportClosed once the connection is
        over and every frame was read."""
        ...

    async def close(self) -> None:
        """End the connection; safe to call more than once."""
        ...

    def abort(self) -> None:
        """Drop the connection without a word to the server, as a network failure would."""
        ...


TransportFactory = Callable[[], Awaitable[Transport]]
"""Opens a new connection each call: the client calls it again after every drop."""


class WebSocketTransport:
    """A WebSocket on which each binary message is one frame."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self._frames: deque[bytes] = deque()
        self._readable = asyncio.Event()
        self._closed: TransportClosed | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, url: str, *, timeout: float = 10.0, max_frame_size: int = 1024 * 1024) -> WebSocketTransport:
        try:
            connection = await websocket_connect(
                url, open_timeout=timeout, max_size=max_frame_size, compression=None, proxy=None
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as error:
            raise TransportError(f"cannot open a WebSocket to {url}: {error}") from error
        return cls(connection)

    async def _read(self) -> None:
        try:
            async for message in self._connection:
                if isinstance(message, str):
                    continue  # the protocol is binary; text is nobody's frame
                self._frames.append(message)
                self._readable.set()
        except ConnectionClosed:
            pass
        finally:
            connection = self._connection
            self._closed = TransportClosed(connection.close_code or 0, connection.close_reason or "")
            self._readable.set()

    async def send(self, frames: Sequence[bytes]) -> None:
        if self._closed is not None:
            raise self._closed
        connection = self._connection
        try:
            # What Connection.send does for one message, for all of them in one context (its checks,
            # then one write of the protocol's output): per-message send() was a quarter of the W1
            # load generator's time.
            async with connection.send_context():
                for frame in frames:
                    connection.protocol.send_binary(frame)
        except ConnectionClosed as error:
            raise TransportClosed(*_close_of(error)) from error

    async def recv_batch(self) -> list[bytes]:
        while not self._frames:
            if self._closed is not None:
                raise self._closed
            self._readable.clear()
            await self._readable.wait()
        frames = list(self._frames)
        self._frames.clear()
        return frames

    async def close(self) -> None:
        await self._connection.close()
        await asyncio.gather(self._reader, return_exceptions=True)

    def abort(self) -> None:
        self._connection.transport.abort()


def _close_of(error: ConnectionClosed) -> tuple[int, str]:
    return (error.rcvd.code, error.rcvd.reason) if error.rcvd is not None else (0, "")


class WebTransportTransport:
    """One WebTransport session with one bidirectional stream of length-prefixed frames."""

    def __init__(self, client: WebTransportClient) -> None:
        self._client = client

    @classmethod
    async def connect(
        cls, url: str, *, certificate_hashes: Iterable[bytes] = (), verify: bool = True, timeout: float = 10.0
    ) -> WebTransportTransport:
        try:
            client = await connect_webtransport(
                url, certificate_hashes=certificate_hashes, verify=verify, timeout=timeout
            )
        except (OSError, TimeoutError) as error:
            raise TransportError(f"cannot open a WebTransport session to {url}: {error}") from error
        return cls(client)

    async def send(self, frames: Sequence[bytes]) -> None:
        if self._client.closed is not None:
            raise TransportClosed(self._client.closed.code, self._client.closed.reason)
        self._client.send_many(frames)

    async def recv_batch(self) -> list[bytes]:
        try:
            return await self._client.recv_batch()
        except WebTransportClosed as error:
            raise TransportClosed(error.code, error.reason) from error

    async def close(self) -> None:
        await self._client.close()

    def abort(self) -> None:
        self._client.abort()


def websocket_factory(url: str, *, timeout: float = 10.0) -> TransportFactory:
    """Opens WebSocketTransports to `url` (ws:// or wss://)."""

    async def open_transport() -> Transport:
        return await WebSocketTransport.connect(url, timeout=timeout)

    return open_transport


def webtransport_factory(
    url: str, *, certificate_hashes: Iterable[bytes] = (), verify: bool = True, timeout: float = 10.0
) -> TransportFactory:
    """Opens WebTransportTransports to `url` (https://); `certificate_hashes` pin a self-signed certificate."""
    hashes = tuple(certificate_hashes)

    async def open_transport() -> Transport:
        return await WebTransportTransport.connect(url, certificate_hashes=hashes, verify=verify, timeout=timeout)

    return open_transport


def failover_factory(*factories: TransportFactory) -> TransportFactory:
    """Opens a transport with the first factory that works, starting from the last one that did: a client
    whose access node dies reconnects to the next node (each call tries every factory once)."""
    if not factories:
        raise ValueError("failover_factory needs at least one transport factory")
    start = 0

    async def open_transport() -> Transport:
        nonlocal start
        errors: list[str] = []
        for step in range(len(factories)):
            index = (start + step) % len(factories)
            try:
                transport = await factories[index]()
            except (TransportError, OSError, TimeoutError) as error:
                errors.append(str(error))
                continue
            start = index
            return transport
        raise TransportError("no endpoint could be reached: " + "; ".join(errors))

    return open_transport
