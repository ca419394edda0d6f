"""The Python client library: ImClient over a WebSocket or WebTransport transport."""

from realtime.client.client import (
    AuthError,
    ClientClosed,
    ClientError,
    Event,
    ImClient,
    KickedError,
    SendRefused,
)
from realtime.client.transports import (
    Transport,
    TransportClosed,
    TransportError,
    TransportFactory,
    WebSocketTransport,
    WebTransportTransport,
    failover_factory,
    websocket_factory,
    webtransport_factory,
)

__all__ = [
    "AuthError",
    "ClientClosed",
    "ClientError",
    "Event",
    "ImClient",
    "KickedError",
    "SendRefused",
    "Transport",
    "TransportClosed",
    "TransportError",
    "TransportFactory",
    "WebSocketTransport",
    "WebTransportTransport",
    "failover_factory",
    "websocket_factory",
    "webtransport_factory",
]
