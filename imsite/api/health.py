"""GET /api/v1/health: the status of each dependency (database, Redis, NATS)."""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from imsite.api.envelope import envelope
from imsite.errors import ErrorCode

_TIMEOUT_SECONDS = 1.0


def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check()
        status = "ok"
    except Exception as exc:  # a failed dependency is reported, not raised
        detail = f"{type(exc).__name__}: {exc}"
        status = "down"
    return {"status": status, "detail": detail, "latencyMs": round((time.perf_counter() - started) * 1000, 2)}


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return str(connection.vendor)


def check_redis() -> str:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=_TIMEOUT_SECONDS, socket_connect_timeout=1)
    try:
        client.ping()
        return "ping ok"
    finally:
        client.close()


def check_nats() -> str:
    """Opens a TCP connection and reads the server's INFO line (the first thing NATS always sends)."""
    first = settings.NATS_URL.split(",")[0].strip()
    parts = urlsplit(first if "://" in first else f"nats://{first}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    with socket.create_connection((host, port), timeout=_TIMEOUT_SECONDS) as sock:
        sock.settimeout(_TIMEOUT_SECONDS)
        greeting = sock.recv(4096)
    if not greeting.startswith(b"INFO "):
        raise ConnectionError(f"{host}:{port} did not greet like a NATS server")
    return f"{host}:{port}"


def health_report() -> dict[str, Any]:
    deps: dict[str, Any] = {"database": _timed(check_database), "nats": _timed(check_nats)}
    if settings.REDIS_URL:
        deps["redis"] = _timed(check_redis)
    else:
        deps["redis"] = {"status": "disabled", "detail": "REDIS_URL unset: embedded cache and presence", "latencyMs": 0}
    healthy = all(dep["status"] in ("ok", "disabled") for dep in deps.values())
    return {"status": "ok" if healthy else "degraded", "dependencies": deps}


_dependency = inline_serializer(
    "DependencyStatus",
    {
        "status": serializers.ChoiceField(choices=["ok", "down", "disabled"]),
        "detail": serializers.CharField(),
        "latency_ms": serializers.FloatField(),
    },
)


class HealthView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        summary="Status of each dependency",
        responses={
            200: inline_serializer(
                "Health",
                {
                    "status": serializers.ChoiceField(choices=["ok", "degraded"]),
                    "dependencies": inline_serializer(
                        "Dependencies", {"database": _dependency, "nats": _dependency, "redis": _dependency}
                    ),
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        report = health_report()
        if report["status"] == "ok":
            return Response(report)
        failed = ", ".join(name for name, dep in report["dependencies"].items() if dep["status"] == "down")
        response = Response(
            envelope(report, code=int(ErrorCode.UNAVAILABLE), message=f"Degraded: {failed} unreachable."),
            status=503,
        )
        response.exception = True  # already wrapped: the renderer must not wrap it again
        return response
