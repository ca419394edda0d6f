"""The WebTransport server: HTTP/3 over QUIC (aioquic) accepting sessions on one path.

A session carries frames, each prefixed by its u32 little-endian length, on the one bidirectional
stream its client opens. This module knows nothing of what the frames mean: `handler_factory(session)`
returns a handler per session, which gets `on_frame` for every whole frame, `on_error` for a framing
error (the session closes after it unless the handler closed it already) and `on_closed` exactly once,
whoever ended the session. Reads are batched (every frame a datagram completes is delivered before
anything is sent) and so are writes (whatever the handlers sent leaves in one transmit per wake-up).
Measured facts behind these choices: /work/shared/notes/webtransport.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from aioquic import tls
from aioquic.buffer import Buffer  # type: ignore[attr-defined]
from aioquic.h3.connection import H3_ALPN, ErrorCode, FrameUnexpected, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived, WebTransportStreamDataReceived
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration
from aioquic.quic.connection import NetworkAddress, QuicConnection, QuicConnectionState
from aioquic.quic.crypto import CryptoPair
from aioquic.quic.events import (
    ConnectionIdIssued,
    ConnectionIdRetired,
    ConnectionTerminated,
    ProtocolNegotiated,
    QuicEvent,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
)
from aioquic.quic.packet import (
    PACKET_LONG_HEADER,
    QuicPacketType,
    encode_quic_version_negotiation,
    pull_quic_header,
)
from aioquic.quic.recovery import QuicPacketSpace
from aioquic.quic.stream import QuicStream

from realtime.certificates import CertificateInfo
from realtime.static_qpack import StaticQpackH3Connection
from realtime.udp_endpoint import UdpEndpoint, bind_udp
from realtime.webtransport_quic import (
    SESSION_GONE,
    LeanQuicConnection,
    QuicDriver,
    encode_close_capsule,
    header_value,
    parse_close_capsule,
)
from schema.frames import ErrorCode as FrameErrorCode
from schema.framing import FrameReader, frame_with_length

logger = logging.getLogger(__name__)

DEFAULT_MAX_FRAME_SIZE = 64 * 1024
CLOSE_GRACE_SECONDS = 0.15
"""Between the end of a closing session's data stream and its close capsule (see end_session)."""
# Handshakes run in Python and keep the loop busy: a bigger socket buffer rides out bursts of new
# connections instead of dropping their packets (the kernel caps it at net.core.rmem_max).
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
MAX_SESSIONS_PER_CONNECTION = 8  # browsers open one; a bound keeps a connection's bookkeeping small


class WebTransportHandler(Protocol):
    """What a session tells the code that owns it. Callbacks run on the event loop and must not block."""

    def on_frame(self, frame: bytes) -> None: ...

    def on_error(self, code: int, message: str) -> None: ...

    def on_closed(self) -> None: ...


HandlerFactory = Callable[["WebTransportSession"], WebTransportHandler]


SPARE_CONNECTION_IDS = 1
"""Connection ids each end issues beyond the one in use (RFC 9000 5.1.1: at least one spare lets a
client's NAT rebinding or migration proceed). aioquic issues and asks for seven: fourteen ids, frames
and routing entries per connection, and 4 KiB of each idle session, for migrations nobody makes."""


AIOQUIC_FRAME_HANDLERS = "_QuicConnection__frame_handlers"  # QuicConnection.__frame_handlers, name-mangled


class _FrameHandlers:
    """aioquic's table of frame handlers (frame type -> handler, epochs it is allowed in), shared by
    every connection and bound to one on lookup: aioquic builds one per connection, 30 bound methods
    and frozensets that were 12 KiB of each idle session, a quarter of its Python objects."""

    __slots__ = ("_connection",)
    _by_type: dict[int, tuple[str, frozenset[object]]] = {}

    def __init__(self, connection: QuicConnection, table: dict[int, tuple[Callable[..., None], frozenset[object]]]):
        self._connection = connection
        if not _FrameHandlers._by_type:
            _FrameHandlers._by_type = {kind: (handler.__name__, epochs) for kind, (handler, epochs) in table.items()}

    def __getitem__(self, frame_type: int) -> tuple[Callable[..., None], frozenset[object]]:
        name, epochs = self._by_type[frame_type]  # KeyError for an unknown type, as aioquic's dict
        return getattr(self._connection, name), epochs


