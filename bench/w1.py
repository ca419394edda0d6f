"""W1 of WORKLOADS.md, direct messages: P pairs of online users, each sender sends M messages with at
most 10 unacknowledged (or on a fixed schedule with `rate`), each receiver records arrival."""

from __future__ import annotations

from typing import Any

from bench.population import Population, create_users, make_pairs
from bench.runner import Run, emit, percentile, run_workload, with_population

# ejabberd 23.01 on this machine kind (the reference run): W1 delivered msgs/s, and server CPU
# milliseconds per W1 message.
EJABBERD_W1_MSGS_PER_SECOND = (860, 960)
EJABBERD_W1_CPU_MS_PER_MESSAGE = (1.6, 1.9)


def message_figures(run: Run, result: dict[str, Any]) -> dict[str, Any]:
    """Throughput, latency and correctness of W1/W2/W6-style runs, plus server CPU per message."""
    latencies = result["latenciesMs"]
    delivered = result["delivered"]
    span = max(1e-9, result["lastReceipt"] - result["firstSend"]) if result["lastReceipt"] else 0.0
    cpu = run.cpu_between("connected", "done")
    by_kind = {
        kind: round(run.cpu_between("connected", "done", (kind,)) / max(1, delivered) * 1000, 3)
        for kind in ("access", "web", "logic", "nats")
        if run.platform.by_kind(kind)
    }
    window = run.seconds_between("connected", "done")
    loadgen = run.phases["done"].loadgen_cpu - run.phases["connected"].loadgen_cpu
    return {
        "delivered": delivered,
        "expected": result["expected"],
        "lost": result["expected"] - delivered,
        "duplicated": result["duplicated"],
        "outOfOrder": result["outOfOrder"],
        "refused": result["refused"],
        "deliveredPerSecond": round(delivered / span) if span else 0,
        "seconds": round(span, 3),
        "latencyMs": {
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99),
            "max": round(max(latencies), 2) if latencies else None,
        },
        "serverCpuMsPerDelivery": round(cpu / max(1, delivered) * 1000, 3),
        "serverCpuMsPerDeliveryByProcess": by_kind,
        "serverBusyCores": round(cpu / window, 2) if window else None,
        "loadgenBusyCores": round(loadgen / window, 2) if window else None,
        "errors": result["errors"],
    }


def run_w1(*, transport: str, pairs: int, messages: int, rate: float, timeout: float, out: Any) -> dict[str, Any]:
    def make() -> Population:
        return create_users(2 * pairs)

    def body(population: Population) -> dict[str, Any]:
        triples = make_pairs(population)
        run = run_workload(
            workload="w1",
            transport=transport,
            population=population,
            params={"pairs": triples, "messages": messages, "rate": rate},
            timeout=timeout,
        )
        figures = message_figures(run, run.results[0])
        low, high = EJABBERD_W1_MSGS_PER_SECOND
        cpu_low, cpu_high = EJABBERD_W1_CPU_MS_PER_MESSAGE
        ours = figures["serverCpuMsPerDelivery"]
        figures["vsEjabberd"] = {
            "throughputRatio": [
                round(figures["deliveredPerSecond"] / high, 2),
                round(figures["deliveredPerSecond"] / low, 2),
            ],
            "cpuPerMessageRatio": [round(cpu_low / ours, 2), round(cpu_high / ours, 2)] if ours else None,
        }
        parameters = {"pairs": pairs, "messages": messages, "window": 10, "rate": rate or None}
        return emit(out, workload="W1", transport=transport, parameters=parameters, figures=figures)

    return with_population(make, body)
