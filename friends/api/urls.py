"""Routes of the friends, blocks and user search endpoints."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
