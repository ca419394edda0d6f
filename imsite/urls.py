"""URL map: the REST API under /api/v1, OpenAPI and Swagger, the admin."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from imsite.api.envelope import envelope
from imsite.api.health import HealthView
from imsite.errors import ErrorCode

api_v1: list[URLPattern | URLResolver] = [
    path("health", HealthView.as_view(), name="health"),
    path("", include("accounts.api.urls")),
    path("", include("friends.api.urls")),
    path("", include("messaging.api.urls")),
    path("", include("realtime.api.urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/api/docs/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        envelope(None, code=int(ErrorCode.NOT_FOUND), message=f"No such endpoint: {request.path}"), status=404
    )


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(envelope(None, code=int(ErrorCode.SERVER_ERROR), message="Internal server error."), status=500)


handler404 = not_found
handler500 = server_error
