"""What W1, W2, W3 and W6 share: the run's users, the servers, the load generator processes and the
JSON object every run prints.

The bench process only sets up and measures: the load generators (bench/loadgen.py) are processes of
their own, so are the servers (bench/platform.py). At each phase a load generator announces, the bench
reads the servers' CPU time and RSS from /proc, then lets it go on.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection

from bench.platform import BenchError, Platform, cpu_seconds, rss_kib
from bench.population import Population, remove, use_bench_database

TRANSPORTS = ("wt", "ws")
# Bench clients are load generators: the per-session rate limit of people must not throttle them.
BENCH_SERVER_ENV = {"SESSION_RATE_PER_SECOND": "1000000", "SESSION_RATE_BURST": "1000000"}


@dataclass
class Snapshot:
    at: float
    cpu: dict[str, float]  # seconds of CPU per server child, by name
    rss: dict[str, int]  # KiB per server child, by name
    loadgen_cpu: float


@dataclass
class Run:
    """One workload run: the servers and what the load generators reported."""

    platform: Platform
    phases: dict[str, Snapshot] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)

    def cpu_between(self, start: str, end: str, kinds: tuple[str, ...] | None = None) -> float:
        """Server CPU seconds between two phases, over the children of these kinds (all by default)."""
        names = {c.name for c in self.platform.children if kinds is None or c.kind in kinds}
        a, b = self.phases[start], self.phases[end]
        return sum(b.cpu[n] - a.cpu[n] for n in names if n in a.cpu and n in b.cpu)

    def seconds_between(self, start: str, end: str) -> float:
        return self.phases[end].at - self.phases[start].at


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))  # nearest rank
    return round(ordered[index], 2)


def versions() -> dict[str, Any]:
    import aioquic
    import django

    found: dict[str, Any] = {
        "python": sys.version.split()[0],
        "django": django.__version__,
        "aioquic": aioquic.__version__,
    }
    if connection.vendor == "postgresql":
        found["postgresql"] = getattr(connection, "pg_version", None)
    else:
        import sqlite3

        found["sqlite"] = sqlite3.sqlite_version
    try:
        import daphne

        found["daphne"] = daphne.__version__
    except ImportError:
        pass
    return found


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class LoadGenerators:
    """Load generator processes, stepped through their phases together."""

    def __init__(self, specs: list[dict[str, Any]], log_dir: Path) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: list[Path] = []
        self.result_paths: list[Path] = []
        for index, spec in enumerate(specs):
            spec_path = log_dir / f"loadgen-{index}.json"
            self.result_paths.append(log_dir / f"loadgen-{index}.result.json")
            spec_path.write_text(json.dumps({**spec, "resultPath": str(self.result_paths[-1])}))
            log = log_dir / f"loadgen-{index}.err"
            self.logs.append(log)
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.loadgen", str(spec_path)],
                    cwd=settings.BASE_DIR,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log.open("w"),
                    text=True,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    start_new_session=True,
                )
            )
        self._buffers = ["" for _ in self.procs]

    def _line(self, index: int, deadline: float) -> str:
        """The next stdout line of one load generator, within the deadline."""
        proc = self.procs[index]
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while "\n" not in self._buffers[index]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BenchError(f"load generator {index} timed out:\n{self.err_tail(index)}")
                if selector.select(min(remaining, 1.0)):
                    chunk = os.read(proc.stdout.fileno(), 65536).decode()
                    if not chunk:
                        raise BenchError(f"load generator {index} exited with {proc.wait()}:\n{self.err_tail(index)}")
                    self._buffers[index] += chunk
        line, self._buffers[index] = self._buffers[index].split("\n", 1)
        return line

    def err_tail(self, index: int) -> str:
        return self.logs[index].read_text(errors="replace")[-3000:]

    def run(self, deadline: float, on_phase: Callable[[str], None], check: Callable[[], None]) -> list[dict[str, Any]]:
        """Step every load generator through its phases (on_phase once all have reached one) to RESULT;
        then read each one's figures from its result file."""
        results: list[dict[str, Any] | None] = [None] * len(self.procs)
        while True:
            lines = [self._line(i, deadline) for i in range(len(self.procs))]
            check()
            if all(line == "RESULT" for line in lines):
                for i in range(len(self.procs)):
                    results[i] = json.loads(Path(self.result_paths[i]).read_text())
                return [r for r in results if r is not None]
            names = {line.removeprefix("PHASE ") for line in lines}
            if len(names) != 1 or not all(line.startswith("PHASE ") for line in lines):
                raise BenchError(f"load generators out of step: {lines}")
            on_phase(names.pop())
            for proc in self.procs:
                stdin: IO[str] | None = proc.stdin
                assert stdin is not None
                stdin.write("go\n")
                stdin.flush()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def run_workload(
    *,
    workload: str,
    transport: str,
    population: Population,
    params: dict[str, Any],
    timeout: float,
    access_nodes: int = 1,
    loadgens: int = 1,
    server_env: dict[str, str] | None = None,
    nats_url: str | None = None,
) -> Run:
    """Start the servers, run the load generators (users split among them), stop everything."""
    database_url = use_bench_database()
    started = time.monotonic()
    log_dir = Path(tempfile.mkdtemp(prefix=f"bench-{workload}-"))
    platform = Platform(
        database_url=database_url,
        nats_url=nats_url,
        access_nodes=access_nodes if transport == "wt" else 0,
        web=transport == "ws",
        env={**BENCH_SERVER_ENV, **(server_env or {})},
        log_dir=log_dir,
    )
    run = Run(platform)
    with platform:
        urls = platform.access_urls if transport == "wt" else [platform.ws_url]
        users = population.users()
        specs = []
        for index in range(loadgens):
            specs.append(
                {
                    "workload": workload,
                    "transport": transport,
                    "urls": urls,
                    "certificateSha256": platform.certificate_sha256,
                    "users": users[index::loadgens],
                    "params": params,
                    "run": f"{population.run}-{index}",
                    "timeout": max(1.0, timeout - (time.monotonic() - started) - 5),
                }
            )
        generators = LoadGenerators(specs, log_dir)
        children = [c for c in platform.children if c.proc.poll() is None]

        def on_phase(name: str) -> None:
            run.phases[name] = Snapshot(
                at=time.monotonic(),
                cpu={c.name: cpu_seconds(c.proc.pid) for c in children},
                rss={c.name: rss_kib(c.proc.pid) for c in children},
                loadgen_cpu=sum(cpu_seconds(p.pid) for p in generators.procs),
            )

        try:
            run.results = generators.run(started + timeout, on_phase, platform.check_alive)
        finally:
            generators.stop()
    shutil.rmtree(log_dir, ignore_errors=True)  # kept when the run failed: its logs are the diagnosis
    return run


def emit(
    out: Any,
    *,
    workload: str,
    transport: str,
    parameters: dict[str, Any],
    figures: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    result = {
        "workload": workload,
        "transport": transport,
        "parameters": parameters,
        "figures": figures,
        "serverSettings": {
            "sessionSendWindow": settings.SESSION_SEND_WINDOW,
            "heartbeatSeconds": settings.HEARTBEAT_SECONDS,
            "database": connection.vendor,
            "presence": "redis" if settings.REDIS_URL else "nats-kv",
        },
        "cores": os.cpu_count(),
        "loadAverage": load_average(),
        "versions": versions(),
        **(extra or {}),
    }
    out.write(json.dumps(result) + "\n")
    return result


def with_population(make: Callable[[], Population], body: Callable[[Population], dict[str, Any]]) -> dict[str, Any]:
    """Make the run's users (on the bench database), run the body, remove them whatever happens."""
    use_bench_database()
    population = make()
    try:
        return body(population)
    finally:
        remove(population)
