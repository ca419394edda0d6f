"""The response envelope: {"code": 0, "message": "success", "data": ...}, camelCase keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from djangorestframework_camel_case.render import CamelCaseJSONRenderer


def envelope(data: Any, *, code: int = 0, message: str = "success") -> dict[str, Any]:
    return {"code": code, "message": message, "data": data}


class EnvelopeJSONRenderer(CamelCaseJSONRenderer):  # type: ignore[misc]
    """Wraps successful responses; error responses arrive already wrapped by the exception handler."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        response = (renderer_context or {}).get("response")
        if response is not None and not getattr(response, "exception", False):
            data = envelope(data)
        try:
            return super().render(data, accepted_media_type, renderer_context)  # type: ignore[no-any-return]
        except UnicodeEncodeError:
            # A lone surrogate (echoed from bad input in an error message) cannot be UTF-8:
            # escape everything rather than fail the response.
            self.ensure_ascii = True
            return super().render(data, accepted_media_type, renderer_context)  # type: ignore[no-any-return]
