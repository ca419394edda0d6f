"""The access node end to end: a real `manage.py run_access` process, a real `run_logic` worker, a real
nats-server, WebTransport clients with real access tokens from the login endpoint.

The scenarios run in their own event loop (asyncio.run inside a sync test): Django's ORM and test
client stay on the test's thread, REST calls made mid-scenario go through asyncio.to_thread.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User
from imsite import nats_subjects
from imsite.errors import TokenInvalid
from messaging.services import get_or_create_direct_conversation
from messaging.tests import worker_processes
from messaging.tests.worker_processes import ROOT, WorkerProcess
from realtime.certificates import CertificateInfo, ensure_dev_certificate
from realtime.node import AccessNode, AuthAnswer
from realtime.presence import Location
from realtime.session import SessionConfig
from realtime.webtransport_client import WebTransportClient, WebTransportClosed, connect_webtransport
from schema.codec import (
    AnyFrame,
    Auth,
    AuthResult,
    Delivery,
    Downstream,
    ErrorCode,
    ErrorFrame,
    Kicked,
    MessageAck,
    Ping,
    Pong,
    PresenceUpdate,
    PushMessage,
    SendMessage,
    decode_frame,
    encode_downstream,
    encode_frame,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

NODE_ID = "test-node-1"
TIMEOUT = 30.0  # generous: a loaded CI machine is slow, and a pass never waits for it


class AccessProcess:
    """`manage.py run_access` on a free UDP port with the given certificate, logging to a file."""

    def __init__(self, nats_url: str, log_dir: Path, certificate: CertificateInfo, *extra: str) -> None:
        self.certificate = certificate
        self.log_path = log_dir / "access.log"
        self._log = self.log_path.open("w")
        env = {
            **os.environ,
            "DATABASE_URL": worker_processes.test_database_url(),
            "NATS_URL": nats_url,
            "PYTHONUNBUFFERED": "1",
        }
        argv = [sys.executable, str(ROOT / "manage.py"), "run_access", "--node-id", NODE_ID, "--port", "0"]
        argv += ["--cert", str(certificate.cert_path), "--key", str(certificate.key_path), *extra]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.port = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> AccessProcess:
        deadline = time.monotonic() + timeout
        pattern = re.compile(r"access node ready: node (\S+) on udp port (\d+), certificate sha-256 ([0-9a-f]{64})")
        while (found := pattern.search(self.log())) is None:
            if self.proc.poll() is not None:
                raise AssertionError(f"access node exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"access node not ready within {timeout}s:\n{self.log()}")
            time.sleep(0.05)
        assert found.group(1) == NODE_ID
        assert found.group(3) == self.certificate.sha256_hex
        self.port = int(found.group(2))
        return self

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/wt"

    def terminate(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()


@pytest.fixture
def certificate(tmp_path: Path) -> CertificateInfo:
    return ensure_dev_certificate(tmp_path / "certs")


@pytest.fixture
def worker(nats_url: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(nats_url, tmp_path, "access-test-worker").wait_ready()
    yield process
    process.terminate()


@pytest.fixture
def access(nats_url: str, tmp_path: Path, certificate: CertificateInfo) -> Iterator[AccessProcess]:
    process = AccessProcess(nats_url, tmp_path, certificate).wait_ready()
    yield process
    if process.proc.poll() is None:
        assert process.terminate() == 0, process.log()
    assert "Traceback" not in process.log(), process.log()


@pytest.fixture
def direct(alice: User, bob: User, alice_and_bob_are_friends: None) -> int:
    conversation_id: int = get_or_create_direct_conversation(alice, other_user_id=bob.id).conversation_id
    return conversation_id


@pytest.fixture
def real_publishing() -> Iterator[None]:
    """The web publishes user events on NATS (the root conftest makes it a no-op for other tests)."""
    from imsite import publisher

    previous = publisher.set_sink(None)
    yield
    publisher.set_sink(previous)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


async def connect(access: AccessProcess) -> WebTransportClient:
    return await connect_webtransport(access.url, certificate_hashes=[access.certificate.sha256])


async def next_frame(client: WebTransportClient, kind: type[Any] | None = None) -> AnyFrame:
    """The next frame (skipping others when `kind` is given) within TIMEOUT seconds."""

    async def take() -> AnyFrame:
        while True:
            frame = decode_frame(await client.recv())
            if kind is None or isinstance(frame, kind):
                return frame

    return await asyncio.wait_for(take(), TIMEOUT)


async def authenticate(access: AccessProcess, token: str, device_id: str) -> tuple[WebTransportClient, AuthResult]:
    client = await connect(access)
    client.send(encode_frame(Auth(token=token, device_id=device_id, platform="web")))
    result = await next_frame(client)
    assert isinstance(result, AuthResult), result
    return client, result


async def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {TIMEOUT}s: {what}")
        await asyncio.sleep(0.05)


def online(user: User) -> Callable[[], bool]:
    from realtime.presence import online_user_ids

    return lambda: user.id in online_user_ids([user.id])


def send(client: WebTransportClient, conversation_id: int, client_msg_id: str, body: str) -> None:
    client.send(encode_frame(SendMessage(client_msg_id=client_msg_id, conversation_id=conversation_id, body=body)))


def test_authenticated_clients_send_get_acks_and_pushes_and_are_present_while_connected(
    worker: WorkerProcess, access: AccessProcess, client_for: Any, alice: User, bob: User, direct: int
) -> None:
    alice_token = client_for(alice, device_id="alice-laptop").tokens["accessToken"]
    bob_token = client_for(bob, device_id="bob-phone").tokens["accessToken"]

    async def scenario() -> None:
        alice_client, alice_auth = await authenticate(access, alice_token, "alice-laptop")
        bob_client, bob_auth = await authenticate(access, bob_token, "bob-phone")
        assert alice_auth.user_id == alice.id
        assert bob_auth.user_id == bob.id
        assert alice_auth.heartbeat_seconds > 0
        await eventually(online(alice), "alice is online")
        # friends hear of each other: alice of bob, who came after her (bob may or may not hear of alice,
        # depending on whether his session was there when her announcement went out)
        told = await next_frame(alice_client, PresenceUpdate)
        assert told == PresenceUpdate(user_id=bob.id, online=True)

        send(alice_client, direct, "wt-1", "hello bob")
        ack = await next_frame(alice_client, MessageAck)
        assert isinstance(ack, MessageAck), ack
        assert (ack.client_msg_id, ack.conversation_id, ack.seq) == ("wt-1", direct, 1)
        push = await next_frame(bob_client, PushMessage)
        assert isinstance(push, PushMessage)
        assert (push.message.id, push.message.sender_id, push.message.body) == (ack.message_id, alice.id, "hello bob")
        assert push.message.seq == 1

        send(alice_client, direct, "wt-2", "second")
        second = await next_frame(alice_client, MessageAck)
        assert isinstance(second, MessageAck)
        assert second.seq == 2
        pushed = await next_frame(bob_client, PushMessage)
        assert isinstance(pushed, PushMessage)
        assert pushed.message.body == "second"

        await alice_client.close()
        await eventually(lambda: not online(alice)(), "alice is offline after closing")
        assert await asyncio.to_thread(online(bob))
        await bob_client.close()

    run(scenario)


def test_a_send_before_auth_and_garbage_get_error_frames_and_other_sessions_go_on(
    worker: WorkerProcess, access: AccessProcess, client_for: Any, alice: User, bob: User, direct: int
) -> None:
    alice_token = client_for(alice).tokens["accessToken"]
    bob_token = client_for(bob).tokens["accessToken"]

    async def scenario() -> None:
        bob_client, _ = await authenticate(access, bob_token, "bob-phone")
        early = await connect(access)
        send(early, direct, "too-early", "hi")
        refused = await next_frame(early)
        assert isinstance(refused, ErrorFrame), refused
        assert refused.code == ErrorCode.NOT_AUTHENTICATED

        early.send(b"\x00\xffthis is not a frame")
        garbage = await next_frame(early)
        assert isinstance(garbage, ErrorFrame), garbage
        assert garbage.code == ErrorCode.MALFORMED
        await early.close()

        alice_client, _ = await authenticate(access, alice_token, "alice-laptop")
        alice_client.send(b"\x13\x37garbage")
        malformed = await next_frame(alice_client, ErrorFrame)  # after bob's PresenceUpdate, maybe
        assert isinstance(malformed, ErrorFrame)
        assert malformed.code == ErrorCode.MALFORMED

        bob_client.send(encode_frame(Ping()))
        assert isinstance(await next_frame(bob_client, Pong), Pong)
        send(alice_client, direct, "after-garbage", "still here")
        assert isinstance(await next_frame(alice_client, MessageAck), MessageAck)
        push = await next_frame(bob_client, PushMessage)
        assert isinstance(push, PushMessage)
        assert push.message.body == "still here"
        await alice_client.close()
        await bob_client.close()

    run(scenario)


def test_an_invalid_token_fails_authentication_and_closes_the_session(access: AccessProcess) -> None:
    async def scenario() -> None:
        client = await connect(access)
        client.send(encode_frame(Auth(token="not.a.token", device_id="d", platform="web")))
        failed = await next_frame(client)
        assert isinstance(failed, ErrorFrame), failed
        assert failed.code == ErrorCode.AUTH_FAILED
        closed = await asyncio.wait_for(client.wait_closed(), TIMEOUT)
        assert closed.code == ErrorCode.AUTH_FAILED

    run(scenario)


def test_logout_over_rest_kicks_the_live_session(
    access: AccessProcess, client_for: Any, real_publishing: None, alice: User, bob: User
) -> None:
    alice_api = client_for(alice, device_id="alice-laptop")
    bob_token = client_for(bob).tokens["accessToken"]

    def logout() -> int:
        response = alice_api.post(
            "/api/v1/auth/logout", {"refreshToken": alice_api.tokens["refreshToken"]}, format="json"
        )
        status: int = response.status_code
        return status

    async def scenario() -> None:
        alice_client, _ = await authenticate(access, alice_api.tokens["accessToken"], "alice-laptop")
        bob_client, _ = await authenticate(access, bob_token, "bob-phone")
        await eventually(online(alice), "alice is online")

        assert await asyncio.to_thread(logout) == 200
        kicked = await next_frame(alice_client)
        assert isinstance(kicked, Kicked), kicked
        assert kicked.reason == "logout"
        closed = await asyncio.wait_for(alice_client.wait_closed(), TIMEOUT)
        assert closed.code == 1000
        with pytest.raises(WebTransportClosed):
            await alice_client.recv()
        await eventually(lambda: not online(alice)(), "alice is offline after the kick")

        bob_client.send(encode_frame(Ping()))
        assert isinstance(await next_frame(bob_client), Pong)  # only alice's session was kicked
        await bob_client.close()

        again = await connect(access)  # her token's session has ended: it cannot come back
        again.send(encode_frame(Auth(token=alice_api.tokens["accessToken"], device_id="alice-laptop", platform="web")))
        refused = await next_frame(again)
        assert isinstance(refused, ErrorFrame)
        assert refused.code == ErrorCode.AUTH_FAILED

    run(scenario)


def test_sigterm_closes_sessions_with_unavailable_and_removes_presence(
    access: AccessProcess, client_for: Any, alice: User
) -> None:
    token = client_for(alice).tokens["accessToken"]

    async def scenario() -> None:
        client, _ = await authenticate(access, token, "alice-laptop")
        await eventually(online(alice), "alice is online")
        access.proc.send_signal(signal.SIGTERM)
        farewell = await next_frame(client)
        assert isinstance(farewell, ErrorFrame), farewell
        assert farewell.code == ErrorCode.UNAVAILABLE
        closed = await asyncio.wait_for(client.wait_closed(), TIMEOUT)
        assert closed.code == ErrorCode.UNAVAILABLE
        await eventually(lambda: not online(alice)(), "alice is offline after the node stopped")

    run(scenario)
    assert access.terminate() == 0
    assert "access node stopped" in access.log()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--node-id", "a.b"], "--node-id"),
        (["--node-id", ""], "--node-id"),
        (["--node-id", "n1", "--port", "70000"], "--port"),
        (["--node-id", "n1", "--port", "udp"], "--port"),
        (["--node-id", "n1", "--cert", "/nonexistent.pem"], "--cert and --key"),
        (["--node-id", "n1", "--cert", "/nonexistent.pem", "--key", "/nonexistent.key"], "certificate"),
    ],
)
def test_run_access_refuses_bad_arguments(argv: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("run_access", *argv)


def test_the_endpoints_api_names_the_node_and_its_certificate(
    api: Any, client_for: Any, alice: User, certificate: CertificateInfo, settings: Any
) -> None:
    settings.ACCESS_NODES = ["10.0.0.7:4443"]
    settings.ACCESS_CERTIFICATE = str(certificate.cert_path)
    response = client_for(alice).get("/api/v1/realtime/endpoints")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["webtransport"] == {
        "url": "https://10.0.0.7:4443/wt",
        "certificateHashes": [{"algorithm": "sha-256", "value": certificate.sha256_hex}],
    }
    assert data["websocket"] == {"url": "ws://testserver/ws"}
    assert data["heartbeatSeconds"] == settings.HEARTBEAT_SECONDS
    assert api.get("/api/v1/realtime/endpoints").status_code == 401


def test_the_endpoints_api_defaults_to_the_local_node_and_the_dev_certificate(
    client_for: Any, alice: User, tmp_path: Path, settings: Any
) -> None:
    settings.VAR_DIR = tmp_path
    settings.ACCESS_NODES = []
    settings.ACCESS_CERTIFICATE = ""
    data = client_for(alice).get("/api/v1/realtime/endpoints").json()["data"]
    dev = ensure_dev_certificate(tmp_path / "certs")
    assert data["webtransport"]["url"] == "https://127.0.0.1:4433/wt"
    assert data["webtransport"]["certificateHashes"][0]["value"] == dev.sha256_hex


# The node in this process, with a recording transport and presence store: the timer loop, the
# presence refresh, pushes to unknown connections and transport errors.


class FakeTransport:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.pending_bytes = 0

    def send_many(self, frames: Iterable[bytes]) -> None:
        assert self.closed is None, "nothing is sent after close"
        self.frames.extend(frames)

    def close(self, code: int = 0, reason: str = "") -> None:
        self.closed = (code, reason)

    def decoded(self) -> list[AnyFrame]:
        return [decode_frame(frame) for frame in self.frames]


class RecordingPresence:
    ttl = 0.3

    def __init__(self) -> None:
        self.registered: list[Location] = []
        self.unregistered: list[Location] = []
        self.batches: list[int] = []  # the size of each apply call
        self.refreshed: list[tuple[str, list[Location]]] = []

    async def register(self, location: Location) -> None:
        self.registered.append(location)

    async def unregister(self, location: Location) -> None:
        self.unregistered.append(location)

    async def apply(self, changes: list[tuple[bool, Location]]) -> None:
        self.batches.append(len(changes))
        for register, location in changes:
            await (self.register(location) if register else self.unregister(location))

    async def refresh(self, node_id: str, locations: Iterable[Location]) -> None:
        self.refreshed.append((node_id, list(locations)))

    async def locate(self, user_ids: Iterable[int]) -> dict[int, list[Location]]:
        return {}

    async def close(self) -> None:
        pass


def fake_authenticator(token: str) -> AuthAnswer:
    if token != "good":
        raise TokenInvalid("bad token")
    return AuthAnswer(user_id=42, session_id=7)


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {TIMEOUT}s: {what}")
        await asyncio.sleep(0.01)


StartNode = Callable[..., Awaitable[AccessNode]]


@pytest.fixture
async def start_node(nats_url: str) -> AsyncIterator[StartNode]:
    """Starts an AccessNode "unit-node" on this store (fake_authenticator unless given another, and
    any other AccessNode argument); each is stopped after the test."""
    started: list[AccessNode] = []

    async def start(store: RecordingPresence, **options: Any) -> AccessNode:
        async def factory(js: Any) -> RecordingPresence:
            return store

        options.setdefault("authenticator", fake_authenticator)
        access_node = AccessNode("unit-node", nats_url, presence_factory=factory, **options)
        await access_node.start()
        started.append(access_node)
        return access_node

    yield start
    for access_node in started:
        await access_node.stop()


@pytest.fixture
async def node(start_node: StartNode) -> tuple[AccessNode, RecordingPresence]:
    store = RecordingPresence()
    access_node = await start_node(store, config=SessionConfig(auth_timeout=0.2, heartbeat_timeout=0.6))
    return access_node, store


async def test_the_timer_loop_closes_a_session_that_never_authenticates(
    node: tuple[AccessNode, RecordingPresence],
) -> None:
    access_node, _ = node
    transport = FakeTransport()
    access_node.attach(transport)
    await until(lambda: transport.closed is not None, "auth timeout")
    assert transport.closed is not None
    assert transport.closed[0] == ErrorCode.AUTH_TIMEOUT
    assert [type(frame) for frame in transport.decoded()] == [ErrorFrame]


async def test_presence_is_registered_refreshed_and_removed_and_heartbeat_timeout_fires(
    node: tuple[AccessNode, RecordingPresence],
) -> None:
    access_node, store = node
    transport = FakeTransport()
    handler = access_node.attach(transport)
    handler.on_frame(encode_frame(Auth(token="good", device_id="d1", platform="web")))
    await until(lambda: bool(transport.frames), "AuthResult")
    assert isinstance(transport.decoded()[0], AuthResult)
    await until(lambda: bool(store.registered), "registered")
    location = store.registered[0]
    assert (location.user_id, location.node_id, location.session_id, location.device_id) == (42, "unit-node", 7, "d1")
    await until(lambda: any(locations == [location] for _, locations in store.refreshed), "refreshed")
    assert all(node_id == "unit-node" for node_id, _ in store.refreshed)
    await until(lambda: transport.closed is not None, "heartbeat timeout")  # the client never pings
    assert transport.closed is not None
    assert transport.closed[0] == ErrorCode.HEARTBEAT_TIMEOUT
    await until(lambda: store.unregistered == [location], "unregistered")
    handler.on_closed()
    assert access_node.connections == {}


async def test_sessions_that_open_together_are_registered_in_one_store_call_in_their_order(
    node: tuple[AccessNode, RecordingPresence],
) -> None:
    access_node, store = node
    transports = [FakeTransport() for _ in range(20)]
    for number, transport in enumerate(transports):
        handler = access_node.attach(transport)
        handler.on_frame(encode_frame(Auth(token="good", device_id=f"d{number}", platform="web")))
    await until(lambda: len(store.registered) == 20, "registered")
    assert [location.device_id for location in store.registered] == [f"d{number}" for number in range(20)]
    assert len(store.batches) < 20  # one call per round trip's worth, not one per session
    await until(lambda: all(transport.frames for transport in transports), "every AuthResult")
    assert all(isinstance(transport.decoded()[0], AuthResult) for transport in transports)


async def test_a_refused_token_closes_with_auth_failed(node: tuple[AccessNode, RecordingPresence]) -> None:
    access_node, store = node
    transport = FakeTransport()
    access_node.attach(transport).on_frame(encode_frame(Auth(token="bad", device_id="d1", platform="web")))
    await until(lambda: transport.closed is not None, "auth failed")
    assert transport.closed is not None
    assert transport.closed[0] == ErrorCode.AUTH_FAILED
    failed = transport.decoded()[0]
    assert isinstance(failed, ErrorFrame)
    assert failed.message == "bad token"
    assert store.registered == []


async def test_pushes_for_unknown_connections_are_skipped(
    node: tuple[AccessNode, RecordingPresence], nats_url: str
) -> None:
    import nats

    access_node, _ = node
    transport = FakeTransport()
    handler = access_node.attach(transport)
    handler.on_frame(encode_frame(Auth(token="good", device_id="d1", platform="web")))
    await until(lambda: bool(transport.frames), "AuthResult")
    connection_id = next(iter(access_node.connections))
    push = encode_frame(Pong())
    downstream = encode_downstream(
        Downstream(deliveries=(Delivery(frame=push, connection_ids=(connection_id + 1000, connection_id)),))
    )
    nc = await nats.connect(nats_url)
    try:
        await nc.publish(nats_subjects.access_downstream("unit-node"), b"not an envelope")
        await nc.publish(nats_subjects.access_downstream("unit-node"), downstream)
        await nc.flush()
        await until(lambda: len(transport.frames) == 2, "the push")
    finally:
        await nc.close()
    assert transport.frames[1] == push
    assert transport.closed is None


async def test_a_push_to_many_connections_is_read_once_and_reaches_each_without_touching_their_timers(
    start_node: StartNode, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nats

    from schema.codec import frame_type

    access_node = await start_node(RecordingPresence(), config=SessionConfig(heartbeat_timeout=30))
    transports = [FakeTransport() for _ in range(3)]
    for transport in transports:
        access_node.attach(transport).on_frame(encode_frame(Auth(token="good", device_id="d1", platform="web")))
    await until(lambda: all(transport.frames for transport in transports), "three AuthResults")
    rescheduled: list[int] = []
    monkeypatch.setattr(access_node, "_schedule_timer", lambda connection: rescheduled.append(connection.connection_id))
    reads: list[bytes] = []

    def counted(frame: bytes) -> Any:
        reads.append(frame)
        return frame_type(frame)

    monkeypatch.setattr("realtime.session.frame_type", counted)  # what the session core reads frames with
    push = encode_frame(PresenceUpdate(user_id=5, online=True))
    downstream = encode_downstream(
        Downstream(deliveries=(Delivery(frame=push, connection_ids=tuple(access_node.connections)),))
    )
    nc = await nats.connect(nats_url)
    try:
        await nc.publish(nats_subjects.access_downstream("unit-node"), downstream)
        await nc.flush()
        await until(lambda: all(len(transport.frames) == 2 for transport in transports), "the push, everywhere")
    finally:
        await nc.close()
    assert [transport.frames[1] for transport in transports] == [push] * 3
    assert reads == [push]  # what the frame is, read once for the three
    assert rescheduled == []  # a push moves no session's deadline


async def test_a_transport_error_is_answered_and_repeated_ones_close_the_session(
    node: tuple[AccessNode, RecordingPresence],
) -> None:
    access_node, _ = node
    transport = FakeTransport()
    handler = access_node.attach(transport)
    handler.on_error(ErrorCode.TOO_LARGE, "frame too large")
    await asyncio.sleep(0.01)  # the node writes on a later loop turn
    assert transport.decoded() == [ErrorFrame(code=ErrorCode.TOO_LARGE, message="frame too large")]
    assert transport.closed is None
    for _ in range(access_node.config.max_errors):
        handler.on_error(ErrorCode.TOO_LARGE, "frame too large")
    await asyncio.sleep(0.01)
    last = transport.decoded()[-1]
    assert isinstance(last, ErrorFrame)
    assert last.code == ErrorCode.TOO_MANY_ERRORS
    assert transport.closed is not None
    assert transport.closed[0] == ErrorCode.TOO_MANY_ERRORS


def test_tokens_are_checked_in_one_batch_each_answered_in_order(
    client_for: Any, alice: User, bob: User, charlie: User
) -> None:
    from accounts.services import logout_session
    from realtime.node import check_access_tokens

    alice_tokens = client_for(alice).tokens
    bob_token = client_for(bob).tokens["accessToken"]
    charlie_tokens = client_for(charlie).tokens
    logout_session(charlie, refresh_token=charlie_tokens["refreshToken"])
    answers = check_access_tokens(
        [bob_token, "not-a-token", charlie_tokens["accessToken"], alice_tokens["accessToken"]]
    )
    assert isinstance(answers[0], AuthAnswer)
    assert answers[0].user_id == bob.id
    assert isinstance(answers[1], TokenInvalid)
    assert isinstance(answers[2], TokenInvalid)
    assert "ended" in str(answers[2])
    assert isinstance(answers[3], AuthAnswer)
    assert (answers[3].user_id, answers[3].session_id) == (alice.id, int(alice_tokens["sessionId"]))


def test_a_batch_refuses_banned_deleted_revoked_and_borrowed_sessions_with_their_reasons(
    client_for: Any, make_user: Any, alice: User, bob: User, charlie: User
) -> None:
    from accounts.tokens import read_access_token
    from realtime.node import check_access_tokens

    alice_token, bob_token, charlie_token = (client_for(user).tokens["accessToken"] for user in (alice, bob, charlie))
    dave = make_user("dave")
    dave_token = client_for(dave).tokens["accessToken"]
    _, alice_session, alice_version = read_access_token(alice_token)
    bob.is_active = False  # banned
    bob.save(update_fields=["is_active"])
    charlie.soft_delete()
    User.objects.filter(id=dave.id).update(token_version=dave.token_version + 1)  # password changed
    answers = check_access_tokens([bob_token, alice_token, charlie_token, dave_token])
    assert [str(answer) if isinstance(answer, TokenInvalid) else answer for answer in answers] == [
        "This account is disabled.",
        AuthAnswer(alice.id, alice_session),
        "This account is disabled.",
        "This token was revoked (password change or ban): log in again.",
    ]
    # a token claiming alice's session for another user (only a forged token could) is refused
    from accounts.tokens import session_refusals

    (refusal,) = session_refusals([(bob.id, alice_session, alice_version)])
    assert isinstance(refusal, TokenInvalid)
    assert "ended" in str(refusal)
    assert session_refusals([(alice.id, alice_session, alice_version)]) == [None]


class LocatingPresence(RecordingPresence):
    """Answers locate from what was registered and not unregistered since."""

    async def locate(self, user_ids: Iterable[int]) -> dict[int, list[Location]]:
        live = [location for location in self.registered if location not in self.unregistered]
        wanted = set(user_ids)
        found: dict[int, list[Location]] = {}
        for location in live:
            if location.user_id in wanted:
                found.setdefault(location.user_id, []).append(location)
        return found


async def test_sessions_that_open_and_close_together_are_announced_to_friends_with_one_lookup_each_way(
    start_node: StartNode,
) -> None:
    hub, others = 1, [2, 3, 4, 5, 6]  # the hub is everyone's friend; the others are not each other's
    lookups: list[list[int]] = []

    def friend_lookup(user_ids: list[int]) -> dict[int, list[int]]:
        lookups.append(list(user_ids))
        return {user: ([hub] if user != hub else others) for user in user_ids}

    def authenticator(token: str) -> AuthAnswer:
        user_id = int(token.removeprefix("user-"))
        return AuthAnswer(user_id=user_id, session_id=user_id)

    store = LocatingPresence()
    access_node = await start_node(store, authenticator=authenticator, friend_lookup=friend_lookup)
    hub_transport = FakeTransport()
    access_node.attach(hub_transport).on_frame(encode_frame(Auth(token=f"user-{hub}", device_id="h")))
    await until(lambda: len(store.registered) == 1, "the hub registered")
    await until(lambda: len(lookups) == 1, "the hub announced")
    handlers = []
    for user in others:
        handler = access_node.attach(FakeTransport())
        handler.on_frame(encode_frame(Auth(token=f"user-{user}", device_id="d")))
        handlers.append(handler)

    def told(online: bool) -> list[int]:
        return [f.user_id for f in hub_transport.decoded() if isinstance(f, PresenceUpdate) and f.online is online]

    await until(lambda: sorted(told(True)) == others, "the hub hears of everyone online")
    assert 2 <= len(lookups) <= 3  # the hub's, then one or two for the five (they register in one or two batches)
    assert sorted(user for batch in lookups[1:] for user in batch) == others
    for handler in handlers:
        handler.on_closed()
    await until(lambda: sorted(told(False)) == others, "the hub hears of everyone offline")
    assert sorted(told(True)) == others  # nobody twice
    assert len(lookups) <= 5


async def test_auth_result_waits_for_the_presence_registration(start_node: StartNode) -> None:
    """A client syncs when it gets AuthResult: by then pushes must already find it."""
    release = asyncio.Event()

    class SlowPresence(RecordingPresence):
        async def register(self, location: Location) -> None:
            await release.wait()
            await super().register(location)

    store = SlowPresence()
    access_node = await start_node(store)
    try:
        transport = FakeTransport()
        handler = access_node.attach(transport)
        handler.on_frame(encode_frame(Auth(token="good", device_id="d1", platform="web")))
        await until(lambda: bool(access_node.connections[1].held), "AuthResult held")
        handler.on_frame(encode_frame(Ping()))  # its Pong queues behind the AuthResult
        await asyncio.sleep(0.05)  # a loop turn or two: nothing may leak out meanwhile
        assert transport.frames == []
        release.set()
        await until(lambda: len(transport.frames) == 2, "AuthResult and Pong")
        assert [type(frame) for frame in transport.decoded()] == [AuthResult, Pong]
        assert store.registered
    finally:
        release.set()  # before the fixture stops the node
