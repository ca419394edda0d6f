"""The WebTransport server and client over real UDP on 127.0.0.1: framing, batching, closing, robustness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from realtime.certificates import ensure_dev_certificate
from realtime.webtransport import AIOQUIC_FRAME_HANDLERS, WebTransportServer, WebTransportSession, serve_webtransport
from realtime.webtransport_client import (
    WebTransportClient,
    WebTransportClosed,
    WebTransportError,
    connect_webtransport,
)
from realtime.webtransport_quic import QuicDriver
from schema.frames import ErrorCode
from schema.framing import frame_with_length

TIMEOUT = 30.0  # generous: a loaded CI machine is slow, and a pass never waits for it


class Recorder:
    """Echoes every frame, closes the session on b"close:<reason>", fails on b"raise", records callbacks."""

    def __init__(self, session: WebTransportSession) -> None:
        self.session = session
        self.frames: list[bytes] = []
        self.errors: list[tuple[int, str]] = []
        self.closed_calls = 0
        self.closed = asyncio.Event()

    def on_frame(self, frame: bytes) -> None:
        self.frames.append(frame)
        if frame.startswith(b"close:"):
            self.session.close(4321, frame[6:].decode())
        elif frame == b"raise":
            raise RuntimeError("a bug in the handler")
        else:
            self.session.send(frame)

    def on_error(self, code: int, message: str) -> None:
        self.errors.append((code, message))

    def on_closed(self) -> None:
        self.closed_calls += 1
        self.closed.set()


@dataclass
class Running:
    server: WebTransportServer
    certificate_hash: bytes
    handlers: asyncio.Queue[Recorder] = field(default_factory=asyncio.Queue)
    clients: list[WebTransportClient] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.address[1]

    async def connect(self, path: str = "/wt", **options: Any) -> WebTransportClient:
        client = await connect_webtransport(
            f"https://127.0.0.1:{self.port}{path}", certificate_hashes=[self.certificate_hash], **options
        )
        self.clients.append(client)
        return client

    async def next_handler(self) -> Recorder:
        return await asyncio.wait_for(self.handlers.get(), TIMEOUT)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return ensure_dev_certificate(tmp_path_factory.mktemp("certificate"))


@pytest.fixture
async def serve(certificate):
    """Start a server with a handler class (Recorder by default) and options; stopped after the test."""
    running: list[Running] = []

    async def start(handler=Recorder, **options) -> Running:
        handlers: asyncio.Queue[Recorder] = asyncio.Queue()

        def factory(session):
            made = handler(session)
            handlers.put_nowait(made)
            return made

        server = await serve_webtransport("127.0.0.1", 0, certificate, factory, **options)
        running.append(Running(server, certificate.sha256, handlers))
        return running[-1]

    yield start
    for each in running:
        for client in each.clients:
            client.abort()
        each.server.close()


async def recv_frames(client: WebTransportClient, count: int) -> list[bytes]:
    frames: list[bytes] = []
    async with asyncio.timeout(TIMEOUT):
        while len(frames) < count:
            frames += await client.recv_batch()
    return frames


@contextlib.contextmanager
def datagrams_sent(server: WebTransportServer) -> Iterator[list[bytes]]:
    """The datagrams the server sends meanwhile."""
    transport = server.transport
    datagrams: list[bytes] = []
    real_sendto = transport.sendto

    def counting_sendto(data, addr=None):
        datagrams.append(data)
        real_sendto(data, addr)

    transport.sendto = counting_sendto  # type: ignore[method-assign]
    try:
        yield datagrams
    finally:
        transport.sendto = real_sendto  # type: ignore[method-assign]


async def wait(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), TIMEOUT)


async def test_a_client_gets_back_1000_pipelined_frames_in_order(serve):
    running = await serve()
    client = await running.connect()
    sent = [b"frame %d " % i + os.urandom(i % 50) for i in range(1000)]

    for frame in sent:
        client.send(frame)

    assert await recv_frames(client, 1000) == sent
    assert (await running.next_handler()).frames == sent


async def test_an_empty_frame_is_a_frame(serve):
    running = await serve()
    client = await running.connect()

    client.send_many([b"", b"x", b""])

    assert await recv_frames(client, 3) == [b"", b"x", b""]


async def test_a_wrong_path_is_refused_with_404(serve):
    running = await serve()

    with pytest.raises(WebTransportError, match="404"):
        await running.connect("/elsewhere")
    assert running.handlers.empty()


async def test_a_plain_http3_request_is_refused_with_405(serve):
    running = await serve()
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE)
    answered: asyncio.Future[list[tuple[bytes, bytes]]] = asyncio.get_running_loop().create_future()

    class Http3(QuicConnectionProtocol):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.h3 = H3Connection(self._quic)

        def quic_event_received(self, event) -> None:
            for h3_event in self.h3.handle_event(event):
                if isinstance(h3_event, HeadersReceived) and not answered.done():
                    answered.set_result(h3_event.headers)

    async with connect("127.0.0.1", running.port, configuration=configuration, create_protocol=Http3) as protocol:
        assert isinstance(protocol, Http3)
        stream_id = protocol._quic.get_next_available_stream_id()
        request = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"), (b":path", b"/wt")]
        protocol.h3.send_headers(stream_id, request, end_stream=True)
        protocol.transmit()
        headers = await asyncio.wait_for(answered, TIMEOUT)

    assert (b":status", b"405") in headers
    assert running.handlers.empty()


async def test_a_certificate_that_matches_no_pinned_hash_is_refused(serve):
    running = await serve()

    with pytest.raises(WebTransportError, match="matches no pinned hash"):
        await connect_webtransport(f"https://127.0.0.1:{running.port}/wt", certificate_hashes=[bytes(32)])


async def test_the_client_makes_one_key_share_and_its_handshake_completes(serve):
    running = await serve()
    client = await running.connect()
    client.send(b"hello")
    assert await recv_frames(client, 1) == [b"hello"]

    client_tls = client.quic.tls
    assert client_tls._x25519_private_key is not None
    assert (client_tls._ec_private_keys, client_tls._x448_private_key) == ([], None)  # aioquic makes all four


async def test_the_handler_sees_the_request_path_and_headers(serve):
    running = await serve()

    await running.connect("/wt?token=abc", headers={"X-Device": "phone"})

    session = (await running.next_handler()).session
    assert session.path == "/wt?token=abc"
    assert session.headers["x-device"] == "phone"
    assert session.remote_address[0] == "127.0.0.1"


async def test_two_sessions_are_independent(serve):
    running = await serve()
    alice = await running.connect()
    alice_handler = await running.next_handler()
    bob = await running.connect()
    bob_handler = await running.next_handler()

    alice.send(b"for alice")
    bob.send(b"for bob")
    assert await recv_frames(alice, 1) == [b"for alice"]
    assert await recv_frames(bob, 1) == [b"for bob"]

    alice.send(b"close:done")
    await wait(alice_handler.closed)
    bob.send(b"still here")

    assert await recv_frames(bob, 1) == [b"still here"]
    assert bob_handler.closed_calls == 0
    assert [handler.session for handler in (bob_handler,)] == running.server.sessions()


async def test_a_session_closed_by_the_server_is_seen_by_the_client_and_on_closed_fires_once(serve):
    running = await serve()
    client = await running.connect()
    handler = await running.next_handler()

    client.send_many([b"before", b"close:see you"])

    assert await recv_frames(client, 1) == [b"before"]
    closed = await asyncio.wait_for(client.wait_closed(), TIMEOUT)
    assert (closed.code, closed.reason) == (4321, "see you")
    with pytest.raises(WebTransportClosed):
        await client.recv()
    await wait(handler.closed)
    await asyncio.wait_for(running.server.wait_idle(), TIMEOUT)  # the client hangs up, the connection ends
    assert handler.closed_calls == 1
    assert handler.session.closed


async def test_sending_on_a_closed_session_is_ignored(serve):
    running = await serve()
    await running.connect()
    handler = await running.next_handler()

    handler.session.close()
    handler.session.send(b"too late")
    handler.session.close(1, "twice")

    await wait(handler.closed)
    assert handler.closed_calls == 1


async def test_a_client_that_closes_its_session_triggers_on_closed(serve):
    running = await serve()
    client = await running.connect()
    handler = await running.next_handler()

    await client.close(1000, "bye")

    await wait(handler.closed)
    await asyncio.wait_for(running.server.wait_idle(), TIMEOUT)
    assert handler.closed_calls == 1


async def test_a_client_that_vanishes_is_closed_after_the_idle_timeout(serve):
    running = await serve(idle_timeout=0.5)
    client = await running.connect()
    handler = await running.next_handler()

    client.abort()  # no close capsule, no CONNECTION_CLOSE: the socket just goes away

    await wait(handler.closed)
    assert handler.closed_calls == 1
    assert running.server.sessions() == []


def forged_initial() -> bytes:
    """A QUIC v1 Initial with a well-formed header and a payload of random bytes: it names a new
    connection (a fresh destination id), and nothing in it decrypts."""
    payload = os.urandom(1250)
    dcid, scid = os.urandom(8), os.urandom(8)
    return b"\xc0\x00\x00\x00\x01\x08" + dcid + b"\x08" + scid + b"\x00" + (0x4000 | len(payload)).to_bytes(2) + payload


async def test_garbage_datagrams_do_not_disturb_a_live_session(serve):
    running = await serve()
    client = await running.connect()
    client.send(b"hello")
    assert await recv_frames(client, 1) == [b"hello"]
    live_cids = [cid for connection in running.server.connections for cid in connection.cids]
    garbage = [b"", b"\x00", os.urandom(40), os.urandom(1200), os.urandom(1500)]
    garbage += [b"\xc0" + os.urandom(1299)]  # a long header with an unknown version: a reply, nothing more
    garbage += [b"\x40" + cid + os.urandom(60) for cid in live_cids]  # short headers naming the live connection
    garbage += [b"\x40" + cid for cid in live_cids]  # ... and nothing after the connection id
    garbage += [b"\x40" + cid[:3] for cid in live_cids]  # ... cut short inside it
    garbage += [b"\x40" + os.urandom(1300)]  # a short header big enough for an Initial opens nothing
    garbage += [b"\xc0\x00\x00\x00\x01\x08" + os.urandom(1300)]  # a long header that may not even parse
    garbage += [forged_initial() for _ in range(3)]  # Initials that parse and decrypt to nothing

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
        for datagram in garbage * 3:
            attacker.sendto(datagram, ("127.0.0.1", running.port))
        client.send_many([b"still", b"alive"])
        assert await recv_frames(client, 2) == [b"still", b"alive"]

    assert (await running.next_handler()).errors == []
    assert len(running.server.connections) == 1


async def test_an_oversize_frame_triggers_on_error_and_the_stream_goes_on(serve):
    running = await serve(max_frame_size=1024)
    client = await running.connect()
    handler = await running.next_handler()

    client.send(b"fine")
    assert await recv_frames(client, 1) == [b"fine"]
    # the oversize payload arrives in two pieces and is thrown away; the frame after it is whole
    client.send_bytes(struct.pack("<I", 1025) + b"x" * 600, flush=True)
    client.send_bytes(b"y" * 425 + struct.pack("<I", 5) + b"after", flush=True)

    assert await recv_frames(client, 1) == [b"after"]  # echoed: the session is still serving
    assert handler.frames == [b"fine", b"after"]
    assert [code for code, _ in handler.errors] == [ErrorCode.TOO_LARGE]
    assert handler.closed_calls == 0


async def test_a_handler_may_close_with_its_own_code_on_a_framing_error(serve):
    class Strict(Recorder):
        def on_error(self, code: int, message: str) -> None:
            super().on_error(code, message)
            self.session.send(b"error frame")
            self.session.close(4999, "custom")

    running = await serve(handler=Strict, max_frame_size=16)
    client = await running.connect()

    client.send(b"x" * 17)

    assert await recv_frames(client, 1) == [b"error frame"]
    closed = await asyncio.wait_for(client.wait_closed(), TIMEOUT)
    assert (closed.code, closed.reason) == (4999, "custom")


async def test_a_handler_that_raises_gets_its_session_closed_as_internal_error(serve):
    running = await serve()
    client = await running.connect()
    handler = await running.next_handler()

    client.send_many([b"raise", b"never handled"])

    closed = await asyncio.wait_for(client.wait_closed(), TIMEOUT)
    assert closed.code == ErrorCode.INTERNAL
    await wait(handler.closed)
    assert handler.frames == [b"raise"]


async def test_a_frame_split_across_many_packets_arrives_whole(serve):
    running = await serve(max_frame_size=1 << 20)
    client = await running.connect()
    big = os.urandom(300_000)

    client.send(big)

    assert await recv_frames(client, 1) == [big]


async def test_a_frame_sent_one_byte_per_packet_arrives_whole(serve):
    running = await serve()
    client = await running.connect()
    handler = await running.next_handler()

    for byte in frame_with_length(b"split") + frame_with_length(b"again"):
        client.send_bytes(bytes([byte]), flush=True)  # one packet each

    assert await recv_frames(client, 2) == [b"split", b"again"]
    assert handler.frames == [b"split", b"again"]


async def test_many_frames_in_one_packet_come_back_together(serve):
    running = await serve()
    client = await running.connect()
    frames = [b"%02d" % i for i in range(50)]

    client.send_many(frames)  # 300 bytes: one packet

    # The server handles all 50 in one wake-up and answers in one packet: the client reads them at once.
    assert await asyncio.wait_for(client.recv_batch(), TIMEOUT) == frames


async def test_frames_sent_in_one_loop_iteration_leave_in_one_datagram(serve):
    running = await serve()
    client = await running.connect()
    session = (await running.next_handler()).session
    client.send(b"hello")  # the server learns of the client's stream from its first bytes
    assert await recv_frames(client, 1) == [b"hello"]
    with datagrams_sent(running.server) as datagrams:
        for i in range(40):
            session.send(b"push %02d" % i)
        assert datagrams == []  # nothing leaves until the loop turns
        await asyncio.sleep(0)  # one turn of the loop: the transmit scheduled by the first send runs

    assert len(datagrams) == 1
    assert await recv_frames(client, 40) == [b"push %02d" % i for i in range(40)]


async def test_the_answers_to_a_burst_of_datagrams_read_at_one_wakeup_leave_together(serve):
    running = await serve()
    client = await running.connect()
    client.send(b"hello")
    assert await recv_frames(client, 1) == [b"hello"]
    with datagrams_sent(running.server) as datagrams:
        for i in range(10):  # ten datagrams in the server's socket before its loop turns
            client.send_bytes(frame_with_length(b"burst %d" % i), flush=True)
        assert await recv_frames(client, 10) == [b"burst %d" % i for i in range(10)]

    # Answered datagram by datagram (asyncio's transport reads one per wake-up) it was ten or more.
    assert len(datagrams) <= 2, len(datagrams)


async def test_the_ack_of_a_request_rides_with_its_answer_instead_of_a_packet_of_its_own(serve):
    class Answerer(Recorder):  # answers each frame 2 ms later, as a node answers after NATS and storage
        def on_frame(self, frame: bytes) -> None:
            asyncio.get_running_loop().call_later(0.002, self.session.send, frame)

    running = await serve(Answerer)
    client = await running.connect()
    client.send(b"hello")
    assert await recv_frames(client, 1) == [b"hello"]
    exchanges = 20
    with datagrams_sent(running.server) as datagrams:
        for i in range(exchanges):
            client.send(b"question %02d" % i)
            assert await recv_frames(client, 1) == [b"question %02d" % i]

    # An ACK sent alone 1 ms after each question (aioquic's way) would make it two datagrams each;
    # a few may still go alone on a slow machine.
    assert exchanges <= len(datagrams) <= exchanges * 5 // 4, len(datagrams)


async def test_frames_sent_before_the_clients_first_bytes_are_delivered_first(serve):
    class Greeter(Recorder):
        def __init__(self, session: WebTransportSession) -> None:
            super().__init__(session)
            session.send(b"welcome")

    running = await serve(handler=Greeter)
    client = await running.connect()

    client.send(b"echo")

    assert await recv_frames(client, 2) == [b"welcome", b"echo"]


async def test_pending_bytes_counts_what_has_not_left_yet(serve):
    running = await serve()
    client = await running.connect()
    session = (await running.next_handler()).session

    session.send(b"x" * 500_000)
    assert session.pending_bytes == 500_004  # queued until the client's stream is known
    client.send(b"hello")

    assert await recv_frames(client, 2) == [b"x" * 500_000, b"hello"]
    assert session.pending_bytes == 0
    session.send(b"y" * 500_000)
    assert session.pending_bytes == 500_004
    assert await recv_frames(client, 1) == [b"y" * 500_000]
    assert session.pending_bytes == 0


async def test_closing_the_server_closes_every_session(serve):
    running = await serve()
    clients = [await running.connect() for _ in range(3)]
    handlers = [await running.next_handler() for _ in range(3)]

    running.server.close()

    for client in clients:
        await asyncio.wait_for(client.wait_closed(), TIMEOUT)
    assert [handler.closed_calls for handler in handlers] == [1, 1, 1]


async def test_one_process_serves_many_sessions_at_once(serve):
    # Correctness with many sessions; capacity is W3's job (docs/benchmarks.md), not a test's.
    sessions = 300
    running: Running = await serve()
    connecting = asyncio.Semaphore(20)  # handshakes run in Python on both ends of this one process

    async def connect_one() -> WebTransportClient:
        async with connecting:
            return await running.connect(timeout=30)

    clients = await asyncio.gather(*(connect_one() for _ in range(sessions)))
    assert len(running.server.sessions()) == sessions

    for start in range(0, sessions, 100):  # waves, so the test's own clients do not starve the loop
        wave = clients[start : start + 100]
        for number, client in enumerate(wave, start):
            client.send(b"%d" % number)
        answers = await asyncio.wait_for(asyncio.gather(*(client.recv() for client in wave)), 60)
        assert answers == [b"%d" % number for number in range(start, start + 100)]

    for client in clients:
        client.abort()
    running.server.close()
    assert running.server.sessions() == []


async def one_echoed_connection(serve: Any) -> tuple[WebTransportClient, Any]:
    """A client whose first frame came back, and the server's side of its connection."""
    running = await serve()
    client = await running.connect()
    client.send(b"hello")
    assert await recv_frames(client, 1) == [b"hello"]
    (connection,) = running.server.connections
    return client, connection


