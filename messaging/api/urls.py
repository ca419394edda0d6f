"""Routes of the conversation, history, read and group endpoints."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
