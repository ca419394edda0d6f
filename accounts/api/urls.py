"""Routes of the auth and profile endpoints."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
