"""Real-browser interop: Debian's Chromium, driven by Playwright, talks to the real platform (a logic
worker, a `run_access` WebTransport node, daphne's WebSocket /ws: tests/system/platform.py) over
WebTransport or the WebSocket, next to a Python ImClient.

The page (browser/im_page.html) only moves bytes: the test encodes frames with schema.codec, hands them
to the page as base64, and decodes the base64 frames the page received. The page is served by a real
local HTTP server, since Chromium gives WebTransport only to secure contexts, and blocks pages that
Playwright fulfils itself from reaching 127.0.0.1 (local network access checks).

Chromium missing: skipped on a developer's machine, a failure in CI (CI set), where .ci/run installs it.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any, TypeVar

import pytest
from playwright.async_api import ConsoleMessage, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

from accounts.models import User
from messaging.services import get_or_create_direct_conversation
from realtime.client import ImClient
from schema.codec import (
    AnyFrame,
    Auth,
    AuthResult,
    ErrorCode,
    ErrorFrame,
    MessageAck,
    Ping,
    Pong,
    PushMessage,
    SendMessage,
    decode_frame,
    encode_frame,
)
from tests.system.platform import Login, Platform

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_DIR = Path(__file__).with_name("browser")
TIMEOUT = 30.0  # every single wait; generous because other work shares the 2 cores
SCENARIO_TIMEOUT = 150.0  # a whole scenario, browser start included

F = TypeVar("F")


def require_chromium(path: Path = CHROMIUM) -> Path:
    """The browser to drive; where it is missing, a skip on a developer's machine but a failure in CI, so
    that CI can never pass without having run the browser tests."""
    if path.exists():
        return path
    if os.environ.get("CI") is None:
        pytest.skip(f"{path} is not installed (apt-get install chromium); CI installs it and runs this")
    pytest.fail(f"{path} is missing in CI: .ci/run should have installed Debian's chromium package")


@pytest.fixture
def chromium() -> Path:
    return require_chromium()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test's output is the console log of the page, not every GET


@pytest.fixture
def page_url() -> Iterator[str]:
    """The URL of the test page, served by a real HTTP server on a free loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(PAGE_DIR)))
    thread = Thread(target=server.serve_forever, name="browser-page-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/im_page.html"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def platform(nats_url: str, tmp_path: Path, transactional_db: Any) -> Iterator[Platform]:
    """The real platform, as tests/system runs it: a logic worker, a WebTransport access node (run_access)
    and daphne with the WebSocket /ws, on the test database and this test process's nats-server."""
    started = Platform(tmp_path, nats_url=nats_url, access_nodes=1, logic_workers=1)
    try:
        yield started.start()
    finally:
        started.stop()
    for process in [*started.access, *started.workers, *([started.web] if started.web else [])]:
        assert "Traceback" not in process.log(), process.log()


@pytest.fixture
def direct(alice: User, bob: User, alice_and_bob_are_friends: None) -> int:
    conversation_id: int = get_or_create_direct_conversation(alice, other_user_id=bob.id).conversation_id
    return conversation_id


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), SCENARIO_TIMEOUT))


