"""A JSON body parser that turns every malformed body into a 400, never a 500.

The project default (djangorestframework_camel_case's CamelCaseJSONParser) lets a RecursionError from
deeply nested JSON escape as a server error, and accepts NaN and Infinity, which are not JSON.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from django.conf import settings
from djangorestframework_camel_case.parser import CamelCaseJSONParser
from djangorestframework_camel_case.util import underscoreize
from rest_framework.exceptions import ParseError


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


class StrictCamelCaseJSONParser(CamelCaseJSONParser):  # type: ignore[misc]
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(stream.read().decode(encoding), parse_constant=_refuse_constant)
            return underscoreize(data, **self.json_underscoreize)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the body is nested too deeply") from exc
        except ValueError as exc:  # includes UnicodeDecodeError and json.JSONDecodeError
            raise ParseError(f"JSON parse error - {exc}") from exc
