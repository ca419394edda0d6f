"""One exception handler: every failure comes back in the envelope with a message a person can act on."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from djangorestframework_camel_case.util import camelize_re, underscore_to_camel
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from imsite.api.envelope import envelope
from imsite.errors import ErrorCode, ServiceError

logger = logging.getLogger(__name__)

_API_CODES: list[tuple[type[exceptions.APIException], ErrorCode]] = [
    (exceptions.ValidationError, ErrorCode.VALIDATION),
    (exceptions.ParseError, ErrorCode.MALFORMED_REQUEST),
    (exceptions.NotAuthenticated, ErrorCode.NOT_AUTHENTICATED),
    (exceptions.AuthenticationFailed, ErrorCode.TOKEN_INVALID),
    (exceptions.PermissionDenied, ErrorCode.PERMISSION_DENIED),
    (exceptions.NotFound, ErrorCode.NOT_FOUND),
    (exceptions.MethodNotAllowed, ErrorCode.METHOD_NOT_ALLOWED),
    (exceptions.NotAcceptable, ErrorCode.NOT_ACCEPTABLE),
    (exceptions.UnsupportedMediaType, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    (exceptions.Throttled, ErrorCode.THROTTLED),
]


def _camel(name: str) -> str:
    return str(camelize_re.sub(underscore_to_camel, name))


def _flatten(detail: Any, path: str = "") -> list[tuple[str, str]]:
    """[(field path, message)] from a DRF error detail tree."""
    if isinstance(detail, dict):
        out: list[tuple[str, str]] = []
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", "detail") else _camel(str(key))
            out += _flatten(value, f"{path}.{name}" if path and name else (name or path))
        return out
    if isinstance(detail, list):
        out = []
        for index, value in enumerate(detail):
            # Lists of messages share the path; lists of objects get an index.
            out += _flatten(value, f"{path}[{index}]" if isinstance(value, (dict, list)) else path)
        return out
    return [(path, str(detail))]


def _validation_message(detail: Any) -> str:
    parts = [f"{field}: {message}" if field else message for field, message in _flatten(detail)]
    return "; ".join(parts) or "Invalid input."


def _api_exception_body(exc: exceptions.APIException) -> tuple[int, str, Any]:
    code = next((c for cls, c in _API_CODES if isinstance(exc, cls)), ErrorCode.VALIDATION)
    if isinstance(exc, exceptions.ValidationError):
        return code, _validation_message(exc.detail), {"errors": exc.detail}
    if isinstance(exc, exceptions.ParseError):
        return code, f"The request body could not be parsed: {exc.detail}", None
    if isinstance(exc, exceptions.Throttled):
        raw_wait = getattr(exc, "wait", None)
        wait = int(raw_wait) if raw_wait is not None else None
        message = "Too many requests." + (f" Try again in {wait} seconds." if wait is not None else "")
        return code, message, {"retryAfterSeconds": wait}
    if isinstance(exc, exceptions.NotAuthenticated):
        return code, "Authentication required: send 'Authorization: Bearer <accessToken>'.", None
    detail = exc.detail
    if isinstance(detail, dict):
        message = str(detail.get("detail") or detail.get("message") or exc.default_detail)
    elif isinstance(detail, list):
        message = "; ".join(str(d) for d in detail)
    else:
        message = str(detail)
    return code, message, None


def envelope_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    set_rollback()
    if isinstance(exc, ServiceError):
        data: Any = {"field": exc.field, **exc.details} if (exc.field or exc.details) else None
        return Response(envelope(data, code=int(exc.code), message=exc.message), status=exc.status)
    if isinstance(exc, (Http404, ObjectDoesNotExist)):
        exc = exceptions.NotFound("Not found: no such resource, or it is not yours to see.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        base = drf_exception_handler(exc, context)  # for its headers (WWW-Authenticate, Retry-After)
        code, message, data = _api_exception_body(exc)
        headers = dict(base.headers.items()) if base is not None else {}
        headers.pop("Content-Type", None)
        return Response(envelope(data, code=int(code), message=message), status=exc.status_code, headers=headers)
    request = context.get("request")
    logger.exception(
        "unhandled error in API view",
        extra={"path": getattr(request, "path", ""), "view": type(context.get("view")).__name__},
    )
    request_id = getattr(getattr(request, "_request", request), "request_id", "")
    return Response(
        envelope(None, code=int(ErrorCode.SERVER_ERROR), message=f"Internal server error (request id {request_id})."),
        status=500,
    )