class BrowserPage:
    """The test page in Chromium: frames in and out as schema.codec objects, the console kept for messages."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")

    def explain(self, what: str) -> str:
        return f"{what}\nbrowser console:\n" + "\n".join(self.console or ["(empty)"])

    async def call(self, expression: str, *args: Any) -> Any:
        """Evaluate `expression` (a JS function) in the page; a rejection fails with the console attached."""
        try:
            return await self.page.evaluate(expression, list(args))
        except PlaywrightError as error:
            raise AssertionError(self.explain(f"{expression} failed: {error.message}")) from error

    async def open_webtransport(self, url: str, certificate_hash: bytes) -> None:
        await self.call("([url, hash]) => openWebTransport(url, hash)", url, _b64(certificate_hash))

    async def close_info(self) -> dict[str, Any]:
        """The {code, reason} the server closed the current connection with, within TIMEOUT."""
        info: dict[str, Any] = await self.call("([ms]) => closeInfo(ms)", int(TIMEOUT * 1000))
        return info

    async def open_websocket(self, url: str) -> None:
        await self.call("([url]) => openWebSocket(url)", url)

    async def start_heartbeat(self, seconds: float) -> None:
        """Let the page send a Ping every `seconds` on its own (the Pongs are skipped by next_frame)."""
        await self.call("([ping, ms]) => startHeartbeat(ping, ms)", _b64(encode_frame(Ping())), int(seconds * 1000))

    async def send(self, frame: Any) -> None:
        await self.call("([frame]) => sendFrame(frame)", _b64(encode_frame(frame)))

    async def next_frame(self, kind: type[F]) -> F:
        """The next frame of this type within TIMEOUT; frames of other types are skipped."""
        skipped: list[AnyFrame] = []
        while True:
            encoded = await self.call("([ms]) => nextFrame(ms)", int(TIMEOUT * 1000))
            frame = decode_frame(base64.b64decode(encoded))
            if isinstance(frame, kind):
                return frame
            skipped.append(frame)
            if len(skipped) > 50:
                raise AssertionError(self.explain(f"no {kind.__name__} among {skipped}"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@asynccontextmanager
async def browser_page(chromium: Path, url: str) -> AsyncIterator[BrowserPage]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS, timeout=TIMEOUT * 1000
        )
        try:
            page = BrowserPage(await browser.new_page())
            page.page.set_default_timeout(TIMEOUT * 1000)
            await page.page.goto(url)
            yield page
        finally:
            await browser.close()


async def within(awaitable: Awaitable[F]) -> F:
    return await asyncio.wait_for(awaitable, TIMEOUT)


async def chat(
    page: BrowserPage, alice_login: Login, bob_client: ImClient, *, alice: User, bob: User, conversation_id: int
) -> None:
    """Alice in the browser authenticates and writes to bob, who uses the Python client and answers."""
    await page.send(Auth(token=alice_login.access_token, device_id=alice_login.device_id, platform="web"))
    auth = await page.next_frame(AuthResult)
    assert auth.user_id == alice.id, page.explain(f"{auth}")
    assert auth.heartbeat_seconds > 0
    # as a real client does: the platform's heartbeat is short (tests/system/platform.py)
    await page.start_heartbeat(auth.heartbeat_seconds)
    bob_messages = bob_client.messages()

    await page.send(SendMessage(client_msg_id="browser-1", conversation_id=conversation_id, body="hello from chromium"))
    ack = await page.next_frame(MessageAck)
    assert (ack.client_msg_id, ack.conversation_id) == ("browser-1", conversation_id), page.explain(f"{ack}")
    assert ack.seq == 1  # the first message of a new conversation
    pushed = await within(anext(bob_messages))
    assert (pushed.id, pushed.sender_id, pushed.seq) == (ack.message_id, alice.id, ack.seq)
    assert pushed.body == "hello from chromium"

    answer = await within(bob_client.send(conversation_id, "hello from python"))
    assert answer.seq == ack.seq + 1
    push = (await page.next_frame(PushMessage)).message
    assert (push.id, push.sender_id, push.seq) == (answer.message_id, bob.id, answer.seq), push
    assert push.body == "hello from python", push

    # the browser's session stays healthy after the exchange
    await page.send(Ping())
    await page.next_frame(Pong)


@pytest.mark.parametrize("transport", ["webtransport", "websocket"])
def test_chromium_chats_with_a_python_client(
    transport: str, chromium: Path, page_url: str, platform: Platform, alice: User, bob: User, direct: int
) -> None:
    """Alice's browser on either transport, bob's ImClient on WebTransport: over the WebSocket the pushes
    also cross from one kind of access node to the other."""
    alice_login, bob_login = platform.login(alice), platform.login(bob)

    async def scenario() -> None:
        async with (
            browser_page(chromium, page_url) as page,
            platform.client(bob_login, "wt0", auth_timeout=TIMEOUT) as bob_client,
        ):
            if transport == "webtransport":
                await page.open_webtransport(platform.wt_url(0), platform.certificate.sha256)
            else:
                await page.open_websocket(platform.ws_url)
            await chat(page, alice_login, bob_client, alice=alice, bob=bob, conversation_id=direct)

    run(scenario)


def test_chromium_refuses_a_wrong_certificate_hash_and_reaches_the_node_with_the_right_one(
    chromium: Path, page_url: str, platform: Platform
) -> None:
    url, certificate_hash = platform.wt_url(0), platform.certificate.sha256

    async def scenario() -> None:
        async with browser_page(chromium, page_url) as page:
            wrong = bytes(byte ^ 0xFF for byte in certificate_hash)
            with pytest.raises(AssertionError, match="Opening handshake failed") as refused:
                await page.open_webtransport(url, wrong)
            # the page only sees a generic error; the cause is in the console, which the message carries
            assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value), str(refused.value)

            await page.open_webtransport(url, certificate_hash)
            await page.send(Auth(token="not.a.token", device_id="chromium", platform="web"))
            # the Error frame arrives before the close (its capsule waits CLOSE_GRACE_SECONDS for it)
            failed = await page.next_frame(ErrorFrame)
            assert failed.code == ErrorCode.AUTH_FAILED, page.explain(f"{failed}")
            closed = await page.close_info()
            assert closed["code"] == ErrorCode.AUTH_FAILED, page.explain(f"{closed}")
            assert closed["reason"], page.explain(f"{closed}")

    run(scenario)


def test_chromium_over_websocket_gets_the_error_frame_and_close_code_of_an_invalid_token(
    chromium: Path, page_url: str, platform: Platform
) -> None:
    async def scenario() -> None:
        async with browser_page(chromium, page_url) as page:
            await page.open_websocket(platform.ws_url)
            await page.send(Auth(token="not.a.token", device_id="chromium", platform="web"))
            failed = await page.next_frame(ErrorFrame)
            assert failed.code == ErrorCode.AUTH_FAILED, page.explain(f"{failed}")
            closed = await page.close_info()
            assert closed["code"] == ErrorCode.AUTH_FAILED, page.explain(f"{closed}")

    run(scenario)


def test_a_missing_chromium_skips_outside_ci_and_fails_in_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "chromium"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_chromium(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="missing in CI"):
        require_chromium(missing)
    missing.touch()
    assert require_chromium(missing) == missing
