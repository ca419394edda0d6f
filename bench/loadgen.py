"""The load generator: a process of its own, separate from the servers, that drives ImClients.

    python -m bench.loadgen SPEC.json

SPEC names the workload, the transport, the endpoints, the users (id, access token, device id) and the
parameters. The process talks to the bench on stdin/stdout, one line at a time: it prints
`PHASE name` at each step the bench measures around (server CPU, RSS) and waits for a line on stdin
before going on; at the end it writes its raw figures to the spec's `resultPath` and prints `RESULT`.
It needs no Django. A run is bounded: past the spec's `timeout` it fails (and the bench with it) even
when something hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from imsite.gc_policy import collect_periodically, tune_gc
from realtime.client import ClientError, ImClient, TransportFactory, websocket_factory, webtransport_factory
from schema.codec import Message

CONNECT_CONCURRENCY = 64  # handshakes in flight while a workload brings its clients up (not W3's paced ones)
CATCH_UP_SECONDS = 30.0  # how long the connected clients may take to answer their first Syncs
SEND_WINDOW = 10  # unacknowledged messages per sender (WORKLOADS.md)

logger = logging.getLogger("bench.loadgen")


class Phases:
    """The stdin/stdout handshake with the bench."""

    def __init__(self) -> None:
        self._stdin: asyncio.StreamReader | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        self._stdin = reader

    async def mark(self, name: str) -> None:
        """Tell the bench a phase starts and wait until it has taken its measurements."""
        sys.stdout.write(f"PHASE {name}\n")
        sys.stdout.flush()
        assert self._stdin is not None
        line = await self._stdin.readline()
        if not line:
            raise RuntimeError("the bench went away")


def factories(spec: dict[str, Any]) -> list[TransportFactory]:
    if spec["transport"] == "ws":
        return [websocket_factory(url) for url in spec["urls"]]
    hashes = [bytes.fromhex(spec["certificateSha256"])]
    return [webtransport_factory(url, certificate_hashes=hashes) for url in spec["urls"]]


@dataclass
class Arrivals:
    """What receivers saw of W1/W2 messages, whose body is `sent-at-ns stream n`: one stream is one
    sender's sequence (W1: a pair; W2: a sender), `n` counts its messages from 0."""

    latencies_ms: list[float] = field(default_factory=list)
    seen: set[tuple[int, int, int]] = field(default_factory=set)  # (receiver, stream, n)
    last: dict[tuple[int, int], int] = field(default_factory=dict)  # (receiver, stream) -> highest n
    duplicated: int = 0
    out_of_order: int = 0
    own: int = 0
    first_receipt: float = 0.0
    last_receipt: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, receiver: int, message: Message, stream_sender: Callable[[int], int] | None = None) -> None:
        now = time.monotonic_ns()
        try:
            sent_ns, stream, n = (int(part) for part in message.body.split(" ", 2))
        except ValueError:
            return  # not a bench message (a group notice)
        if stream_sender is not None and stream_sender(stream) == receiver:
            self.own += 1  # the sender's own copy: not a delivery to another member
            return
        key = (receiver, stream, n)
        if key in self.seen:
            self.duplicated += 1
            return
        self.seen.add(key)
        order_key = (receiver, stream)
        if n < self.last.get(order_key, -1):
            self.out_of_order += 1
        else:
            self.last[order_key] = n
        self.latencies_ms.append((now - sent_ns) / 1e6)
        seconds = now / 1e9
        if not self.first_receipt:
            self.first_receipt = seconds
        self.last_receipt = seconds
        self.changed.set()

    async def wait_for(self, count: int, deadline: float) -> None:
        while len(self.seen) < count and time.monotonic() < deadline:
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(0.5, max(0.01, deadline - time.monotonic())))


@dataclass
class Sends:
    sent: int = 0
    acked: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    first_send: float = 0.0
    last_ack: float = 0.0


async def connect_all(
    spec: dict[str, Any], on_message: Callable[[int], Callable[[Message], None]] | None = None
) -> list[ImClient]:
    """One ImClient per user of the spec, spread over its endpoints, all connected."""
    made = factories(spec)
    clients = [
        ImClient(
            made[index % len(made)],
            user["token"],
            user["deviceId"],
            "bench",
            on_message=on_message(index) if on_message else None,
            seed={int(c): seq for c, seq in user.get("seed", {}).items()},
            buffer_messages=False,
        )
        for index, user in enumerate(spec["users"])
    ]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def connect(client: ImClient) -> None:
        async with gate:
            await client.connect()

    await asyncio.gather(*(connect(client) for client in clients))
    await caught_up(clients, CATCH_UP_SECONDS)
    return clients


class CatchingUp(Protocol):
    async def wait_caught_up(self) -> None: ...


