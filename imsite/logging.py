"""Structured log lines: key=value context (requestId, userId, nodeId) carried by contextvars."""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039


def bind(**fields: Any) -> contextvars.Token[dict[str, Any]]:
    """Add fields to every log line of the current task or thread until reset."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    return _context.set(merged)


def reset(token: contextvars.Token[dict[str, Any]]) -> None:
    _context.reset(token)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.context = _context.get()
        return True


class StructuredFormatter(logging.Formatter):
    """`time level logger message key=value ...`; extra= fields and bound context both appear."""

    _reserved = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"context", "message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = dict(getattr(record, "context", {}) or {})
        for key, value in record.__dict__.items():
            if key not in self._reserved and not key.startswith("_"):
                fields[key] = value
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {record.getMessage()}"
        if fields:
            line += " " + " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line
