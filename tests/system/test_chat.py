"""Two people and a group chatting through the whole platform: real processes, real clients.

alice and bob on different access nodes and transports, a 50-member group spread over the three nodes
(two WebTransport, one WebSocket), an offline member catching up, kicks, refusals and hostile frames.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import User
from imsite.publisher import set_sink
from messaging.models import Conversation
from messaging.services import create_group, get_or_create_direct_conversation
from realtime.client import AuthError, ImClient, KickedError, SendRefused, websocket_factory
from realtime.client.transports import Transport, WebSocketTransport
from schema.codec import (
    Auth,
    AuthResult,
    ErrorCode,
    ErrorFrame,
    Message,
    Ping,
    Pong,
    PresenceUpdate,
    SendErrorCode,
    SendMessage,
    decode_frame,
    encode_frame,
)
from tests.system.conftest import run
from tests.system.platform import Platform

pytestmark = [pytest.mark.services]

WAIT = 30.0


async def collect(client: ImClient, count: int, timeout: float = WAIT) -> list[Message]:
    """The next `count` messages the client delivers, in delivery order."""
    got: list[Message] = []

    async def take() -> None:
        async for message in client.messages():
            got.append(message)
            if len(got) == count:
                return

    try:
        await asyncio.wait_for(take(), timeout)
    except TimeoutError:
        raise AssertionError(f"got {len(got)} of {count} messages: {[(m.seq, m.body) for m in got]}") from None
    return got


def test_alice_on_webtransport_and_bob_on_websocket_chat_both_ways(
    platform: Platform, alice: User, bob: User, alice_and_bob_are_friends: None
) -> None:
    conversation_id = get_or_create_direct_conversation(alice, other_user_id=bob.id).conversation_id
    alice_login, bob_login = platform.login(alice), platform.login(bob)

    async def scenario() -> None:
        async with (
            platform.client(alice_login, "wt0") as alice_client,
            platform.client(bob_login, "ws") as bob_client,
        ):
            alice_ack = await alice_client.send(conversation_id, "hello bob")
            (to_bob,) = await collect(bob_client, 1)
            assert (to_bob.seq, to_bob.body, to_bob.sender_id) == (alice_ack.seq, "hello bob", alice.id)
            bob_ack = await bob_client.send(conversation_id, "hi alice")
            assert bob_ack.seq == alice_ack.seq + 1
            # her timeline: her own message (from its ack), then bob's (pushed)
            timeline = await collect(alice_client, 2)
            assert [(m.seq, m.body, m.sender_id) for m in timeline] == [
                (alice_ack.seq, "hello bob", alice.id),
                (bob_ack.seq, "hi alice", bob.id),
            ]

    run(scenario())


def test_a_50_member_group_over_both_transports_gets_every_message_once_in_order(
    platform: Platform, make_user: Callable[..., User]
) -> None:
    owner = make_user("owner")
    members = [make_user(f"member{i:02d}") for i in range(49)]
    group_id = create_group(owner, name="fifty", member_ids=[m.id for m in members]).conversation_id
    start_seq = Conversation.objects.get(id=group_id).last_seq
    users = [owner, *members]
    logins = [platform.login(user) for user in users]
    transports = ["wt0", "wt1", "ws"]
    senders, per_sender = 3, 15
    expected = senders * per_sender

    async def scenario() -> None:
        clients = [
            platform.client(login, transports[i % 3], seed={group_id: start_seq}) for i, login in enumerate(logins)
        ]
        await asyncio.gather(*(client.connect() for client in clients))
        try:

            async def send_all(client: ImClient, index: int) -> None:
                for n in range(per_sender):
                    await client.send(group_id, f"s{index}-{n}")

            receiving = [asyncio.create_task(collect(client, expected, 60)) for client in clients]
            await asyncio.gather(*(send_all(clients[i * 7], i) for i in range(senders)))
            for user, task in zip(users, receiving, strict=True):
                got = await task
                seqs = [m.seq for m in got]
                assert seqs == list(range(start_seq + 1, start_seq + expected + 1)), user.username
                for i in range(senders):  # each sender's own order survives
                    mine = [m.body for m in got if m.body.startswith(f"s{i}-")]
                    assert mine == [f"s{i}-{n}" for n in range(per_sender)]
        finally:
            await asyncio.gather(*(client.close() for client in clients))

    run(scenario())


def test_an_offline_member_catches_up_by_sync_after_reconnecting(
    platform: Platform, alice: User, bob: User, alice_and_bob_are_friends: None
) -> None:
    conversation_id = get_or_create_direct_conversation(alice, other_user_id=bob.id).conversation_id
    alice_login, bob_login, bob_again = platform.login(alice), platform.login(bob), platform.login(bob)

    async def scenario() -> None:
        async with platform.client(alice_login, "wt0") as alice_client:
            async with platform.client(bob_login, "ws") as bob_client:
                first = await alice_client.send(conversation_id, "while you are here")
                (seen,) = await collect(bob_client, 1)
                assert seen.seq == first.seq
            # bob is offline: these wait in the database
            for n in range(5):
                await alice_client.send(conversation_id, f"while you are away {n}")
            # bob's next session knows where he stopped and syncs from there
            async with platform.client(bob_again, "wt1", seed={conversation_id: first.seq}) as bob_client:
                missed = await collect(bob_client, 5)
                assert [m.body for m in missed] == [f"while you are away {n}" for n in range(5)]
                assert [m.seq for m in missed] == list(range(first.seq + 1, first.seq + 6))

    run(scenario())


def _http(platform: Platform, method: str, path: str, token: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{platform.web_port}/api/v1{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=WAIT) as response:
        status: int = response.status
        return status


def test_logout_and_ban_kick_live_sessions_on_every_node(
    platform: Platform, alice: User, bob: User, alice_and_bob_are_friends: None
) -> None:
    conversation_id = get_or_create_direct_conversation(alice, other_user_id=bob.id).conversation_id
    alice_wt, alice_ws = platform.login(alice), platform.login(alice)
    bob_login = platform.login(bob)

    async def kicked(client: ImClient) -> str:
        await asyncio.wait_for(client.wait_closed(), WAIT)
        assert isinstance(client.error, KickedError), client.error
        return str(client.error)

    async def logout_scenario() -> None:
        async with (
            platform.client(alice_wt, "wt1") as on_webtransport,
            platform.client(alice_ws, "ws") as on_websocket,
        ):
            # logging out one session over HTTP ends that session only
            status = await asyncio.to_thread(
                _http, platform, "POST", "/auth/logout", alice_ws.access_token, {"refreshToken": alice_ws.refresh_token}
            )
            assert status in (200, 204)
            await kicked(on_websocket)
            assert not on_webtransport.kicked
            await on_webtransport.send(conversation_id, "still here")  # the other session lives on

    run(logout_scenario())

    set_sink(None)  # ban_user publishes its kick on the real NATS, as the admin action does

    async def ban_scenario(ban: Callable[[], Any]) -> None:
        async with platform.client(bob_login, "wt0") as bob_client:
            await asyncio.to_thread(ban)
            await kicked(bob_client)
        with pytest.raises(AuthError):  # and a banned user's token no longer opens a session
            async with platform.client(bob_login, "ws"):
                pass

    from accounts.services import ban_user

    run(ban_scenario(lambda: ban_user(User.objects.get(id=bob.id))))


def test_a_non_members_send_is_refused(
    platform: Platform, alice: User, bob: User, charlie: User, alice_and_bob_are_friends: None
) -> None:
    conversation_id = get_or_create_direct_conversation(alice, other_user_id=bob.id).conversation_id
    charlie_login = platform.login(charlie)

    async def scenario() -> None:
        for transport in ("wt0", "ws"):
            async with platform.client(charlie_login, transport) as charlie_client:
                with pytest.raises(SendRefused) as refused:
                    await charlie_client.send(conversation_id, "let me in")
                assert refused.value.code == SendErrorCode.NOT_MEMBER

    run(scenario())


async def _frames(transport: Transport, count: int) -> list[Any]:
    frames: list[Any] = []
    while len(frames) < count:
        frames += [decode_frame(raw) for raw in await asyncio.wait_for(transport.recv_batch(), WAIT)]
    return frames


def test_hostile_frames_get_errors_and_never_disturb_other_sessions(
    platform: Platform, alice: User, bob: User, alice_and_bob_are_friends: None
) -> None:
    conversation_id = get_or_create_direct_conversation(alice, other_user_id=bob.id).conversation_id
    alice_login, bob_login, mallory = platform.login(alice), platform.login(bob), platform.login(bob)
    send = SendMessage(client_msg_id="early", conversation_id=conversation_id, body="before auth")
    auth = Auth(token=mallory.access_token, device_id=mallory.device_id, platform="web")

    async def hostile(open_transport: Callable[[], Any]) -> list[Any]:
        """Out of order (a send before Auth), then garbage, truncated and oversize frames after Auth."""
        early = await open_transport()
        try:
            await early.send([encode_frame(send)])
            (refused,) = await _frames(early, 1)
            assert isinstance(refused, ErrorFrame)
            assert refused.code == ErrorCode.NOT_AUTHENTICATED
        finally:
            await early.close()
        transport = await open_transport()
        try:
            await transport.send([encode_frame(auth)])
            (result,) = await _frames(transport, 1)
            assert isinstance(result, AuthResult)
            good = encode_frame(Ping())
            await transport.send([b"\x00garbage\xff" * 3, good[: len(good) // 2], b"x" * (70 * 1024), good])
            answers = await _frames(transport, 4)
            codes = [frame.code for frame in answers if isinstance(frame, ErrorFrame)]
            assert codes == [ErrorCode.MALFORMED, ErrorCode.MALFORMED, ErrorCode.TOO_LARGE], answers
            assert isinstance(answers[-1], Pong)  # the session is still serving
            return answers
        finally:
            await transport.close()

    async def scenario() -> None:
        async with (
            platform.client(alice_login, "wt0") as alice_client,
            platform.client(bob_login, "ws") as bob_client,
        ):
            await hostile(lambda: WebSocketTransport.connect(platform.ws_url))
            await hostile(platform.wt_factory(0))
            ack = await alice_client.send(conversation_id, "unbothered")
            (got,) = await collect(bob_client, 1)
            assert got.seq == ack.seq

    run(scenario())


def test_the_websocket_refuses_a_bad_token(platform: Platform) -> None:
    async def scenario() -> None:
        client = ImClient(websocket_factory(platform.ws_url), "not-a-token", "device-1", "web")
        with pytest.raises(AuthError):
            await client.connect()

    run(scenario())


def test_friends_see_each_other_come_online_and_go_offline(
    platform: Platform, alice: User, bob: User, charlie: User, alice_and_bob_are_friends: None
) -> None:
    bob_login, alice_wt, alice_ws, charlie_login = (
        platform.login(bob),
        platform.login(alice),
        platform.login(alice),
        platform.login(charlie),
    )

    async def scenario() -> None:
        updates: asyncio.Queue[PresenceUpdate] = asyncio.Queue()
        strangers: list[object] = []

        def on_event(event: object) -> None:
            if isinstance(event, PresenceUpdate):
                updates.put_nowait(event)

        async def next_update() -> tuple[int, bool]:
            update = await asyncio.wait_for(updates.get(), WAIT)
            return update.user_id, update.online

        async with (
            platform.client(bob_login, "ws", on_event=on_event),
            platform.client(charlie_login, "wt1", on_event=strangers.append),
        ):
            first = platform.client(alice_wt, "wt0")
            await first.connect()
            assert await next_update() == (alice.id, True)
            async with platform.client(alice_ws, "ws"):
                assert await next_update() == (alice.id, True)  # another device: still online
                await first.close()  # one device left: nobody is told she is offline
            assert await next_update() == (alice.id, False)  # the last device went
            while not updates.empty():  # both nodes may tell (they decide apart): never "online" again
                assert await next_update() == (alice.id, False)
        assert not [e for e in strangers if isinstance(e, PresenceUpdate)]  # charlie is not her friend

    run(scenario())
