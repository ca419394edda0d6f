"""What both ends of a WebTransport connection share: a QUIC connection driven from asyncio, and the
capsule that closes a session.

The aioquic cores (QuicConnection, H3Connection) do no I/O and read no clock. QuicDriver is the only
place that gives them datagrams, timer ticks and `now`, and it sends what they produce at most once
per event-loop iteration, however many frames were written in between: one transmit per wake-up, not
per frame, is what keeps echo throughput high.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
from typing import Any, Protocol

from aioquic import tls
from aioquic.buffer import Buffer, BufferReadError, encode_uint_var  # type: ignore[attr-defined]
from aioquic.quic.connection import CRYPTO_BUFFER_SIZE, NetworkAddress, QuicConnection
from aioquic.quic.crypto import NoCallback
from aioquic.quic.events import QuicEvent
from aioquic.quic.packet import QuicErrorCode

logger = logging.getLogger(__name__)

# draft-ietf-webtrans-http3: the capsule that ends a session (u32 code + UTF-8 reason), and the code
# that resets streams of a session that is gone.
CLOSE_SESSION_CAPSULE = 0x2843
MAX_CLOSE_REASON_BYTES = 1024
SESSION_GONE = 0x170D7B68
_U32 = struct.Struct("!I")


def encode_close_capsule(code: int, reason: str) -> bytes:
    """CLOSE_WEBTRANSPORT_SESSION, sent as the body of the CONNECT stream."""
    reason_bytes = reason.encode("utf-8")[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")
    payload = _U32.pack(code & 0xFFFF_FFFF) + reason_bytes
    return encode_uint_var(CLOSE_SESSION_CAPSULE) + encode_uint_var(len(payload)) + payload


def parse_close_capsule(body: bytes) -> tuple[int, str] | None:
    """The (code, reason) of the first CLOSE_WEBTRANSPORT_SESSION capsule in a CONNECT stream's body."""
    buffer = Buffer(data=body)
    try:
        while not buffer.eof():
            capsule_type = buffer.pull_uint_var()
            payload = buffer.pull_bytes(buffer.pull_uint_var())
            if capsule_type == CLOSE_SESSION_CAPSULE and len(payload) >= 4:
                return _U32.unpack_from(payload)[0], payload[4:].decode("utf-8", "replace")
    except BufferReadError:
        pass
    return None


