"""Every NATS subject and queue group the platform uses (ARCHITECTURE.md), named in one place."""

from __future__ import annotations

LOGIC_UPSTREAM = "im.logic.upstream"
LOGIC_QUEUE_GROUP = "logic-group"
ACCESS_BROADCAST = "im.access.broadcast"


def access_downstream(node_id: str | int) -> str:
    """Pushes for the connections of one access node."""
    return f"im.access.{node_id}.downstream"


def user_event(user_id: int) -> str:
    """Kicks (logout, ban), profile and friend changes of one user, for whoever holds their sessions."""
    return f"im.user.{user_id}.event"


USER_EVENT_WILDCARD = "im.user.*.event"
