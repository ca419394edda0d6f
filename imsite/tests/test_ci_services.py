"""In CI's service run (CI_SERVICES=1) the real PostgreSQL, Redis and NATS must be the ones in use
and reachable: a missing service fails here, it is never skipped."""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connection

IN_SERVICE_RUN = os.environ.get("CI_SERVICES") == "1"


def _greeting(url: str) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout=2) as sock:
        return sock.recv(4096)


@pytest.mark.django_db
def test_the_configured_services_are_the_real_ones_and_answer() -> None:
    if not IN_SERVICE_RUN:
        # Outside the service run the embedded default is in use: SQLite and no Redis.
        assert connection.vendor == "sqlite" or os.environ.get("DATABASE_URL")
        return
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    assert settings.REDIS_URL
    import redis

    assert redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
    greeting = _greeting(os.environ["NATS_URL"])
    assert greeting.startswith(b"INFO ")
    assert b'"jetstream":true' in greeting.replace(b" ", b"")


def test_settings_follow_the_environment(settings: Any) -> None:
    assert bool(settings.REDIS_URL) == bool(os.environ.get("REDIS_URL"))
