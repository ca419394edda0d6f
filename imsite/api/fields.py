"""Serializer fields shared by every app: snowflake ids travel as strings."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

MAX_ID = (1 << 63) - 1


@extend_schema_field({"type": "string", "pattern": "^[0-9]{1,19}$", "example": "7212345678901234567"})
class IdField(serializers.Field[int, Any, str, Any]):
    """A snowflake id: written as a decimal string (JavaScript cannot hold 64-bit integers)."""

    default_error_messages = {"invalid": "Must be an id: a string of up to 19 digits."}

    def to_representation(self, value: int) -> str:
        return str(value)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            value = data
        elif isinstance(data, str) and data.isascii() and data.isdigit() and len(data) <= 19:
            value = int(data)
        else:
            self.fail("invalid")
        if not 0 < value <= MAX_ID:
            self.fail("invalid")
        return value


def parse_id(raw: str) -> int | None:
    """A path or query id, or None when it cannot be one (the caller answers 404 or 400)."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19):
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers, booleans, lists and objects instead of turning them into text."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)
