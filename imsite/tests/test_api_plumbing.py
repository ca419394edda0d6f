"""The envelope, the exception handler, request ids, OpenAPI and Swagger, health, the admin."""

from __future__ import annotations

import socket
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.django_db
def test_health_reports_each_dependency_when_all_are_up(api: APIClient, nats_url: str, settings: Any) -> None:
    response = api.get("/api/v1/health")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["code"] == 0
    assert body["message"] == "success"
    deps = body["data"]["dependencies"]
    assert deps["database"]["status"] == "ok"
    assert deps["nats"]["status"] == "ok"
    assert deps["redis"]["status"] == ("ok" if settings.REDIS_URL else "disabled")
    assert body["data"]["status"] == "ok"
    assert "latencyMs" in deps["database"]


@pytest.mark.django_db
def test_health_is_503_and_names_the_dependency_that_is_down(api: APIClient, settings: Any) -> None:
    settings.NATS_URL = f"nats://127.0.0.1:{_unused_port()}"
    response = api.get("/api/v1/health")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == 50300
    assert "nats" in body["message"]
    assert body["data"]["dependencies"]["nats"]["status"] == "down"
    assert body["data"]["dependencies"]["database"]["status"] == "ok"


@pytest.mark.django_db
def test_invalid_json_gets_a_400_envelope_that_says_so(api: APIClient) -> None:
    response = api.post("/api/v1/auth/login", data="{not json", content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 40001
    assert "parse" in body["message"].lower()
    assert body["data"] is None


@pytest.mark.django_db
def test_validation_errors_name_the_field_in_camel_case(api: APIClient) -> None:
    response = api.post("/api/v1/auth/login", {"password": "x"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 40000
    assert "username" in body["message"]
    assert "username" in body["data"]["errors"]


@pytest.mark.django_db
def test_missing_token_is_a_401_envelope_with_a_bearer_challenge(api: APIClient) -> None:
    response = api.get("/api/v1/user/profile")
    assert response.status_code == 401
    assert response.json()["code"] == 40100
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert "Authorization" in response.json()["message"]


@pytest.mark.django_db
def test_garbage_token_is_a_401_envelope(api: APIClient) -> None:
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    response = api.get("/api/v1/user/profile")
    assert response.status_code == 401
    assert response.json()["code"] == 40101


@pytest.mark.django_db
def test_wrong_method_is_a_405_envelope(api: APIClient) -> None:
    response = api.delete("/api/v1/health")
    assert response.status_code == 405
    assert response.json()["code"] == 40500


@pytest.mark.django_db
def test_unknown_api_path_is_a_404_envelope(api: APIClient) -> None:
    response = api.get("/api/v1/no/such/thing")
    assert response.status_code == 404
    assert response.json()["code"] == 40400


@pytest.mark.django_db
@pytest.mark.urls("imsite.tests.boom_urls")
def test_an_unexpected_error_is_a_500_envelope_with_the_request_id(api: APIClient) -> None:
    response = api.get("/api/v1/boom", HTTP_X_REQUEST_ID="req-123")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == 50000
    assert "req-123" in body["message"]
    assert "fire" not in body["message"]  # internals stay in the log


@pytest.mark.django_db
def test_every_response_carries_a_request_id(api: APIClient) -> None:
    assert len(api.get("/api/v1/health").headers["X-Request-Id"]) == 32
    echoed = api.get("/api/v1/health", HTTP_X_REQUEST_ID="abc-42")
    assert echoed.headers["X-Request-Id"] == "abc-42"
    forged = api.get("/api/v1/health", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert forged.headers["X-Request-Id"] != "bad id\nwith newline"


def test_openapi_schema_generates_without_warnings(db: Any) -> None:
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert "/api/v1/auth/login" in out.getvalue()


@pytest.mark.django_db
def test_openapi_schema_and_swagger_ui_are_served_with_their_assets(api: APIClient) -> None:
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    spec = schema.json()
    ok = spec["paths"]["/api/v1/health"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(ok["required"]) == {"code", "message", "data"}
    docs = api.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    asset = api.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200


@pytest.mark.django_db
def test_admin_login_page_is_served(client: Any) -> None:
    assert client.get("/admin/login/").status_code == 200


@pytest.mark.django_db
def test_a_lone_surrogate_echoed_in_an_error_still_renders(api: APIClient) -> None:
    response = api.post(
        "/api/v1/auth/login",
        data=b'{"username": "\\ud800", "password": "x", "platform": "\\udfff"}',
        content_type="application/json",
    )
    assert response.status_code in (400, 401)
    assert response.json()["code"] != 0
