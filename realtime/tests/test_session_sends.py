"""Session core, traffic: what goes upstream (envelopes, the one-send-in-flight window, retries, rate
limits, the queue bound) and what comes down (deliveries, acks releasing sends, the slow reader)."""

from __future__ import annotations

import pytest

from realtime.session import PublishUpstream, SendToClient, State, answers_a_send
from realtime.tests.session_helpers import (
    ALICE,
    CONNECTION,
    DEVICE,
    NODE,
    SESSION_ID,
    T0,
    ack_frame,
    closes,
    connected_session,
    envelopes,
    error_codes,
    open_session,
    published,
    published_ids,
    send_error_frame,
    send_errors,
    send_frame,
    to_client,
)
from schema.codec import (
    Cursor,
    ErrorCode,
    ErrorFrame,
    Message,
    Ping,
    PushAck,
    PushMessage,
    ReadReceipt,
    SendErrorCode,
    Sync,
    Typing,
    encode_frame,
)

TYPING = encode_frame(Typing(conversation_id=9))
PING = encode_frame(Ping())

# Forwarding and envelopes


@pytest.mark.parametrize(
    "frame",
    [
        encode_frame(Sync(cursors=(Cursor(conversation_id=9, after_seq=4),))),
        encode_frame(ReadReceipt(conversation_id=9, seq=4)),
        TYPING,
    ],
    ids=["Sync", "ReadReceipt", "Typing"],
)
def test_sync_read_receipt_and_typing_are_published_at_once_as_sent(frame):
    session = open_session()

    intents = session.receive(frame, T0 + 1)

    assert [u.frame for u in envelopes(intents)] == [frame]
    assert to_client(intents) == []


def test_other_frames_are_not_held_behind_a_waiting_send():
    session = open_session()
    session.receive(send_frame("m1"), T0)

    intents = session.receive(TYPING, T0)

    assert published(intents) == [Typing(conversation_id=9)]


def test_push_ack_is_consumed_by_the_access_node():
    session = open_session()

    assert session.receive(encode_frame(PushAck(conversation_id=9, seq=4)), T0) == []


def test_upstream_envelope_carries_who_sent_it_and_where_answers_go():
    session = open_session()

    [envelope] = envelopes(session.receive(send_frame("m1"), T0 + 2.5))

    assert envelope.user_id == ALICE
    assert envelope.device_id == DEVICE
    assert envelope.session_id == SESSION_ID
    assert envelope.node_id == NODE
    assert envelope.connection_id == CONNECTION
    assert envelope.received_at == int((T0 + 2.5) * 1000)
    assert envelope.frame == send_frame("m1")


# The send window


def test_first_send_is_published_at_once():
    session = open_session()

    assert published_ids(session.receive(send_frame("m1"), T0)) == ["m1"]
    assert session.in_flight_sends == 1


def test_second_send_waits_for_the_first_ones_ack():
    session = open_session()
    session.receive(send_frame("m1"), T0)

    assert published(session.receive(send_frame("m2"), T0)) == []
    assert session.queued_sends == 1
    intents = session.deliver(ack_frame("m1"), T0 + 0.01)

    assert published_ids(intents) == ["m2"]
    assert session.queued_sends == 0


def test_the_ack_reaches_the_client_before_the_next_send_is_published():
    session = open_session()
    session.receive(send_frame("m1"), T0)
    session.receive(send_frame("m2"), T0)

    intents = session.deliver(ack_frame("m1"), T0)

    assert intents[0] == SendToClient(ack_frame("m1"))
    assert isinstance(intents[1], PublishUpstream)


def test_only_acks_and_send_errors_answer_a_send():
    assert answers_a_send(ack_frame("m1"))
    assert answers_a_send(send_error_frame("m1"))
    assert not answers_a_send(push(1))
    assert not answers_a_send(PING)
    assert not answers_a_send(b"not a frame")  # passed on to the client, not policed
    assert not answers_a_send(b"")


@pytest.mark.parametrize("frame_of", [ack_frame, send_error_frame])
def test_an_answer_classified_by_the_caller_releases_the_next_send_as_one_classified_here(frame_of):
    sessions = [open_session(), open_session()]
    for session in sessions:
        session.receive(send_frame("m1"), T0)
        session.receive(send_frame("m2"), T0)
    frame = frame_of("m1")

    by_caller = sessions[0].deliver(frame, T0, answers=answers_a_send(frame))
    here = sessions[1].deliver(frame, T0)

    assert by_caller == here
    assert published_ids(by_caller) == ["m2"]


def test_a_push_classified_by_the_caller_reaches_the_client_and_leaves_the_timers_as_they_were():
    session = open_session()
    session.receive(send_frame("m1"), T0)
    timer = session.next_timer()
    frame = push(1)

    assert session.deliver(frame, T0 + 1, answers=answers_a_send(frame)) == [SendToClient(frame)]
    assert session.next_timer() == timer
    assert session.in_flight_sends == 1  # a push answers nothing


