"""manage.py dev: argument checks, the child plan, and the real launcher run as a subprocess (its own
nats-server or one already there, daphne, a logic worker), stopped by SIGINT or by a child's death."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from imsite.devlauncher import (
    DevOptions,
    nats_address,
    nats_answers,
    plan_children,
    validate_options,
    venv_binary,
)

MANAGE_PY = str(Path(settings.BASE_DIR) / "manage.py")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 40.0
STARTED = re.compile(r"^dev \| started (\S+) \(pid (\d+)\)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--logic-workers", "-1"], "--logic-workers must be zero or more, got -1"),
        (["--access-nodes", "-2"], "--access-nodes must be zero or more, got -2"),
        (["--logic-workers", "two"], "--logic-workers must be an integer, got 'two'"),
        (["--port", "0"], "--port must be a port between 1 and 65535, got 0"),
        (["--port", "70000"], "--port must be a port between 1 and 65535, got 70000"),
        (["--port", "http"], "--port must be an integer, got 'http'"),
        (["--access-port", "-5"], "--access-port must be a port between 1 and 65535, got -5"),
        (["--access-port", "65535", "--access-nodes", "2"], "needs ports up to 65536, beyond 65535"),
        (["--logic-workers", "1000", "--access-nodes", "100"], "one snowflake worker id each"),
        (["--host", " "], "--host must not be empty"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(argv: list[str], complaint: str) -> None:
    with pytest.raises(CommandError) as caught:
        call_command("dev", *argv)
    assert complaint in str(caught.value)


def test_good_arguments_are_taken() -> None:
    options = validate_options(host="0.0.0.0", port="8001", access_nodes="0", access_port="65535", logic_workers=3)
    assert options == DevOptions(host="0.0.0.0", port=8001, access_nodes=0, access_port=65535, logic_workers=3)


def test_nats_address_is_the_first_server_of_the_url() -> None:
    assert nats_address("nats://10.0.0.5:4333,nats://10.0.0.6:4333") == ("10.0.0.5", 4333)
    assert nats_address("localhost") == ("localhost", 4222)
    assert nats_address("nats://user:pw@127.0.0.1") == ("127.0.0.1", 4222)


def test_nats_answers_is_false_on_a_closed_port() -> None:
    assert nats_answers("127.0.0.1", _free_port(), timeout=0.5) is False


def test_plan_gives_each_child_its_own_name_command_and_worker_id() -> None:
    options = DevOptions(host="127.0.0.1", port=8100, access_nodes=2, access_port=5000, logic_workers=3)
    specs = plan_children(options, python="py", manage_py="m.py", daphne="daphne", access_available=True)
    assert [spec.name for spec in specs] == ["web", "logic-1", "logic-2", "logic-3", "access-1", "access-2"]
    assert specs[0].argv == ["daphne", "-b", "127.0.0.1", "-p", "8100", "imsite.asgi:application"]
    assert specs[1].argv == ["py", "m.py", "run_logic"]
    assert specs[4].argv == ["py", "m.py", "run_access", "--node-id", "1", "--port", "5000"]
    assert specs[5].argv == ["py", "m.py", "run_access", "--node-id", "2", "--port", "5001"]
    worker_ids = [int(spec.env["SNOWFLAKE_WORKER_ID"]) for spec in specs]
    assert len(set(worker_ids)) == len(specs)
    assert all(0 <= worker_id <= 1023 for worker_id in worker_ids)


def test_plan_has_no_access_nodes_without_the_run_access_command() -> None:
    options = DevOptions(access_nodes=2, logic_workers=0)
    specs = plan_children(options, python="py", manage_py="m.py", daphne="daphne", access_available=False)
    assert [spec.name for spec in specs] == ["web"]


# --- the real launcher ---------------------------------------------------------------------------


class LauncherProcess:
    """`manage.py dev` as a subprocess; a thread collects its output lines."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, MANAGE_PY, "dev", *argv],
            cwd=settings.BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float = START_TIMEOUT) -> str:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if regex.search(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    pytest.fail(f"no line matching {pattern!r} within {timeout}s; output:\n{self.output_unlocked()}")
                self._changed.wait(min(remaining, 0.2))

    def output_unlocked(self) -> str:
        return "\n".join(self.lines)

    def child_pids(self) -> dict[str, int]:
        with self._changed:
            return {m.group(1): int(m.group(2)) for line in self.lines if (m := STARTED.match(line))}

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(5)
        return code

    def cleanup(self) -> None:
        """After a failed test: stop the launcher, and its children if it could not."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.child_pids().values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _health(port: int) -> tuple[int, dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return None


def _wait_healthy(launcher: LauncherProcess, port: int) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT
    last: tuple[int, dict[str, Any]] | None = None
    while time.monotonic() < deadline:
        if launcher.proc.poll() is not None:
            pytest.fail(f"the launcher exited with {launcher.proc.returncode}:\n{launcher.output}")
        last = _health(port)
        if last is not None and last[0] == 200:
            return last[1]
        time.sleep(0.1)
    pytest.fail(f"GET /api/v1/health never answered 200 (last: {last}); output:\n{launcher.output}")


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database with every migration applied, for the launcher's children."""
    path = tmp_path_factory.mktemp("dev-db") / "db.sqlite3"
    url = f"sqlite:///{path}"
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": url, "VAR_DIR": str(path.parent)}
    subprocess.run(
        [sys.executable, MANAGE_PY, "migrate", "--noinput", "-v", "0"],
        cwd=settings.BASE_DIR,
        env=env,
        check=True,
        timeout=180,
    )
    return url


@pytest.fixture
def launcher_env(tmp_path: Path, migrated_database: str) -> dict[str, str]:
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": migrated_database, "VAR_DIR": str(tmp_path / "var")}
    env["NATS_URL"] = f"nats://127.0.0.1:{_free_port()}"
    env.pop("SNOWFLAKE_WORKER_ID", None)
    return env


@pytest.fixture
def start_launcher() -> Iterator[Any]:
    started: list[LauncherProcess] = []

    def _start(argv: list[str], env: dict[str, str]) -> LauncherProcess:
        launcher = LauncherProcess(argv, env)
        started.append(launcher)
        return launcher

    yield _start
    for launcher in started:
        launcher.cleanup()


def test_dev_starts_nats_web_and_logic_and_sigint_stops_them_all(
    launcher_env: dict[str, str], start_launcher: Any, tmp_path: Path
) -> None:
    port = _free_port()
    launcher = start_launcher(["--port", str(port), "--access-nodes", "0", "--logic-workers", "1"], launcher_env)

    report = _wait_healthy(launcher, port)["data"]
    assert report["status"] == "ok"
    assert report["dependencies"]["database"]["status"] == "ok"
    assert report["dependencies"]["nats"]["status"] == "ok"
    assert all(dep["status"] in ("ok", "disabled") for dep in report["dependencies"].values())

    launcher.wait_for_line(rf"^  Health:  http://127\.0\.0\.1:{port}/api/v1/health$")
    launcher.wait_for_line(r"^logic-1 \| .*logic worker ready")
    output = launcher.output
    assert f"  Docs:    http://127.0.0.1:{port}/api/docs/" in output
    assert f"  Admin:   http://127.0.0.1:{port}/admin/" in output
    assert "\nweb | " in output
    assert "\nnats | " in output
    assert (tmp_path / "var" / "nats" / "jetstream").is_dir()  # JetStream under VAR_DIR/nats
    pids = launcher.child_pids()
    assert set(pids) == {"nats", "web", "logic-1"}
    assert all(_alive(pid) for pid in pids.values())

    launcher.proc.send_signal(signal.SIGINT)
    assert launcher.wait_exit() == 0, launcher.output
    assert [pid for pid in pids.values() if _alive(pid)] == []
    nats_host, nats_port = nats_address(launcher_env["NATS_URL"])
    assert not nats_answers(nats_host, nats_port, timeout=0.5)
    stopped = [line for line in launcher.lines if re.match(r"^dev \| \S+ stopped", line)]
    assert stopped[-1].startswith("dev | nats stopped")  # nats-server goes last
    assert "exited with code" not in launcher.output


def test_a_child_that_dies_stops_everything_and_fails_the_launcher(
    launcher_env: dict[str, str], start_launcher: Any, tmp_path: Path
) -> None:
    # A NATS server that already answers is used, not started (and not stopped) by the launcher.
    nats_port = _free_port()
    nats = subprocess.Popen(
        [venv_binary("nats-server"), "-a", "127.0.0.1", "-p", str(nats_port), "-js", "-sd", str(tmp_path / "own")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while not nats_answers("127.0.0.1", nats_port, timeout=0.5):
            assert time.monotonic() < deadline, "the test's nats-server did not answer"
            time.sleep(0.05)
        launcher_env["NATS_URL"] = f"nats://127.0.0.1:{nats_port}"
        port = _free_port()
        launcher = start_launcher(["--port", str(port), "--access-nodes", "0"], launcher_env)

        launcher.wait_for_line(r"^logic-1 \| .*logic worker ready")
        launcher.wait_for_line(r"^dev \| running")
        pids = launcher.child_pids()
        assert set(pids) == {"web", "logic-1"}
        assert f"dev | using the NATS server at 127.0.0.1:{nats_port}" in launcher.output

        os.kill(pids["logic-1"], signal.SIGKILL)
        assert launcher.wait_exit() != 0
        assert "logic-1 exited with code -9" in launcher.output
        assert not _alive(pids["web"])
        assert "dev | web stopped" in launcher.output
        assert "\nnats | " not in launcher.output
        assert nats.poll() is None
        assert nats_answers("127.0.0.1", nats_port, timeout=1)
    finally:
        nats.terminate()
        nats.wait(timeout=10)
