"""Every Redis key (and the embedded equivalents' names) the platform uses, named in one place."""

from __future__ import annotations

PREFIX = "im"


def presence_user(user_id: int) -> str:
    """HASH of one user's live connections: field "<node>/<connection>" -> "<session>|<device>|<platform>"."""
    return f"{PREFIX}:presence:user:{user_id}"


PRESENCE_NODE_PREFIX = f"{PREFIX}:presence:node:"


def presence_node(node_id: str) -> str:
    """STRING with a TTL: the access node is alive while this key exists (PRESENCE_NODE_PREFIX + id)."""
    return f"{PRESENCE_NODE_PREFIX}{node_id}"


# The embedded backend keeps presence in a NATS JetStream key-value bucket of this name,
# keys "<user>.<node>.<connection>".
PRESENCE_KV_BUCKET = "im_presence"
