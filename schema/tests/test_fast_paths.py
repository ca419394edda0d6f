"""The hot-path readers: frame_type peeks at the union tag only; read_send_message reads one SendMessage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schema.codec import (
    ErrorCode,
    FrameError,
    FrameType,
    MessageKind,
    SendMessage,
    encode_frame,
    frame_type,
    read_send_message,
)
from schema.tests import flatc_oracle
from schema.tests.flatc_oracle import snake
from schema.tests.strategies import EXAMPLES, ids, required_texts


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
