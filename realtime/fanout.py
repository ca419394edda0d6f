"""Frames addressed to users, turned into Downstream envelopes for the access nodes where those users
are connected: one (or a few, when large) per node, from one presence lookup for all the users. The
logic worker routes its pushes this way, and an access node its presence announcements."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec

from realtime.presence import PresenceStore
from schema.codec import Delivery, Downstream, encode_downstream

# NATS refuses payloads over its max_payload (1 MiB by default): split a node's batch before that.
MAX_DOWNSTREAM_BYTES = 512 * 1024


class Fanout(msgspec.Struct, frozen=True, gc=False):
    """One encoded frame for every live connection of these users, except the `skip` connection
    (a Struct: one is made per message)."""

    frame: bytes
    user_ids: tuple[int, ...]
    skip: tuple[str, int] | None = None


async def route_fanouts(
    fanouts: Sequence[Fanout],
    presence: PresenceStore,
    direct: Mapping[str, Iterable[tuple[bytes, tuple[int, ...]]]] | None = None,
) -> list[tuple[str, bytes]]:
    """(node id, Downstream payload) pairs for the fanouts, and for `direct` frames already addressed to
    a node's connections, which travel in the same envelopes."""
    per_node: dict[str, list[Delivery]] = {
        node: [Delivery(frame=frame, connection_ids=connections) for frame, connections in items]
        for node, items in (direct or {}).items()
    }
    wanted = {user for fanout in fanouts for user in fanout.user_ids}
    located = await presence.locate(wanted) if wanted else {}
    # A batch's pushes mostly repeat a few (recipients, skipped connection) pairs, one per
    # conversation and sending connection: each pair's connections are worked out once.
    targets_of: dict[tuple[tuple[int, ...], tuple[str, int] | None], list[tuple[str, tuple[int, ...]]]] = {}
    for fanout in fanouts:
        key = (fanout.user_ids, fanout.skip)
        targets = targets_of.get(key)
        if targets is None:
            by_node: dict[str, list[int]] = {}
            for user in fanout.user_ids:
                for location in located.get(user, ()):
                    if fanout.skip is not None and (location.node_id, location.connection_id) == fanout.skip:
                        continue
                    by_node.setdefault(location.node_id, []).append(location.connection_id)
            targets = targets_of[key] = [(node, tuple(connections)) for node, connections in by_node.items()]
        for node, connection_ids in targets:
            deliveries = per_node.get(node)
            if deliveries is None:
                deliveries = per_node[node] = []
            deliveries.append(Delivery(frame=fanout.frame, connection_ids=connection_ids))
    return [(node, payload) for node, deliveries in per_node.items() for payload in _envelopes(deliveries)]


def _envelopes(deliveries: list[Delivery]) -> list[bytes]:
    chunks: list[list[Delivery]] = [[]]
    size = 0
    for delivery in deliveries:
        cost = len(delivery.frame) + 8 * len(delivery.connection_ids) + 32
        if chunks[-1] and size + cost > MAX_DOWNSTREAM_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(delivery)
        size += cost
    return [encode_downstream(Downstream(deliveries=tuple(chunk))) for chunk in chunks if chunk]
