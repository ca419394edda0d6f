"""manage.py chat: a small terminal client for operators, on the Python client library.

It logs in through the REST API (or takes a token), connects over a WebSocket or WebTransport, prints
every message as `[seq] sender: body` and sends each line read from stdin to --conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import threading
import urllib.error
import urllib.request
from argparse import ArgumentParser
from typing import IO, Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from realtime.client import (
    AuthError,
    ClientError,
    Event,
    ImClient,
    TransportError,
    TransportFactory,
    websocket_factory,
    webtransport_factory,
)
from schema.codec import Kicked, Message, MessageKind, SystemNotification

_HEX_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
HTTP_TIMEOUT = 10.0


class Command(BaseCommand):
    help = "Chat from a terminal: print pushed messages, send the lines typed on stdin."
    stealth_options = ("stdin",)  # tests hand in their own stdin

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--user", required=True, help="username to log in as")
        parser.add_argument("--password", help="log in through POST /api/v1/auth/login with this password")
        parser.add_argument("--token", help="an access token to use instead of logging in")
        parser.add_argument("--conversation", help="the conversation id that stdin lines are sent to")
        parser.add_argument("--ws", help="WebSocket URL, e.g. ws://127.0.0.1:8000/ws")
        parser.add_argument("--wt", help="WebTransport URL, e.g. https://127.0.0.1:4433/wt")
        parser.add_argument(
            "--cert-hash",
            action="append",
            default=[],
            help="SHA-256 (hex) of the WebTransport server's certificate; repeatable (with --wt only)",
        )
        parser.add_argument("--api", default="http://127.0.0.1:8000", help="base URL of the REST API")
        parser.add_argument("--device-id", default="", help="device id sent at login and in Auth")

    def handle(self, *args: Any, **options: Any) -> None:
        settings = _validate(options)
        stdin: IO[str] = options.get("stdin") or sys.stdin
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self._chat(settings, stdin))

    async def _chat(self, settings: dict[str, Any], stdin: IO[str]) -> None:
        api, device_id = settings["api"], settings["device_id"]
        token = settings["token"]
        if token is None:
            token = await asyncio.to_thread(_login, api, settings["user"], settings["password"], device_id)
        conversations = await asyncio.to_thread(_conversations, api, token)
        seed = {int(c["id"]): int(c["lastSeq"]) for c in conversations}
        names = {int(m["id"]): m["username"] for c in conversations for m in (c.get("members") or ())}
        conversation = settings["conversation"]
        if conversation is not None and conversation not in seed:
            raise CommandError(f"--conversation {conversation}: {settings['user']} is not a member of it")

        def show(message: Message) -> None:
            sender = names.get(message.sender_id, str(message.sender_id))
            body = message.body if message.kind == MessageKind.TEXT else f"({message.body})"
            prefix = "" if conversation is not None else f"#{message.conversation_id} "
            self.stdout.write(f"{prefix}[{message.seq}] {sender}: {body}")

        def event(frame: Event) -> None:
            if isinstance(frame, SystemNotification):
                self.stdout.write(f"* {frame.text}")
            elif isinstance(frame, Kicked):
                self.stderr.write(f"kicked by the server: {frame.reason}")

        client = ImClient(
            settings["factory"],
            token,
            device_id,
            "cli",
            on_message=show,
            on_event=event,
            seed=seed,
            buffer_messages=False,
        )
        try:
            result = await client.connect()
        except AuthError as error:
            raise CommandError(f"the server refused the token: {error}") from error
        except (TransportError, OSError, TimeoutError) as error:
            raise CommandError(f"cannot connect: {error}") from error
        self.stderr.write(f"connected as {settings['user']} (user {result.user_id}); Ctrl-D to quit")
        try:
            await self._pump(client, stdin, conversation)
        finally:
            await client.close()
        if client.error is not None:
            raise CommandError(str(client.error))

    async def _pump(self, client: ImClient, stdin: IO[str], conversation: int | None) -> None:
        """Send stdin lines until EOF or until the client stops (kicked, token refused)."""
        lines = _lines(stdin)
        stopped = asyncio.ensure_future(client.wait_closed())
        try:
            while True:
                line_task = asyncio.ensure_future(lines.get())
                await asyncio.wait({line_task, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not line_task.done():
                    line_task.cancel()
                    return
                line = line_task.result()
                if line is None:
                    return
                text = line.rstrip("\n")
                if not text.strip():
                    continue
                if conversation is None:
                    self.stderr.write("not sent: start with --conversation ID to send messages")
                    continue
                try:
                    await client.send(conversation, text)
                except ClientError as error:
                    self.stderr.write(f"not sent: {error}")
                    if client.error is not None:
                        return
        finally:
            stopped.cancel()


def _lines(stdin: IO[str]) -> asyncio.Queue[str | None]:
    """stdin lines, read by a daemon thread (so a blocked read never holds up the exit); None at EOF."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in iter(stdin.readline, ""):
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="chat-stdin", daemon=True).start()
    return queue


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    """The options checked and normalised; CommandError says which one is wrong and why."""
    user = (options.get("user") or "").strip()
    if not user:
        raise CommandError("--user must not be empty")
    password, token = options.get("password"), options.get("token")
    if password is not None and token is not None:
        raise CommandError("give --password or --token, not both")
    if password is None and token is None:
        raise CommandError("give --password (to log in) or --token (an access token)")
    if token is not None and not token.strip():
        raise CommandError("--token must not be empty")
    if password is not None and not password:
        raise CommandError("--password must not be empty")
    api = options.get("api") or ""
    parts = urlsplit(api)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandError(f"--api must be an http:// or https:// URL, not {api!r}")
    conversation: int | None = None
    if options.get("conversation") is not None:
        raw = str(options["conversation"]).strip()
        if not raw.isdigit() or int(raw) <= 0:
            raise CommandError(f"--conversation must be a positive integer id, not {options['conversation']!r}")
        conversation = int(raw)
    ws, wt, hashes = options.get("ws"), options.get("wt"), options.get("cert_hash") or []
    if ws is not None and wt is not None:
        raise CommandError("give --ws or --wt, not both")
    if ws is None and wt is None:
        raise CommandError("give --ws URL (WebSocket) or --wt URL (WebTransport)")
    factory: TransportFactory
    if ws is not None:
        if hashes:
            raise CommandError("--cert-hash pins a WebTransport certificate: use it with --wt")
        ws_parts = urlsplit(ws)
        if ws_parts.scheme not in ("ws", "wss") or not ws_parts.hostname:
            raise CommandError(f"--ws must be a ws:// or wss:// URL, not {ws!r}")
        factory = websocket_factory(ws)
    else:
        assert wt is not None
        wt_parts = urlsplit(wt)
        if wt_parts.scheme != "https" or not wt_parts.hostname:
            raise CommandError(f"--wt must be an https:// URL, not {wt!r}")
        for value in hashes:
            if not _HEX_SHA256.match(value.replace(":", "")):
                raise CommandError(f"--cert-hash must be a SHA-256 digest in hex (64 digits), not {value!r}")
        factory = webtransport_factory(wt, certificate_hashes=[bytes.fromhex(h.replace(":", "")) for h in hashes])
    return {
        "user": user,
        "password": password,
        "token": token.strip() if token is not None else None,
        "api": api.rstrip("/"),
        "conversation": conversation,
        "factory": factory,
        "device_id": options.get("device_id") or "",
    }


