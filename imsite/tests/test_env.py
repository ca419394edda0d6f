"""Settings helpers: typed values, *_FILE secrets, loud failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from imsite.env import env_bool, env_int, env_list, env_str


def test_booleans_accept_the_usual_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, expected in [("1", True), ("yes", True), ("ON", True), ("0", False), ("false", False), ("", False)]:
        monkeypatch.setenv("IM_FLAG", raw)
        assert env_bool("IM_FLAG") is expected
    monkeypatch.delenv("IM_FLAG")
    assert env_bool("IM_FLAG", True) is True


def test_a_boolean_that_is_not_one_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IM_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="IM_FLAG"):
        env_bool("IM_FLAG")


def test_integers_are_checked_against_their_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IM_N", "12")
    assert env_int("IM_N", 1, minimum=0, maximum=20) == 12
    monkeypatch.setenv("IM_N", "twelve")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("IM_N", 1)
    monkeypatch.setenv("IM_N", "99")
    with pytest.raises(ImproperlyConfigured, match="maximum"):
        env_int("IM_N", 1, maximum=20)
    monkeypatch.setenv("IM_N", "-1")
    with pytest.raises(ImproperlyConfigured, match="minimum"):
        env_int("IM_N", 1, minimum=0)


def test_secrets_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("IM_SECRET", "from-env")
    monkeypatch.setenv("IM_SECRET_FILE", str(secret))
    assert env_str("IM_SECRET") == "s3cret"
    monkeypatch.setenv("IM_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env_str("IM_SECRET")


def test_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IM_HOSTS", "a.example, b.example,,")
    assert env_list("IM_HOSTS", []) == ["a.example", "b.example"]
