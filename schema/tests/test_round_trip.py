"""Encode then decode gives back the same frame, for every union member (envelopes: test_envelopes.py)."""

from __future__ import annotations

import pytest
from hypothesis import given

from schema.codec import (
    AnyFrame,
    FrameType,
    Message,
    PushMessage,
    SendMessage,
    Sync,
    decode_client_frame,
    decode_frame,
    encode_frame,
    frame_type,
    read_send_message,
)
from schema.frames import FIRST_SERVER_FRAME_TYPE
from schema.tests.flatc_oracle import snake
from schema.tests.strategies import EXAMPLES, frames


def test_every_frame_type_has_an_example():
    assert {FrameType[snake(name).upper()] for name in EXAMPLES} == set(FrameType)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_frame_type_survives_a_round_trip(name):
    frame = EXAMPLES[name]
    data = encode_frame(frame)
    assert decode_frame(data) == frame
    assert type(decode_frame(data)) is type(frame)
    assert frame_type(data) == FrameType[snake(name).upper()]


@given(frames)
def test_any_frame_survives_a_round_trip(frame: AnyFrame):
    assert decode_frame(encode_frame(frame)) == frame


@given(frames)
def test_decoding_accepts_bytearray_and_memoryview(frame: AnyFrame):
    data = encode_frame(frame)
    assert decode_frame(bytearray(data)) == frame
    assert decode_frame(memoryview(data)) == frame


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_client_frames_decode_as_client_frames(name):
    frame = EXAMPLES[name]
    if frame_type(encode_frame(frame)) < FIRST_SERVER_FRAME_TYPE:
        assert decode_client_frame(encode_frame(frame)) == frame


def test_the_fast_send_message_reader_agrees_with_decode_frame():
    data = encode_frame(EXAMPLES["SendMessage"])
    assert read_send_message(data) == decode_frame(data) == EXAMPLES["SendMessage"]


def test_strings_keep_zero_bytes_and_any_unicode():
    frame = SendMessage(client_msg_id="a\0b", conversation_id=1, body="\0 é 世界 👋 \U0010ffff")
    assert decode_frame(encode_frame(frame)) == frame


def test_extreme_numbers_survive_a_round_trip():
    message = Message(
        id=2**64 - 1,
        conversation_id=2**64 - 1,
        seq=2**64 - 1,
        sender_id=2**64 - 1,
        reply_to_id=2**64 - 1,
        created_at=-(2**63),
        edited_at=2**63 - 1,
        recalled=True,
    )
    assert decode_frame(encode_frame(PushMessage(message=message))) == PushMessage(message=message)


def test_a_sync_without_cursors_survives_a_round_trip():
    assert decode_frame(encode_frame(Sync())) == Sync()


@pytest.mark.parametrize(
    "frame",
    [
        SendMessage(client_msg_id="x", conversation_id=-1),
        SendMessage(client_msg_id="x", conversation_id=2**64),
        PushMessage(message=Message(id=1, conversation_id=1, seq=1, sender_id=1, created_at=2**63)),
    ],
)
def test_a_number_out_of_its_field_range_cannot_be_encoded(frame):
    with pytest.raises(ValueError, match="out of range"):
        encode_frame(frame)
