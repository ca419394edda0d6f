"""manage.py run_logic: argument checks, and the supervisor of several worker processes."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from messaging.tests.worker_processes import WorkerProcess


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--concurrency", "0", "positive integer"),
        ("--concurrency", "two", "positive integer"),
        ("--batch-size", "-5", "positive integer"),
        ("--batch-wait-ms", "soon", "number"),
        ("--batch-wait-ms", "5000", "between 0 and 1000"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(flag: str, value: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("run_logic", flag, value)


@pytest.mark.django_db(transaction=True)
def test_a_supervisor_runs_n_workers_and_stops_them_all_on_sigterm(nats_url: str, tmp_path: Path) -> None:
    supervisor = WorkerProcess(nats_url, tmp_path, "supervisor", "--concurrency", "2")
    deadline = time.monotonic() + 60
    while supervisor.log().count("logic worker ready") < 2:
        assert supervisor.alive, supervisor.log()
        assert time.monotonic() < deadline, supervisor.log()
        time.sleep(0.1)
    supervisor.proc.send_signal(signal.SIGTERM)
    assert supervisor.proc.wait(timeout=30) == 0, supervisor.log()
    assert supervisor.log().count("logic worker stopped") == 2


def test_bench_refuses_unknown_workloads_and_bad_numbers(capsys: Any) -> None:
    with pytest.raises(CommandError, match="unknown workload"):
        call_command("bench", "w9")
    with pytest.raises(CommandError, match="positive integer"):
        call_command("bench", "w5", "--messages", "0")


@pytest.mark.django_db(transaction=True)
def test_w5_bench_runs_end_to_end_on_postgresql_and_refuses_sqlite(nats_url: str) -> None:
    from io import StringIO

    from django.db import connection

    if connection.vendor != "postgresql":
        with pytest.raises(CommandError, match="PostgreSQL"):
            call_command("bench", "w5", "--messages", "10")
        return
    out = StringIO()
    call_command("bench", "w5", "--messages", "300", "--conversations", "5", "--window", "50", stdout=out)
    import json

    result = json.loads(out.getvalue())
    assert result["workload"] == "W5"
    assert result["figures"]["acked"] == 300
    assert result["figures"]["lost"] == 0
    assert result["figures"]["storedMsgsPerSecond"] > 0
    assert result["figures"]["copyRowsPerSecond"] > 0
