"""The platform losing processes mid-burst: an access node SIGKILLed, a logic worker SIGKILLed while
nats-server restarts. Clients retry what was not acked and resync; in the end every message is stored
once and every member has it once, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from django.db import connection

from accounts.models import User
from messaging.models import Conversation, Message
from messaging.services import SendRequest, create_group, send_messages
from realtime.client import ImClient
from schema.codec import Message as WireMessage
from tests.system.conftest import run
from tests.system.platform import Login, Platform, Process
from tests.system.test_chat import collect

pytestmark = [pytest.mark.services]


def _group(make_user: Callable[..., User], size: int) -> tuple[list[User], int, int]:
    users = [make_user(f"user{i:02d}") for i in range(size)]
    group_id = create_group(users[0], name="burst", member_ids=[u.id for u in users[1:]]).conversation_id
    return users, group_id, Conversation.objects.get(id=group_id).last_seq


async def _burst(
    senders: list[ImClient], group_id: int, per_sender: int, during: Callable[[int], Awaitable[None]]
) -> None:
    """Each sender sends per_sender messages one after another; `during(acked)` runs after each ack
    (it fires the failure once enough went through)."""
    acked = 0

    async def send_all(index: int, client: ImClient) -> None:
        nonlocal acked
        for n in range(per_sender):
            await client.send(group_id, f"s{index}-{n}")
            acked += 1
            await during(acked)

    await asyncio.gather(*(send_all(i, c) for i, c in enumerate(senders)))


async def _connect_all(
    platform: Platform, logins: list[Login], transports: list[str], seed: dict[int, int]
) -> list[ImClient]:
    clients = [
        platform.client(login, transport, seed=seed) for login, transport in zip(logins, transports, strict=True)
    ]
    await asyncio.gather(*(client.connect() for client in clients))
    return clients


def _restart_nats(platform: Platform) -> None:
    """Stop the platform's nats-server (every NATS connection drops; publishes in flight are gone)
    and start it again on the same port and store once every server process has seen the outage
    (logged a NATS connection error): an outage, not a blip."""
    assert platform.nats is not None
    servers = [p for p in [*platform.access, *([platform.web] if platform.web else []), *platform.workers] if p.alive]
    seen = {process.name: len(process.log()) for process in servers}
    platform.nats.stop()
    for process in servers:

        def cut_off(process: Process = process) -> bool:
            return "nats connection error" in process.log()[seen[process.name] :]

        process.wait_until(cut_off, "cut off from NATS")
    platform.start_nats()


def _check_stored_once(group_id: int, start_seq: int, total: int) -> None:
    stored = list(Message.objects.filter(conversation_id=group_id, seq__gt=start_seq).values_list("seq", "body"))
    bodies = [body for _, body in stored]
    assert len(bodies) == len(set(bodies)) == total, f"{len(bodies)} stored, {len(set(bodies))} distinct"
    assert sorted(seq for seq, _ in stored) == list(range(start_seq + 1, start_seq + total + 1))


def _check_timeline(got: list[WireMessage], start_seq: int, total: int, senders: int, per_sender: int) -> None:
    assert [m.seq for m in got] == list(range(start_seq + 1, start_seq + total + 1))
    bodies = [m.body for m in got]
    for i in range(senders):
        assert [b for b in bodies if b.startswith(f"s{i}-")] == [f"s{i}-{n}" for n in range(per_sender)]


def test_sigkill_of_an_access_node_moves_its_clients_to_the_other_node_exactly_once(
    platform: Platform, make_user: Callable[..., User]
) -> None:
    users, group_id, start_seq = _group(make_user, 6)
    logins = [platform.login(user) for user in users]
    transports = ["wt0", "wt0", "wt0", "wt1", "wt1", "ws"]  # three clients on the node that dies
    senders, per_sender = 3, 25
    total = senders * per_sender
    node = platform.access[0]

    async def kill_once(acked: int) -> None:
        if acked == total // 3 and node.alive:
            node.kill()

    async def scenario() -> None:
        clients = await _connect_all(platform, logins, transports, {group_id: start_seq})
        try:
            receiving = [asyncio.create_task(collect(client, total, 90)) for client in clients]
            # two senders on the node that dies, one on the WebSocket
            await _burst([clients[0], clients[1], clients[5]], group_id, per_sender, kill_once)
            for task in receiving:
                _check_timeline(await task, start_seq, total, senders, per_sender)
            assert all(client.connections == 2 for client in clients[:3]), [c.connections for c in clients]
            assert all(client.connections == 1 for client in clients[3:])
        finally:
            await asyncio.gather(*(client.close() for client in clients))

    run(scenario(), timeout=180)
    assert not node.alive
    _check_stored_once(group_id, start_seq, total)


def test_sigkill_of_a_logic_worker_and_a_nats_restart_mid_burst_lose_and_duplicate_nothing(
    own_nats_platform: Platform, make_user: Callable[..., User]
) -> None:
    platform = own_nats_platform
    users, group_id, start_seq = _group(make_user, 5)
    logins = [platform.login(user) for user in users]
    transports = ["wt0", "wt1", "ws", "wt0", "ws"]
    senders, per_sender = 3, 30
    total = senders * per_sender
    worker = platform.workers[0]
    fired: list[str] = []

    async def fail_once(acked: int) -> None:
        if acked == total // 4 and not fired:
            fired.append("worker")
            worker.kill()
        elif acked == total // 2 and fired == ["worker"]:
            fired.append("nats")
            await asyncio.to_thread(_restart_nats, platform)  # the other senders and the receivers go on meanwhile

    async def scenario() -> None:
        clients = await _connect_all(platform, logins, transports, {group_id: start_seq})
        try:
            receiving = [asyncio.create_task(collect(client, total, 150)) for client in clients]
            await _burst(clients[:senders], group_id, per_sender, fail_once)
            for task in receiving:
                _check_timeline(await task, start_seq, total, senders, per_sender)
        finally:
            await asyncio.gather(*(client.close() for client in clients))

    run(scenario(), timeout=240)
    assert fired == ["worker", "nats"]
    assert not worker.alive
    _check_stored_once(group_id, start_seq, total)


def test_a_nats_restart_makes_every_session_resync_so_a_push_lost_meanwhile_is_caught_up(
    own_nats_platform: Platform, make_user: Callable[..., User]
) -> None:
    platform = own_nats_platform
    users, group_id, start_seq = _group(make_user, 3)
    logins = [platform.login(user) for user in users]

    def store_unpushed() -> None:
        # Stored by this process, whose pushes go to the test session's NATS, not the platform's:
        # for the platform it is a push lost in an outage, and no later message reveals the gap.
        try:
            [outcome] = send_messages([SendRequest(users[0].id, group_id, "lost-1", "pushed into the void")])
            assert outcome.message is not None
        finally:
            connection.close()  # this thread's own connection: the test database must drop at the end

    async def scenario() -> None:
        clients = await _connect_all(platform, logins, ["wt0", "wt1", "ws"], {group_id: start_seq})
        try:
            await asyncio.to_thread(store_unpushed)
            await asyncio.to_thread(_restart_nats, platform)
            for client in clients:  # each node told its sessions to resync once it was back on NATS
                got = await collect(client, 1, 60)
                assert [(m.seq, m.body) for m in got] == [(start_seq + 1, "pushed into the void")]
        finally:
            await asyncio.gather(*(client.close() for client in clients))

    run(scenario(), timeout=120)
