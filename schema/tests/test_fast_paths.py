"""The hot paths. Writers: most frame types (MessageAck, PushMessage, SendError among them) are written by
one struct.pack and their strings instead of table by table, byte for byte the same. Readers:
frame_type peeks at the union tag only; read_send_message reads one SendMessage."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schema import encoder
from schema.codec import (
    AnyFrame,
    ErrorCode,
    ErrorFrame,
    FrameError,
    FrameType,
    Kicked,
    MessageAck,
    MessageKind,
    PushMessage,
    SendError,
    SendMessage,
    decode_frame,
    encode_frame,
    frame_type,
    read_send_message,
)
from schema.tests import flatc_oracle
from schema.tests.flatc_oracle import snake
from schema.tests.strategies import EXAMPLES, MESSAGE, frames, ids, required_texts

PACKED = (MessageAck, PushMessage, SendError, SendMessage, ErrorFrame, Kicked)
"""Frame types the hot paths write with one struct.pack (the logic worker's answers among them)."""


@pytest.mark.parametrize("cls", PACKED, ids=lambda cls: cls.__name__)
def test_the_hot_frames_are_written_by_one_pack_not_table_by_table(cls):
    assert encoder._ENCODERS[cls].__qualname__.startswith("_packed.")


@given(frames)
def test_every_frame_is_written_byte_for_byte_as_the_table_writer_writes_it(frame: AnyFrame):
    assert encode_frame(frame) == encoder._BY_WRITER[type(frame)](frame)


LENGTHS = st.integers(min_value=0, max_value=9)  # every padding after the first string, twice over


@given(first=LENGTHS, second=LENGTHS, text=st.sampled_from(["x", "é", "世", "👋", "\0"]))
@settings(max_examples=200)
def test_strings_of_every_length_are_placed_as_flatbuffers_readers_expect(first, second, text):
    client_msg_id, body = text * max(first, 1), text * second  # a client_msg_id is required
    for frame in (
        PushMessage(message=msgspec.structs.replace(MESSAGE, client_msg_id=client_msg_id, body=body)),
        SendError(client_msg_id=client_msg_id, code=4104, reason=body),
        SendMessage(client_msg_id=client_msg_id, conversation_id=9, body=body, reply_to_id=3),
        MessageAck(client_msg_id=client_msg_id, message_id=1, conversation_id=2, seq=3, created_at=-4),
        ErrorFrame(code=4000, message=body),
    ):
        data = encode_frame(frame)
        assert data == encoder._BY_WRITER[type(frame)](frame)
        flatc_oracle.assert_frame_reads_as(data, frame)
        assert decode_frame(data) == frame


@pytest.mark.parametrize(
    "frame",
    [
        MessageAck(client_msg_id="m", message_id=2**64, conversation_id=1, seq=1, created_at=0),
        MessageAck(client_msg_id="m", message_id=1, conversation_id=1, seq=1, created_at=-(2**63) - 1),
        SendError(client_msg_id="m", code=2**16),
        SendError(client_msg_id="m", code=-1),
        PushMessage(message=msgspec.structs.replace(MESSAGE, seq=-1)),
        PushMessage(message=msgspec.structs.replace(MESSAGE, kind=256)),
    ],
)
def test_a_number_out_of_its_field_range_cannot_be_written_by_the_hot_paths(frame):
    with pytest.raises(ValueError, match=f"cannot encode {type(frame).__name__}: .*out of range"):
        encode_frame(frame)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_frame_type_names_the_union_member_of_every_frame(name):
    expected = FrameType[snake(name).upper()]
    assert frame_type(encode_frame(EXAMPLES[name])) == expected
    assert frame_type(flatc_oracle.build_frame(EXAMPLES[name])) == expected


@given(st.binary(max_size=64))
def test_frame_type_of_garbage_is_a_known_type_or_frame_error(data):
    try:
        tag: int = frame_type(data)
    except FrameError as error:
        tag = error.code
    assert tag in {*FrameType, ErrorCode.MALFORMED}


def test_frame_type_does_not_read_the_body():
    """A frame whose body is cut off still has a readable type: the decoders refuse it later."""
    data = encode_frame(EXAMPLES["SyncResult"])
    assert frame_type(data[:40]) == FrameType.SYNC_RESULT


@given(client_msg_id=required_texts, conversation_id=ids, body=st.text(max_size=300), reply_to_id=ids)
def test_read_send_message_reads_every_field(client_msg_id, conversation_id, body, reply_to_id):
    frame = SendMessage(
        client_msg_id=client_msg_id,
        conversation_id=conversation_id,
        kind=MessageKind.TEXT,
        body=body,
        reply_to_id=reply_to_id,
    )
    assert read_send_message(encode_frame(frame)) == frame
    assert read_send_message(flatc_oracle.build_frame(frame)) == frame


def test_read_send_message_of_garbage_is_malformed():
    with pytest.raises(FrameError) as caught:
        read_send_message(b"\x01\x02\x03\x04\x05\x06")
    assert caught.value.code == ErrorCode.MALFORMED


def outcome(read, data: bytes) -> object:
    try:
        return read(data)
    except FrameError as error:
        return (error.code, error.message)


@given(
    changes=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), min_size=1, max_size=6
    ),
    by_flatc=st.booleans(),
)
@settings(max_examples=500)
def test_read_send_message_of_damaged_frames_agrees_with_decode_frame(changes, by_flatc):
    data = bytearray(
        flatc_oracle.build_frame(EXAMPLES["SendMessage"]) if by_flatc else encode_frame(EXAMPLES["SendMessage"])
    )
    for position, value in changes:
        data[position % len(data)] = value
    tag = outcome(frame_type, bytes(data))
    if isinstance(tag, int) and tag != FrameType.SEND_MESSAGE:  # refused by its tag alone, whatever its body
        expected: object = (ErrorCode.UNEXPECTED_FRAME, f"expected a SendMessage frame, got {FrameType(tag).name}")
    else:
        expected = outcome(decode_frame, bytes(data))
    assert outcome(read_send_message, bytes(data)) == expected