class _SpentTls:
    """What stands for a server connection's TLS context once its handshake is complete. TLS 1.3 over
    QUIC has nothing more for a server to read (RFC 9001 6: no KeyUpdate; we issue no tickets), which
    aioquic's context in that state answers with unexpected_message too; its keys, transcript and
    handshake messages were 4 KiB of each idle session."""

    state = tls.State.SERVER_POST_HANDSHAKE

    def handle_message(self, data: bytes, buffers: object) -> None:
        raise tls.AlertUnexpectedMessage("no TLS message is expected after the handshake")


_SPENT_TLS = _SpentTls()
# What stands for the Initial and Handshake crypto streams of a server connection past its handshake:
# their packets can no longer be decrypted (the epochs' keys are gone), and aioquic only writes them
# the empty output of a TLS that has nothing more to say. One for all connections (1.2 KiB each).
_SPENT_CRYPTO_STREAM = QuicStream()
_HANDSHAKE_EPOCHS = (tls.Epoch.INITIAL, tls.Epoch.HANDSHAKE)
# And for their keys, 0-RTT's (which we never accept) and the Initial keys made for each QUIC version
# the client might have switched to: keys never set up, so a late packet of those epochs is dropped as
# undecryptable, as it was once aioquic had torn the real ones down (2.7 KiB a connection).
_SPENT_CRYPTO_PAIR = CryptoPair()
# And for their packet number spaces, discarded (RFC 9001 4.9): empty, read and never written again.
_SPENT_SPACE = QuicPacketSpace()
_SPENT_SPACE.discarded = True
_SPENT_KEY_EPOCHS = (tls.Epoch.INITIAL, tls.Epoch.ZERO_RTT, tls.Epoch.HANDSHAKE)


