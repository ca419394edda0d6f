"""The session core's bookkeeping, free of frames and intents: the rate limit (a token bucket), the
error budget and the send window (a bounded FIFO of SendMessage frames published in groups: one
group, of at most `window` sends, on its way at a time, published again on timeout until it runs out
of retries).

Like the core (realtime/session.py), nothing here reads a clock: every call takes `now`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; starts full."""

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at: float | None = None

    def take(self, now: float) -> bool:
        """Spend one token if there is one. A clock that steps back refills nothing."""
        if self._at is None:
            self._at = now
        elif now > self._at:
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
            self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class ErrorBudget:
    """Counts errors over a sliding window of `window` seconds."""

    __slots__ = ("_times", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def spend(self, now: float) -> bool:
        """Record one error; False once there have been more than `limit` within the window."""
        times = self._times
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        return len(times) <= self.limit


@dataclass(slots=True)
class _Send:
    client_msg_id: str
    frame: bytes
    publications: int = 0
    deadline: float = 0.0


class SendWindow:
    """SendMessage frames on their way upstream. Methods return the groups of frames to publish now,
    each group as one envelope, in order.

    A group is what queued while the previous one was out, up to `window` sends; the next group
    leaves once every send of the previous one is answered. One envelope reaches one logic worker,
    which stores its sends in order, and no two envelopes of a connection are out at once: that is
    what keeps a sender's order across several workers, while a busy sender still has up to `window`
    messages on their way per round trip. Answers are matched by client_msg_id, not by position: a
    send published twice may be answered twice, and the second answer changes nothing.
    """

    __slots__ = ("_in_flight", "_queue", "max_queued", "retries", "timeout", "window")

    def __init__(self, *, window: int, max_queued: int, timeout: float, retries: int) -> None:
        self.window = window
        self.max_queued = max_queued
        self.timeout = timeout
        self.retries = retries
        self._queue: deque[_Send] = deque()
        self._in_flight: list[_Send] = []

    @property
    def queued(self) -> int:
        """Sends waiting for the group before them to be answered."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Sends published and not yet answered."""
        return len(self._in_flight)

    @property
    def full(self) -> bool:
        return len(self._queue) >= self.max_queued

    def add(self, client_msg_id: str, frame: bytes, now: float) -> list[list[bytes]]:
        """Queue a send (check `full` first)."""
        self._queue.append(_Send(client_msg_id, frame))
        return self._release(now)

    def answered(self, client_msg_id: str, now: float) -> list[list[bytes]]:
        """A MessageAck or SendError came back; one for no send in flight changes nothing."""
        for index, send in enumerate(self._in_flight):
            if send.client_msg_id == client_msg_id:
                del self._in_flight[index]
                return self._release(now)
        return []

    def expire(self, now: float) -> tuple[list[list[bytes]], list[str]]:
        """Sends whose answer is overdue: (groups to publish again; client_msg_ids of the sends that
        left the window unanswered). When a send runs out of retries, every send of the window
        leaves with it, in order: the client sends them all again, so its retry of the first cannot
        land after the ones behind it (a sender's order holds even then)."""
        overdue = [s for s in self._in_flight if now >= s.deadline]
        if any(send.publications > self.retries for send in overdue):
            given_up = [send.client_msg_id for send in (*self._in_flight, *self._queue)]
            self.clear()
            return [], given_up
        return ([self._publish(overdue, now)] if overdue else []), []

    def next_deadline(self) -> float | None:
        if not self._in_flight:  # the usual case, asked after every frame
            return None
        return min(send.deadline for send in self._in_flight)

    def clear(self) -> None:
        self._queue.clear()
        self._in_flight.clear()

    def _release(self, now: float) -> list[list[bytes]]:
        if self._in_flight or not self._queue:
            return []
        group = [self._queue.popleft() for _ in range(min(self.window, len(self._queue)))]
        self._in_flight = group
        return [self._publish(group, now)]

    def _publish(self, group: list[_Send], now: float) -> list[bytes]:
        for send in group:
            send.publications += 1
            send.deadline = now + self.timeout
        return [send.frame for send in group]
