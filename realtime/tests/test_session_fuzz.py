"""Session core under random input: whatever a client sends and whatever order things happen in, no
input raises, at most one send is in flight, sends go upstream in order, presence is cleaned up once
and a closed session stays silent."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.session import (
    Close,
    Intent,
    PublishUpstream,
    RegisterPresence,
    SendToClient,
    Session,
    SessionConfig,
    State,
    UnregisterPresence,
)
from realtime.tests.session_helpers import (
    ALICE,
    CONNECTION,
    DEVICE,
    NODE,
    PLATFORM,
    SESSION_ID,
    T0,
    ack_frame,
    auth_frame,
    send_error_frame,
    send_frame,
)
from schema.codec import (
    Ping,
    Pong,
    PushAck,
    SendError,
    SendErrorCode,
    SendMessage,
    Typing,
    decode_client_frame,
    decode_frame,
    decode_upstream,
    encode_frame,
)


def _hostile_corpus() -> list[bytes]:
    """Valid frames (server-only ones too), and each of them with a flipped byte, cut short, or noise."""
    valid = [auth_frame(), encode_frame(Ping()), encode_frame(Typing(conversation_id=9))]
    valid += [encode_frame(PushAck(conversation_id=9, seq=1)), encode_frame(Pong()), send_frame("seed")]
    rng = random.Random(20261123)
    corpus = list(valid)
    for frame in valid * 20:
        at = rng.randrange(len(frame))
        corpus.append(frame[:at] + bytes([frame[at] ^ rng.randrange(1, 256)]) + frame[at + 1 :])
        corpus.append(frame[: rng.randrange(len(frame))])
        corpus.append(rng.randbytes(rng.randrange(80)))
    return corpus


CLIENT_BYTES = _hostile_corpus()


class Observer:
    """Runs inputs and checks the invariants every batch of intents must keep."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.sent: list[str] = []  # client_msg_ids, in the order the client sent them
        self.first_published: list[str] = []
        self.resolved: set[str] = set()
        self.registered = self.unregistered = self.closes = 0
        self.silent = False

    def check(self, intents: list[Intent]) -> None:
        if self.silent:
            assert intents == []
        for intent in intents:
            if isinstance(intent, PublishUpstream):
                upstream = decode_upstream(intent.payload)
                assert (upstream.user_id, upstream.node_id, upstream.connection_id) == (ALICE, NODE, CONNECTION)
                frame = decode_client_frame(upstream.frame)
                if isinstance(frame, SendMessage) and frame.client_msg_id not in self.first_published:
                    # One in flight: every earlier send was answered or given up before this one went.
                    assert set(self.first_published) <= self.resolved
                    self.first_published.append(frame.client_msg_id)
            elif isinstance(intent, SendToClient):
                answer = decode_frame(intent.data)
                if isinstance(answer, SendError) and answer.code == SendErrorCode.UNAVAILABLE:
                    self.resolved.add(answer.client_msg_id)
            elif isinstance(intent, RegisterPresence):
                self.registered += 1
            elif isinstance(intent, UnregisterPresence):
                self.unregistered += 1
            elif isinstance(intent, Close):
                self.closes += 1
        assert self.session.in_flight_sends <= self.session.config.send_window
        assert self.registered <= 1
        assert self.unregistered <= self.registered
        assert self.closes <= 1
        if self.session.state is State.CLOSED:
            assert self.session.next_timer() is None
            self.silent = True
        else:
            assert self.session.next_timer() is not None


GAPS = st.sampled_from([0.0, 0.0, 0.0, 0.01, 1.0, 5.0, 11.0, 40.0])
# Weighted by repetition: sends and answers are where the ordering rules live; an end ends the run.
ACTIONS = st.sampled_from(["receive"] * 3 + ["send"] * 4 + ["answer"] * 4 + ["timer"] * 3 + ["written", "auth", "end"])
STEPS = st.tuples(GAPS, ACTIONS, st.integers(0, 10**6), st.booleans())
Step = tuple[float, str, int, bool]


@settings(max_examples=200, deadline=None)
@given(start_open=st.booleans(), steps=st.lists(STEPS, min_size=10, max_size=60))
def test_random_input_never_breaks_the_session_rules(start_open: bool, steps: list[Step]) -> None:
    config = SessionConfig(
        burst=20, rate=5, max_errors=20, max_queued_sends=5, send_timeout=5, send_retries=1, max_pending_bytes=4000
    )
    session = Session(NODE, CONNECTION, config)
    session.connected(T0)
    observer = Observer(session)
    now = T0
    if start_open:  # most interesting paths need an open session
        observer.check(session.receive(auth_frame(), now))
        observer.check(session.authenticated(ALICE, SESSION_ID, DEVICE, PLATFORM, now))
    for gap, action, number, flag in steps:
        now += gap
        intents: list[Intent] = []
        if action == "receive":
            intents = session.receive(CLIENT_BYTES[number % len(CLIENT_BYTES)], now)
        elif action == "send":
            client_msg_id = f"m{len(observer.sent)}"
            observer.sent.append(client_msg_id)
            intents = session.receive(send_frame(client_msg_id), now)
        elif action == "answer" and observer.sent:
            waiting = [m for m in observer.first_published if m not in observer.resolved]
            # Mostly the send in flight (the worker's answer); sometimes any send (duplicates, strays).
            client_msg_id = waiting[0] if waiting and number % 3 else observer.sent[number % len(observer.sent)]
            if client_msg_id in observer.first_published:
                observer.resolved.add(client_msg_id)
            intents = session.deliver((ack_frame if flag else send_error_frame)(client_msg_id), now)
        elif action == "timer":
            intents = session.handle_timer(now)
        elif action == "written":
            session.written(number % 5000)
        elif action == "auth" and session.state is State.AUTHENTICATING:
            if flag:
                intents = session.authenticated(ALICE, SESSION_ID, DEVICE, PLATFORM, now)
            else:
                intents = session.authentication_failed("bad token", now)
        elif action == "end":
            intents = session.closed(now) if flag else session.kick("ban", now)
        observer.check(intents)
    observer.check(session.closed(now + 1))
    assert observer.unregistered == observer.registered
