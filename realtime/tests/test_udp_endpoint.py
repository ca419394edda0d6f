"""The batched UDP endpoint under the WebTransport server, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from realtime.udp_endpoint import READS_PER_WAKEUP, UdpEndpoint, bind_udp

TIMEOUT = 10.0


class Recorder:
    """Records datagrams; `complete` is set once `expected` of them arrived."""

    def __init__(self, expected: int = 1) -> None:
        self.datagrams: list[tuple[bytes, tuple[str, int]]] = []
        self.expected = expected
        self.complete = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data == b"raise":
            raise ValueError("a datagram the handler cannot take")
        self.datagrams.append((data, addr))
        if len(self.datagrams) >= self.expected:
            self.complete.set()


class FlakySocket(socket.socket):
    """A socket whose send buffer is 'full' (sendto raises BlockingIOError) while `full` is set;
    `refused_again` is set once a send was refused after the first five (a retry while still full)."""

    full = False
    refusals = 0

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.refused_again = asyncio.Event()

    def sendto(self, *args):  # whatever socket.sendto takes
        if self.full:
            self.refusals += 1
            if self.refusals > 5:
                self.refused_again.set()
            raise BlockingIOError
        return super().sendto(*args)


@pytest.fixture
async def peer() -> AsyncIterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(TIMEOUT)
    yield sock
    sock.close()


async def burst_seen_by_a_due_timer(peer: socket.socket, count: int) -> tuple[Recorder, int]:
    """`count` datagrams put in an endpoint's socket before its loop looks at it, and how many of them
    the endpoint had handled when a timer due at once ran; then every one of them has arrived."""
    recorder = Recorder(expected=count)
    endpoint = UdpEndpoint(bind_udp("127.0.0.1", 0, receive_buffer=4 << 20), recorder)
    try:
        for index in range(count):
            peer.sendto(b"%d" % index, endpoint.address)
        loop = asyncio.get_running_loop()
        seen_by_timer: asyncio.Future[int] = loop.create_future()
        loop.call_later(0, lambda: seen_by_timer.set_result(len(recorder.datagrams)))
        async with asyncio.timeout(TIMEOUT):
            seen = await seen_by_timer
            await recorder.complete.wait()
    finally:
        endpoint.close()
    assert [int(data) for data, _ in recorder.datagrams] == list(range(count))
    assert {addr for _, addr in recorder.datagrams} == {peer.getsockname()}
    return recorder, seen


async def test_the_datagrams_waiting_at_a_wakeup_are_all_handled_before_a_due_timer_runs(peer):
    _, seen = await burst_seen_by_a_due_timer(peer, 50)
    assert seen == 50  # asyncio's own datagram transport reads one datagram per loop iteration: 1


async def test_a_burst_longer_than_one_batch_is_read_over_several_wakeups_and_lets_other_callbacks_run(peer):
    _, seen = await burst_seen_by_a_due_timer(peer, READS_PER_WAKEUP * 2 + 10)
    assert seen == READS_PER_WAKEUP


async def test_a_datagram_the_handler_fails_on_does_not_stop_the_socket(peer):
    recorder = Recorder()
    endpoint = UdpEndpoint(bind_udp("127.0.0.1", 0, receive_buffer=1 << 20), recorder)
    try:
        peer.sendto(b"raise", endpoint.address)
        peer.sendto(b"after", endpoint.address)
        await asyncio.wait_for(recorder.complete.wait(), TIMEOUT)
        assert [data for data, _ in recorder.datagrams] == [b"after"]
    finally:
        endpoint.close()


async def test_sending_replies_to_the_address_given(peer):
    endpoint = UdpEndpoint(bind_udp("127.0.0.1", 0, receive_buffer=1 << 20), Recorder())
    try:
        endpoint.sendto(b"hello", peer.getsockname())
        data, addr = await asyncio.to_thread(peer.recvfrom, 100)
        assert (data, addr) == (b"hello", endpoint.address)
    finally:
        endpoint.close()


async def test_datagrams_the_kernel_cannot_take_yet_wait_and_leave_in_order_once_it_can(peer):
    sock = FlakySocket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    endpoint = UdpEndpoint(sock, Recorder())
    try:
        sock.full = True
        for index in range(5):
            endpoint.sendto(b"queued %d" % index, peer.getsockname())
        # the socket reports writable, the endpoint tries again, and the 'kernel' still refuses
        await asyncio.wait_for(sock.refused_again.wait(), TIMEOUT)
        sock.full = False
        endpoint.sendto(b"after", peer.getsockname())  # behind the queued ones, not ahead of them
        received = [(await asyncio.to_thread(peer.recvfrom, 100))[0] for _ in range(6)]
        assert received == [b"queued %d" % index for index in range(5)] + [b"after"]
    finally:
        endpoint.close()


async def test_a_closed_endpoint_reads_and_sends_nothing(peer):
    recorder = Recorder()
    endpoint = UdpEndpoint(bind_udp("127.0.0.1", 0, receive_buffer=1 << 20), recorder)
    descriptor = endpoint.socket.fileno()
    endpoint.close()
    endpoint.sendto(b"ignored", peer.getsockname())  # no error: the server is shutting down
    assert endpoint.socket.fileno() == -1
    assert not asyncio.get_running_loop().remove_reader(descriptor)  # the loop no longer watches it
    assert recorder.datagrams == []


def test_bind_refuses_an_address_in_use():
    first = bind_udp("127.0.0.1", 0, receive_buffer=1 << 16)
    try:
        with pytest.raises(OSError):
            bind_udp("127.0.0.1", first.getsockname()[1], receive_buffer=1 << 16)
    finally:
        first.close()
