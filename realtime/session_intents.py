"""What the session core asks its adapter to do (intents, carried out in the order given) and who an
authenticated session belongs to. Import them from realtime.session."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SendToClient:
    """Write these bytes (one whole frame) to the client; then report them with Session.written."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PublishUpstream:
    """Publish this encoded Upstream envelope on im.logic.upstream."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Check the token and record the device, then call Session.authenticated or authentication_failed."""

    token: str
    device_id: str
    platform: str


@dataclass(frozen=True, slots=True)
class RegisterPresence:
    """Record that this connection (the adapter's node_id and connection_id) holds this user's session."""

    user_id: int
    session_id: int
    device_id: str
    platform: str


@dataclass(frozen=True, slots=True)
class UnregisterPresence:
    """Remove what RegisterPresence recorded."""

    user_id: int
    session_id: int
    device_id: str
    platform: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close the transport with this code (an ErrorCode, or NORMAL_CLOSURE) after the frames before it."""

    code: int
    reason: str


Intent = SendToClient | PublishUpstream | Authenticate | RegisterPresence | UnregisterPresence | Close


@dataclass(frozen=True, slots=True)
class Identity:
    """Who an authenticated session belongs to."""

    user_id: int
    session_id: int
    device_id: str
    platform: str
