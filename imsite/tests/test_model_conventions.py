"""Every model of the project follows the seed conventions (ARCHITECTURE.md)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models

PROJECT_APPS = {"imsite", "accounts", "friends", "messaging", "realtime"}


def project_models() -> list[type[models.Model]]:
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in PROJECT_APPS and not model._meta.proxy
    ]


def test_the_walk_covers_the_project_models() -> None:
    names = {model.__name__ for model in project_models()}
    assert {"User", "Device", "FriendRequest", "Friendship", "Block"} <= names


@pytest.mark.parametrize("model", project_models(), ids=lambda m: m._meta.label)
def test_model_has_the_seed_columns_and_a_table_comment(model: type[models.Model]) -> None:
    fields = {field.name: field for field in model._meta.concrete_fields}
    assert model._meta.db_table_comment, f"{model._meta.label} has no db_table_comment"
    pk = model._meta.pk
    assert pk is not None
    assert pk.name == "id"
    assert isinstance(pk, models.BigIntegerField)
    assert not isinstance(pk, models.AutoField), f"{model._meta.label}.id must be a snowflake, not auto-increment"
    assert isinstance(fields.get("created_at"), models.DateTimeField)
    assert isinstance(fields.get("updated_at"), models.DateTimeField)
    assert isinstance(fields.get("deleted"), models.BooleanField)


@pytest.mark.parametrize("model", project_models(), ids=lambda m: m._meta.label)
def test_every_column_has_a_comment_no_database_foreign_key_and_no_nullable_string(
    model: type[models.Model],
) -> None:
    problems = []
    for field in model._meta.concrete_fields:
        label = f"{model._meta.label}.{field.name}"
        if not field.db_comment:
            problems.append(f"{label}: missing db_comment")
        if field.is_relation and getattr(field, "db_constraint", False):
            problems.append(f"{label}: database foreign key (use db_constraint=False)")
        if isinstance(field, (models.CharField, models.TextField)):
            if field.null:
                problems.append(f"{label}: nullable string column")
            db_default = getattr(field.db_default, "value", field.db_default)
            if field.default != "" or db_default != "":
                problems.append(f"{label}: string column without DEFAULT '' (use imsite.models.string_field)")
    for field in model._meta.local_many_to_many:
        problems.append(f"{model._meta.label}.{field.name}: many-to-many makes a table outside the conventions")
    assert not problems, "\n".join(problems)
