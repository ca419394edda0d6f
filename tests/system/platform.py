"""The whole platform as real processes for system tests: nats-server (optional: its own, restartable),
daphne (REST and the /ws WebSocket node), WebTransport access nodes and logic workers, all on the
pytest test database. Clients are real ImClients over real WebTransport or WebSocket connections.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accounts.models import User
from accounts.services import login_user
from conftest import PASSWORD, nats_server_binary
from messaging.tests.worker_processes import ROOT, test_database_url
from realtime.certificates import CertificateInfo, ensure_dev_certificate
from realtime.client import ImClient, failover_factory, websocket_factory, webtransport_factory
from realtime.client.transports import TransportFactory

READY_TIMEOUT = 60.0  # generous: a loaded CI machine is slow, and a pass never waits for it
HEARTBEAT_SECONDS = 1  # clients notice a killed node within a few seconds
_snowflake_ids = itertools.count(700)
_ACCESS_READY = re.compile(r"access node ready: node (\S+) on udp port (\d+)")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """One child process logging to a file; `ready` reads its log (or probes it) to say it is serving."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.alive:
                raise AssertionError(f"{self.name} exited before {what}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: not {what} within {timeout}s:\n{self.log()[-4000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Platform:
    """Start with `start()`, stop with `stop()`; the processes are attributes for the tests to kill."""

    def __init__(self, log_dir: Path, *, nats_url: str = "", access_nodes: int = 2, logic_workers: int = 2) -> None:
        self.log_dir = log_dir
        self.certificate: CertificateInfo = ensure_dev_certificate(log_dir / "certs")
        self.nats: Process | None = None
        if nats_url:
            self.nats_url = nats_url
        else:  # our own server, so a test can restart it on the same port with the same store
            self.nats_port = free_port()
            self.nats_url = f"nats://127.0.0.1:{self.nats_port}"
        self.web_port = free_port()
        self.access_count = access_nodes
        self.worker_count = logic_workers
        self.access: list[Process] = []
        self.access_ports: list[int] = []
        self.workers: list[Process] = []
        self.web: Process | None = None

    def _env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "NATS_URL": self.nats_url,
            "PYTHONUNBUFFERED": "1",
            "HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            "HEARTBEAT_TIMEOUT_SECONDS": str(HEARTBEAT_SECONDS * 5),
            "SNOWFLAKE_WORKER_ID": str(next(_snowflake_ids) % 1024),
            **extra,
        }

    def start(self) -> Platform:
        if hasattr(self, "nats_port"):
            self.start_nats()
        for index in range(1, self.worker_count + 1):
            self.workers.append(self.start_worker(index))
        python, manage = sys.executable, str(ROOT / "manage.py")
        daphne = str(Path(sys.executable).with_name("daphne"))
        self.web = Process(
            "web",
            [daphne, "-b", "127.0.0.1", "-p", str(self.web_port), "imsite.asgi:application"],
            self._env(WS_NODE_ID="ws-node"),
            self.log_dir,
        )
        cert = ["--cert", str(self.certificate.cert_path), "--key", str(self.certificate.key_path)]
        for index in range(1, self.access_count + 1):
            argv = [python, manage, "run_access", "--node-id", f"wt-node-{index}", "--port", "0", *cert]
            self.access.append(Process(f"access-{index}", argv, self._env(), self.log_dir))
        for worker in self.workers:
            worker.wait_until(lambda w=worker: "logic worker ready" in w.log(), "ready")  # type: ignore[misc]
        self.web.wait_until(lambda: _port_open(self.web_port), "listening")
        for node in self.access:
            node.wait_until(lambda n=node: _ACCESS_READY.search(n.log()) is not None, "ready")  # type: ignore[misc]
            found = _ACCESS_READY.search(node.log())
            assert found is not None
            self.access_ports.append(int(found.group(2)))
        return self

    def start_nats(self) -> None:
        store = self.log_dir / "nats-store"
        argv = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.nats_port), "-js", "-sd", str(store)]
        if self.nats is None:
            self.nats = Process("nats", argv, dict(os.environ), self.log_dir)
        else:
            self.nats.start()
        self.nats.wait_until(lambda: _port_open(self.nats_port), "listening")

    def start_worker(self, index: int) -> Process:
        argv = [sys.executable, str(ROOT / "manage.py"), "run_logic"]
        return Process(f"logic-{index}", argv, self._env(), self.log_dir)

    def stop(self) -> None:
        for process in [*self.access, *([self.web] if self.web else []), *self.workers]:
            process.stop()
        if self.nats is not None:
            self.nats.stop()

    # Clients.

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.web_port}/ws"

    def wt_url(self, node: int) -> str:
        return f"https://127.0.0.1:{self.access_ports[node]}/wt"

    def wt_factory(self, node: int) -> TransportFactory:
        return webtransport_factory(self.wt_url(node), certificate_hashes=[self.certificate.sha256])

    def factory(self, transport: str) -> TransportFactory:
        """'wt0', 'wt1' (a WebTransport node that fails over to the others) or 'ws' (the WebSocket)."""
        if transport == "ws":
            return websocket_factory(self.ws_url)
        first = int(transport[2:])
        order = [first, *(i for i in range(len(self.access_ports)) if i != first)]
        return failover_factory(*(self.wt_factory(i) for i in order))

    @staticmethod
    def login(user: User) -> Login:
        """A fresh device session of the user through the login service (what POST /auth/login runs).
        Call it outside the scenario's event loop: it uses the ORM."""
        tokens = login_user(username=user.username, password=PASSWORD, platform="web")
        return Login(user.id, tokens.access_token, tokens.refresh_token, tokens.device_id)

    def client(self, login: Login, transport: str, **options: Any) -> ImClient:
        return ImClient(self.factory(transport), login.access_token, login.device_id, "web", **options)


@dataclass(frozen=True)
class Login:
    user_id: int
    access_token: str
    refresh_token: str
    device_id: str
