"""The GC policy of the processes that hold thousands of connections."""

from __future__ import annotations

import asyncio
import gc

import pytest

from imsite.gc_policy import GC_THRESHOLDS, collect_periodically, tune_gc


@pytest.fixture
def restored_gc():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tuning_freezes_what_lives_at_start_up_and_sets_the_thresholds(restored_gc):
    gc.unfreeze()
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > 0
    assert gc.get_count()[2] == 0  # a full collection ran first: nothing left over for the young ones


async def test_full_collections_run_on_the_timer(monkeypatch):
    collections: list[int] = []
    third = asyncio.Event()

    def collect(generation: int = 2) -> int:
        collections.append(generation)
        if len(collections) == 3:
            third.set()
        return 0

    monkeypatch.setattr(gc, "collect", collect)
    task = asyncio.get_running_loop().create_task(collect_periodically(0.01))
    try:
        await asyncio.wait_for(third.wait(), 10)
    finally:
        task.cancel()
    assert collections[:3] == [2, 2, 2]
