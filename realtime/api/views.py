"""GET /api/v1/realtime/endpoints: where a client opens its realtime connection.

Access nodes come from settings.ACCESS_NODES: a list of "host:port" (env ACCESS_NODES, comma
separated; default ["127.0.0.1:4433"]). A user is given one of them, the same one each time
(user id modulo the count), so reconnects land where presence already points. The certificate the
nodes serve is settings.ACCESS_CERTIFICATE (a PEM file; default the development certificate in
VAR_DIR/certs, made when missing, which is the one `run_access` serves without --cert). Its
SHA-256 (of the DER certificate, as WebTransport's serverCertificateHashes wants) is given in hex.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from realtime.certificates import ensure_dev_certificate

DEFAULT_ACCESS_NODE = "127.0.0.1:4433"

_hash_cache: dict[Path, tuple[float, str]] = {}


def access_nodes() -> list[tuple[str, int]]:
    """The configured access nodes as (host, port); raises ImproperlyConfigured for a bad entry."""
    raw = getattr(settings, "ACCESS_NODES", None) or [DEFAULT_ACCESS_NODE]
    entries = [raw] if isinstance(raw, str) else list(raw)
    nodes: list[tuple[str, int]] = []
    for entry in entries:
        host, _, port = str(entry).strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(f"ACCESS_NODES entry {entry!r} is not host:port")
        nodes.append((host, int(port)))
    return nodes


def certificate_sha256_hex() -> str:
    """SHA-256 (hex) of the DER certificate the access nodes serve."""
    configured = getattr(settings, "ACCESS_CERTIFICATE", "")
    path = Path(configured) if configured else ensure_dev_certificate(Path(settings.VAR_DIR) / "certs").cert_path
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise ImproperlyConfigured(f"access node certificate {path} is unreadable: {exc}") from exc
    cached = _hash_cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(f"access node certificate {path} is unusable: {exc}") from exc
    digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    _hash_cache[path] = (mtime, digest)
    return digest


_EndpointsSerializer = inline_serializer(
    "RealtimeEndpoints",
    {
        "webtransport": inline_serializer(
            "WebTransportEndpoint",
            {
                "url": serializers.CharField(),
                "certificate_hashes": inline_serializer(
                    "CertificateHash",
                    {
                        "algorithm": serializers.CharField(help_text='always "sha-256"'),
                        "value": serializers.CharField(help_text="hex SHA-256 of the DER certificate"),
                    },
                    many=True,
                ),
            },
        ),
        "websocket": inline_serializer("WebSocketEndpoint", {"url": serializers.CharField()}),
        "heartbeat_seconds": serializers.IntegerField(),
    },
)


class EndpointsView(APIView):
    @extend_schema(
        tags=["realtime"],
        summary="Where to open the realtime connection: a WebTransport access node, or the WebSocket fallback",
        responses={200: _EndpointsSerializer},
    )
    def get(self, request: Request) -> Response:
        user = request.user
        if not isinstance(user, User):
            raise NotAuthenticated()
        nodes = access_nodes()
        host, port = nodes[user.id % len(nodes)]
        url_host = f"[{host}]" if ":" in host else host
        data: dict[str, Any] = {
            "webtransport": {
                "url": f"https://{url_host}:{port}/wt",
                "certificate_hashes": [{"algorithm": "sha-256", "value": certificate_sha256_hex()}],
            },
            "websocket": {"url": f"{'wss' if request.is_secure() else 'ws'}://{request.get_host()}/ws"},
            "heartbeat_seconds": settings.HEARTBEAT_SECONDS,
        }
        return Response(data)