class _ServerQuicConnection(LeanQuicConnection):
    """aioquic's QuicConnection with less per-connection state (an idle session is mostly its QUIC
    connection). The private attributes touched are read by aioquic only as replaced here."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        setattr(self, AIOQUIC_FRAME_HANDLERS, _FrameHandlers(self, getattr(self, AIOQUIC_FRAME_HANDLERS)))
        self._local_active_connection_id_limit = 1 + SPARE_CONNECTION_IDS  # the ids we take from the client

    def _replenish_connection_ids(self) -> None:
        # the ids we give the client: aioquic issues as many as the client takes, up to eight
        limit = self._remote_active_connection_id_limit
        self._remote_active_connection_id_limit = min(limit, 1 + SPARE_CONNECTION_IDS)
        try:
            super()._replenish_connection_ids()
        finally:
            self._remote_active_connection_id_limit = limit

    def _handle_crypto_frame(self, context: Any, frame_type: int, buf: Buffer) -> None:
        super()._handle_crypto_frame(context, frame_type, buf)
        # once complete, aioquic has read the negotiated ALPN and told us, in the call above
        if self._handshake_complete and not isinstance(self.tls, _SpentTls):
            self._let_go_of_the_handshake()

    def _let_go_of_the_handshake(self) -> None:
        self.tls = _SPENT_TLS  # type: ignore[assignment]
        for epoch in _HANDSHAKE_EPOCHS:
            spent = self._spaces[epoch]
            if spent.discarded:
                self._crypto_streams[epoch] = _SPENT_CRYPTO_STREAM
                self._spaces[epoch] = _SPENT_SPACE
                self._loss.spaces = [_SPENT_SPACE if space is spent else space for space in self._loss.spaces]
        for epoch in _SPENT_KEY_EPOCHS:
            if not _usable(self._cryptos[epoch]):
                self._cryptos[epoch] = _SPENT_CRYPTO_PAIR
        if not any(_usable(pair) for pair in self._cryptos_initial.values()):
            self._cryptos_initial = dict.fromkeys(self._cryptos_initial, _SPENT_CRYPTO_PAIR)


def _usable(pair: CryptoPair) -> bool:
    return bool(pair.recv.is_valid() or pair.send.is_valid())


class WebTransportSession:
    """One accepted session: send frames, close it, see how much it has not sent yet."""

    __slots__ = (
        "_connection",
        "_reader",
        "_stream_id",
        "_unsent",
        "_written",
        "closed",
        "handler",
        "headers",
        "path",
        "session_id",
    )

    def __init__(self, connection: _Connection, session_id: int, headers: dict[str, str], max_frame_size: int) -> None:
        self._connection = connection
        self._reader = FrameReader(max_frame_size)
        self._stream_id: int | None = None
        self._unsent: list[bytes] = []  # frames sent before the client opened its stream
        self._written = 0
        self.closed = False
        self.handler: WebTransportHandler | None = None
        self.headers = headers  # request headers, names lower-case, pseudo-headers included
        self.path = headers.get(":path", "")
        self.session_id = session_id  # the id of the CONNECT stream, unique within its connection

    @property
    def remote_address(self) -> NetworkAddress:
        return self._connection.remote_address

    @property
    def pending_bytes(self) -> int:
        """Bytes sent on this session that QUIC has not put on the wire yet (a slow reader makes it grow)."""
        if self._stream_id is None:
            return sum(map(len, self._unsent))
        return self._written - self._connection.sent_offset(self._stream_id)

    def send(self, frame: bytes) -> None:
        """Queue one frame; frames sent in the same loop iteration leave together. The server learns of
        the client's stream from its first bytes: frames sent before then wait for them."""
        self._write(frame_with_length(frame))

    def send_many(self, frames: Iterable[bytes]) -> None:
        self._write(b"".join(map(frame_with_length, frames)))

    def close(self, code: int = 0, reason: str = "") -> None:
        """End the session with a code and reason the client sees; on_closed follows soon after."""
        if self.closed:
            return
        self.closed = True
        self._connection.end_session(self, capsule=encode_close_capsule(code, reason), grace=CLOSE_GRACE_SECONDS)
        asyncio.get_running_loop().call_soon(self._notify_closed)

    def _write(self, data: bytes) -> None:
        if self.closed:
            return  # a push racing the end of the session has nobody to go to
        if self._stream_id is None:
            self._unsent.append(data)
            return
        self._written += len(data)
        self._connection.write(self._stream_id, data)

    def _adopt(self, stream_id: int) -> None:
        self._stream_id = stream_id
        unsent, self._unsent = self._unsent, []
        for data in unsent:
            self._write(data)

    def _receive(self, data: bytes, ended: bool) -> None:
        if self.closed:
            return
        for item in self._reader.feed_items(data):
            if self.closed:
                return
            if isinstance(item, bytes):
                self._dispatch("on_frame", item)
            else:  # an oversize frame, skipped: the handler answers it and the stream goes on
                self._dispatch("on_error", item.code, item.message)
        if ended:
            self._ended_by_peer()

    def _ended_by_peer(self) -> None:
        """The client closed the session, its stream, or the whole connection."""
        if self.closed:
            return
        self.closed = True
        self._connection.end_session(self, capsule=b"")
        self._notify_closed()

    def _notify_closed(self) -> None:
        handler, self.handler = self.handler, None
        self._reader = FrameReader(0)
        if handler is not None:
            try:
                handler.on_closed()
            except Exception:
                logger.exception("WebTransport handler failed in on_closed")

    def _dispatch(self, callback: str, *args: object) -> None:
        if self.handler is None:
            return
        try:
            getattr(self.handler, callback)(*args)
        except Exception:
            logger.exception("WebTransport handler failed in %s; closing the session", callback)
            self.close(FrameErrorCode.INTERNAL, "internal error")


