"""manage.py bench w1/w2/w3/w6 end to end at tiny sizes: real servers and a real load-generator process.
Figures are not checked (they depend on the machine); correctness and the JSON's shape are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

TRANSPORTS = ["wt", "ws"]


def bench(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("bench", *args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, lines  # one JSON object per run
    result: dict[str, Any] = json.loads(lines[0])
    assert {"workload", "transport", "parameters", "figures", "cores", "versions"} <= result.keys()
    assert result["cores"] >= 1
    return result


def assert_nothing_lost(figures: dict[str, Any]) -> None:
    assert figures["delivered"] == figures["expected"], figures
    assert (figures["lost"], figures["duplicated"], figures["outOfOrder"], figures["refused"]) == (0, 0, 0, 0), figures
    assert {"p50", "p95", "p99"} <= figures["latencyMs"].keys()
    assert figures["deliveredPerSecond"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["w9"], "unknown workload"),
        (["w1", "--transport", "quic"], "--transport must be wt or ws"),
        (["w1", "--pairs", "0"], "--pairs must be a positive integer"),
        (["w1", "--messages", "many"], "--messages must be a positive integer"),
        (["w1", "--rate", "-5"], "--rate must be a positive number"),
        (["w5", "--envelope", "0"], "--envelope must be a positive integer"),
        (["w5", "--envelope", "all"], "--envelope must be a positive integer"),
        (["w1", "--timeout", "0"], "--timeout must be a positive number"),
        (["w2", "--group", "1"], "--group must be at least 2"),
        (["w2", "--group", "3", "--senders", "4"], "at least --senders"),
        (["w3", "--connections", "x"], "--connections must be a positive integer"),
        (["w3", "--connect-rate", "0"], "--connect-rate must be a positive number"),
        (["w3", "--connections", "2", "--loadgens", "3"], "cannot exceed --connections"),
        (["w6", "--clients", "3"], "--clients must be an even number"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("bench", *args)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_w1_delivers_every_message_once_in_order(transport: str) -> None:
    result = bench("w1", "--transport", transport, "--pairs", "2", "--messages", "5", "--timeout", "60")
    assert result["workload"] == "W1"
    assert result["transport"] == transport
    assert result["parameters"]["pairs"] == 2
    assert_nothing_lost(result["figures"])
    assert result["figures"]["expected"] == 10


@pytest.mark.django_db(transaction=True)
def test_w1_fixed_rate_and_w2_fan_out() -> None:
    w1 = bench("w1", "--pairs", "2", "--messages", "4", "--rate", "100", "--timeout", "60")
    assert_nothing_lost(w1["figures"])
    assert w1["parameters"]["rate"] == 100
    w2 = bench("w2", "--group", "5", "--senders", "2", "--messages", "3", "--timeout", "60")
    assert w2["workload"] == "W2"
    assert_nothing_lost(w2["figures"])
    assert w2["figures"]["expected"] == 2 * 3 * 4  # every message to every other member


@pytest.mark.django_db(transaction=True)
def test_w3_holds_idle_authenticated_connections() -> None:
    result = bench("w3", "--connections", "20", "--connect-rate", "200", "--rest", "1", "--timeout", "60")
    figures = result["figures"]
    assert result["workload"] == "W3"
    assert (figures["connected"], figures["failed"], figures["stillConnectedAfterRest"]) == (20, 0, 20)
    assert {"p50", "p99"} <= figures["connectAuthMs"].keys()
    assert figures["rssPerConnectionKiB"] is not None
    assert figures["nodeCpuAtRestPercentOfCore"] >= 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_w6_clients_come_back_and_lose_nothing(transport: str) -> None:
    result = bench(
        "w6", "--transport", transport, "--clients", "10", "--messages", "10", "--rate", "50", "--timeout", "60"
    )
    figures = result["figures"]
    assert result["workload"] == "W6"
    assert figures["dropped"] is True
    assert figures["backAndSynced"] == 10
    assert figures["reconnects"] >= 10
    assert figures["allBackSeconds"] is not None
    assert_nothing_lost(figures)


def test_a_database_without_its_migrations_is_refused_before_anything_runs(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{empty}", "SECRET_KEY": "x"}
    done = subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), "bench", "w1", "--pairs", "1", "--messages", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done
    assert "unapplied migrations" in done.stderr, done.stderr
    assert "run `manage.py migrate` on it first" in done.stderr
    assert "Traceback" not in done.stderr
