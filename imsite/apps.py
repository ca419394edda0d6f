"""App config of the project package (it holds the shared base model and API plumbing)."""

from django.apps import AppConfig


class ImsiteConfig(AppConfig):
    name = "imsite"
    verbose_name = "IM site"
