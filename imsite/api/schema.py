"""OpenAPI post-processing: every documented response is shown inside the envelope it travels in."""

from __future__ import annotations

from typing import Any

ERROR_ENVELOPE = "ErrorEnvelope"
_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


def _wrap(schema: dict[str, Any] | None) -> dict[str, Any]:
    data = schema if schema is not None else {"nullable": True, "description": "No data"}
    return {
        "type": "object",
        "properties": {"code": {"type": "integer", "enum": [0]}, "message": {"type": "string"}, "data": data},
        "required": ["code", "message", "data"],
    }


def wrap_in_envelope(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_ENVELOPE] = {
        "type": "object",
        "description": "Every error: a non-zero code, a message a person can act on, optional details.",
        "properties": {
            "code": {"type": "integer", "minimum": 1},
            "message": {"type": "string"},
            "data": {"nullable": True, "type": "object", "additionalProperties": {}},
        },
        "required": ["code", "message", "data"],
    }
    error_response = {
        "description": "Error (validation, authentication, permission, not found, throttled, server)",
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_ENVELOPE}"}}},
    }
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, response in list(responses.items()):
                if not str(status).startswith("2"):
                    continue
                content = response.get("content")
                if not content:
                    response["content"] = {"application/json": {"schema": _wrap(None)}}
                    continue
                for media in content.values():
                    media["schema"] = _wrap(media.get("schema"))
            responses.setdefault("default", error_response)
    return result