async def caught_up(clients: Sequence[CatchingUp], seconds: float) -> None:
    """Wait until every client has its first Sync answered. Each one syncs as it connects: measured
    from the last connect, the workload would start while the logic worker still serves those Syncs
    (hundreds of milliseconds of database work for 200 clients), and its first messages would queue
    behind them (W2's p99 was those first messages)."""
    waits = [asyncio.ensure_future(client.wait_caught_up()) for client in clients]
    _, behind = await asyncio.wait(waits, timeout=seconds)
    for wait in behind:
        wait.cancel()
    if behind:
        raise RuntimeError(f"{len(behind)} of {len(clients)} clients not caught up after connecting")


async def close_all(clients: list[ImClient]) -> None:
    """Abort rather than close: a polite close of thousands of sessions only measures the goodbye."""
    for client in clients:
        client.drop_connection()
    await asyncio.gather(*(asyncio.wait_for(client.close(), 5) for client in clients), return_exceptions=True)


async def run_streams(
    clients: list[ImClient],
    streams: list[tuple[int, int]],  # (sender index, conversation id), one per stream
    messages: int,
    rate: float,
    sends: Sends,
    run: str,
    on_scheduled: Callable[[int], None] | None = None,
) -> None:
    """Every stream's sender sends `messages` with at most SEND_WINDOW unacknowledged. With `rate`
    (messages/s over all streams) each message has its slot on a fixed schedule and the time in its body
    is that slot, so a sender held back by its window still pays for the wait (no coordinated omission)."""
    started = time.monotonic()
    sends.first_send = started

    async def stream_task(stream: int, sender: int, conversation_id: int) -> None:
        window = asyncio.Semaphore(SEND_WINDOW)
        pending: set[asyncio.Task[None]] = set()

        async def send_one(n: int, sent_ns: int) -> None:
            try:
                await clients[sender].send(
                    conversation_id, f"{sent_ns} {stream} {n}", client_msg_id=f"{run}-{stream}-{n}"
                )
                sends.acked += 1
                sends.last_ack = time.monotonic()
            except ClientError as error:
                sends.refused += 1
                if len(sends.errors) < 10:
                    sends.errors.append(str(error))
            finally:
                window.release()

        for n in range(messages):
            if rate > 0:
                slot = started + (n * len(streams) + stream) / rate
                delay = slot - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent_ns = int(slot * 1e9)
            await window.acquire()
            if rate <= 0:
                sent_ns = time.monotonic_ns()
            sends.sent += 1
            if on_scheduled is not None:
                on_scheduled(n * len(streams) + stream)
            task = asyncio.get_running_loop().create_task(send_one(n, sent_ns))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*list(pending))

    await asyncio.gather(*(stream_task(i, sender, conv) for i, (sender, conv) in enumerate(streams)))


def _message_result(arrivals: Arrivals, sends: Sends, expected: int) -> dict[str, Any]:
    return {
        "latenciesMs": arrivals.latencies_ms,
        "expected": expected,
        "delivered": len(arrivals.seen),
        "duplicated": arrivals.duplicated,
        "outOfOrder": arrivals.out_of_order,
        "ownCopies": arrivals.own,
        "sent": sends.sent,
        "acked": sends.acked,
        "refused": sends.refused,
        "errors": sends.errors,
        "firstSend": sends.first_send,
        "lastReceipt": arrivals.last_receipt,
    }


async def w1(spec: dict[str, Any], phases: Phases) -> dict[str, Any]:
    params = spec["params"]
    pairs: list[list[int]] = params["pairs"]  # [sender index, receiver index, conversation id]
    messages, rate = int(params["messages"]), float(params.get("rate") or 0)
    arrivals = Arrivals()

    def sender_of(stream: int) -> int:
        return pairs[stream][0]

    clients = await connect_all(spec, lambda index: lambda message: arrivals.record(index, message, sender_of))
    await phases.mark("connected")
    sends = Sends()
    try:
        await run_streams(clients, [(s, c) for s, _, c in pairs], messages, rate, sends, spec["run"])
        await arrivals.wait_for(len(pairs) * messages, time.monotonic() + float(params.get("drain", 10)))
        await phases.mark("done")
    finally:
        await close_all(clients)
    return _message_result(arrivals, sends, len(pairs) * messages)


async def w2(spec: dict[str, Any], phases: Phases) -> dict[str, Any]:
    params = spec["params"]
    group, senders, messages = int(params["group"]), int(params["senders"]), int(params["messages"])
    members = len(spec["users"])
    arrivals = Arrivals()

    def sender_of(stream: int) -> int:
        return stream  # stream s is sent by member s

    clients = await connect_all(spec, lambda index: lambda message: arrivals.record(index, message, sender_of))
    await phases.mark("connected")
    sends = Sends()
    rate = float(params.get("rate") or 0)
    expected = senders * messages * (members - 1)
    try:
        await run_streams(clients, [(s, group) for s in range(senders)], messages, rate, sends, spec["run"])
        await arrivals.wait_for(expected, time.monotonic() + float(params.get("drain", 10)))
        await phases.mark("done")
    finally:
        await close_all(clients)
    return _message_result(arrivals, sends, expected)


