"""Every Redis key (and the embedded equivalents' names) the platform uses, named in one place."""

from __future__ import annotations

PREFIX = "im"


def presence_user(user_id: int) -> str:
    """HASH of one user's live connections: field "<node>/<connection>" -> "<session>|<device>|<platform>"."""
    return f"{PREFIX}:presence:user:{user_id}"


def presence_node(node_id: str) -> str:
    """STRING with a TTL: the access node is alive while this key exists."""
    return f"{PREFIX}:presence:node:{node_id}"


# The embedded backend keeps presence in a NATS JetStream key-value bucket of this name,
# keys "<user>.<node>.<connection>".
PRESENCE_KV_BUCKET = "im_presence"
