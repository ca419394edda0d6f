"""A WebTransport client on aioquic, speaking the server's framing: for tests, benchmarks and the Python
client library.

It opens one session and one bidirectional stream on it, like the browser client. aioquic's H3 layer
would parse the server's bytes on a stream the client opened as HTTP/3 frames, so the client takes that
stream's data before the H3 layer sees it (see /work/shared/notes/webtransport.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
import ssl
from collections import deque
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from aioquic import tls
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import NetworkAddress, QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    ProtocolNegotiated,
    QuicEvent,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
)
from cryptography.hazmat.primitives.serialization import Encoding

from realtime.webtransport_quic import (
    LeanQuicConnection,
    QuicDriver,
    encode_close_capsule,
    header_value,
    parse_close_capsule,
)
from schema.frames import FrameError
from schema.framing import FrameReader, frame_with_length

DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024


class WebTransportError(ConnectionError):
    """The session could not be opened: unreachable server, refused request, wrong certificate."""


class WebTransportClosed(ConnectionError):
    """The session is over; `code` and `reason` are the server's, or the QUIC connection's."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"WebTransport session closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class _ClientQuicConnection(LeanQuicConnection):
    """aioquic's client offers a key share for each of P-256, P-384, X25519 and X448: four key pairs
    made per handshake (0.77 ms of CPU here, an eighth of the client's handshake), where one is used.
    This one offers X25519 only, as browsers do first; every TLS 1.3 server supports it."""

    def _initialize(self, peer_cid: bytes) -> None:
        super()._initialize(peer_cid)
        # aioquic has no setting for the groups offered; the ClientHello is made after this, in connect().
        self.tls._supported_groups = [tls.Group.X25519]


