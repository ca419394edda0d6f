"""The logic of `manage.py dev`: start nats-server (when none answers), the web server, the logic
workers and the access nodes as child processes, print their output line by line behind a prefix
naming each, and stop them all together.

A child that exits on its own is reported and everything else is stopped (never restarted quietly);
a stop request (Ctrl-C, SIGTERM) sends SIGTERM to every child, nats-server last, waits up to
STOP_TIMEOUT seconds for each and then kills what is left.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

STOP_TIMEOUT = 10.0
NATS_START_TIMEOUT = 15.0
POLL_SECONDS = 0.1
MAX_WORKER_ID = 1023

Writer = Callable[[str], None]


class LauncherError(Exception):
    """The launcher cannot go on: bad arguments, a child that died, a server that never answered."""


@dataclass(frozen=True)
class DevOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    access_nodes: int = 1
    access_port: int = 4433
    logic_workers: int = 1


def _int(raw: object, name: str) -> int:
    try:
        return int(str(raw))
    except ValueError as exc:
        raise LauncherError(f"--{name} must be an integer, got {raw!r}") from exc


def _port(raw: object, name: str) -> int:
    value = _int(raw, name)
    if not 1 <= value <= 65535:
        raise LauncherError(f"--{name} must be a port between 1 and 65535, got {value}")
    return value


def _count(raw: object, name: str) -> int:
    value = _int(raw, name)
    if value < 0:
        raise LauncherError(f"--{name} must be zero or more, got {value}")
    return value


def validate_options(
    *, host: object, port: object, access_nodes: object, access_port: object, logic_workers: object
) -> DevOptions:
    """Checks the command's arguments; raises LauncherError naming the bad one."""
    host_text = str(host).strip()
    if not host_text:
        raise LauncherError("--host must not be empty")
    options = DevOptions(
        host=host_text,
        port=_port(port, "port"),
        access_nodes=_count(access_nodes, "access-nodes"),
        access_port=_port(access_port, "access-port"),
        logic_workers=_count(logic_workers, "logic-workers"),
    )
    last_access_port = options.access_port + options.access_nodes - 1
    if options.access_nodes and last_access_port > 65535:
        raise LauncherError(
            f"--access-port {options.access_port} with --access-nodes {options.access_nodes} "
            f"needs ports up to {last_access_port}, beyond 65535"
        )
    if 1 + options.logic_workers + options.access_nodes > MAX_WORKER_ID:
        raise LauncherError(
            f"at most {MAX_WORKER_ID - 1} logic workers and access nodes together (one snowflake worker id each)"
        )
    return options


def nats_address(nats_url: str) -> tuple[str, int]:
    """Host and port of the first server in a (comma-separated) NATS_URL."""
    first = nats_url.split(",")[0].strip()
    parts = urlsplit(first if "://" in first else f"nats://{first}")
    return parts.hostname or "127.0.0.1", parts.port or 4222


def nats_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a NATS server greets on host:port (TCP connect, then its "INFO " line)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(4096).startswith(b"INFO ")
    except OSError:
        return False


