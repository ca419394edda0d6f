"""Passwords are stored with Argon2 in production settings."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.test import override_settings


def test_production_settings_hash_passwords_with_argon2() -> None:
    # The suite puts a fast hasher in front (conftest); the configured list starts with Argon2.
    configured = [h for h in settings.PASSWORD_HASHERS if "MD5" not in h]
    assert configured[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    with override_settings(PASSWORD_HASHERS=configured):
        encoded = make_password("Corr3ct-Horse-Battery")
        assert encoded.startswith("argon2$argon2id$")
        assert check_password("Corr3ct-Horse-Battery", encoded)
        assert not check_password("wrong", encoded)
