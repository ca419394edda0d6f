"""App config of the project package (it holds the shared base model and API plumbing)."""

from django.apps import AppConfig


class ImsiteConfig(AppConfig):
    name = "imsite"
    verbose_name = "IM site"

    def ready(self) -> None:
        from imsite import lookups  # noqa: F401  (registers field__any)
