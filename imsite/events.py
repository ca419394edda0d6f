"""Events published on im.user.{id}.event: typed msgspec structs, encoded as msgpack.

Access nodes act on them (a kick closes live sessions); other listeners refresh what they show.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class UserEvent(msgspec.Struct, tag_field="type", frozen=True):
    user_id: int


class SessionsKicked(UserEvent, tag="kick", frozen=True):
    """Close live sessions of the user: one device session (session_id) or all (session_id 0)."""

    session_id: int
    reason: Literal["logout", "password_change", "ban", "replaced", "reuse"]


class ProfileChanged(UserEvent, tag="profile", frozen=True):
    pass


class FriendsChanged(UserEvent, tag="friends", frozen=True):
    """A request arrived or was answered, a friendship began or ended, or a block changed."""

    other_user_id: int
    change: Literal["request_received", "request_accepted", "request_rejected", "removed", "blocked", "unblocked"]


AnyUserEvent = SessionsKicked | ProfileChanged | FriendsChanged

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyUserEvent)


def encode_event(event: UserEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(payload: bytes) -> AnyUserEvent:
    """Raises msgspec.DecodeError / ValidationError on a payload that is not a known event."""
    event: AnyUserEvent = _decoder.decode(payload)
    return event
