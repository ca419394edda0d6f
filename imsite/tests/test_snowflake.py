"""Snowflake ids: unique, time ordered, worker-tagged, safe across threads and clock steps."""

from __future__ import annotations

import threading

import pytest

from imsite.snowflake import EPOCH_MS, MAX_SEQUENCE, SEQUENCE_BITS, SnowflakeGenerator, timestamp_ms


def test_ids_are_unique_and_increasing_within_one_millisecond() -> None:
    gen = SnowflakeGenerator(5, clock_ms=lambda: EPOCH_MS + 1000)
    ids = gen.next_ids(MAX_SEQUENCE + 1)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_sequence_overflow_borrows_the_next_millisecond_instead_of_repeating() -> None:
    gen = SnowflakeGenerator(1, clock_ms=lambda: EPOCH_MS + 1000)
    ids = gen.next_ids(3 * (MAX_SEQUENCE + 1))
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert timestamp_ms(ids[-1]) == EPOCH_MS + 1002


@pytest.mark.parametrize("chunks", [[1, 5, 4096, 3], [4095, 1, 1, 8190], [0, 10_000, 2]])
def test_next_ids_gives_what_as_many_next_id_calls_would(chunks: list[int]) -> None:
    # The clock of each block: the same millisecond twice, then a step back, then a later one.
    times = [EPOCH_MS + 7000, EPOCH_MS + 7000, EPOCH_MS + 6000, EPOCH_MS + 7003]
    now = [0]
    one_by_one = SnowflakeGenerator(9, clock_ms=lambda: now[0])
    by_block = SnowflakeGenerator(9, clock_ms=lambda: now[0])
    for count, time_ms in zip(chunks, times, strict=False):
        now[0] = time_ms
        expected = [one_by_one.next_id() for _ in range(count)]
        assert by_block.next_ids(count) == expected
        assert len(set(expected)) == len(expected)
    now[0] = EPOCH_MS + 7003
    assert by_block.next_id() == one_by_one.next_id()  # and they go on alike


def test_clock_stepping_back_never_repeats_or_goes_backwards() -> None:
    times = iter([EPOCH_MS + 5000, EPOCH_MS + 5001, EPOCH_MS + 4000, EPOCH_MS + 4000, EPOCH_MS + 5001, EPOCH_MS + 6000])
    gen = SnowflakeGenerator(7, clock_ms=lambda: next(times))
    ids = [gen.next_id() for _ in range(6)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 6
    assert timestamp_ms(ids[-1]) == EPOCH_MS + 6000


def test_worker_id_is_encoded_and_bounded() -> None:
    gen = SnowflakeGenerator(1023, clock_ms=lambda: EPOCH_MS + 1)
    assert (gen.next_id() >> SEQUENCE_BITS) & 1023 == 1023
    with pytest.raises(ValueError, match="worker id"):
        SnowflakeGenerator(1024)
    with pytest.raises(ValueError, match="worker id"):
        SnowflakeGenerator(-1)


def test_ids_from_many_threads_never_collide() -> None:
    gen = SnowflakeGenerator(3)
    results: list[list[int]] = [[] for _ in range(8)]

    def work(slot: int) -> None:
        results[slot] = gen.next_ids(5000)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for chunk in results for i in chunk]
    assert len(set(every)) == 40_000
    assert all(chunk == sorted(chunk) for chunk in results)


def test_ids_fit_a_signed_64_bit_column() -> None:
    gen = SnowflakeGenerator(1023, clock_ms=lambda: EPOCH_MS + (1 << 41) - 1)
    assert 0 < gen.next_id() < (1 << 63)