def http_answers(url: str, timeout: float = 1.0) -> bool:
    """True when an HTTP server answers url with any status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 (a local http URL we built)
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def url_host(host: str) -> str:
    """The host as it goes in a URL: bracketed IPv6, a wildcard bind shown as loopback."""
    if host in ("0.0.0.0", ""):  # noqa: S104 (displaying, not binding)
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # added to the launcher's environment


def plan_children(
    options: DevOptions,
    *,
    python: str,
    manage_py: str,
    daphne: str,
    access_available: bool,
) -> list[ChildSpec]:
    """The web server, the logic workers and the access nodes, each with its own snowflake worker id."""
    specs = [
        ChildSpec(
            "web",
            [daphne, "-b", options.host, "-p", str(options.port), "imsite.asgi:application"],
            {"SNOWFLAKE_WORKER_ID": "1"},
        )
    ]
    worker_id = 2
    for index in range(1, options.logic_workers + 1):
        specs.append(
            ChildSpec(f"logic-{index}", [python, manage_py, "run_logic"], {"SNOWFLAKE_WORKER_ID": str(worker_id)})
        )
        worker_id += 1
    if access_available:
        for index in range(1, options.access_nodes + 1):
            argv = [python, manage_py, "run_access", "--node-id", str(index)]
            argv += ["--port", str(options.access_port + index - 1)]
            specs.append(ChildSpec(f"access-{index}", argv, {"SNOWFLAKE_WORKER_ID": str(worker_id)}))
            worker_id += 1
    return specs


def venv_binary(name: str) -> str:
    """A console script next to the running interpreter (the venv's bin/), else one on PATH."""
    candidate = Path(sys.executable).with_name(name)
    if candidate.exists():
        return str(candidate)
    import shutil

    found = shutil.which(name)
    if not found:
        raise LauncherError(f"{name} is not installed: `pip install -r requirements.txt` provides it")
    return found


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"code {code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"code {code}"
    return f"code {code}"


class Child:
    """One started process whose merged stdout/stderr a thread prints line by line behind `name | `."""

    def __init__(self, spec: ChildSpec, proc: subprocess.Popen[bytes], write: Writer) -> None:
        self.spec = spec
        self.proc = proc
        self._write = write
        self._reader = threading.Thread(target=self._pump, name=f"dev-{spec.name}", daemon=True)
        self._reader.start()

    @property
    def name(self) -> str:
        return self.spec.name

    def _pump(self) -> None:
        stream: IO[bytes] | None = self.proc.stdout
        if stream is None:
            return
        prefix = f"{self.name} | "
        for raw in iter(stream.readline, b""):
            self._write(prefix + raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        stream.close()

    def join_output(self, timeout: float = 2.0) -> None:
        self._reader.join(timeout)


class Launcher:
    """Starts children, watches them and stops them. `request_stop` is safe from a signal handler."""

    def __init__(self, *, out: Writer, err: Writer, cwd: Path, env: Mapping[str, str]) -> None:
        self._out = out
        self._err = err
        self._cwd = cwd
        self._env = dict(env)
        self.children: list[Child] = []
        self.nats: Child | None = None
        self.stop_requested = threading.Event()

    def request_stop(self) -> None:
        self.stop_requested.set()

    def say(self, line: str) -> None:
        self._out(line)

    def shout(self, line: str) -> None:
        self._err(line)

    def start(self, spec: ChildSpec) -> Child:
        env = {**self._env, "PYTHONUNBUFFERED": "1", **spec.env}
        proc = subprocess.Popen(
            spec.argv,
            cwd=self._cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,  # Ctrl-C reaches the launcher only; it stops the children in order
        )
        child = Child(spec, proc, self._out)
        self._out(f"dev | started {spec.name} (pid {proc.pid}): {' '.join(spec.argv)}")
        return child

    def ensure_nats(self, nats_url: str, store_dir: Path) -> None:
        """Uses the NATS server NATS_URL names when one answers; otherwise starts one with JetStream."""
        host, port = nats_address(nats_url)
        if nats_answers(host, port):
            self._out(f"dev | using the NATS server at {host}:{port}")
            return
        store_dir.mkdir(parents=True, exist_ok=True)
        argv = [venv_binary("nats-server"), "-a", host, "-p", str(port), "-js", "-sd", str(store_dir)]
        self.nats = self.start(ChildSpec("nats", argv))
        deadline = time.monotonic() + NATS_START_TIMEOUT
        while not nats_answers(host, port, timeout=0.5):
            code = self.nats.proc.poll()
            if code is not None:
                self.nats.join_output()
                raise LauncherError(f"nats exited with {describe_exit(code)} before answering on {host}:{port}")
            if self.stop_requested.is_set():
                return
            if time.monotonic() > deadline:
                raise LauncherError(f"nats-server did not answer on {host}:{port} within {NATS_START_TIMEOUT:.0f}s")
            time.sleep(POLL_SECONDS)
        self._out(f"dev | nats-server answers on {host}:{port} (JetStream store {store_dir})")

    def start_all(self, specs: Sequence[ChildSpec]) -> None:
        for spec in specs:
            if self.stop_requested.is_set():
                return
            self.children.append(self.start(spec))

    def watch(self, web_url: str, announce: Callable[[], None]) -> Child | None:
        """Waits for a stop request or a child's death; announces once web_url answers.
        Returns the child that died on its own, or None when a stop was requested."""
        announced = False
        watched = [*self.children, *([self.nats] if self.nats else [])]
        while not self.stop_requested.wait(POLL_SECONDS):
            for child in watched:
                if child.proc.poll() is not None:
                    return child
            if not announced and http_answers(web_url, timeout=0.5):
                announced = True
                announce()
        return None

    def stop_all(self) -> None:
        """SIGTERM to every child (nats-server last), up to STOP_TIMEOUT each, then SIGKILL."""
        self._stop_group(self.children)
        if self.nats is not None:
            self._stop_group([self.nats])

    def _stop_group(self, children: Sequence[Child]) -> None:
        for child in children:
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._err(
                    f"dev | {child.name} (pid {child.proc.pid}) ignored SIGTERM for {STOP_TIMEOUT:.0f}s: killing it"
                )
                child.proc.kill()
                child.proc.wait()
            child.join_output()
            self._out(f"dev | {child.name} stopped ({describe_exit(child.proc.wait())})")


def run_dev(
    options: DevOptions,
    *,
    launcher: Launcher,
    nats_url: str,
    nats_store: Path,
    python: str,
    manage_py: str,
    access_available: bool,
) -> None:
    """Runs the platform until a stop request (returns) or a child's death (raises LauncherError).
    Every child started is stopped before this returns or raises."""
    try:
        launcher.ensure_nats(nats_url, nats_store)
        if options.access_nodes and not access_available:
            launcher.say("dev | manage.py run_access does not exist yet: starting no access nodes")
        specs = plan_children(
            options,
            python=python,
            manage_py=manage_py,
            daphne=venv_binary("daphne"),
            access_available=access_available,
        )
        launcher.start_all(specs)
        base = f"http://{url_host(options.host)}:{options.port}"
        ws_base = f"ws://{url_host(options.host)}:{options.port}"

        def announce() -> None:
            for line in (
                "",
                f"  Web:     {base}/",
                f"  API:     {base}/api/v1/",
                f"  Docs:    {base}/api/docs/",
                f"  Admin:   {base}/admin/",
                f"  Health:  {base}/api/v1/health",
                f"  Realtime: {base}/api/v1/realtime/endpoints (WebTransport nodes; WebSocket at {ws_base}/ws)",
                "",
                "dev | running; Ctrl-C stops everything",
            ):
                launcher.say(line)

        died = launcher.watch(f"{base}/api/v1/health", announce)
        if died is not None:
            message = f"{died.name} exited with {describe_exit(died.proc.wait())}"
            died.join_output()
            launcher.shout(f"dev | !!! {message}: stopping everything")
            raise LauncherError(message)
        launcher.say("dev | stopping")
    finally:
        launcher.stop_all()