class _Connection(QuicDriver):
    """One client's QUIC connection: answers its CONNECT requests and routes stream data to sessions."""

    def __init__(self, server: WebTransportServer, quic: QuicConnection, remote_address: NetworkAddress) -> None:
        super().__init__(quic, server.transport)
        self.remote_address = remote_address
        self._server = server
        self._h3: H3Connection | None = None
        self._sessions: dict[int, WebTransportSession] = {}  # by CONNECT stream id, closed ones included
        self._data_streams: dict[int, WebTransportSession] = {}
        self.cids: set[bytes] = set()

    @property
    def sessions(self) -> list[WebTransportSession]:
        return [session for session in self._sessions.values() if not session.closed]

    def end_session(self, session: WebTransportSession, *, capsule: bytes, grace: float = 0.0) -> None:
        """Finish our side of a session's streams, with a close capsule when we are the one closing.

        The data stream ends now; the capsule follows `grace` seconds later, because Chromium drops the
        last frames of a stream whose session closes in the same flight (the Error or Kicked frame that
        says why): measured, 50 ms apart is enough."""
        if self._h3 is None or self.stopped:
            return
        # Either stream may be finished or reset by the peer already: then there is nothing to finish.
        if session._stream_id is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                self.write(session._stream_id, b"", end_stream=True)
        if grace > 0:
            asyncio.get_running_loop().call_later(grace, self._send_capsule, session.session_id, capsule)
        else:
            self._send_capsule(session.session_id, capsule)

    def _send_capsule(self, session_id: int, capsule: bytes) -> None:
        if self._h3 is None or self.stopped:
            return
        with contextlib.suppress(ValueError, RuntimeError, FrameUnexpected):
            self._h3.send_data(session_id, capsule, end_stream=True)
            self.transmit_soon()

    def shut_down(self, reason: str) -> None:
        self.quic.close(error_code=ErrorCode.H3_NO_ERROR, reason_phrase=reason)
        self.transmit()
        self._terminated()

    def handle_event(self, event: QuicEvent) -> None:
        if type(event) is StreamDataReceived:
            session = self._data_streams.get(event.stream_id)
            if session is not None:  # a session's stream, past its header: H3 would only pass it on
                session._receive(event.data, event.end_stream)
                return
        if isinstance(event, ProtocolNegotiated):
            self._h3 = StaticQpackH3Connection(self.quic, enable_webtransport=True)
        elif isinstance(event, ConnectionIdIssued):
            self._server.route(event.connection_id, self)
        elif isinstance(event, ConnectionIdRetired):
            self._server.unroute(event.connection_id)
        elif isinstance(event, ConnectionTerminated):
            self._terminated()
            return
        elif isinstance(event, StreamReset | StopSendingReceived):
            session = self._sessions.get(event.stream_id) or self._data_streams.get(event.stream_id)
            if session is not None:
                session._ended_by_peer()
        if self._h3 is not None:
            for h3_event in self._h3.handle_event(event):
                self._handle_h3(h3_event)

    def _handle_h3(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            if event.stream_id not in self._sessions:
                self._answer_request(event.stream_id, event.headers)
        elif isinstance(event, WebTransportStreamDataReceived):
            session = self._sessions.get(event.session_id)
            if session is None:
                self._refuse_stream(event.stream_id)
            elif session._stream_id == event.stream_id:
                session._receive(event.data, event.stream_ended)
            elif session._stream_id is None and event.stream_id & 2 == 0 and not session.closed:
                self._data_streams[event.stream_id] = session
                session._adopt(event.stream_id)
                session._receive(event.data, event.stream_ended)
            else:
                self._refuse_stream(event.stream_id)  # one bidirectional stream per session
        elif isinstance(event, DataReceived):
            session = self._sessions.get(event.stream_id)
            if session is not None and (event.stream_ended or parse_close_capsule(event.data) is not None):
                session._ended_by_peer()

    def _answer_request(self, stream_id: int, raw_headers: list[tuple[bytes, bytes]]) -> None:
        assert self._h3 is not None
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in raw_headers}
        path = headers.get(":path", "").partition("?")[0]
        is_webtransport = header_value(raw_headers, b":method") == b"CONNECT" and headers.get(":protocol") == (
            "webtransport"
        )
        if path != self._server.path:
            status = 404
        elif not is_webtransport:
            status = 405
        elif len(self._sessions) >= MAX_SESSIONS_PER_CONNECTION:
            status = 429
        else:
            status = 200
        if status != 200:
            self._h3.send_headers(stream_id, [(b":status", str(status).encode())], end_stream=True)
            return
        self._h3.send_headers(stream_id, [(b":status", b"200"), (b"sec-webtransport-http3-draft", b"draft02")])
        session = WebTransportSession(self, stream_id, headers, self._server.max_frame_size)
        self._sessions[stream_id] = session
        try:
            session.handler = self._server.handler_factory(session)
        except Exception:
            logger.exception("the WebTransport handler factory failed; closing the session")
            session.close(FrameErrorCode.INTERNAL, "internal error")

    def _refuse_stream(self, stream_id: int) -> None:
        with contextlib.suppress(ValueError):
            self.quic.stop_stream(stream_id, SESSION_GONE)
            if stream_id & 2 == 0:
                self.quic.reset_stream(stream_id, SESSION_GONE)

    def _terminated(self) -> None:
        self.stop()
        self._server.forget(self)
        for session in self._sessions.values():
            if not session.closed:
                session.closed = True
                session._notify_closed()
        self._data_streams.clear()


