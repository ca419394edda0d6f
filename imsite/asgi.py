"""ASGI entry point for daphne: HTTP through Django (WebSocket routes join with the access layer)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imsite.settings")

application = get_asgi_application()
