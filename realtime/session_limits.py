"""The session core's bookkeeping, free of frames and intents: the rate limit (a token bucket), the
error budget and the send window (a bounded FIFO of SendMessage envelopes with at most `window` of
them published and unanswered, each published again on timeout until it runs out of retries).

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
    payload: bytes
    publications: int = 0
    deadline: float = 0.0


class SendWindow:
    """SendMessage envelopes on their way upstream. Methods return the payloads to publish now, in order.

    The logic worker keeps a sender's order only when each connection has one send in flight at a
    time, hence window=1 by default. Answers are matched by client_msg_id, not by position: a send
    published twice may be answered twice, and the second answer must not release the send after it.
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
        """Sends waiting for room in the window."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Sends published and not yet answered."""
        return len(self._in_flight)

    @property
    def full(self) -> bool:
        return len(self._queue) >= self.max_queued

    def add(self, client_msg_id: str, payload: bytes, now: float) -> list[bytes]:
        """Queue a send (check `full` first)."""
        self._queue.append(_Send(client_msg_id, payload))
        return self._release(now)

    def answered(self, client_msg_id: str, now: float) -> list[bytes]:
        """A MessageAck or SendError came back; one for no send in flight changes nothing."""
        for index, send in enumerate(self._in_flight):
            if send.client_msg_id == client_msg_id:
                del self._in_flight[index]
                return self._release(now)
        return []

    def expire(self, now: float) -> tuple[list[bytes], list[str]]:
        """Sends whose answer is overdue: (payloads to publish, again or next in line; client_msg_ids
        of the sends that ran out of retries and left the window)."""
        publish: list[bytes] = []
        given_up: list[str] = []
        for send in [s for s in self._in_flight if now >= s.deadline]:
            if send.publications <= self.retries:
                publish.append(self._publish(send, now))
            else:
                self._in_flight.remove(send)
                given_up.append(send.client_msg_id)
        publish += self._release(now)
        return publish, given_up

    def next_deadline(self) -> float | None:
        return min((send.deadline for send in self._in_flight), default=None)

    def clear(self) -> None:
        self._queue.clear()
        self._in_flight.clear()

    def _release(self, now: float) -> list[bytes]:
        publish = []
        while self._queue and len(self._in_flight) < self.window:
            send = self._queue.popleft()
            self._in_flight.append(send)
            publish.append(self._publish(send, now))
        return publish

    def _publish(self, send: _Send, now: float) -> bytes:
        send.publications += 1
        send.deadline = now + self.timeout
        return send.payload
