"""manage.py run_logic [--concurrency N]: the logic worker, run like a Celery worker.

With --concurrency 1 this process is the worker. With N > 1 it supervises N worker processes
(each one a `run_logic --concurrency 1`): it restarts one that dies, and on SIGTERM or SIGINT passes
the signal on and waits for all of them to finish the batch in hand.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from messaging.worker.runner import LogicWorker

logger = logging.getLogger(__name__)


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise CommandError(f"expected a positive integer, got {raw!r}") from exc
    if value < 1:
        raise CommandError(f"expected a positive integer, got {value}")
    return value


class Command(BaseCommand):
    help = "Run the logic worker: client frames from NATS, stored in batches, answers and pushes back."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", default="1", help="worker processes (default 1)")
        parser.add_argument("--batch-size", default="1024", help="most frames a batch takes (default 1024)")
        parser.add_argument("--batch-wait-ms", default="2", help="how long a batch waits to fill (default 2 ms)")
        parser.add_argument("--nats-url", default="", help="NATS server (default: settings.NATS_URL)")

    def handle(self, *args: Any, **options: Any) -> None:
        concurrency = _positive_int(options["concurrency"])
        batch_size = _positive_int(options["batch_size"])
        try:
            batch_wait = float(options["batch_wait_ms"]) / 1000
        except ValueError as exc:
            raise CommandError(f"--batch-wait-ms must be a number, got {options['batch_wait_ms']!r}") from exc
        if not 0 <= batch_wait <= 1:
            raise CommandError("--batch-wait-ms must be between 0 and 1000")
        nats_url = options["nats_url"] or settings.NATS_URL
        if concurrency > 1:
            self._supervise(concurrency, options)
            return
        worker = LogicWorker(nats_url=nats_url, batch_size=batch_size, batch_wait=batch_wait)
        asyncio.run(self._run(worker))

    async def _run(self, worker: LogicWorker) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.request_stop)
        await worker.run()

    def _supervise(self, concurrency: int, options: dict[str, Any]) -> None:
        argv = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "run_logic", "--concurrency", "1"]
        for flag in ("batch_size", "batch_wait_ms", "nats_url"):
            if options[flag]:
                argv += [f"--{flag.replace('_', '-')}", str(options[flag])]
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        children = [subprocess.Popen(argv) for _ in range(concurrency)]
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while True:
            for index, child in enumerate(children):
                code = child.poll()
                if code is not None and not stopping:
                    logger.error("logic worker process died; restarting it", extra={"pid": child.pid, "exitCode": code})
                    children[index] = subprocess.Popen(argv)
            if stopping and all(child.poll() is not None for child in children):
                break
            time.sleep(0.2)
        failed = [child.returncode for child in children if child.returncode not in (0, -signal.SIGTERM)]
        if failed:
            raise CommandError(f"worker processes exited with {failed}")
