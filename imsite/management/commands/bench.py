"""manage.py bench <workload>: the benchmarks of ../shared/WORKLOADS.md, one JSON object per run.

w5 drives the logic worker alone over NATS; w1, w2, w3 and w6 start the whole platform (nats-server,
a logic worker, access nodes for --transport wt or daphne for --transport ws) and drive it from
separate load-generator processes through the Python client library.
"""

from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

WORKLOADS = ("w1", "w2", "w3", "w5", "w6")
DEFAULTS = {
    # (default, help) of every option; an option another workload uses is ignored
    "messages": ("", "W5: messages to store (100000); W1: per sender (200); W2: per sender (50); W6: per sender (20)"),
    "conversations": ("200", "W5: direct conversations (default 200)"),
    "window": ("4000", "W5: sends in flight (default 4000)"),
    "envelope": ("", "W5: most sends per upstream envelope of a connection (default SESSION_SEND_WINDOW)"),
    "batch_size": ("1024", "W5: worker batch and COPY batch size (default 1024)"),
    "pairs": ("50", "W1: pairs of online users (default 50)"),
    "rate": ("", "W1/W2: offered msgs/s on a fixed schedule (default: as fast as the window allows); W6: 1000"),
    "group": ("200", "W2: members of the group, all online (default 200)"),
    "senders": ("5", "W2: members who send (default 5)"),
    "connections": ("5000", "W3: idle authenticated connections (default 5000)"),
    "connect_rate": ("100", "W3: new sessions per second (default 100)"),
    "rest": ("30", "W3: seconds of rest over which heartbeat CPU is measured (default 30)"),
    "loadgens": ("", "W3: load-generator processes (default: one per 8,000 connections)"),
    "clients": ("1000", "W6: clients that drop and reconnect at once, in pairs running W1 (default 1000)"),
    "timeout": ("", "seconds after which the run stops by itself (default: from the workload's size)"),
}


def _positive(raw: str, name: str) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise CommandError(f"--{name} must be a positive integer, got {raw!r}") from exc
    if value < 1:
        raise CommandError(f"--{name} must be a positive integer, got {value}")
    return value


def _positive_number(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError as exc:
        raise CommandError(f"--{name} must be a positive number, got {raw!r}") from exc
    if not value > 0 or value == float("inf"):
        raise CommandError(f"--{name} must be a positive number, got {raw}")
    return value


def _interrupted(signum: int, frame: object) -> None:
    raise CommandError(f"interrupted by {signal.Signals(signum).name}")


class Command(BaseCommand):
    help = "Run a benchmark workload of WORKLOADS.md (w1, w2, w3, w5, w6) and print its JSON figures."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workload", help=", ".join(WORKLOADS))
        parser.add_argument("--transport", default="wt", help="w1/w2/w3/w6: wt (WebTransport) or ws (WebSocket)")
        for name, (default, text) in DEFAULTS.items():
            parser.add_argument(f"--{name.replace('_', '-')}", default=default, help=text)

    def handle(self, *args: Any, **options: Any) -> None:
        workload = options["workload"].lower()
        if workload not in WORKLOADS:
            raise CommandError(f"unknown workload {options['workload']!r}: expected one of {', '.join(WORKLOADS)}")
        if workload == "w5":
            self._w5(options)
            return
        transport = options["transport"].lower()
        if transport not in ("wt", "ws"):
            raise CommandError(f"--transport must be wt or ws, got {options['transport']!r}")
        from bench.platform import BenchError

        runner = {"w1": self._w1, "w2": self._w2, "w3": self._w3, "w6": self._w6}[workload]
        # SIGTERM (and SIGINT, which a shell's background job ignores) unwind like an error, so that the
        # servers and load generators are stopped and the run's rows deleted on the way out.
        previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
        for signum in previous:
            signal.signal(signum, _interrupted)
        try:
            runner(transport, options)
        except BenchError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @staticmethod
    def _timeout(options: dict[str, Any], estimate: float) -> float:
        return _positive_number(options["timeout"], "timeout") if options["timeout"] else estimate

    def _w1(self, transport: str, options: dict[str, Any]) -> None:
        pairs = _positive(options["pairs"], "pairs")
        messages = _positive(options["messages"] or "200", "messages")
        rate = _positive_number(options["rate"], "rate") if options["rate"] else 0.0
        from bench.w1 import run_w1

        estimate = 120 + (pairs * messages / rate if rate else pairs * messages / 500)
        run_w1(
            transport=transport,
            pairs=pairs,
            messages=messages,
            rate=rate,
            timeout=self._timeout(options, estimate),
            out=self.stdout,
        )

    def _w2(self, transport: str, options: dict[str, Any]) -> None:
        group = _positive(options["group"], "group")
        senders = _positive(options["senders"], "senders")
        if group < 2 or senders > group:
            raise CommandError(f"--group must be at least 2 and at least --senders ({senders}), got {group}")
        messages = _positive(options["messages"] or "50", "messages")
        rate = _positive_number(options["rate"], "rate") if options["rate"] else 0.0
        from bench.w2 import run_w2

        deliveries = senders * messages * (group - 1)
        run_w2(
            transport=transport,
            group=group,
            senders=senders,
            messages=messages,
            rate=rate,
            timeout=self._timeout(options, 120 + group / 20 + deliveries / 2000),
            out=self.stdout,
        )

    def _w3(self, transport: str, options: dict[str, Any]) -> None:
        connections = _positive(options["connections"], "connections")
        connect_rate = _positive_number(options["connect_rate"], "connect-rate")
        rest = _positive_number(options["rest"], "rest")
        loadgens = _positive(options["loadgens"], "loadgens") if options["loadgens"] else 0
        if loadgens > connections:
            raise CommandError(f"--loadgens ({loadgens}) cannot exceed --connections ({connections})")
        from bench.w3 import run_w3

        run_w3(
            transport=transport,
            connections=connections,
            connect_rate=connect_rate,
            rest=rest,
            loadgens=loadgens,
            timeout=self._timeout(options, 120 + connections / connect_rate * 2 + rest + connections / 200),
            out=self.stdout,
        )

    def _w6(self, transport: str, options: dict[str, Any]) -> None:
        clients = _positive(options["clients"], "clients")
        if clients < 2 or clients % 2:
            raise CommandError(f"--clients must be an even number of at least 2 (they run W1 in pairs), got {clients}")
        messages = _positive(options["messages"] or "20", "messages")
        rate = _positive_number(options["rate"] or "1000", "rate")
        from bench.w6 import run_w6

        run_w6(
            transport=transport,
            clients=clients,
            messages=messages,
            rate=rate,
            timeout=self._timeout(options, 150 + clients / 20 + clients // 2 * messages / rate),
            out=self.stdout,
        )

    def _w5(self, options: dict[str, Any]) -> None:
        from bench.w5 import run_w5

        try:
            run_w5(
                messages=_positive(options["messages"] or "100000", "messages"),
                pairs=_positive(options["conversations"], "conversations"),
                window=_positive(options["window"], "window"),
                envelope=_positive(options["envelope"] or str(settings.SESSION_SEND_WINDOW), "envelope"),
                batch=_positive(options["batch_size"], "batch-size"),
                out=self.stdout,
            )
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