class WebTransportServer:
    """The UDP endpoint's handler: routes datagrams to connections by connection id and creates new ones."""

    def __init__(
        self, configuration: QuicConfiguration, handler_factory: HandlerFactory, path: str, max_frame_size: int
    ) -> None:
        self.handler_factory = handler_factory
        self.path = path
        self.max_frame_size = max_frame_size
        self._configuration = configuration
        self._connections: dict[bytes, _Connection] = {}
        self._transport: UdpEndpoint | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def transport(self) -> UdpEndpoint:
        assert self._transport is not None, "the server is not listening"
        return self._transport

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.transport.address[:2]
        return host, port

    @property
    def connections(self) -> set[_Connection]:
        return set(self._connections.values())

    def sessions(self) -> list[WebTransportSession]:
        return [session for connection in self.connections for session in connection.sessions]

    async def wait_idle(self) -> None:
        """Wait until no connection is left (for a graceful stop: close the sessions, then wait)."""
        await self._idle.wait()

    def use_certificate(self, certificate: CertificateInfo) -> None:
        """Serve this certificate to connections from now on (a renewed one); open connections keep theirs."""
        self._configuration.load_cert_chain(certificate.cert_path, certificate.key_path)

    def close(self, reason: str = "server shutting down") -> None:
        """Close every connection (handlers get on_closed) and stop listening."""
        for connection in self.connections:
            connection.shut_down(reason)
        self._connections.clear()
        self._idle.set()
        if self._transport is not None:
            self._transport.close()

    def route(self, cid: bytes, connection: _Connection) -> None:
        self._connections[cid] = connection
        connection.cids.add(cid)
        self._idle.clear()

    def unroute(self, cid: bytes) -> None:
        connection = self._connections.pop(cid, None)
        if connection is not None:
            connection.cids.discard(cid)

    def forget(self, connection: _Connection) -> None:
        for cid in connection.cids:
            self._connections.pop(cid, None)
        connection.cids.clear()
        if not self._connections:
            self._idle.set()

    def listen(self, transport: UdpEndpoint) -> None:
        self._transport = transport

    def datagram_received(self, data: bytes, addr: NetworkAddress) -> None:
        # A short-header (1-RTT) packet, nearly every packet once connected, names its connection in the
        # bytes after the first: routed by slicing, without parsing a header that the connection parses
        # again (a packet for no connection, or malformed, is dropped as below, there or here).
        if data and not data[0] & PACKET_LONG_HEADER:
            cid_end = 1 + self._configuration.connection_id_length
            known = self._connections.get(data[1:cid_end]) if len(data) > cid_end else None
            if known is not None:
                known.datagram_received(data, addr)
            return
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=self._configuration.connection_id_length)
        except ValueError:
            return  # not QUIC
        connection = self._connections.get(header.destination_cid)
        if connection is None:
            if len(data) < SMALLEST_MAX_DATAGRAM_SIZE:
                return  # only a padded Initial may open a connection (and earn a reply)
            if header.version is not None and header.version not in self._configuration.supported_versions:
                if header.packet_type != QuicPacketType.VERSION_NEGOTIATION:
                    packet = encode_quic_version_negotiation(
                        source_cid=header.destination_cid,
                        destination_cid=header.source_cid,
                        supported_versions=self._configuration.supported_versions,
                    )
                    self.transport.sendto(packet, addr)
                return
            if header.packet_type != QuicPacketType.INITIAL:
                return
            quic = _ServerQuicConnection(
                configuration=self._configuration, original_destination_connection_id=header.destination_cid
            )
            connection = _Connection(self, quic, addr)
            self.route(header.destination_cid, connection)
            self.route(quic.host_cid, connection)
            connection.datagram_received(data, addr)
            if quic._state == QuicConnectionState.FIRSTFLIGHT:
                # Nothing in it decrypted (aioquic leaves FIRSTFLIGHT at the first packet that does; its
                # state has no public accessor): a forged or corrupt Initial keeps no connection for the
                # idle timeout, nor earns a reply (stop cancels the pending transmit).
                connection.stop()
                self.forget(connection)
            return
        connection.datagram_received(data, addr)


async def serve_webtransport(
    host: str,
    port: int,
    certificate: CertificateInfo,
    handler_factory: HandlerFactory,
    *,
    path: str = "/wt",
    idle_timeout: float = 60.0,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
) -> WebTransportServer:
    """Listen on UDP host:port (port 0 picks a free one: see `server.address`) until `server.close()`."""
    configuration = QuicConfiguration(
        alpn_protocols=H3_ALPN, is_client=False, max_datagram_frame_size=65536, idle_timeout=idle_timeout
    )
    configuration.load_cert_chain(certificate.cert_path, certificate.key_path)
    server = WebTransportServer(configuration, handler_factory, path, max_frame_size)
    server.listen(UdpEndpoint(bind_udp(host, port, receive_buffer=RECEIVE_BUFFER_BYTES), server))
    return server
