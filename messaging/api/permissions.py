"""Who may reach the conversation and group endpoints.

Membership itself is enforced by the services and selectors (the logic worker calls them too): a
conversation the caller is not a member of answers 404, as if it did not exist. Here: the caller must
be a signed-in user, and a path id that cannot be a snowflake answers 404 before any database work.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import User
from imsite.api.fields import parse_id


class PathIdsAreIds(BasePermission):
    """Parses every `*_id` path argument into view.path_ids; a malformed one answers 404."""

    def has_permission(self, request: Request, view: Any) -> bool:
        parsed: dict[str, int] = {}
        for name, raw in getattr(view, "kwargs", {}).items():
            if not name.endswith("_id"):
                continue
            value = parse_id(str(raw))
            if value is None:
                raise NotFound(f"Not found: '{raw}' is not an id.")
            parsed[name] = value
        view.path_ids = parsed
        return True


def acting_user(request: Request) -> User:
    """The signed-in user of the request (IsAuthenticated has already run)."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user
