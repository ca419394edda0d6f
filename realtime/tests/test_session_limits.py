"""The session core's bookkeeping on its own: token bucket, error budget, send window."""

from __future__ import annotations

from realtime.session_limits import ErrorBudget, SendWindow, TokenBucket


def window(*, max_queued: int = 3, retries: int = 1, size: int = 1) -> SendWindow:
    return SendWindow(window=size, max_queued=max_queued, timeout=10.0, retries=retries)


def test_token_bucket_starts_full_and_refills_at_its_rate():
    bucket = TokenBucket(rate=2, burst=2)

    assert [bucket.take(100.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(100.5)
    assert not bucket.take(100.5)


def test_token_bucket_never_saves_more_than_its_burst():
    bucket = TokenBucket(rate=100, burst=2)
    bucket.take(0.0)

    assert [bucket.take(1000.0) for _ in range(3)] == [True, True, False]


def test_token_bucket_gains_nothing_when_the_clock_steps_back():
    bucket = TokenBucket(rate=1, burst=1)
    bucket.take(100.0)

    assert not bucket.take(50.0)
    assert not bucket.take(100.5)
    assert bucket.take(101.0)


def test_error_budget_allows_its_limit_within_the_window_and_forgets_old_errors():
    budget = ErrorBudget(limit=2, window=60)

    assert budget.spend(0.0)
    assert budget.spend(1.0)
    assert not budget.spend(2.0)
    assert budget.spend(62.0)  # the errors at 0 and 1 have left the window; 2 and 62 remain


def test_send_window_publishes_in_order_one_at_a_time():
    sends = window()

    assert sends.add("a", b"A", 0.0) == [[b"A"]]
    assert sends.add("b", b"B", 0.0) == []
    assert sends.answered("a", 1.0) == [[b"B"]]
    assert (sends.queued, sends.in_flight) == (0, 1)


def test_send_window_ignores_answers_for_sends_not_in_flight():
    sends = window()
    sends.add("a", b"A", 0.0)
    sends.add("b", b"B", 0.0)

    assert sends.answered("b", 1.0) == []
    assert sends.answered("zzz", 1.0) == []
    assert sends.in_flight == 1


def test_send_window_republishes_then_gives_up_on_the_send_and_every_one_behind_it():
    sends = window(size=2, retries=1)
    sends.add("a", b"A", 0.0)
    sends.add("b", b"B", 0.0)
    sends.add("c", b"C", 0.0)

    assert sends.expire(9.0) == ([], [])
    assert sends.expire(10.0) == ([[b"A"]], [])
    assert sends.next_deadline() == 20.0
    # b and c never left: had they gone now, the client's retry of a would be stored after them
    assert sends.expire(20.0) == ([], ["a", "b", "c"])
    assert (sends.queued, sends.in_flight, sends.next_deadline()) == (0, 0, None)
    assert sends.add("d", b"D", 21.0) == [[b"D"]]  # what the client sends next goes at once


def test_sends_queued_behind_a_group_leave_together_once_all_of_it_is_answered():
    sends = window(size=3, max_queued=10)

    assert sends.add("a", b"A", 0.0) == [[b"A"]]
    assert [sends.add(i, i.upper().encode(), 0.0) for i in "bcde"] == [[], [], [], []]
    assert sends.answered("a", 1.0) == [[b"B", b"C", b"D"]]  # at most `window` in one group
    assert sends.answered("c", 2.0) == []  # b and d are still out: nothing overtakes them
    assert sends.answered("b", 2.0) == []
    assert sends.answered("d", 3.0) == [[b"E"]]
    assert (sends.queued, sends.in_flight) == (0, 1)


def test_a_group_is_published_again_whole_minus_what_was_answered():
    sends = window(size=3, max_queued=10)
    sends.add("a", b"A", 0.0)
    for i in "bcd":
        sends.add(i, i.upper().encode(), 0.0)
    sends.answered("a", 1.0)
    sends.answered("c", 2.0)

    assert sends.expire(11.0) == ([[b"B", b"D"]], [])


def test_send_window_reports_full_at_its_queue_bound():
    sends = window(max_queued=1)
    sends.add("a", b"A", 0.0)  # in flight, not queued
    sends.add("b", b"B", 0.0)

    assert sends.full
    sends.clear()
    assert not sends.full
    assert sends.next_deadline() is None
