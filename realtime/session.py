"""The session core: one client connection's protocol rules, with no I/O and no clock.

Both transports (the aioquic WebTransport server and the Channels WebSocket consumer) hold one
Session per connection and feed it what happens: `connected`, `receive` (one whole frame),
`authenticated` / `authentication_failed` (answers to an Authenticate intent), `deliver` (a frame
from downstream), `kick`, `closed` (the transport is gone), `handle_timer`, `written`. Every input
carries `now` (Unix seconds, as from time.time(): envelopes stamp received_at with it) and returns
the intents the adapter carries out in order: SendToClient, PublishUpstream, Authenticate,
RegisterPresence, UnregisterPresence, Close. `next_timer()` says when `handle_timer` is due.

The rules it owns (numbers in SessionConfig):
- the first frame is Auth, answered within auth_timeout; before that only Auth and Ping are allowed;
- Ping is answered here with Pong; heartbeat_timeout without any frame closes the session;
- frames over max_frame_bytes, malformed frames and server-only frames get an Error frame; more than
  max_errors of those (or of refused frames) within error_window close the session;
- a token bucket limits SendMessage, Typing, ReadReceipt and Sync;
- SendMessage frames wait in a bounded FIFO and go upstream in groups, one envelope of at most
  send_window sends at a time (a sender's order survives several logic workers only so); an
  unanswered send is published again (same frame, the worker deduplicates) every send_timeout,
  send_retries times, then refused with UNAVAILABLE together with every send behind it (the client
  sends them again in order);
- bytes handed to the adapter and not confirmed as written are counted: a reader that falls more
  than max_pending_bytes behind is disconnected, so it never holds up anyone else;
- after Close (or `closed`), every input is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from realtime.session_intents import (
    Authenticate,
    Close,
    Identity,
    Intent,
    PublishUpstream,
    RegisterPresence,
    SendToClient,
    UnregisterPresence,
)
from realtime.session_limits import ErrorBudget, SendWindow, TokenBucket
from schema.codec import (
    Auth,
    AuthResult,
    ClientFrame,
    ErrorCode,
    ErrorFrame,
    FrameError,
    FrameType,
    Kicked,
    MessageAck,
    Ping,
    Pong,
    PushAck,
    Resync,
    SendError,
    SendErrorCode,
    SendMessage,
    Upstream,
    decode_client_frame,
    decode_frame,
    encode_frame,
    encode_upstream,
    frame_type,
)

__all__ = [
    "NORMAL_CLOSURE",
    "Authenticate",
    "Close",
    "Identity",
    "Intent",
    "PublishUpstream",
    "RegisterPresence",
    "SendToClient",
    "Session",
    "SessionConfig",
    "State",
    "UnregisterPresence",
    "answers_a_send",
]

NORMAL_CLOSURE = 1000
"""The Close code of a session ended on purpose (a kick) rather than for a protocol error."""

_PONG = encode_frame(Pong())
_RESYNC = encode_frame(Resync())
_POSITIVE_SETTINGS = (
    "auth_timeout",
    "heartbeat_seconds",
    "heartbeat_timeout",
    "max_frame_bytes",
    "error_window",
    "rate",
    "burst",
    "send_window",
    "send_timeout",
    "max_pending_bytes",
)
_ANSWERS = (FrameType.MESSAGE_ACK, FrameType.SEND_ERROR)


def answers_a_send(frame: bytes) -> bool:
    """Whether a downstream frame answers a SendMessage (MessageAck, SendError): then `deliver` lets
    the session's next send go. Only these move a session's timers: a push leaves them as they were
    (or closes the session, whose timers then stop)."""
    try:
        return frame_type(frame) in _ANSWERS
    except FrameError:
        return False  # not ours to police: the client gets what the server sent


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Limits and timers of a session. Durations in seconds, sizes in bytes."""

    auth_timeout: float = 5.0
    heartbeat_seconds: int = 30
    """Announced to the client in AuthResult: how often it should ping."""
    heartbeat_timeout: float = 90.0
    max_frame_bytes: int = 65536
    max_errors: int = 5
    """More errors than this within error_window close the session."""
    error_window: float = 60.0
    rate: float = 50.0
    """Rate-limited frames (SendMessage, Typing, ReadReceipt, Sync) per second, sustained."""
    burst: int = 100
    send_window: int = 32
    """SendMessage frames published and not yet answered; 1 keeps the sender's order at the worker."""
    max_queued_sends: int = 256
    send_timeout: float = 10.0
    send_retries: int = 3
    max_pending_bytes: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in _POSITIVE_SETTINGS:
            if getattr(self, name) <= 0:
                raise ValueError(f"SessionConfig.{name} must be positive, got {getattr(self, name)}")
        for name in ("max_errors", "max_queued_sends", "send_retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"SessionConfig.{name} must not be negative, got {getattr(self, name)}")


class State(Enum):
    NEW = "new"
    """Created; `connected` not called yet."""
    AWAITING_AUTH = "awaiting_auth"
    AUTHENTICATING = "authenticating"
    """Auth received; the adapter is checking it."""
    OPEN = "open"
    CLOSED = "closed"


class Session:
    """The protocol state of one client connection. Not thread-safe: one caller at a time."""

    def __init__(self, node_id: str, connection_id: int, config: SessionConfig | None = None) -> None:
        self.node_id = node_id
        self.connection_id = connection_id
        self.config = config = config or SessionConfig()
        self._state = State.NEW
        self._identity: Identity | None = None
        self._intents: list[Intent] = []
        self._auth_deadline = 0.0
        self._last_received = 0.0
        self._pending_bytes = 0
        self._rate = TokenBucket(config.rate, config.burst)
        self._errors = ErrorBudget(config.max_errors, config.error_window)
        self._sends = SendWindow(
            window=config.send_window,
            max_queued=config.max_queued_sends,
            timeout=config.send_timeout,
            retries=config.send_retries,
        )

    # What the adapter may read.

    @property
    def state(self) -> State:
        return self._state

    @property
    def identity(self) -> Identity | None:
        """Set once authenticated (kept after close, for logs)."""
        return self._identity

    @property
    def pending_bytes(self) -> int:
        """Bytes handed out in SendToClient and not yet confirmed by `written`."""
        return self._pending_bytes

    @property
    def queued_sends(self) -> int:
        """SendMessage frames waiting for their turn (not counting those in flight)."""
        return self._sends.queued

    @property
    def in_flight_sends(self) -> int:
        return self._sends.in_flight

    def next_timer(self) -> float | None:
        """When handle_timer must be called next (Unix seconds), or None when no timer is running."""
        if self._state in (State.AWAITING_AUTH, State.AUTHENTICATING):
            return self._auth_deadline
        if self._state is State.OPEN:
            heartbeat = self._last_received + self.config.heartbeat_timeout
            send = self._sends.next_deadline()
            return heartbeat if send is None else min(heartbeat, send)
        return None

    # Inputs.

    def connected(self, now: float) -> list[Intent]:
        """The transport is up: the client has auth_timeout to authenticate."""
        if self._state is not State.NEW:
            raise RuntimeError(f"connected() called twice (session is {self._state.value})")
        self._state = State.AWAITING_AUTH
        self._auth_deadline = now + self.config.auth_timeout
        self._last_received = now
        return []

    def receive(self, data: bytes, now: float) -> list[Intent]:
        """One whole frame from the client."""
        if self._ignoring():
            return []
        self._last_received = max(self._last_received, now)
        if len(data) > self.config.max_frame_bytes:
            limit = self.config.max_frame_bytes
            self._error(ErrorCode.TOO_LARGE, f"frame of {len(data)} bytes is over the limit of {limit} bytes", now)
            return self._flush()
        try:
            frame = decode_client_frame(data)
        except FrameError as exc:
            self._error(exc.code, exc.message, now)
            return self._flush()
        if isinstance(frame, Ping):
            self._send(_PONG)
        elif isinstance(frame, Auth):
            self._on_auth(frame, now)
        elif self._state is not State.OPEN:
            self._error(ErrorCode.NOT_AUTHENTICATED, "authenticate first: the first frame must be Auth", now)
        elif isinstance(frame, PushAck):
            pass  # the client holds the push; nothing upstream needs to know yet
        elif not self._rate.take(now):
            self._refuse_rate_limited(frame)
        elif isinstance(frame, SendMessage):
            self._on_send(frame, data, now)
        else:  # Sync, ReadReceipt, Typing
            self._emit(PublishUpstream(self._envelope(data, now)))
        return self._flush()

    def refuse(self, code: ErrorCode, message: str, now: float) -> list[Intent]:
        """Something the transport could not hand over as a frame (one over its size limit)."""
        if self._ignoring():
            return []
        self._error(code, message, now)
        return self._flush()

    def authenticated(self, user_id: int, session_id: int, device_id: str, platform: str, now: float) -> list[Intent]:
        """The adapter accepted the Auth frame's token: presence is recorded, then the client is told."""
        if self._state is State.CLOSED:
            return []  # the client left, or the auth timeout fired, while the adapter was checking
        self._expect(State.AUTHENTICATING, "authenticated")
        self._identity = Identity(user_id, session_id, device_id, platform)
        self._state = State.OPEN
        self._emit(RegisterPresence(user_id, session_id, device_id, platform))
        heartbeat = self.config.heartbeat_seconds
        self._send(encode_frame(AuthResult(user_id=user_id, session_id=session_id, heartbeat_seconds=heartbeat)))
        return self._flush()

    def authentication_failed(self, reason: str, now: float) -> list[Intent]:
        """The adapter refused the Auth frame's token; `reason` is shown to the client."""
        if self._state is State.CLOSED:
            return []
        self._expect(State.AUTHENTICATING, "authentication_failed")
        self._fail(ErrorCode.AUTH_FAILED, reason)
        return self._flush()

    def deliver(self, frame: bytes, now: float, *, answers: bool | None = None) -> list[Intent]:
        """A frame from downstream for this connection, passed on as is. A MessageAck or SendError
        answers an in-flight send, which lets the next queued send go upstream. `answers` is
        `answers_a_send(frame)` when the caller has it already (a frame fanned out to many sessions)."""
        if self._state is not State.OPEN:
            return []  # nothing reaches a client before it has authenticated
        self._send(frame)
        if answers is None:
            answers = answers_a_send(frame)
        if answers:
            self._on_answer(frame, now)
        return self._flush()

    def resync(self, now: float) -> list[Intent]:
        """The node's NATS connection dropped and came back: pushes for this session may be gone
        (core NATS keeps nothing for a subscriber that is away), so the client is told to sync."""
        if self._state is not State.OPEN:
            return []  # a session authenticating now syncs after its AuthResult anyway
        self._send(_RESYNC)
        return self._flush()

    def kick(self, reason: str, now: float) -> list[Intent]:
        """End the session on the server's word (logout, ban, password_change, replaced)."""
        if self._ignoring():
            return []
        self._close(NORMAL_CLOSURE, f"kicked: {reason}", encode_frame(Kicked(reason=reason)))
        return self._flush()

    def closed(self, now: float) -> list[Intent]:
        """The transport is gone (the client left or the connection broke)."""
        if self._state is State.CLOSED:
            return []
        self._end()
        return self._flush()

    def handle_timer(self, now: float) -> list[Intent]:
        """Fire whatever is due at `now`; calling it early does nothing."""
        if self._state in (State.AWAITING_AUTH, State.AUTHENTICATING):
            if now >= self._auth_deadline:
                self._fail(ErrorCode.AUTH_TIMEOUT, f"no successful Auth within {self.config.auth_timeout:g} s")
        elif self._state is State.OPEN:
            if now >= self._last_received + self.config.heartbeat_timeout:
                silence = self.config.heartbeat_timeout
                self._fail(ErrorCode.HEARTBEAT_TIMEOUT, f"no frame from the client for {silence:g} s")
            else:
                publish, given_up = self._sends.expire(now)
                for client_msg_id in given_up:
                    self._refuse_send(client_msg_id, SendErrorCode.UNAVAILABLE, "no answer from the server; retry")
                self._publish_sends(publish, now)
        return self._flush()

    def written(self, nbytes: int) -> None:
        """The adapter wrote `nbytes` of what SendToClient handed out to the transport."""
        self._pending_bytes = max(0, self._pending_bytes - nbytes)

    # Frames both ways.

    def _on_auth(self, frame: Auth, now: float) -> None:
        if self._state is State.AWAITING_AUTH:
            self._state = State.AUTHENTICATING
            self._emit(Authenticate(frame.token, frame.device_id, frame.platform))
        elif self._state is State.AUTHENTICATING:
            self._error(ErrorCode.UNEXPECTED_FRAME, "authentication is already in progress", now)
        else:
            self._error(ErrorCode.UNEXPECTED_FRAME, "already authenticated", now)

    def _on_send(self, frame: SendMessage, data: bytes, now: float) -> None:
        if self._sends.full:
            self._refuse_send(frame.client_msg_id, SendErrorCode.RATE_LIMITED, "too many messages waiting; retry")
        else:
            self._publish_sends(self._sends.add(frame.client_msg_id, data, now), now)

    def _on_answer(self, frame: bytes, now: float) -> None:
        try:
            answer = decode_frame(frame)
        except FrameError:
            return
        assert isinstance(answer, MessageAck | SendError)
        self._publish_sends(self._sends.answered(answer.client_msg_id, now), now)

    def _refuse_rate_limited(self, frame: ClientFrame) -> None:
        if isinstance(frame, SendMessage):
            self._refuse_send(frame.client_msg_id, SendErrorCode.RATE_LIMITED, "sending too fast; retry later")
        else:
            self._send(encode_frame(ErrorFrame(code=ErrorCode.RATE_LIMITED, message="too many frames; slow down")))

    def _refuse_send(self, client_msg_id: str, code: SendErrorCode, reason: str) -> None:
        self._send(encode_frame(SendError(client_msg_id=client_msg_id, code=code, reason=reason)))

    def _publish_sends(self, groups: list[list[bytes]], now: float) -> None:
        for group in groups:
            self._emit(PublishUpstream(self._envelope(group[0], now, tuple(group[1:]))))

    def _envelope(self, data: bytes, now: float, more_frames: tuple[bytes, ...] = ()) -> bytes:
        identity = self._identity
        assert identity is not None  # only open sessions publish
        upstream = Upstream(
            frame=data,
            more_frames=more_frames,
            user_id=identity.user_id,
            device_id=identity.device_id,
            session_id=identity.session_id,
            node_id=self.node_id,
            connection_id=self.connection_id,
            received_at=int(now * 1000),
        )
        payload: bytes = encode_upstream(upstream)
        return payload

    # Output, errors and closing.

    def _emit(self, intent: Intent) -> None:
        if self._state is not State.CLOSED:  # a close earlier in this call drops what follows it
            self._intents.append(intent)

    def _send(self, data: bytes) -> None:
        if self._pending_bytes + len(data) > self.config.max_pending_bytes:
            self._fail(ErrorCode.UNAVAILABLE, "slow reader")
        elif self._state is not State.CLOSED:
            self._pending_bytes += len(data)
            self._intents.append(SendToClient(data))

    def _error(self, code: ErrorCode, message: str, now: float) -> None:
        """Answer a bad frame with an Error frame; too many of them close the session."""
        self._send(encode_frame(ErrorFrame(code=code, message=message)))
        if not self._errors.spend(now):
            limit, window = self.config.max_errors, self.config.error_window
            self._fail(ErrorCode.TOO_MANY_ERRORS, f"more than {limit} errors within {window:g} s")

    def _fail(self, code: ErrorCode, message: str) -> None:
        self._close(code, message, encode_frame(ErrorFrame(code=code, message=message)))

    def _close(self, code: int, reason: str, farewell: bytes) -> None:
        """The last frame to the client, then Close. Bypasses the slow-reader check: it is the last."""
        if self._state is State.CLOSED:
            return
        self._pending_bytes += len(farewell)
        self._intents += [SendToClient(farewell), Close(code, reason)]
        self._end()

    def _end(self) -> None:
        """Closed for good: presence (if recorded) is removed, waiting sends are dropped."""
        if self._state is State.OPEN and self._identity is not None:
            i = self._identity
            self._intents.append(UnregisterPresence(i.user_id, i.session_id, i.device_id, i.platform))
        self._state = State.CLOSED
        self._sends.clear()

    def _ignoring(self) -> bool:
        if self._state is State.NEW:
            raise RuntimeError("call connected() before any other input")
        return self._state is State.CLOSED

    def _expect(self, state: State, call: str) -> None:
        if self._state is not state:
            raise RuntimeError(f"{call}() called while the session is {self._state.value}")

    def _flush(self) -> list[Intent]:
        intents, self._intents = self._intents, []
        return intents
