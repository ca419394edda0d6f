"""Routes of the realtime endpoints."""

from django.urls import URLPattern, path

from realtime.api import views

urlpatterns: list[URLPattern] = [
    path("realtime/endpoints", views.EndpointsView.as_view(), name="realtime-endpoints"),
]
