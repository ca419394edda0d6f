"""The abstract base model every table uses: snowflake id, timestamps and a soft-delete flag."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models
from django.utils import timezone

from imsite.snowflake import next_id

_M = TypeVar("_M", bound=models.Model)


class LiveQuerySet(models.QuerySet[_M]):
    def soft_delete(self) -> int:
        return self.update(deleted=True, updated_at=timezone.now())


_LiveManagerBase = models.Manager.from_queryset(LiveQuerySet)


class LiveManager(_LiveManagerBase[_M]):
    """The default manager: soft-deleted rows are invisible unless asked for via all_objects."""

    def get_queryset(self) -> LiveQuerySet[_M]:
        queryset: LiveQuerySet[_M] = super().get_queryset()  # type: ignore[assignment]
        return queryset.filter(deleted=False)


class BaseModel(models.Model):
    id = models.BigIntegerField(primary_key=True, default=next_id, editable=False, db_comment="Snowflake id")
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_comment="When the row was created")
    updated_at = models.DateTimeField(auto_now=True, db_comment="When the row was last changed")
    deleted = models.BooleanField(default=False, db_comment="Soft delete flag: false live, true deleted")

    # Related-object access uses a plain manager too, so a soft-deleted row still resolves.
    objects = LiveManager()
    all_objects = models.Manager()  # noqa: DJ012

    class Meta:
        abstract = True

    def soft_delete(self) -> None:
        self.deleted = True
        self.save(update_fields=["deleted", "updated_at"])


def string_field(max_length: int, comment: str, **kwargs: Any) -> models.CharField[str, str]:
    """A NOT NULL DEFAULT '' string column, the convention for every string."""
    kwargs.setdefault("blank", True)
    return models.CharField(max_length=max_length, default="", db_default="", db_comment=comment, **kwargs)


def text_field(comment: str, **kwargs: Any) -> models.TextField[str, str]:
    """A NOT NULL DEFAULT '' text column."""
    kwargs.setdefault("blank", True)
    return models.TextField(default="", db_default="", db_comment=comment, **kwargs)
