"""manage.py dev: the whole platform on one machine for development (what `make run` starts).

nats-server (unless NATS_URL already answers), the web server (daphne), N logic workers and N access
nodes run as child processes; their output is printed line by line behind `name | `. Ctrl-C or
SIGTERM stops them all (nats-server last); a child that exits on its own stops everything and the
command fails with its exit code. The logic lives in imsite.devlauncher.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.core.management import get_commands
from django.core.management.base import BaseCommand, CommandError, CommandParser

from imsite.devlauncher import Launcher, LauncherError, Writer, run_dev, validate_options


def _line_writer(stream: TextIO, lock: threading.Lock) -> Writer:
    def write(line: str) -> None:
        with lock:
            stream.write(line + "\n")
            stream.flush()

    return write


class Command(BaseCommand):
    help = "Run nats-server (if none answers), the web server, logic workers and access nodes together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address the web server binds (default 127.0.0.1)")
        parser.add_argument("--port", default="8000", help="web server port (default 8000)")
        parser.add_argument("--access-nodes", default="1", help="access nodes to start (default 1)")
        parser.add_argument("--access-port", default="4433", help="UDP port of access node 1; node i gets +i-1")
        parser.add_argument("--logic-workers", default="1", help="logic worker processes (default 1)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            dev_options = validate_options(
                host=options["host"],
                port=options["port"],
                access_nodes=options["access_nodes"],
                access_port=options["access_port"],
                logic_workers=options["logic_workers"],
            )
        except LauncherError as exc:
            raise CommandError(str(exc)) from exc
        lock = threading.Lock()
        base_dir = Path(settings.BASE_DIR)
        launcher = Launcher(
            out=_line_writer(sys.stdout, lock),
            err=_line_writer(sys.stderr, lock),
            cwd=base_dir,
            env={**os.environ, "NATS_URL": settings.NATS_URL},
        )
        previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
        for signum in previous:
            signal.signal(signum, lambda signum, frame: launcher.request_stop())
        try:
            run_dev(
                dev_options,
                launcher=launcher,
                nats_url=settings.NATS_URL,
                nats_store=Path(settings.VAR_DIR) / "nats",
                python=sys.executable,
                manage_py=str(base_dir / "manage.py"),
                access_available="run_access" in get_commands(),
            )
        except LauncherError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
