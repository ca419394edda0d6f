"""The load generator starts a workload only once its clients have caught up."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.loadgen import caught_up


class FakeClient:
    def __init__(self, syncing: bool) -> None:
        self.syncing = syncing


def test_waits_until_every_client_has_its_sync_answered() -> None:
    clients = [FakeClient(False), FakeClient(True), FakeClient(True)]

    async def scenario() -> list[bool]:
        loop = asyncio.get_running_loop()
        loop.call_later(0.03, setattr, clients[1], "syncing", False)
        loop.call_later(0.06, setattr, clients[2], "syncing", False)
        await caught_up(clients, time.monotonic() + 5)
        return [client.syncing for client in clients]

    assert asyncio.run(scenario()) == [False, False, False]


def test_clients_still_behind_at_the_deadline_stop_the_run() -> None:
    clients = [FakeClient(False), FakeClient(True)]
    with pytest.raises(RuntimeError, match="1 of 2 clients not caught up"):
        asyncio.run(caught_up(clients, time.monotonic() + 0.05))