async def test_a_server_connection_looks_up_every_frame_type_as_aioquic_does(serve):
    _, connection = await one_echoed_connection(serve)
    shared = getattr(connection.quic, AIOQUIC_FRAME_HANDLERS)
    plain = getattr(QuicConnection(configuration=QuicConfiguration(is_client=True)), AIOQUIC_FRAME_HANDLERS)
    assert not isinstance(shared, dict)  # the shared table, not a copy per connection
    for frame_type, (handler, epochs) in plain.items():
        assert shared[frame_type] == (getattr(connection.quic, handler.__name__), epochs)
        assert shared[frame_type][0].__self__ is connection.quic
    with pytest.raises(KeyError):  # aioquic answers an unknown frame type with FRAME_ENCODING_ERROR
        shared[max(plain) + 1]


async def test_each_end_gets_one_spare_connection_id(serve):
    client, connection = await one_echoed_connection(serve)
    assert len(connection.quic._peer_cid_available) == 1  # from the client, which asks for eight
    assert len(client.quic._peer_cid_available) == 1  # from the server, where aioquic gives seven
    assert len(connection.cids) == 3  # routed: the client's original destination id, and two of ours


async def test_connections_share_their_handshake_buffers_and_leftovers_never_leak(serve):
    client, connection = await one_echoed_connection(serve)
    assert connection.quic._crypto_buffers is client.quic._crypto_buffers  # one set for the thread
    for buffer in connection.quic._crypto_buffers.values():
        buffer.push_bytes(b"left behind by a handshake that failed halfway")

    running = await serve()  # a new server, and a new client: both handshakes go through the buffers
    second = await running.connect()
    second.send(b"after")

    assert await recv_frames(second, 1) == [b"after"]
    assert all(buffer.tell() == 0 for buffer in connection.quic._crypto_buffers.values())


