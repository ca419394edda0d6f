"""Throttles: per IP on the auth endpoints, per user elsewhere (per IP for anonymous callers).

Rates come from settings.THROTTLE_RATES at request time, so they can change without a re-import.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        rates: dict[str, str] = settings.THROTTLE_RATES
        return rates.get(self.scope or "")


class AuthRateThrottle(_SettingsRateThrottle):
    """Login, registration and token refresh: counted per client IP."""

    scope = "auth"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class UserRateThrottle(_SettingsRateThrottle):
    """Everything else: per user when authenticated, per IP otherwise (the anon rate)."""

    scope = "user"

    def allow_request(self, request: Request, view: Any) -> bool:
        authenticated = bool(request.user and request.user.is_authenticated)
        self.scope = "user" if authenticated else "anon"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        authenticated = bool(request.user and request.user.is_authenticated)
        ident = str(request.user.pk) if authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
