"""Error codes of the API and the service errors that carry them to the response envelope."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    VALIDATION = 40000
    MALFORMED_REQUEST = 40001
    NOT_AUTHENTICATED = 40100
    TOKEN_INVALID = 40101
    BAD_CREDENTIALS = 40102
    PERMISSION_DENIED = 40300
    BLOCKED = 40301
    NOT_FOUND = 40400
    METHOD_NOT_ALLOWED = 40500
    NOT_ACCEPTABLE = 40600
    CONFLICT = 40900
    UNSUPPORTED_MEDIA_TYPE = 41500
    THROTTLED = 42900
    SERVER_ERROR = 50000
    UNAVAILABLE = 50300


class ServiceError(Exception):
    """A business rule said no. Services raise these; the API turns them into envelopes."""

    status = 400
    code = ErrorCode.VALIDATION

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}


class InvalidInput(ServiceError):
    status = 400
    code = ErrorCode.VALIDATION


class BadCredentials(ServiceError):
    status = 401
    code = ErrorCode.BAD_CREDENTIALS


class TokenInvalid(ServiceError):
    status = 401
    code = ErrorCode.TOKEN_INVALID


class Forbidden(ServiceError):
    status = 403
    code = ErrorCode.PERMISSION_DENIED


class Blocked(ServiceError):
    status = 403
    code = ErrorCode.BLOCKED


class NotFound(ServiceError):
    status = 404
    code = ErrorCode.NOT_FOUND


class Conflict(ServiceError):
    status = 409
    code = ErrorCode.CONFLICT


class ServiceUnavailable(ServiceError):
    status = 503
    code = ErrorCode.UNAVAILABLE
