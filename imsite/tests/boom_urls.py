"""A URLconf for the error-handling tests: the real API plus a view that fails unexpectedly."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from imsite.urls import urlpatterns as real_urlpatterns


class ExplodingView(APIView):
    permission_classes = []
    authentication_classes = []

    def get(self, request: Request) -> Response:
        raise RuntimeError("database on fire")


urlpatterns = [path("api/v1/boom", ExplodingView.as_view()), *real_urlpatterns]
