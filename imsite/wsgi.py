"""WSGI entry point (for plain HTTP servers; daphne uses imsite.asgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imsite.settings")

application = get_wsgi_application()