async def w3(spec: dict[str, Any], phases: Phases) -> dict[str, Any]:
    params = spec["params"]
    rate, rest = float(params["connectRate"]), float(params["rest"])
    made = factories(spec)
    await phases.mark("before")
    latencies: list[float] = []
    failures: list[str] = []
    clients: list[ImClient] = []
    started = time.monotonic()

    async def connect(index: int, user: dict[str, Any]) -> None:
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        client = ImClient(made[index % len(made)], user["token"], user["deviceId"], "bench", buffer_messages=False)
        begun = time.monotonic()
        try:
            await client.connect()
        except (ClientError, OSError, TimeoutError) as error:
            if len(failures) < 10:
                failures.append(repr(error))
            failures.append("")
            return
        latencies.append((time.monotonic() - begun) * 1000)
        clients.append(client)

    await asyncio.gather(*(connect(i, user) for i, user in enumerate(spec["users"])))
    connect_seconds = time.monotonic() - started
    await phases.mark("connected")
    await asyncio.sleep(float(params.get("settle", 0)))  # stragglers' handshakes and closes finish first
    await phases.mark("rest-start")
    await asyncio.sleep(rest)
    await phases.mark("rest-end")
    still = sum(1 for client in clients if client.connected and client.connections == 1)
    await close_all(clients)
    return {
        "connectLatenciesMs": latencies,
        "connected": len(latencies),
        "failed": sum(1 for f in failures if not f),
        "errors": [f for f in failures if f],
        "connectSeconds": connect_seconds,
        "stillConnectedAfterRest": still,
    }


async def w6(spec: dict[str, Any], phases: Phases) -> dict[str, Any]:
    params = spec["params"]
    pairs: list[list[int]] = params["pairs"]
    messages, rate = int(params["messages"]), float(params["rate"])
    drop_at = int(params["dropAfterMessages"])
    arrivals = Arrivals()

    def sender_of(stream: int) -> int:
        return pairs[stream][0]

    clients = await connect_all(spec, lambda index: lambda message: arrivals.record(index, message, sender_of))
    await phases.mark("connected")
    sends = Sends()
    dropped = asyncio.Event()
    drop_time = 0.0

    def on_scheduled(index: int) -> None:
        nonlocal drop_time
        if index == drop_at and not dropped.is_set():
            drop_time = time.monotonic()
            for client in clients:
                client.drop_connection()
            dropped.set()

    back: dict[int, float] = {}

    async def watch() -> None:
        await dropped.wait()
        while len(back) < len(clients):
            now = time.monotonic()
            for index, client in enumerate(clients):
                if index not in back and client.connections >= 2 and client.connected and not client.syncing:
                    back[index] = now - drop_time
            await asyncio.sleep(0.01)

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        await run_streams(clients, [(s, c) for s, _, c in pairs], messages, rate, sends, spec["run"], on_scheduled)
        await arrivals.wait_for(len(pairs) * messages, time.monotonic() + float(params.get("drain", 20)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(watcher), max(0.1, float(params.get("drain", 20))))
        await phases.mark("done")
    finally:
        watcher.cancel()
        await close_all(clients)
    result = _message_result(arrivals, sends, len(pairs) * messages)
    result.update(
        {
            "clients": len(clients),
            "dropped": dropped.is_set(),
            "backSeconds": sorted(back.values()),
            "reconnects": sum(max(0, client.connections - 1) for client in clients),
        }
    )
    return result


WORKLOADS: dict[str, Callable[[dict[str, Any], Phases], Awaitable[dict[str, Any]]]] = {
    "w1": w1,
    "w2": w2,
    "w3": w3,
    "w6": w6,
}


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    # Thousands of clients here too: full collections of their objects paused the load generator for
    # up to a second (W3's connect latency showed the pauses as spikes, not the server).
    tune_gc()
    collector = asyncio.get_running_loop().create_task(collect_periodically())
    phases = Phases()
    await phases.open()
    try:
        return await asyncio.wait_for(WORKLOADS[spec["workload"]](spec, phases), float(spec["timeout"]))
    finally:
        collector.cancel()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with open(sys.argv[1]) as spec_file:
        loaded = json.load(spec_file)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    figures = asyncio.run(main(loaded))
    # The figures go to a file (tens of thousands of latencies make a line bigger than a pipe's buffer);
    # stdout only says they are there.
    with open(loaded["resultPath"], "w") as result_file:
        json.dump(figures, result_file)
    sys.stdout.write("RESULT\n")
    sys.stdout.flush()
