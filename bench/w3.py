"""W3 of WORKLOADS.md, connections: C idle authenticated sessions held by one access node, opened at a
fixed rate by one or more load-generator processes; then a rest window in which the clients only ping
(every HEARTBEAT_SECONDS, as the server tells them in AuthResult, like real clients)."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings

from bench.population import Population, create_users
from bench.runner import emit, percentile, run_workload, with_population

EJABBERD_W3_KB_PER_CONNECTION = 54
CONNECTIONS_PER_LOADGEN = 8000  # well under the open-file limit (20,000): one UDP socket per WT session
SETTLE_SECONDS = 5.0  # between the last connect and the rest window


def run_w3(
    *,
    transport: str,
    connections: int,
    connect_rate: float,
    rest: float,
    loadgens: int,
    timeout: float,
    out: Any,
) -> dict[str, Any]:
    loadgens = loadgens or math.ceil(connections / CONNECTIONS_PER_LOADGEN)

    def make() -> Population:
        return create_users(connections)

    def body(population: Population) -> dict[str, Any]:
        run = run_workload(
            workload="w3",
            transport=transport,
            population=population,
            params={"connectRate": connect_rate / loadgens, "rest": rest, "settle": min(SETTLE_SECONDS, rest)},
            timeout=timeout,
            loadgens=loadgens,
        )
        latencies = [ms for result in run.results for ms in result["connectLatenciesMs"]]
        connected = sum(result["connected"] for result in run.results)
        node = run.platform.by_kind("access" if transport == "wt" else "web")[0].name
        before, after = run.phases["before"].rss[node], run.phases["connected"].rss[node]
        rss_per_connection = (after - before) / connected if connected else None
        rest_seconds = run.seconds_between("rest-start", "rest-end")
        node_cpu = run.cpu_between("rest-start", "rest-end", ("access", "web"))
        connect_cpu = run.cpu_between("before", "connected", ("access", "web"))
        all_cpu = run.cpu_between("rest-start", "rest-end")
        figures = {
            "connected": connected,
            "failed": sum(result["failed"] for result in run.results),
            "errors": [e for result in run.results for e in result["errors"]][:10],
            "connectAuthMs": {
                "p50": percentile(latencies, 50),
                "p95": percentile(latencies, 95),
                "p99": percentile(latencies, 99),
                "max": round(max(latencies), 2) if latencies else None,
            },
            "connectSeconds": round(max(result["connectSeconds"] for result in run.results), 2),
            "nodeCpuMsPerConnect": round(connect_cpu / connections * 1000, 2),
            "nodeRssKiB": {"before": before, "after": after},
            "rssPerConnectionKiB": round(rss_per_connection, 2) if rss_per_connection is not None else None,
            "restSeconds": round(rest_seconds, 2),
            "nodeCpuAtRestPercentOfCore": round(node_cpu / rest_seconds * 100, 2),
            "allServersCpuAtRestPercentOfCore": round(all_cpu / rest_seconds * 100, 2),
            "pingsPerSecondExpected": round(connected / settings.HEARTBEAT_SECONDS, 1),
            "stillConnectedAfterRest": sum(result["stillConnectedAfterRest"] for result in run.results),
            "vsEjabberd": {
                "memoryRatio": round(EJABBERD_W3_KB_PER_CONNECTION * 1000 / 1024 / rss_per_connection, 2)
                if rss_per_connection
                else None
            },
        }
        parameters = {
            "connections": connections,
            "connectRate": connect_rate,
            "rest": rest,
            "settle": min(SETTLE_SECONDS, rest),
            "loadgens": loadgens,
            "heartbeatSeconds": settings.HEARTBEAT_SECONDS,
        }
        return emit(out, workload="W3", transport=transport, parameters=parameters, figures=figures)

    return with_population(make, body)
