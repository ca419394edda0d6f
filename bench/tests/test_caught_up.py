"""The load generator starts a workload only once its clients have caught up."""

from __future__ import annotations

import asyncio

import pytest

from bench.loadgen import caught_up


class FakeClient:
    def __init__(self) -> None:
        self.synced = asyncio.Event()

    async def wait_caught_up(self) -> None:
        await self.synced.wait()


def test_waits_until_every_client_has_its_sync_answered() -> None:
    async def scenario() -> list[bool]:
        clients = [FakeClient(), FakeClient(), FakeClient()]
        loop = asyncio.get_running_loop()

        def answer(index: int) -> None:  # one client's Sync answered per loop iteration, in turn
            clients[index].synced.set()
            if index + 1 < len(clients):
                loop.call_soon(answer, index + 1)

        loop.call_soon(answer, 0)
        await caught_up(clients, 5)
        return [client.synced.is_set() for client in clients]

    assert asyncio.run(scenario()) == [True, True, True]


def test_clients_still_behind_at_the_deadline_stop_the_run() -> None:
    async def scenario() -> None:
        ready, behind = FakeClient(), FakeClient()
        ready.synced.set()
        await caught_up([ready, behind], 0.05)

    with pytest.raises(RuntimeError, match="1 of 2 clients not caught up"):
        asyncio.run(scenario())
