"""W6 of WORKLOADS.md, reconnect: C clients in C/2 pairs run W1 on a fixed schedule; halfway through,
every client loses its connection at once (as in a network failure: nothing is said to the server) and
reconnects by itself. Measured: how long until every client is back and caught up (its catch-up Sync
answered, no gap outstanding), and whether any message was lost, duplicated or reordered."""

from __future__ import annotations

from typing import Any

from bench.population import Population, create_users, make_pairs
from bench.runner import emit, percentile, run_workload, with_population
from bench.w1 import message_figures


def run_w6(*, transport: str, clients: int, messages: int, rate: float, timeout: float, out: Any) -> dict[str, Any]:
    pairs = clients // 2
    total = pairs * messages

    def make() -> Population:
        return create_users(2 * pairs)

    def body(population: Population) -> dict[str, Any]:
        triples = make_pairs(population)
        run = run_workload(
            workload="w6",
            transport=transport,
            population=population,
            params={"pairs": triples, "messages": messages, "rate": rate, "dropAfterMessages": total // 2},
            timeout=timeout,
        )
        result = run.results[0]
        figures = message_figures(run, result)
        back = result["backSeconds"]
        figures.update(
            {
                "clients": result["clients"],
                "dropped": result["dropped"],
                "backAndSynced": len(back),
                "allBackSeconds": round(max(back), 3) if len(back) == result["clients"] else None,
                "backSeconds": {"p50": percentile(back, 50), "p99": percentile(back, 99)},
                "reconnects": result["reconnects"],
            }
        )
        parameters = {"clients": 2 * pairs, "messages": messages, "rate": rate, "dropAfterMessages": total // 2}
        return emit(out, workload="W6", transport=transport, parameters=parameters, figures=figures)

    return with_population(make, body)