def test_send_error_also_releases_the_next_send():
    session = open_session()
    session.receive(send_frame("m1"), T0)
    session.receive(send_frame("m2"), T0)

    intents = session.deliver(send_error_frame("m1"), T0)

    assert send_errors(intents) == [("m1", SendErrorCode.NOT_MEMBER)]
    assert published_ids(intents) == ["m2"]


def test_queued_sends_go_out_one_at_a_time_in_the_order_sent():
    session = open_session(send_window=1)
    for number in range(1, 5):
        session.receive(send_frame(f"m{number}"), T0)

    order = ["m1"]
    for number in range(1, 4):
        order += published_ids(session.deliver(ack_frame(f"m{number}"), T0))

    assert order == ["m1", "m2", "m3", "m4"]


def test_sends_queued_behind_an_envelope_leave_together_in_one_envelope_in_order():
    session = open_session(send_window=3)
    assert published_ids(session.receive(send_frame("m1"), T0)) == ["m1"]
    for number in range(2, 6):
        assert published(session.receive(send_frame(f"m{number}"), T0)) == []

    intents = session.deliver(ack_frame("m1"), T0)

    assert len(envelopes(intents)) == 1  # one envelope: one logic worker stores them, in this order
    assert published_ids(intents) == ["m2", "m3", "m4"]
    assert published(session.deliver(ack_frame("m3"), T0)) == []  # m2 and m4 are still out
    session.deliver(ack_frame("m2"), T0)
    assert published_ids(session.deliver(ack_frame("m4"), T0)) == ["m5"]


def test_an_answer_for_a_send_not_in_flight_is_passed_on_but_releases_nothing():
    session = open_session()
    session.receive(send_frame("m1"), T0)
    session.receive(send_frame("m2"), T0)

    intents = session.deliver(ack_frame("other"), T0)

    assert intents == [SendToClient(ack_frame("other"))]
    assert session.in_flight_sends == 1


def test_a_second_answer_to_a_retried_send_does_not_release_the_send_after_it():
    session = open_session(send_timeout=10, send_window=1)
    session.receive(send_frame("m1"), T0)
    session.receive(send_frame("m2"), T0)
    session.receive(send_frame("m3"), T0)
    session.handle_timer(T0 + 10)  # m1 published again; the worker will answer both copies
    session.deliver(ack_frame("m1"), T0 + 11)  # releases m2

    intents = session.deliver(ack_frame("m1"), T0 + 11)

    assert published(intents) == []
    assert session.queued_sends == 1  # m3 still waits for m2's answer


def test_sends_beyond_the_queue_bound_are_refused_as_rate_limited():
    session = open_session(max_queued_sends=2)
    for number in range(3):  # one in flight, two queued
        session.receive(send_frame(f"m{number}"), T0)

    intents = session.receive(send_frame("m3"), T0)

    assert send_errors(intents) == [("m3", SendErrorCode.RATE_LIMITED)]
    assert session.queued_sends == 2
    assert session.state is State.OPEN


# Retries


def test_an_unanswered_send_is_published_again_with_the_same_frame_after_the_send_timeout():
    session = open_session(send_timeout=10)
    first = session.receive(send_frame("m1"), T0)

    assert session.handle_timer(T0 + 9.9) == []
    again = session.handle_timer(T0 + 10)
    assert [u.frame for u in envelopes(again)] == [u.frame for u in envelopes(first)] == [send_frame("m1")]
    assert session.next_timer() == T0 + 20


def test_a_send_unanswered_after_every_retry_is_refused_as_unavailable_with_the_ones_behind_it():
    session = open_session(send_timeout=10, send_retries=3, heartbeat_timeout=1000)
    session.receive(send_frame("m1"), T0)
    session.receive(send_frame("m2"), T0)
    for retry in range(1, 4):
        assert published_ids(session.handle_timer(T0 + 10 * retry)) == ["m1"]

    intents = session.handle_timer(T0 + 40)

    # in order, and m2 not published: the client sends both again, m1 first
    assert send_errors(intents) == [("m1", SendErrorCode.UNAVAILABLE), ("m2", SendErrorCode.UNAVAILABLE)]
    assert published_ids(intents) == []
    assert session.in_flight_sends == 0
    assert published_ids(session.receive(send_frame("m1"), T0 + 41)) == ["m1"]


def test_a_send_with_no_retries_allowed_is_refused_at_its_first_timeout():
    session = open_session(send_timeout=10, send_retries=0)
    session.receive(send_frame("m1"), T0)

    assert send_errors(session.handle_timer(T0 + 10)) == [("m1", SendErrorCode.UNAVAILABLE)]