async def test_tls_after_the_handshake_is_refused_as_aioquic_would_and_other_sessions_go_on(serve):
    from aioquic import tls
    from aioquic.quic.crypto import NoCallback
    from aioquic.quic.packet import QuicErrorCode

    running = await serve()
    intruder, bystander = await running.connect(), await running.connect()
    first, second = (connection.quic for connection in running.server.connections)
    for quic in (first, second):  # the handshake's state is let go, and no qlog callback is kept
        assert type(quic.tls).__name__ == "_SpentTls"
        assert all(pair.send._setup_cb is NoCallback for pair in quic._cryptos.values())
    for epoch in (tls.Epoch.INITIAL, tls.Epoch.HANDSHAKE):  # one stand-in for the spent streams and spaces
        assert first._crypto_streams[epoch] is second._crypto_streams[epoch]
        assert first._crypto_streams[epoch].sender.buffer_is_empty
        assert first._spaces[epoch] is second._spaces[epoch]
        assert first._spaces[epoch].discarded
        assert not first._spaces[epoch].sent_packets
    assert first._loss.spaces == list(first._spaces.values())  # loss recovery sees the same spaces
    for epoch in (tls.Epoch.INITIAL, tls.Epoch.ZERO_RTT, tls.Epoch.HANDSHAKE):  # and for their keys
        assert first._cryptos[epoch] is second._cryptos[epoch]
        assert not first._cryptos[epoch].recv.is_valid()
        assert not first._cryptos[epoch].send.is_valid()
    assert set(map(id, first._cryptos_initial.values())) == {id(first._cryptos[tls.Epoch.INITIAL])}

    # a TLS message in the 1-RTT epoch (a KeyUpdate, which QUIC forbids: RFC 9001 6)
    intruder.quic._crypto_streams[tls.Epoch.ONE_RTT].sender.write(b"\x18\x00\x00\x01\x00")
    intruder.transmit()
    closed = await asyncio.wait_for(intruder.wait_closed(), TIMEOUT)

    assert closed.code == QuicErrorCode.CRYPTO_ERROR + tls.AlertDescription.unexpected_message
    bystander.send(b"still here")
    assert await recv_frames(bystander, 1) == [b"still here"]


