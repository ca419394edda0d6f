"""The batched UDP endpoint under the WebTransport server, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from realtime.udp_endpoint import READS_PER_WAKEUP, UdpEndpoint, bind_udp

TIMEOUT = 10.0


class Recorder:
    def __init__(self) -> None:
        self.datagrams: list[tuple[bytes, tuple[str, int]]] = []
        self.arrived = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data == b"raise":
            raise ValueError("a datagram the handler cannot take")
        self.datagrams.append((data, addr))
        self.arrived.set()


class FlakySocket(socket.socket):
    """A socket whose send buffer is 'full' (sendto raises BlockingIOError) while `full` is set."""

    full = False

    def sendto(self, *args):  # whatever socket.sendto takes
        if self.full:
            raise BlockingIOError
        return super().sendto(*args)


@pytest.fixture
async def peer() -> AsyncIterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(TIMEOUT)
    yield sock
    sock.close()


async def until(predicate: Callable[[], object]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not predicate():  # noqa: ASYNC110 - a condition on plain lists, which no event signals
            await asyncio.sleep(0.005)


async def test_the_datagrams_waiting_at_a_wakeup_are_all_handled_before_a_due_timer_runs(peer):
    recorder = Recorder()
    endpoint = UdpEndpoint(bind_udp("127.0.0.1", 0, receive_buffer=1 << 20), recorder)
    try:
        for index in range(50):  # all in the endpoint's socket queue before the loop looks at it
            peer.sendto(b"datagram %d" % index, endpoint.address)
        seen_by_timer: list[int] = []
        asyncio.get_running_loop().call_later(0, lambda: seen_by_timer.append(len(recorder.datagrams)))
        await until(lambda: seen_by_timer)
        # asyncio's own datagram transport reads one datagram per loop iteration: the timer saw 1.
        assert seen_by_timer == [50]
        assert [data for data, _ in recorder.datagrams] == [b"datagram %d" % index for index in range(50)]
        assert {addr for _, addr in recorder.datagrams} == {peer.getsockname()}
    finally:
        endpoint.close()


async def test_a_burst_longer_than_one_batch_is_read_over_several_wakeups_and_lets_other_callbacks_run(peer):
    recorder = Recorder()
    endpoint = UdpEndpoint(bind_udp("127.0.0.1", 0, receive_buffer=4 << 20), recorder)
    try:
        count = READS_PER_WAKEUP * 2 + 10
        for index in range(count):
            peer.sendto(b"%d" % index, endpoint.address)
        seen_by_callback: list[int] = []
        asyncio.get_running_loop().call_later(0, lambda: seen_by_callback.append(len(recorder.datagrams)))
        await until(lambda: len(recorder.datagrams) == count)
        assert seen_by_callback == [READS_PER_WAKEUP]
        assert [int(data) for data, _ in recorder.datagrams] == list(range(count))
    finally:
        endpoint.close()


async def test_a_datagram_the_handler_fails_on_does_not_stop_the_socket(peer):
    recorder = Recorder()
    endpoint = UdpEndpoint(bind_udp("127.0.0.1", 0, receive_buffer=1 << 20), recorder)
    try:
        peer.sendto(b"raise", endpoint.address)
        peer.sendto(b"after", endpoint.address)
        await until(lambda: recorder.datagrams)
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
        await asyncio.sleep(0.05)  # the socket reports writable; the 'kernel' still refuses
        sock.full = False
        endpoint.sendto(b"after", peer.getsockname())  # behind the queued ones, not ahead of them
        received = [(await asyncio.to_thread(peer.recvfrom, 100))[0] for _ in range(6)]
        assert received == [b"queued %d" % index for index in range(5)] + [b"after"]
    finally:
        endpoint.close()


async def test_a_closed_endpoint_reads_and_sends_nothing(peer):
    recorder = Recorder()
    endpoint = UdpEndpoint(bind_udp("127.0.0.1", 0, receive_buffer=1 << 20), recorder)
    address = endpoint.address
    endpoint.close()
    endpoint.sendto(b"ignored", peer.getsockname())  # no error: the server is shutting down
    peer.sendto(b"late", address)
    await asyncio.sleep(0.05)
    assert recorder.datagrams == []
    assert endpoint.socket.fileno() == -1


def test_bind_refuses_an_address_in_use():
    first = bind_udp("127.0.0.1", 0, receive_buffer=1 << 16)
    try:
        with pytest.raises(OSError):
            bind_udp("127.0.0.1", first.getsockname()[1], receive_buffer=1 << 16)
    finally:
        first.close()