def test_an_answer_after_a_retry_completes_the_send():
    session = open_session(send_timeout=10)
    session.receive(send_frame("m1"), T0)
    session.handle_timer(T0 + 10)

    session.deliver(ack_frame("m1"), T0 + 12)

    assert session.in_flight_sends == 0
    assert session.next_timer() == T0 + 90


def test_a_late_ack_for_a_send_given_up_on_still_reaches_the_client():
    session = open_session(send_timeout=10, send_retries=0)
    session.receive(send_frame("m1"), T0)
    session.handle_timer(T0 + 10)

    assert session.deliver(ack_frame("m1"), T0 + 11) == [SendToClient(ack_frame("m1"))]


# Rate limits


def test_sends_beyond_the_burst_are_refused_with_their_client_msg_id():
    session = open_session(burst=3, rate=1, send_window=10)
    for number in range(3):
        session.receive(send_frame(f"m{number}"), T0)

    intents = session.receive(send_frame("m3"), T0)

    assert send_errors(intents) == [("m3", SendErrorCode.RATE_LIMITED)]
    assert published(intents) == []


def test_other_frames_beyond_the_rate_get_a_rate_limited_error():
    session = open_session(burst=2, rate=1)
    session.receive(TYPING, T0)
    session.receive(TYPING, T0)

    intents = session.receive(TYPING, T0)

    assert error_codes(intents) == [ErrorCode.RATE_LIMITED]
    assert published(intents) == []


def test_rate_limited_frames_do_not_count_as_errors():
    session = open_session(burst=1, rate=0.001, max_errors=1)
    for _ in range(10):
        session.receive(TYPING, T0)

    assert session.state is State.OPEN


def test_the_rate_limit_refills_over_time():
    session = open_session(burst=2, rate=50)
    for _ in range(3):
        session.receive(TYPING, T0)

    assert published(session.receive(TYPING, T0 + 0.03)) == [Typing(conversation_id=9)]
    assert error_codes(session.receive(TYPING, T0 + 0.03)) == [ErrorCode.RATE_LIMITED]


def test_sends_and_other_frames_share_one_bucket():
    session = open_session(burst=1, rate=1)
    session.receive(TYPING, T0)

    assert send_errors(session.receive(send_frame("m1"), T0)) == [("m1", SendErrorCode.RATE_LIMITED)]


def test_pings_and_push_acks_are_not_rate_limited():
    session = open_session(burst=1, rate=1)
    for _ in range(5):
        session.receive(PING, T0)
        session.receive(encode_frame(PushAck(conversation_id=9, seq=1)), T0)

    assert published(session.receive(TYPING, T0)) == [Typing(conversation_id=9)]


# Deliveries and the slow reader


def push(seq: int, body: str = "hi") -> bytes:
    return encode_frame(PushMessage(message=Message(id=seq, conversation_id=9, seq=seq, sender_id=2, body=body)))


def test_delivered_frames_reach_the_client_as_the_same_bytes():
    session = open_session()
    frame = push(1)

    [intent] = session.deliver(frame, T0)

    assert isinstance(intent, SendToClient)
    assert intent.data is frame


def test_nothing_is_delivered_before_the_client_has_authenticated():
    assert connected_session().deliver(push(1), T0) == []


def test_a_corrupt_frame_from_downstream_is_passed_on_without_touching_the_send_window():
    session = open_session()
    session.receive(send_frame("m1"), T0)

    assert session.deliver(b"\x01\x02", T0) == [SendToClient(b"\x01\x02")]
    assert session.in_flight_sends == 1


def test_a_reader_more_than_max_pending_bytes_behind_is_disconnected():
    frame = push(1, body="x" * 1000)
    session = open_session(max_pending_bytes=len(frame) * 3)
    session.written(session.pending_bytes)  # AuthResult went out
    for _ in range(3):
        session.deliver(frame, T0)

    intents = session.deliver(frame, T0)

    assert SendToClient(frame) not in intents
    assert to_client(intents) == [ErrorFrame(code=ErrorCode.UNAVAILABLE, message="slow reader")]
    assert [c.code for c in closes(intents)] == [ErrorCode.UNAVAILABLE]
    assert session.state is State.CLOSED


def test_bytes_confirmed_as_written_make_room_again():
    frame = push(1, body="x" * 1000)
    session = open_session(max_pending_bytes=len(frame) * 2)
    session.written(session.pending_bytes)

    for _ in range(10):
        assert session.deliver(frame, T0) == [SendToClient(frame)]
        session.written(len(frame))
    assert session.pending_bytes == 0


def test_answers_made_by_the_session_count_toward_the_pending_bytes():
    session = open_session()
    before = session.pending_bytes

    session.receive(TYPING, T0)  # published, nothing for the client
    [pong] = session.receive(PING, T0)

    assert isinstance(pong, SendToClient)
    assert session.pending_bytes == before + len(pong.data)