def _request(method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
    """The `data` of an API envelope; CommandError with the server's message when it says no."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - checked scheme
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310 - checked scheme
            payload = json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read()).get("message") or error.reason
        except (ValueError, AttributeError):
            message = error.reason
        raise CommandError(f"{method} {url} failed ({error.code}): {message}") from error
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise CommandError(f"cannot reach {url}: {getattr(error, 'reason', error)}") from error
    except ValueError as error:
        raise CommandError(f"{method} {url} did not answer JSON") from error
    if not isinstance(payload, dict) or "data" not in payload:
        raise CommandError(f"{method} {url} did not answer an API envelope")
    return payload["data"]


def _login(api: str, username: str, password: str, device_id: str) -> str:
    body = {"username": username, "password": password, "platform": "cli"}
    if device_id:
        body["deviceId"] = device_id
    data = _request("POST", f"{api}/api/v1/auth/login", body)
    if not isinstance(data, dict) or not isinstance(data.get("accessToken"), str):
        raise CommandError("the login answer holds no accessToken")
    token: str = data["accessToken"]
    return token


def _conversations(api: str, token: str) -> list[dict[str, Any]]:
    data = _request("GET", f"{api}/api/v1/conversations", token=token)
    if not isinstance(data, list):
        raise CommandError("GET /api/v1/conversations did not answer a list")
    return data
