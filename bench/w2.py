"""W2 of WORKLOADS.md, group fan-out: one group of G online members; S of them send M messages each
(at most 10 unacknowledged per sender); every other member records each arrival."""

from __future__ import annotations

from typing import Any

from bench.population import Population, create_users, make_group
from bench.runner import emit, run_workload, with_population
from bench.w1 import message_figures

EJABBERD_W2_DELIVERIES_PER_SECOND = (12_000, 16_000)


def run_w2(
    *, transport: str, group: int, senders: int, messages: int, rate: float, timeout: float, out: Any
) -> dict[str, Any]:
    def make() -> Population:
        return create_users(group)

    def body(population: Population) -> dict[str, Any]:
        conversation_id = make_group(population)
        run = run_workload(
            workload="w2",
            transport=transport,
            population=population,
            params={"group": conversation_id, "senders": senders, "messages": messages, "rate": rate},
            timeout=timeout,
        )
        figures = message_figures(run, run.results[0])
        low, high = EJABBERD_W2_DELIVERIES_PER_SECOND
        figures["vsEjabberd"] = {
            "throughputRatio": [
                round(figures["deliveredPerSecond"] / high, 2),
                round(figures["deliveredPerSecond"] / low, 2),
            ]
        }
        parameters = {"group": group, "senders": senders, "messages": messages, "window": 10, "rate": rate or None}
        return emit(out, workload="W2", transport=transport, parameters=parameters, figures=figures)

    return with_population(make, body)
