"""The servers of a bench run as child processes: nats-server (unless NATS_URL names one that answers),
logic workers, WebTransport access nodes and daphne (for /ws), each logging to its own file.

Each child is ready when its log says so (or, for daphne, when /api/v1/health answers); `stop()` sends
SIGTERM to all of them, waits up to STOP_TIMEOUT and kills what is left. Everything is bounded in time:
a child that does not come up raises BenchError with the end of its log.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from imsite.devlauncher import http_answers, nats_address, nats_answers, venv_binary

STOP_TIMEOUT = 15.0
START_TIMEOUT = 60.0
FIRST_WORKER_ID = 1000  # snowflake worker ids of the bench's children (tests use 900 and up)
_ACCESS_READY = re.compile(r"access node ready: node (\S+) on udp port (\d+), certificate sha-256 ([0-9a-f]+)")


class BenchError(RuntimeError):
    """A bench cannot go on: a server did not start, the load generator failed or timed out."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident set size of a process (VmRSS), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


@dataclass
class Child:
    name: str
    kind: str  # nats, logic, access, web
    proc: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    info: dict[str, str] = field(default_factory=dict)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Platform:
    """Starts the servers a workload needs; use as a context manager so that they always stop."""

    def __init__(
        self,
        *,
        database_url: str,
        nats_url: str | None,
        access_nodes: int,
        logic_workers: int = 1,
        web: bool = False,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.database_url = database_url
        self.requested_nats = nats_url
        self.nats_url = nats_url or ""
        self.access_nodes = access_nodes
        self.logic_workers = logic_workers
        self.web = web
        self.extra_env = env or {}
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="bench-"))
        self.children: list[Child] = []
        self.access_urls: list[str] = []
        self.certificate_sha256 = ""
        self.ws_url = ""
        self._worker_ids = iter(range(FIRST_WORKER_ID, 1024))

    def __enter__(self) -> Platform:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _env(self) -> dict[str, str]:
        from django.conf import settings

        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "NATS_URL": self.nats_url,
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "0",  # DEBUG keeps every query in memory
            "LOG_LEVEL": "INFO",  # readiness lines are INFO
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def _spawn(self, name: str, kind: str, argv: list[str]) -> Child:
        log_path = self.log_dir / f"{name}.log"
        log_file = log_path.open("wb")
        env = self._env()
        if kind != "nats":
            env["SNOWFLAKE_WORKER_ID"] = str(next(self._worker_ids))
        from django.conf import settings

        proc = subprocess.Popen(
            argv,
            cwd=settings.BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the bench reaches the bench, which stops them in order
        )
        child = Child(name, kind, proc, log_path, log_file)
        self.children.append(child)
        return child

    def _wait(self, child: Child, ready: str | re.Pattern[str], timeout: float = START_TIMEOUT) -> re.Match[str] | None:
        deadline = time.monotonic() + timeout
        while True:
            text = child.log_path.read_text(errors="replace")
            if isinstance(ready, re.Pattern):
                match = ready.search(text)
                if match:
                    return match
            elif ready in text:
                return None
            if child.proc.poll() is not None:
                raise BenchError(f"{child.name} exited with code {child.proc.returncode}:\n{child.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{child.name} not ready within {timeout:.0f}s:\n{child.log_tail()}")
            time.sleep(0.05)

    def start(self) -> None:
        from django.conf import settings

        manage = str(Path(settings.BASE_DIR) / "manage.py")
        if self.requested_nats:
            host, port = nats_address(self.requested_nats)
            if not nats_answers(host, port):
                raise BenchError(f"no NATS server answers at {self.requested_nats}")
        else:
            port = free_port()
            store = self.log_dir / "nats-store"
            argv = [venv_binary("nats-server"), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)]
            nats = self._spawn("nats", "nats", argv)
            self.nats_url = f"nats://127.0.0.1:{port}"
            deadline = time.monotonic() + 15
            while not nats_answers("127.0.0.1", port, timeout=0.5):
                if nats.proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"nats-server did not answer on port {port}:\n{nats.log_tail()}")
                time.sleep(0.05)
        # All children start at once (Django's import is the slow part), then each is waited for.
        pending: list[tuple[Child, str | re.Pattern[str]]] = []
        for index in range(1, self.logic_workers + 1):
            pending.append(
                (self._spawn(f"logic-{index}", "logic", [sys.executable, manage, "run_logic"]), "logic worker ready")
            )
        for index in range(1, self.access_nodes + 1):
            argv = [sys.executable, manage, "run_access", "--node-id", f"bench-{index}", "--port", "0"]
            pending.append((self._spawn(f"access-{index}", "access", argv), _ACCESS_READY))
        web_port = 0
        if self.web:
            web_port = free_port()
            argv = [venv_binary("daphne"), "-b", "127.0.0.1", "-p", str(web_port), "imsite.asgi:application"]
            self._spawn("web", "web", argv)
        for child, ready in pending:
            match = self._wait(child, ready)
            if match is not None:
                child.info = {"port": match.group(2), "sha256": match.group(3)}
                self.access_urls.append(f"https://127.0.0.1:{match.group(2)}/wt")
                self.certificate_sha256 = match.group(3)
        if self.web:
            web = self.by_kind("web")[0]
            deadline = time.monotonic() + START_TIMEOUT
            while not http_answers(f"http://127.0.0.1:{web_port}/api/v1/health", timeout=0.5):
                if web.proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"daphne did not answer on port {web_port}:\n{web.log_tail()}")
                time.sleep(0.1)
            self.ws_url = f"ws://127.0.0.1:{web_port}/ws"

    def by_kind(self, kind: str) -> list[Child]:
        return [child for child in self.children if child.kind == kind]

    def servers(self) -> list[Child]:
        """Every child that does the platform's work (nats-server included when the bench started it)."""
        return list(self.children)

    def check_alive(self) -> None:
        for child in self.children:
            if child.proc.poll() is not None:
                raise BenchError(f"{child.name} exited with code {child.proc.returncode}:\n{child.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to every child (nats-server last), up to STOP_TIMEOUT, then SIGKILL."""
        servers = [c for c in self.children if c.kind != "nats"]
        for group in (servers, [c for c in self.children if c.kind == "nats"]):
            for child in group:
                if child.proc.poll() is None and child.proc.returncode is None:
                    child.proc.send_signal(signal.SIGTERM)
            for child in group:
                try:
                    child.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait(timeout=STOP_TIMEOUT)
                child.log_file.close()