async def test_a_late_initial_packet_for_a_connection_past_its_handshake_is_dropped(serve, caplog):
    running = await serve()
    client = await running.connect()
    late = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN))
    late._peer_cid.cid = client.quic.original_destination_connection_id  # routed to the live connection
    late.connect(("127.0.0.1", running.port), now=asyncio.get_running_loop().time())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for data, _ in late.datagrams_to_send(now=asyncio.get_running_loop().time()):
            sock.sendto(data, ("127.0.0.1", running.port))

    client.send(b"after")  # answered after the Initial was read: the server reads in arrival order
    assert await recv_frames(client, 1) == [b"after"]
    assert len(running.server.connections) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # dropped as undecryptable, no error


def test_a_timer_run_early_by_uvloop_still_sends_what_was_due_once(certificate, monkeypatch):
    # uvloop's clock counts milliseconds: a timer may run while loop.time() still reads just before
    # its time. What it was for (an ACK, here) must leave at that first run, not wait for the clock.
    import uvloop
    from aioquic import tls

    fires = 0
    real_on_timer = QuicDriver._on_timer
    acked: asyncio.Future[None] | None = None  # resolved when the client's ACK of an echo has left

    def counted(driver: QuicDriver) -> None:
        nonlocal fires
        fires += 1
        real_on_timer(driver)
        space = driver.quic._spaces.get(tls.Epoch.ONE_RTT)
        if driver.quic._is_client and space is not None and space.ack_at is None and acked and not acked.done():
            acked.set_result(None)

    async def echoes() -> None:
        nonlocal acked
        server = await serve_webtransport("127.0.0.1", 0, certificate, Recorder)
        client = await connect_webtransport(
            f"https://127.0.0.1:{server.address[1]}/wt", certificate_hashes=[certificate.sha256]
        )
        monkeypatch.setattr(QuicDriver, "_on_timer", counted)
        for number in range(20):
            acked = asyncio.get_running_loop().create_future()
            client.send(b"%d" % number)
            assert await recv_frames(client, 1) == [b"%d" % number]
            await asyncio.wait_for(acked, TIMEOUT)  # the echo's ACK leaves by its timer (10 ms after)
        client.abort()
        server.close()

    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(echoes())
    finally:
        loop.close()
    assert fires <= 2 * 20  # at most each end's ACK timer once an echo (hundreds, when it spun)