def header_value(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((value for key, value in headers if key == name), None)


class _ScratchBuffers(threading.local):
    def __init__(self) -> None:
        self.by_epoch = {epoch: Buffer(capacity=CRYPTO_BUFFER_SIZE) for epoch in _CRYPTO_EPOCHS}


_CRYPTO_EPOCHS = (tls.Epoch.INITIAL, tls.Epoch.HANDSHAKE, tls.Epoch.ONE_RTT)
_scratch = _ScratchBuffers()


class LeanQuicConnection(QuicConnection):
    """aioquic's QuicConnection without its three 16 KiB handshake buffers per connection (48 KiB, the
    largest part of an idle session's memory). TLS writes a handshake message there and aioquic copies
    it into the epoch's crypto stream at once, in the same call, leaving the buffer empty: scratch
    space, so the connections of a thread share one set, emptied before each use in case an error
    left something behind. Nor, without a qlog, its key-change callbacks: twelve bound methods that
    log to the qlog only (3 KiB). `_crypto_buffers`, `_quic_logger`, the key callbacks and the two
    methods are aioquic's private names."""

    def _initialize(self, peer_cid: bytes) -> None:
        super()._initialize(peer_cid)
        self._crypto_buffers = _empty_scratch()  # the client's first flight is written right after this
        if self._quic_logger is None:
            for pair in self._cryptos.values():
                for context in (pair.recv, pair.send):
                    context._setup_cb = context._teardown_cb = NoCallback

    def _handle_crypto_frame(self, context: Any, frame_type: int, buf: Buffer) -> None:
        self._crypto_buffers = _empty_scratch()
        super()._handle_crypto_frame(context, frame_type, buf)


def _empty_scratch() -> dict[tls.Epoch, Buffer]:
    buffers = _scratch.by_epoch
    for buffer in buffers.values():
        buffer.seek(0)
    return buffers


# How long the ACK of a received packet may wait for data to ride on. aioquic sends it 1 ms after
# the packet, alone, even when data leaves a moment later: for a message and its answer that was a
# packet more on each side, and every packet costs both ends about as much CPU as its contents. Kept
# well under the 25 ms aioquic announces as max_ack_delay, which the peer's loss timers allow for.
ACK_DELAY = 0.010


class DatagramSender(Protocol):
    def sendto(self, data: bytes, addr: NetworkAddress) -> None: ...


class QuicDriver:
    """One QuicConnection on an asyncio datagram transport. Subclasses implement `handle_event`.

    ACKs: a received packet's ACK waits up to ACK_DELAY and leaves with the next data written
    meanwhile, in the same packet; only with nothing to say does it go alone.

    What a received datagram makes the connection send leaves at the next loop iteration, once for all
    the datagrams read meanwhile (a server reads its socket in batches): the answers to a burst, and
    the ACK of its packets, share packets.
    """

    def __init__(self, quic: QuicConnection, transport: DatagramSender) -> None:
        # aioquic has no setting for its ACK delay, nor for sending a pending ACK with data: these
        # two private attributes (_ack_delay here, the 1-RTT space's ack_at in transmit) are read
        # and written only in this class.
        quic._ack_delay = ACK_DELAY
        self.quic = quic
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush: asyncio.Handle | None = None
        self._written = False  # stream data written since the last transmit
        self._received_unacked = 0  # datagrams received since an ACK last left
        self.stopped = False

    def handle_event(self, event: QuicEvent) -> None:
        raise NotImplementedError

    def datagram_received(self, data: bytes, addr: NetworkAddress) -> None:
        if self.stopped:
            return
        now = self._loop.time()
        self.quic.receive_datagram(data, addr, now=now)
        # RFC 9000 13.2.2: an ACK at the latest after a second packet; a burst (a long frame) is not
        # held back a whole ACK_DELAY per two packets' worth of the peer's congestion window.
        self._received_unacked += 1
        if self._received_unacked >= 2:
            self._ack_now(now)
        self._process_events()
        self.transmit_soon()

    def write(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Queue bytes on a stream; they leave with the next transmit (this iteration's, or one soon)."""
        self.quic.send_stream_data(stream_id, data, end_stream)
        self._written = True
        self.transmit_soon()

    def sent_offset(self, stream_id: int) -> int:
        """How far into a stream QUIC has sent (the rest of what was written waits on flow or congestion
        control). aioquic has no public accessor for a stream's send state (a private read, as for ACKs above)."""
        stream = self.quic._streams.get(stream_id)
        return 0 if stream is None else int(stream.sender.highest_offset)

    def transmit_soon(self) -> None:
        if self._flush is None:
            self._flush = self._loop.call_soon(self.transmit)

    def transmit(self, now: float | None = None) -> None:
        if now is None:
            now = self._loop.time()
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._written:  # a pending ACK rides with the data
            self._written = False
            self._ack_now(now)
        if self.stopped:
            return
        for data, addr in self.quic.datagrams_to_send(now=now):
            self._transport.sendto(data, addr)
        space = self.quic._spaces.get(tls.Epoch.ONE_RTT)
        if space is None or space.ack_at is None:
            self._received_unacked = 0
        timer_at = self.quic.get_timer()
        if timer_at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None if timer_at is None else self._loop.call_at(timer_at, self._on_timer)
            self._timer_at = timer_at

    def _ack_now(self, now: float) -> None:
        space = self.quic._spaces.get(tls.Epoch.ONE_RTT)
        if space is not None and space.ack_at is not None and space.ack_at > now:
            space.ack_at = now

    def stop(self) -> None:
        """Forget the connection: no more timer ticks or transmits."""
        self.stopped = True
        for handle in (self._timer, self._flush):
            if handle is not None:
                handle.cancel()
        self._timer = self._flush = None
        self._timer_at = None

    def _on_timer(self) -> None:
        # A loop may run a timer before its time by up to its clock's resolution (uvloop's is a
        # millisecond): what was due is sent as due, or aioquic would find the ACK not due yet and
        # the timer would fire again and again until the clock caught up (14 times an ACK, in W3's
        # load generator).
        now = max(self._timer_at or 0.0, self._loop.time())
        self._timer = None
        self._timer_at = None
        self.quic.handle_timer(now=now)
        self._process_events()
        self.transmit(now)

    def _process_events(self) -> None:
        while (event := self.quic.next_event()) is not None:
            try:
                self.handle_event(event)
            except Exception:
                logger.exception("closing a QUIC connection after an error handling %s", type(event).__name__)
                self.quic.close(error_code=QuicErrorCode.INTERNAL_ERROR, reason_phrase="internal error")
