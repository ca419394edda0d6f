"""A UDP socket on the event loop that reads every datagram waiting at each wake-up.

asyncio's datagram transport reads one datagram per loop iteration. For a server with thousands of
QUIC connections on one socket that is one select() and one pass over the due timers per datagram:
a burst sits in the socket while the timers of the connections it belongs to fire (loss probes for
packets whose ACKs are already waiting there), and what each datagram makes a connection send leaves
alone. Read in batches, a burst is handled before any timer runs, and a connection answers all of its
datagrams of the batch at once (QuicDriver transmits at the next iteration).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
from typing import Protocol

from aioquic.quic.connection import NetworkAddress

logger = logging.getLogger(__name__)

MAX_DATAGRAM_BYTES = 65535
READS_PER_WAKEUP = 256  # then the loop runs other callbacks, and comes back for the rest
MAX_QUEUED_SEND_BYTES = 8 * 1024 * 1024  # beyond this a full send buffer drops datagrams (QUIC resends)


class DatagramHandler(Protocol):
    def datagram_received(self, data: bytes, addr: NetworkAddress) -> None: ...


class UdpEndpoint:
    """Owns a bound, non-blocking UDP socket: hands received datagrams to `handler`, sends without
    blocking (what the kernel does not take at once waits for the socket to be writable, in order)."""

    def __init__(self, sock: socket.socket, handler: DatagramHandler) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._handler = handler
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray(MAX_DATAGRAM_BYTES)
        self._view = memoryview(self._buffer)
        self._queued: collections.deque[tuple[bytes, NetworkAddress]] = collections.deque()
        self._queued_bytes = 0
        self.closed = False
        self._loop.add_reader(sock.fileno(), self._read_ready)

    @property
    def socket(self) -> socket.socket:
        return self._sock

    @property
    def address(self) -> NetworkAddress:
        return self._sock.getsockname()

    def sendto(self, data: bytes, addr: NetworkAddress) -> None:
        if self.closed:
            return
        if not self._queued:
            try:
                self._sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._loop.add_writer(self._sock.fileno(), self._write_ready)
            except OSError as exc:  # e.g. an address the host cannot reach: that peer's loss, nobody else's
                logger.debug("UDP send to %s failed: %s", addr, exc)
                return
        if self._queued_bytes + len(data) > MAX_QUEUED_SEND_BYTES:
            return
        self._queued.append((data, addr))
        self._queued_bytes += len(data)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._loop.remove_reader(self._sock.fileno())
        if self._queued:
            self._loop.remove_writer(self._sock.fileno())
        self._queued.clear()
        self._sock.close()

    def _read_ready(self) -> None:
        sock, view, handler = self._sock, self._view, self._handler
        for _ in range(READS_PER_WAKEUP):
            try:
                size, addr = sock.recvfrom_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error reported on the socket: nothing was read
                logger.debug("UDP receive error: %s", exc)
                continue
            try:
                handler.datagram_received(bytes(view[:size]), addr)
            except Exception:  # one bad datagram must not stop the socket for everyone
                logger.exception("dropped a datagram from %s that could not be handled", addr)
            if self.closed:
                return

    def _write_ready(self) -> None:
        while self._queued:
            data, addr = self._queued[0]
            try:
                self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.debug("UDP send to %s failed: %s", addr, exc)
            self._queued.popleft()
            self._queued_bytes -= len(data)
        self._loop.remove_writer(self._sock.fileno())


def bind_udp(host: str, port: int, *, receive_buffer: int) -> socket.socket:
    """A UDP socket bound to host:port (port 0 picks a free one), with the receive buffer asked for."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock
