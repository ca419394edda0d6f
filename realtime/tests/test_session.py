"""Session core, lifecycle: authentication, heartbeat, bad frames and the error budget, kicks, closing
and timers. Driven by hand: no sockets, no sleeps, `now` is an argument."""

from __future__ import annotations

import pytest

from realtime.session import (
    NORMAL_CLOSURE,
    Authenticate,
    Close,
    Identity,
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
    closes,
    connected_session,
    error_codes,
    open_session,
    published,
    published_ids,
    send_frame,
    to_client,
)
from schema.codec import (
    AuthResult,
    ErrorCode,
    ErrorFrame,
    Kicked,
    Message,
    MessageAck,
    Ping,
    Pong,
    PushAck,
    PushMessage,
    ReadReceipt,
    Resync,
    Sync,
    Typing,
    encode_frame,
)

PING = encode_frame(Ping())
ALICE_PRESENCE = (ALICE, SESSION_ID, DEVICE, PLATFORM)

# Authentication


def test_auth_frame_asks_the_adapter_to_check_the_token():
    session = connected_session()

    intents = session.receive(auth_frame("tok"), T0 + 1)

    assert intents == [Authenticate(token="tok", device_id=DEVICE, platform=PLATFORM)]
    assert session.state is State.AUTHENTICATING


def test_authenticated_session_registers_presence_then_gets_auth_result():
    session = connected_session(heartbeat_seconds=25)
    session.receive(auth_frame(), T0)

    intents = session.authenticated(ALICE, SESSION_ID, DEVICE, PLATFORM, T0 + 0.1)

    assert intents[0] == RegisterPresence(*ALICE_PRESENCE)
    assert to_client(intents) == [AuthResult(user_id=ALICE, session_id=SESSION_ID, heartbeat_seconds=25)]
    assert session.state is State.OPEN
    assert session.identity == Identity(*ALICE_PRESENCE)


def test_failed_authentication_sends_the_reason_and_closes():
    session = connected_session()
    session.receive(auth_frame(), T0)

    intents = session.authentication_failed("token expired", T0 + 0.1)

    assert to_client(intents) == [ErrorFrame(code=ErrorCode.AUTH_FAILED, message="token expired")]
    assert closes(intents) == [Close(ErrorCode.AUTH_FAILED, "token expired")]
    assert not any(isinstance(i, UnregisterPresence) for i in intents)
    assert session.state is State.CLOSED


def test_client_without_auth_within_auth_timeout_is_closed():
    session = connected_session(auth_timeout=5)

    assert session.handle_timer(T0 + 4.9) == []
    intents = session.handle_timer(T0 + 5)

    assert error_codes(intents) == [ErrorCode.AUTH_TIMEOUT]
    assert [c.code for c in closes(intents)] == [ErrorCode.AUTH_TIMEOUT]


def test_pings_do_not_extend_the_auth_deadline():
    session = connected_session(auth_timeout=5)
    session.receive(PING, T0 + 4)

    assert session.next_timer() == T0 + 5
    assert closes(session.handle_timer(T0 + 5))


def test_auth_timeout_also_covers_an_authentication_the_adapter_never_finishes():
    session = connected_session(auth_timeout=5)
    session.receive(auth_frame(), T0 + 1)

    intents = session.handle_timer(T0 + 5)

    assert error_codes(intents) == [ErrorCode.AUTH_TIMEOUT]
    assert session.authenticated(ALICE, SESSION_ID, DEVICE, PLATFORM, T0 + 6) == []
    assert session.authentication_failed("too late anyway", T0 + 6) == []


def test_ping_before_auth_is_answered_with_pong():
    session = connected_session()

    assert to_client(session.receive(PING, T0)) == [Pong()]


@pytest.mark.parametrize(
    "frame",
    [
        send_frame("m1"),
        encode_frame(Typing(conversation_id=9)),
        encode_frame(Sync()),
        encode_frame(ReadReceipt(conversation_id=9, seq=3)),
        encode_frame(PushAck(conversation_id=9, seq=3)),
    ],
    ids=["SendMessage", "Typing", "Sync", "ReadReceipt", "PushAck"],
)
def test_frames_before_auth_are_refused_and_never_published(frame):
    session = connected_session()

    intents = session.receive(frame, T0)

    assert error_codes(intents) == [ErrorCode.NOT_AUTHENTICATED]
    assert published(intents) == []
    assert session.state is State.AWAITING_AUTH


def test_frames_while_the_token_is_being_checked_are_refused():
    session = connected_session()
    session.receive(auth_frame(), T0)

    intents = session.receive(send_frame("m1"), T0)

    assert error_codes(intents) == [ErrorCode.NOT_AUTHENTICATED]


def test_second_auth_frame_is_refused_while_checking_and_once_open():
    checking = connected_session()
    checking.receive(auth_frame(), T0)

    assert error_codes(checking.receive(auth_frame(), T0)) == [ErrorCode.UNEXPECTED_FRAME]
    assert error_codes(open_session().receive(auth_frame(), T0)) == [ErrorCode.UNEXPECTED_FRAME]


def test_adapter_answering_an_auth_that_was_never_asked_for_is_a_bug():
    session = connected_session()

    with pytest.raises(RuntimeError, match="authenticated"):
        session.authenticated(ALICE, SESSION_ID, DEVICE, PLATFORM, T0)
    with pytest.raises(RuntimeError, match="authentication_failed"):
        open_session().authentication_failed("no", T0)


def test_inputs_before_connected_are_a_bug():
    session = Session(NODE, CONNECTION)

    with pytest.raises(RuntimeError, match="connected"):
        session.receive(PING, T0)
    assert session.next_timer() is None


def test_connected_twice_is_a_bug():
    with pytest.raises(RuntimeError, match="twice"):
        connected_session().connected(T0)


# Heartbeat


def test_ping_is_answered_with_pong_and_never_published():
    session = open_session()

    intents = session.receive(PING, T0 + 10)

    assert to_client(intents) == [Pong()]
    assert published(intents) == []


def test_silent_client_is_closed_after_the_heartbeat_timeout():
    session = open_session(heartbeat_timeout=90)

    assert session.handle_timer(T0 + 89.9) == []
    intents = session.handle_timer(T0 + 90)

    assert error_codes(intents) == [ErrorCode.HEARTBEAT_TIMEOUT]
    assert [c.code for c in closes(intents)] == [ErrorCode.HEARTBEAT_TIMEOUT]
    assert intents[-1] == UnregisterPresence(*ALICE_PRESENCE)


@pytest.mark.parametrize(
    "frame",
    [PING, encode_frame(Typing(conversation_id=9)), encode_frame(PushAck(conversation_id=9, seq=1)), b"garbage!"],
    ids=["Ping", "Typing", "PushAck", "garbage"],
)
def test_any_frame_from_the_client_resets_the_heartbeat_timeout(frame):
    session = open_session(heartbeat_timeout=90)

    session.receive(frame, T0 + 60)

    assert session.next_timer() == T0 + 150
    assert session.handle_timer(T0 + 100) == []
    assert closes(session.handle_timer(T0 + 150))


def test_frames_from_downstream_do_not_count_as_heartbeats():
    session = open_session(heartbeat_timeout=90)

    session.deliver(encode_frame(Pong()), T0 + 60)

    assert session.next_timer() == T0 + 90


# Bad frames and the error budget


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"\xff\xff\xff\xff", b"\x00" * 64, bytes(range(256)), send_frame("m1")[:50]],
    ids=["empty", "one byte", "bad root offset", "zeros", "noise", "truncated"],
)
def test_malformed_frames_get_an_error_with_the_decoder_message(data):
    session = open_session()

    [answer] = to_client(session.receive(data, T0))

    assert isinstance(answer, ErrorFrame)
    assert answer.code == ErrorCode.MALFORMED
    assert answer.message.startswith("malformed frame")
    assert session.state is State.OPEN


def test_frame_over_the_size_limit_gets_too_large():
    session = open_session(max_frame_bytes=1024)
    oversize = send_frame("m1", body="x" * 1024)

    intents = session.receive(oversize, T0)

    assert error_codes(intents) == [ErrorCode.TOO_LARGE]
    assert published(intents) == []


def test_frame_exactly_at_the_size_limit_is_accepted():
    frame = send_frame("m1", body="x" * 900)
    session = open_session(max_frame_bytes=len(frame))

    assert published_ids(session.receive(frame, T0)) == ["m1"]


@pytest.mark.parametrize(
    "frame",
    [
        AuthResult(user_id=1, session_id=2, heartbeat_seconds=30),
        Pong(),
        MessageAck(client_msg_id="m", message_id=1, conversation_id=2, seq=3, created_at=4),
        PushMessage(message=Message(id=1, conversation_id=2, seq=3, sender_id=4)),
        Kicked(reason="ban"),
        ErrorFrame(code=ErrorCode.INTERNAL),
    ],
    ids=lambda frame: type(frame).__name__,
)
def test_server_only_frames_from_a_client_are_refused(frame):
    session = open_session()

    intents = session.receive(encode_frame(frame), T0)

    assert error_codes(intents) == [ErrorCode.UNEXPECTED_FRAME]
    assert published(intents) == []


def test_more_than_max_errors_within_the_window_closes_the_session():
    session = open_session(max_errors=5, error_window=60)
    for second in range(5):
        assert not closes(session.receive(b"junk", T0 + second))

    intents = session.receive(b"junk", T0 + 5)

    assert error_codes(intents) == [ErrorCode.MALFORMED, ErrorCode.TOO_MANY_ERRORS]
    assert [c.code for c in closes(intents)] == [ErrorCode.TOO_MANY_ERRORS]
    assert intents[-1] == UnregisterPresence(*ALICE_PRESENCE)


def test_every_kind_of_error_counts_toward_the_budget():
    session = connected_session(max_errors=2, max_frame_bytes=100)
    session.receive(b"junk", T0)
    session.receive(b"x" * 101, T0)

    intents = session.receive(send_frame("m1"), T0)

    assert error_codes(intents) == [ErrorCode.NOT_AUTHENTICATED, ErrorCode.TOO_MANY_ERRORS]


