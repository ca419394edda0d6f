"""Nothing a client sends makes the decoders raise anything but FrameError: garbage, truncation, bit
flips, offsets and lengths that point anywhere, shared offsets that would multiply memory, frames
missing what they need. Frames from older and newer writers of the schema still decode. (Envelopes
in particular: test_envelopes.py.)"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

import flatbuffers
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schema.codec import (
    Auth,
    Cursor,
    ErrorCode,
    FrameError,
    FrameType,
    Message,
    MessageAck,
    Ping,
    PushAck,
    PushMessage,
    SendMessage,
    Sync,
    SyncResult,
    decode_client_frame,
    decode_downstream,
    decode_frame,
    decode_upstream,
    encode_frame,
    frame_type,
    read_send_message,
)
from schema.tests import flatc_oracle
from schema.tests.strategies import EXAMPLES, MESSAGE

DECODERS: dict[str, Callable[[bytes], object]] = {
    "decode_frame": decode_frame,
    "decode_client_frame": decode_client_frame,
    "read_send_message": read_send_message,
    "frame_type": frame_type,
    "decode_upstream": decode_upstream,
    "decode_downstream": decode_downstream,
}
ENCODED = {name: encode_frame(frame) for name, frame in EXAMPLES.items()}
ENCODED_BY_FLATC = {name: flatc_oracle.build_frame(frame) for name, frame in EXAMPLES.items()}


def only_frame_errors(decode: Callable[[bytes], object], data: bytes) -> object:
    """What decode returns, or None when it raised FrameError; any other exception fails the test."""
    try:
        return decode(data)
    except FrameError as error:
        code = error.code
    assert code in (ErrorCode.MALFORMED, ErrorCode.UNEXPECTED_FRAME)
    return None


def field_position(data: bytes, table: object, slot: int) -> int:
    """Where a field of a table read by the generated code lies in the buffer."""
    tab = table._tab  # type: ignore[attr-defined]
    offset = tab.Offset(4 + 2 * slot)
    assert offset
    return int(tab.Pos + offset)


def body_of(data: bytes, name: str) -> object:
    body = flatc_oracle.generated("Frame").Frame.GetRootAs(data, 0).Body()
    table = getattr(flatc_oracle.generated(name), name)()
    table.Init(body.Bytes, body.Pos)
    return table


def patched(data: bytes, position: int, fmt: str, value: int) -> bytes:
    buffer = bytearray(data)
    struct.pack_into(fmt, buffer, position, value)
    return bytes(buffer)


@pytest.mark.parametrize("decoder", sorted(DECODERS))
@given(data=st.binary(max_size=300))
@settings(max_examples=300)
def test_random_bytes_only_ever_raise_frame_error(decoder: str, data: bytes):
    only_frame_errors(DECODERS[decoder], data)


@given(data=st.binary(min_size=4, max_size=300), root=st.integers(min_value=0, max_value=64))
@settings(max_examples=300)
def test_random_bytes_behind_a_plausible_root_offset_only_ever_raise_frame_error(data: bytes, root: int):
    only_frame_errors(decode_frame, struct.pack("<I", root) + data)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_truncation_of_a_frame_is_malformed(name):
    data = ENCODED[name]
    for end in range(len(data)):
        with pytest.raises(FrameError) as caught:
            decode_frame(data[:end])
        assert caught.value.code == ErrorCode.MALFORMED


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_truncated_frame_from_flatc_builders_is_malformed_or_unharmed(name):
    data = ENCODED_BY_FLATC[name]
    for end in range(len(data)):
        assert only_frame_errors(decode_frame, data[:end]) in (None, EXAMPLES[name])


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_single_bit_flip_of_a_frame_only_ever_raises_frame_error(name):
    for data in (ENCODED[name], ENCODED_BY_FLATC[name]):
        for position in range(len(data)):
            for bit in range(8):
                flipped = bytearray(data)
                flipped[position] ^= 1 << bit
                for decode in (decode_frame, frame_type):
                    only_frame_errors(decode, bytes(flipped))


@given(
    name=st.sampled_from(sorted(EXAMPLES)),
    changes=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), min_size=1, max_size=8
    ),
)
@settings(max_examples=500)
def test_frames_with_random_bytes_overwritten_only_ever_raise_frame_error(name, changes):
    data = bytearray(ENCODED[name])
    for position, value in changes:
        data[position % len(data)] = value
    for decoder in DECODERS.values():
        only_frame_errors(decoder, bytes(data))


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00\x00", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff"])
def test_empty_and_tiny_buffers_are_malformed(data):
    for decoder in DECODERS.values():
        with pytest.raises(FrameError):
            decoder(data)


def test_a_vtable_offset_pointing_before_the_buffer_is_malformed():
    data = ENCODED["SendMessage"]
    (root,) = struct.unpack_from("<I", data)
    with pytest.raises(FrameError, match="vtable"):
        decode_frame(patched(data, root, "<i", 0x7FFF_FFFF))


def test_a_vtable_shorter_than_its_header_is_malformed():
    data = ENCODED["SendMessage"]
    (root,) = struct.unpack_from("<I", data)
    vtable = root - struct.unpack_from("<i", data, root)[0]
    for size in (0, 2):
        with pytest.raises(FrameError):
            decode_frame(patched(data, vtable, "<H", size))


@pytest.mark.parametrize("tag", [0, 8, 31, 45, 127, 255])
def test_an_absent_or_unknown_frame_type_is_malformed(tag):
    data = ENCODED["Ping"]
    root = flatc_oracle.generated("Frame").Frame.GetRootAs(data, 0)
    bad = patched(data, field_position(data, root, 0), "<B", tag)
    for decoder in (decode_frame, frame_type, decode_client_frame):
        with pytest.raises(FrameError, match="frame type") as caught:
            decoder(bad)
        assert caught.value.code == ErrorCode.MALFORMED


def test_a_frame_type_without_its_body_is_malformed():
    builder = flatbuffers.Builder(64)
    frame = flatc_oracle.generated("Frame")
    frame.Start(builder)
    frame.AddBodyType(builder, FrameType.PING)
    builder.Finish(frame.End(builder))
    with pytest.raises(FrameError, match="body"):
        decode_frame(bytes(builder.Output()))


def test_an_offset_pointing_past_the_end_is_malformed():
    data = ENCODED["PushMessage"]
    at = field_position(data, body_of(data, "PushMessage"), 0)
    for offset in (len(data), 0x7FFF_FFFF, 0xFFFF_FFFF):
        with pytest.raises(FrameError):
            decode_frame(patched(data, at, "<I", offset))


def test_a_string_longer_than_the_buffer_is_malformed():
    data = ENCODED["SendMessage"]
    at = field_position(data, body_of(data, "SendMessage"), 3)  # body
    string = at + struct.unpack_from("<I", data, at)[0]
    for length in (len(data), 0x7FFF_FFFF, 0xFFFF_FFFF):
        with pytest.raises(FrameError):
            decode_frame(patched(data, string, "<I", length))


def test_a_string_without_its_terminating_zero_is_malformed():
    data = ENCODED["SendMessage"]
    at = field_position(data, body_of(data, "SendMessage"), 3)
    string = at + struct.unpack_from("<I", data, at)[0]
    length = struct.unpack_from("<I", data, string)[0]
    with pytest.raises(FrameError, match="zero"):
        decode_frame(patched(data, string + 4 + length, "<B", ord("!")))


def test_a_string_that_is_not_utf8_is_malformed():
    data = encode_frame(SendMessage(client_msg_id="x", conversation_id=1, body="ab"))
    bad = data.replace(b"ab\x00", b"\xff\xfe\x00")
    with pytest.raises(FrameError, match="UTF-8"):
        decode_frame(bad)


def test_an_absurd_vector_length_is_malformed_at_once():
    data = ENCODED["Sync"]
    at = field_position(data, body_of(data, "Sync"), 0)
    vector = at + struct.unpack_from("<I", data, at)[0]
    started = time.perf_counter()
    for count in (3, 1 << 20, 0x7FFF_FFFF, 0xFFFF_FFFF):
        with pytest.raises(FrameError, match="vector"):
            decode_frame(patched(data, vector, "<I", count))
    assert time.perf_counter() - started < 0.5


def test_an_unknown_message_kind_is_malformed():
    data = encode_frame(SendMessage(client_msg_id="x", conversation_id=1, body="hi"))
    bad = patched(data, field_position(data, body_of(data, "SendMessage"), 2), "<B", 7)
    with pytest.raises(FrameError, match="kind"):
        decode_frame(bad)


def _sync_result_sharing_one_message(copies: int, body: str) -> bytes:
    """A SyncResult whose message offsets all point to one Message: legal FlatBuffers, but each copy
    would be decoded into its own strings."""
    builder = flatbuffers.Builder(1024)
    message = flatc_oracle.build(builder, msgspec.structs.replace(MESSAGE, body=body))
    sync_result = flatc_oracle.generated("SyncResult")
    sync_result.StartMessagesVector(builder, copies)
    for _ in range(copies):
        builder.PrependUOffsetTRelative(message)
    messages = builder.EndVector()
    sync_result.Start(builder)
    sync_result.AddConversationId(builder, 1)
    sync_result.AddMessages(builder, messages)
    body_offset = sync_result.End(builder)
    frame = flatc_oracle.generated("Frame")
    frame.Start(builder)
    frame.AddBodyType(builder, FrameType.SYNC_RESULT)
    frame.AddBody(builder, body_offset)
    builder.Finish(frame.End(builder))
    return bytes(builder.Output())


def test_offsets_shared_to_multiply_memory_are_malformed():
    data = _sync_result_sharing_one_message(copies=10_000, body="x" * 20_000)
    assert len(data) < 64 * 1024
    started = time.perf_counter()
    with pytest.raises(FrameError, match="shared"):
        decode_frame(data)
    assert time.perf_counter() - started < 0.5


def test_a_few_shared_offsets_within_the_buffer_size_still_decode():
    data = _sync_result_sharing_one_message(copies=3, body="x" * 10)
    frame = decode_frame(data)
    assert isinstance(frame, SyncResult)
    assert len(frame.messages) == 3


@pytest.mark.parametrize(
    ("frame", "missing"),
    [
        (SendMessage(client_msg_id="m1", conversation_id=0, body="hi"), "conversation_id"),
        (SendMessage(client_msg_id="", conversation_id=1, body="hi"), "client_msg_id"),
        (Auth(token=""), "token"),
        (PushAck(conversation_id=0, seq=1), "conversation_id"),
        (
            Sync(cursors=(Cursor(conversation_id=5, after_seq=1), Cursor(conversation_id=0, after_seq=1))),
            "conversation_id",
        ),
        (MessageAck(client_msg_id="m1", message_id=0, conversation_id=1, seq=1, created_at=0), "message_id"),
        (PushMessage(message=msgspec.structs.replace(MESSAGE, id=0)), "id"),
    ],
)
def test_a_frame_missing_a_required_field_is_malformed(frame, missing):
    for data in (encode_frame(frame), flatc_oracle.build_frame(frame)):
        with pytest.raises(FrameError, match=missing) as caught:
            decode_frame(data)
        assert caught.value.code == ErrorCode.MALFORMED


def test_a_push_without_its_message_is_malformed():
    builder = flatbuffers.Builder(64)
    push = flatc_oracle.generated("PushMessage")
    push.Start(builder)
    body = push.End(builder)
    frame = flatc_oracle.generated("Frame")
    frame.Start(builder)
    frame.AddBodyType(builder, FrameType.PUSH_MESSAGE)
    frame.AddBody(builder, body)
    builder.Finish(frame.End(builder))
    with pytest.raises(FrameError, match="message"):
        decode_frame(bytes(builder.Output()))


@pytest.mark.parametrize("name", [name for name in sorted(EXAMPLES) if frame_type(ENCODED[name]) >= 32])
def test_clients_may_not_send_server_frames(name):
    with pytest.raises(FrameError) as caught:
        decode_client_frame(ENCODED[name])
    assert caught.value.code == ErrorCode.UNEXPECTED_FRAME


def test_the_send_message_reader_refuses_other_frames():
    with pytest.raises(FrameError) as caught:
        read_send_message(ENCODED["PushAck"])
    assert caught.value.code == ErrorCode.UNEXPECTED_FRAME


def test_a_frame_error_is_a_value_error_with_a_code_and_a_message():
    with pytest.raises(ValueError, match="malformed") as caught:
        decode_frame(b"garbage!")
    assert isinstance(caught.value, FrameError)
    assert caught.value.code == ErrorCode.MALFORMED
    assert caught.value.message == str(caught.value)


def _send_message_with_fields(field_count: int, extra: int | None = None) -> bytes:
    """A SendMessage as a writer with `field_count` fields in its schema would write it."""
    builder = flatbuffers.Builder(128)
    client_msg_id = builder.CreateString("m1")
    body = builder.CreateString("hello")
    builder.StartObject(field_count)
    builder.PrependUOffsetTRelativeSlot(0, client_msg_id, 0)
    builder.PrependUint64Slot(1, 77, 0)
    if field_count > 3:
        builder.PrependUOffsetTRelativeSlot(3, body, 0)
    if extra is not None:
        builder.PrependUint64Slot(field_count - 1, extra, 0)
    send = builder.EndObject()
    frame = flatc_oracle.generated("Frame")
    frame.Start(builder)
    frame.AddBodyType(builder, FrameType.SEND_MESSAGE)
    frame.AddBody(builder, send)
    builder.Finish(frame.End(builder))
    return bytes(builder.Output())


def test_a_frame_from_a_newer_schema_with_fields_added_at_the_end_still_decodes():
    data = _send_message_with_fields(field_count=9, extra=123_456)
    assert decode_frame(data) == SendMessage(client_msg_id="m1", conversation_id=77, body="hello")


def test_a_frame_from_an_older_schema_with_fewer_fields_decodes_with_defaults():
    data = _send_message_with_fields(field_count=2)
    assert decode_frame(data) == SendMessage(client_msg_id="m1", conversation_id=77)


def test_a_ping_decodes_whatever_fields_a_newer_schema_gives_it():
    builder = flatbuffers.Builder(64)
    builder.StartObject(3)
    builder.PrependUint64Slot(2, 5, 0)
    ping = builder.EndObject()
    frame = flatc_oracle.generated("Frame")
    frame.Start(builder)
    frame.AddBodyType(builder, FrameType.PING)
    frame.AddBody(builder, ping)
    builder.Finish(frame.End(builder))
    assert decode_frame(bytes(builder.Output())) == Ping()


def test_message_fields_a_writer_leaves_out_decode_as_their_defaults():
    bare = Message(id=1, conversation_id=2, seq=3, sender_id=0)
    assert decode_frame(flatc_oracle.build_frame(PushMessage(message=bare))) == PushMessage(message=bare)
