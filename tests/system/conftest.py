from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.system.platform import Platform

T = TypeVar("T")
SCENARIO_TIMEOUT = 120.0


def run(scenario: Coroutine[Any, Any, T], timeout: float = SCENARIO_TIMEOUT) -> T:
    """Runs a scenario in its own event loop (the ORM stays on the test's thread), bounded in time."""
    return asyncio.run(asyncio.wait_for(scenario, timeout))


@pytest.fixture
def platform(nats_url: str, tmp_path: Path, transactional_db: Any) -> Iterator[Platform]:
    """nats-server (this test process's), daphne with /ws, two WebTransport nodes, two logic workers."""
    started = Platform(tmp_path, nats_url=nats_url)
    try:
        yield started.start()
    finally:
        started.stop()


@pytest.fixture
def own_nats_platform(tmp_path: Path, transactional_db: Any) -> Iterator[Platform]:
    """The same, on a nats-server of its own that the test may restart."""
    started = Platform(tmp_path)
    try:
        yield started.start()
    finally:
        started.stop()