def test_errors_spread_wider_than_the_window_do_not_close_the_session():
    session = open_session(max_errors=5, error_window=60, heartbeat_timeout=1000)

    for error in range(20):
        assert not closes(session.receive(b"junk", T0 + error * 12.5))
    assert session.state is State.OPEN


# Resync after the node's NATS connection came back


def test_resync_tells_an_open_session_to_sync_and_no_other():
    session = open_session()
    assert to_client(session.resync(T0 + 1)) == [Resync()]
    assert session.state is State.OPEN
    assert connected_session().resync(T0) == []  # not authenticated: its AuthResult is followed by a sync
    session.closed(T0 + 2)
    assert session.resync(T0 + 3) == []


# Kicks and closing


def test_kick_sends_kicked_then_closes_and_unregisters_presence():
    session = open_session()

    intents = session.kick("password_change", T0 + 1)

    assert to_client(intents) == [Kicked(reason="password_change")]
    assert intents[1:] == [Close(NORMAL_CLOSURE, "kicked: password_change"), UnregisterPresence(*ALICE_PRESENCE)]


def test_kick_before_auth_closes_without_presence_to_clean():
    intents = connected_session().kick("replaced", T0)

    assert closes(intents) == [Close(NORMAL_CLOSURE, "kicked: replaced")]
    assert not any(isinstance(i, UnregisterPresence) for i in intents)


def test_transport_gone_unregisters_presence_without_a_close():
    session = open_session()

    assert session.closed(T0 + 3) == [UnregisterPresence(*ALICE_PRESENCE)]
    assert session.state is State.CLOSED
    assert session.next_timer() is None


def test_transport_gone_before_auth_has_nothing_to_clean():
    assert connected_session().closed(T0) == []


def test_presence_is_unregistered_once_when_the_transport_drops_after_a_close():
    session = open_session()
    session.kick("logout", T0)

    assert session.closed(T0) == []


def test_closed_session_ignores_every_input():
    session = open_session()
    session.kick("ban", T0)

    assert session.receive(PING, T0 + 1) == []
    assert session.receive(send_frame("m1"), T0 + 1) == []
    assert session.receive(b"junk", T0 + 1) == []
    assert session.deliver(encode_frame(Pong()), T0 + 1) == []
    assert session.kick("ban", T0 + 1) == []
    assert session.handle_timer(T0 + 1000) == []
    assert session.closed(T0 + 1) == []
    assert session.authenticated(ALICE, SESSION_ID, DEVICE, PLATFORM, T0) == []
    session.written(10)
    assert session.next_timer() is None


def test_close_is_the_last_thing_sent_to_the_client():
    session = open_session()

    intents = session.kick("ban", T0)

    sends = [index for index, intent in enumerate(intents) if isinstance(intent, SendToClient)]
    assert max(sends) < intents.index(closes(intents)[0])


# Timers


def test_next_timer_is_the_auth_deadline_until_authenticated():
    session = connected_session(auth_timeout=5)

    assert session.next_timer() == T0 + 5
    session.receive(auth_frame(), T0 + 1)
    assert session.next_timer() == T0 + 5


def test_next_timer_is_the_heartbeat_deadline_once_open_and_idle():
    session = open_session(heartbeat_timeout=90)

    assert session.next_timer() == T0 + 90


def test_next_timer_is_the_earliest_of_heartbeat_and_send_deadlines():
    session = open_session(heartbeat_timeout=90, send_timeout=10)

    session.receive(send_frame("m1"), T0 + 2)

    assert session.next_timer() == T0 + 12
    session.deliver(ack_frame("m1"), T0 + 3)
    assert session.next_timer() == T0 + 92


def test_handle_timer_called_early_changes_nothing():
    session = open_session(send_timeout=10)
    session.receive(send_frame("m1"), T0)
    deadline = session.next_timer()

    assert session.handle_timer(T0 + 1) == []
    assert session.next_timer() == deadline


def test_time_running_backwards_does_not_break_the_session():
    session = open_session(heartbeat_timeout=90)
    session.receive(PING, T0 + 50)

    assert to_client(session.receive(PING, T0 + 40)) == [Pong()]
    assert session.next_timer() == T0 + 140


# Configuration


@pytest.mark.parametrize(
    "override",
    [{"send_window": 0}, {"auth_timeout": 0}, {"rate": -1}, {"max_pending_bytes": 0}, {"send_retries": -1}],
    ids=str,
)
def test_config_refuses_values_that_make_no_sense(override):
    with pytest.raises(ValueError, match=next(iter(override))):
        SessionConfig(**override)


def test_default_config_matches_the_platform_contract():
    config = SessionConfig()

    assert (config.auth_timeout, config.heartbeat_seconds, config.heartbeat_timeout) == (5, 30, 90)
    assert (config.max_frame_bytes, config.max_errors, config.error_window) == (65536, 5, 60)
    assert (config.rate, config.burst, config.send_window, config.max_queued_sends) == (50, 100, 32, 256)
    assert (config.send_timeout, config.send_retries, config.max_pending_bytes) == (10, 3, 4 * 1024 * 1024)
