"""The Django project: settings, URLs, ASGI and the pieces every app shares."""
