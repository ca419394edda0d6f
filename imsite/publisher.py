"""publish_on_commit: the one way Django code (views, services, admin) publishes to NATS.

Publishes wait for the surrounding transaction to commit, so nobody hears of a change that rolled
back, and then go through the process's NATS bridge without blocking the caller.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from imsite.events import UserEvent, encode_event
from imsite.nats_bridge import bridge
from imsite.nats_subjects import user_event

Sink = Callable[[str, bytes], None]

_sink: Sink = bridge.publish


def set_sink(sink: Sink | None) -> Sink:
    """Replace where payloads go (tests capture them); None restores NATS. Returns the previous sink."""
    global _sink
    previous = _sink
    _sink = sink or bridge.publish
    return previous


def publish_on_commit(subject: str, payload: bytes) -> None:
    transaction.on_commit(lambda: _sink(subject, payload))


def publish_user_event(event: UserEvent) -> None:
    publish_on_commit(user_event(event.user_id), encode_event(event))