async def test_the_client_is_told_to_use_no_qpack_table_and_its_request_is_decoded_without_one(serve):
    from aioquic.h3.connection import Setting

    client, connection = await one_echoed_connection(serve)  # its CONNECT was decoded and answered
    assert client._h3 is not None
    announced = client._h3._received_settings or {}

    assert announced[Setting.QPACK_MAX_TABLE_CAPACITY] == 0
    assert announced[Setting.QPACK_BLOCKED_STREAMS] == 0
    assert type(connection._h3._decoder).__name__ == "StaticQpack"


async def test_a_renewed_certificate_is_served_to_new_connections(serve, tmp_path):
    from datetime import UTC, datetime, timedelta

    running = await serve()
    first = await running.connect()
    renewed = ensure_dev_certificate(tmp_path / "renewed", now=datetime.now(UTC) + timedelta(seconds=1))
    assert renewed.sha256 != running.certificate_hash
    running.server.use_certificate(renewed)

    url = f"https://127.0.0.1:{running.port}/wt"
    client = await connect_webtransport(url, certificate_hashes=[renewed.sha256])
    running.clients.append(client)
    client.send(b"on the new one")
    assert await recv_frames(client, 1) == [b"on the new one"]
    with pytest.raises((OSError, TimeoutError, ConnectionError)):  # pinned to the old one: refused
        await connect_webtransport(url, certificate_hashes=[running.certificate_hash], timeout=3)
    first.send(b"still on the old one")
    assert await recv_frames(first, 1) == [b"still on the old one"]