class WebTransportClient(QuicDriver):
    """One session with one bidirectional stream of length-prefixed frames."""

    def __init__(
        self,
        quic: QuicConnection,
        transport: asyncio.DatagramTransport,
        request_headers: list[tuple[bytes, bytes]],
        certificate_hashes: frozenset[bytes],
        max_frame_size: int,
    ) -> None:
        super().__init__(quic, transport)
        self._socket = transport  # the client's own socket, closed with the connection
        self._request_headers = request_headers
        self._certificate_hashes = certificate_hashes
        self._reader = FrameReader(max_frame_size)
        self._h3: H3Connection | None = None
        self._session_id: int | None = None
        self._stream_id: int | None = None
        self._frames: deque[bytes] = deque()
        self._readable = asyncio.Event()
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ended = asyncio.Event()
        self._terminated = asyncio.Event()
        self.closed: WebTransportClosed | None = None  # set once the session is over

    def send(self, frame: bytes) -> None:
        self._write(frame_with_length(frame))

    def send_many(self, frames: Iterable[bytes]) -> None:
        self._write(b"".join(map(frame_with_length, frames)))

    def send_bytes(self, data: bytes, *, flush: bool = False) -> None:
        """Bytes as they are, with no length prefix (for tests of framing); `flush` sends them at once, in
        packets of their own."""
        self._write(data)
        if flush:
            self.transmit()

    async def recv(self) -> bytes:
        """The next frame; WebTransportClosed once the session is over and every frame was read."""
        if not self._frames:
            await self._frames_or_close()
        return self._frames.popleft()

    async def recv_batch(self) -> list[bytes]:
        """Every frame received so far (waiting for at least one): one wake-up for many frames."""
        if not self._frames:
            await self._frames_or_close()
        frames = list(self._frames)
        self._frames.clear()
        return frames

    def __aiter__(self) -> WebTransportClient:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except WebTransportClosed:
            raise StopAsyncIteration from None

    async def close(self, code: int = 0, reason: str = "", *, timeout: float = 2.0) -> None:
        """End the session (the server sees `code` and `reason`), then the connection: wait up to `timeout`
        for QUIC's closing period, then let go of the socket either way."""
        if self.closed is None and self._h3 is not None and self._session_id is not None:
            if self._stream_id is not None:
                self.write(self._stream_id, b"", end_stream=True)
            self._h3.send_data(self._session_id, encode_close_capsule(code, reason), end_stream=True)
            self.transmit()  # before the connection close, which would supersede it
            self._session_over(code, reason)
        self.quic.close(error_code=ErrorCode.H3_NO_ERROR)
        self.transmit()
        try:
            await asyncio.wait_for(self._terminated.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the connection without telling the server (as a client that vanishes would)."""
        self.stop()
        self._session_over(0, "aborted")
        self._terminated.set()
        self._socket.abort()

    async def wait_closed(self) -> WebTransportClosed:
        """Wait for the end of the session, and say how it ended."""
        await self._ended.wait()
        assert self.closed is not None
        return self.closed

    def handle_event(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived) and event.stream_id == self._stream_id:
            self._receive(event.data)
            return
        if isinstance(event, ProtocolNegotiated):
            self._h3 = H3Connection(self.quic, enable_webtransport=True)
        elif isinstance(event, HandshakeCompleted):
            self._open_session()
        elif isinstance(event, StreamReset | StopSendingReceived) and event.stream_id in (
            self._stream_id,
            self._session_id,
        ):
            self._session_over(0, "stream reset by the server")
            self.quic.close(error_code=ErrorCode.H3_NO_ERROR)
        elif isinstance(event, ConnectionTerminated):
            self._session_over(event.error_code, event.reason_phrase)
            self._fail_opening(WebTransportError(f"connection closed: {event.reason_phrase or event.error_code}"))
            self.stop()
            self._terminated.set()
            self._socket.close()
            return
        if self._h3 is not None:
            for h3_event in self._h3.handle_event(event):
                self._handle_h3(h3_event)

    async def _frames_or_close(self) -> None:
        while not self._frames and self.closed is None:
            self._readable.clear()
            await self._readable.wait()
        if not self._frames and self.closed is not None:
            raise self.closed

    def _write(self, data: bytes) -> None:
        if self.closed is not None:
            raise self.closed
        assert self._stream_id is not None
        self.write(self._stream_id, data)

    def _open_session(self) -> None:
        if self._certificate_hashes:
            # aioquic keeps the peer certificate private; pinning by hash needs this one read.
            certificate = self.quic.tls._peer_certificate
            digest = hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest() if certificate else b""
            if digest not in self._certificate_hashes:
                self._fail_opening(WebTransportError(f"server certificate {digest.hex()} matches no pinned hash"))
                self.quic.close(error_code=ErrorCode.H3_NO_ERROR, reason_phrase="certificate not pinned")
                return
        assert self._h3 is not None
        self._session_id = self.quic.get_next_available_stream_id()
        self._h3.send_headers(self._session_id, self._request_headers)

    def _handle_h3(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived) and event.stream_id == self._session_id and self._stream_id is None:
            status = header_value(event.headers, b":status")
            if status == b"200" and self._h3 is not None:
                self._stream_id = self._h3.create_webtransport_stream(self._session_id)
                if not self._opened.done():
                    self._opened.set_result(None)
            else:
                self._fail_opening(WebTransportError(f"the server answered {(status or b'?').decode()}"))
                self.quic.close(error_code=ErrorCode.H3_NO_ERROR)
        elif isinstance(event, DataReceived) and event.stream_id == self._session_id:
            capsule = parse_close_capsule(event.data)
            if capsule is not None or event.stream_ended:
                self._session_over(*(capsule or (0, "")))
                self.quic.close(error_code=ErrorCode.H3_NO_ERROR)  # one session per connection

    def _receive(self, data: bytes) -> None:
        try:
            frames = self._reader.feed(data)
        except FrameError as error:
            self._frames.extend(getattr(error, "frames", ()))  # whole frames before a bad length prefix
            self._session_over(error.code, error.message)
            self.quic.close(error_code=ErrorCode.H3_NO_ERROR, reason_phrase=error.message)
            return
        if frames:
            self._frames.extend(frames)
            self._readable.set()

    def _session_over(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = WebTransportClosed(code, reason)
            self._readable.set()
            self._ended.set()

    def _fail_opening(self, error: Exception) -> None:
        if not self._opened.done():
            self._opened.set_exception(error)


async def _resolve(host: str, port: int) -> tuple[int, NetworkAddress]:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        family, _, _, _, address = (await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM))[0]
        return family, address
    return (socket.AF_INET6, (host, port, 0, 0)) if ip.version == 6 else (socket.AF_INET, (host, port))


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.client: WebTransportClient | None = None

    def datagram_received(self, data: bytes, addr: NetworkAddress) -> None:
        if self.client is not None:
            self.client.datagram_received(data, addr)


async def connect_webtransport(
    url: str,
    *,
    certificate_hashes: Iterable[bytes] = (),
    verify: bool = True,
    headers: Mapping[str, str] | None = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    idle_timeout: float = 60.0,
    timeout: float = 10.0,
) -> WebTransportClient:
    """Open a session on an https:// URL. With `certificate_hashes` the server's certificate must have one
    of these SHA-256 digests (like the browser's serverCertificateHashes); `verify=False` trusts anything."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"a WebTransport URL is https://host[:port]/path, not {url!r}")
    host, port = parts.hostname, parts.port or 443
    hashes = frozenset(certificate_hashes)
    configuration = QuicConfiguration(
        alpn_protocols=H3_ALPN,
        is_client=True,
        max_datagram_frame_size=65536,
        idle_timeout=idle_timeout,
        server_name=host,
        verify_mode=ssl.CERT_NONE if hashes or not verify else ssl.CERT_REQUIRED,
    )
    request_headers = [
        (b":method", b"CONNECT"),
        (b":scheme", b"https"),
        (b":authority", parts.netloc.encode()),
        (b":path", (parts.path or "/").encode() + (b"?" + parts.query.encode() if parts.query else b"")),
        (b":protocol", b"webtransport"),
        *((name.lower().encode(), value.encode()) for name, value in (headers or {}).items()),
    ]
    loop = asyncio.get_running_loop()
    family, address = await _resolve(host, port)
    transport, endpoint = await loop.create_datagram_endpoint(_Endpoint, family=family)
    quic = _ClientQuicConnection(configuration=configuration)
    client = endpoint.client = WebTransportClient(quic, transport, request_headers, hashes, max_frame_size)
    quic.connect(address, now=loop.time())
    client.transmit()
    try:
        await asyncio.wait_for(asyncio.shield(client._opened), timeout)
    except BaseException:
        client.abort()
        raise
    return client
