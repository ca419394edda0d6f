"""manage.py bench <workload>: the benchmarks of ../shared/WORKLOADS.md, one JSON object per run."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


def _positive(raw: str, name: str) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise CommandError(f"--{name} must be a positive integer, got {raw!r}") from exc
    if value < 1:
        raise CommandError(f"--{name} must be a positive integer, got {value}")
    return value


class Command(BaseCommand):
    help = "Run a benchmark workload (w5: the logic worker against a raw COPY) and print its JSON figures."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workload", help="w5")
        parser.add_argument("--messages", default="100000", help="messages to store (default 100000)")
        parser.add_argument("--conversations", default="200", help="direct conversations (default 200)")
        parser.add_argument("--window", default="4000", help="sends in flight (default 4000)")
        parser.add_argument("--batch-size", default="1024", help="worker batch and COPY batch size (default 1024)")

    def handle(self, *args: Any, **options: Any) -> None:
        workload = options["workload"].lower()
        if workload != "w5":
            raise CommandError(f"unknown workload {options['workload']!r}: expected w5")
        from bench.w5 import run_w5

        try:
            run_w5(
                messages=_positive(options["messages"], "messages"),
                pairs=_positive(options["conversations"], "conversations"),
                window=_positive(options["window"], "window"),
                batch=_positive(options["batch_size"], "batch-size"),
                out=self.stdout,
            )
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
