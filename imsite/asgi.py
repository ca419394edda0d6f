"""ASGI entry point for daphne: HTTP through Django, and the WebSocket fallback of the access layer at /ws."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imsite.settings")

http_application = get_asgi_application()  # sets Django up before the consumer's imports

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from realtime.websocket import SessionConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": URLRouter([path("ws", SessionConsumer.as_asgi())]),
    }
)
