"""The NATS envelopes (msgspec MessagePack arrays): they survive a round trip, their wire layout is
pinned, and whatever bytes arrive, decode_upstream and decode_downstream return a well-typed envelope
or raise FrameError(MALFORMED), nothing else."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schema import envelopes
from schema.codec import (
    Buffer,
    Delivery,
    Downstream,
    ErrorCode,
    FrameError,
    PushMessage,
    Upstream,
    decode_downstream,
    decode_upstream,
    encode_downstream,
    encode_frame,
    encode_upstream,
    read_send_message,
)
from schema.tests.strategies import DOWNSTREAM, EXAMPLES, MESSAGE, UPSTREAM, downstreams, upstreams

DECODERS: dict[str, Callable[[Buffer], object]] = {"Upstream": decode_upstream, "Downstream": decode_downstream}
ENCODED = {"Upstream": encode_upstream(UPSTREAM), "Downstream": encode_downstream(DOWNSTREAM)}
UPSTREAM_FIELDS = list(msgspec.structs.astuple(UPSTREAM))
U64_MAX = 2**64 - 1


def pack(value: Any) -> bytes:
    return msgspec.msgpack.encode(value)


def upstream_with(**fields: Any) -> bytes:
    """UPSTREAM's wire array with some fields replaced by anything MessagePack can hold."""
    values = dict(zip(Upstream.__struct_fields__, UPSTREAM_FIELDS, strict=True))
    values.update(fields)
    return pack(list(values.values()))


def malformed(decode: Callable[[bytes], object], data: bytes, match: str | None = None) -> FrameError:
    with pytest.raises(FrameError, match=match) as caught:
        decode(data)
    assert caught.value.code == ErrorCode.MALFORMED
    return caught.value


def decodes_or_is_malformed(decode: Callable[[bytes], object], data: bytes) -> object:
    """What decode returns, checked to be a well-typed envelope, or None when it raised
    FrameError(MALFORMED); any other exception fails the test."""
    try:
        envelope = decode(data)
    except FrameError as error:
        code = error.code
    else:
        assert_well_typed(envelope)
        return envelope
    assert code == ErrorCode.MALFORMED
    return None


def is_u64(value: object) -> bool:
    return type(value) is int and 0 <= value <= U64_MAX


def assert_well_typed(envelope: object) -> None:
    if isinstance(envelope, Upstream):
        assert type(envelope.frame) is bytes
        assert envelope.frame
        assert is_u64(envelope.user_id)
        assert envelope.user_id
        assert type(envelope.device_id) is str
        assert is_u64(envelope.session_id)
        assert type(envelope.node_id) is str
        assert envelope.node_id
        assert is_u64(envelope.connection_id)
        assert type(envelope.received_at) is int
        assert -(2**63) <= envelope.received_at < 2**63
        return
    assert isinstance(envelope, Downstream)
    assert type(envelope.deliveries) is tuple
    for delivery in envelope.deliveries:
        assert type(delivery) is Delivery
        assert type(delivery.frame) is bytes
        assert type(delivery.connection_ids) is tuple
        assert all(map(is_u64, delivery.connection_ids))


# Round trips


def test_each_envelope_survives_a_round_trip():
    assert decode_upstream(encode_upstream(UPSTREAM)) == UPSTREAM
    assert decode_downstream(encode_downstream(DOWNSTREAM)) == DOWNSTREAM
    assert decode_downstream(encode_downstream(Downstream(deliveries=()))) == Downstream(deliveries=())


@given(upstreams)
def test_any_upstream_survives_a_round_trip(upstream: Upstream):
    assert decode_upstream(encode_upstream(upstream)) == upstream


@given(downstreams)
def test_any_downstream_survives_a_round_trip(downstream: Downstream):
    assert decode_downstream(encode_downstream(downstream)) == downstream


def test_extreme_numbers_survive_a_round_trip():
    upstream = msgspec.structs.replace(
        UPSTREAM, user_id=U64_MAX, session_id=U64_MAX, connection_id=U64_MAX, received_at=-(2**63)
    )
    assert decode_upstream(encode_upstream(upstream)) == upstream
    upstream = msgspec.structs.replace(UPSTREAM, session_id=0, connection_id=0, received_at=2**63 - 1)
    assert decode_upstream(encode_upstream(upstream)) == upstream
    downstream = Downstream(deliveries=(Delivery(frame=b"f", connection_ids=(0, U64_MAX)),))
    assert decode_downstream(encode_downstream(downstream)) == downstream


def test_decoding_accepts_bytearray_and_memoryview():
    for name, decode in DECODERS.items():
        data = ENCODED[name]
        assert decode(bytearray(data)) == decode(memoryview(data)) == decode(data)


def test_an_upstream_carries_the_client_frame_bytes_unchanged():
    frame = encode_frame(EXAMPLES["SendMessage"])
    upstream = decode_upstream(encode_upstream(msgspec.structs.replace(UPSTREAM, frame=frame)))
    assert upstream.frame == frame
    assert read_send_message(upstream.frame) == EXAMPLES["SendMessage"]


def test_a_push_is_encoded_once_and_delivered_as_the_same_bytes():
    push = encode_frame(PushMessage(message=MESSAGE))
    downstream = decode_downstream(
        encode_downstream(Downstream(deliveries=(Delivery(frame=push, connection_ids=(1, 2, 3)),)))
    )
    assert downstream.deliveries[0].frame == push
    assert downstream.deliveries[0].connection_ids == (1, 2, 3)


# The wire layout


def test_each_envelope_is_an_array_of_its_fields_in_declaration_order():
    """The order is the wire format: reordering the typed class's fields breaks every running peer."""
    assert msgspec.msgpack.decode(ENCODED["Upstream"]) == [
        b"\x0c\x00\x00\x00client frame bytes",
        7_212_345_678_901_220_002,
        "web-3f2a9c",
        7_212_345_678_901_220_777,
        "access-1",
        42,
        1_763_900_000_000,
        [],
    ]
    assert msgspec.msgpack.decode(ENCODED["Downstream"]) == [
        [[b"push one", [1, 2, 3]], [b"push two", [U64_MAX]], [b"", []]]
    ]
    assert ENCODED["Downstream"].startswith(bytes([0x91, 0x93, 0x92, 0xC4, 8]) + b"push one")


def test_an_envelope_from_a_newer_writer_with_fields_added_at_the_end_still_decodes():
    assert decode_upstream(pack([*UPSTREAM_FIELDS, 99, "new"])) == UPSTREAM
    delivery = [b"push", [1, 2], "a newer field"]
    assert decode_downstream(pack([[delivery], True])) == Downstream(
        deliveries=(Delivery(frame=b"push", connection_ids=(1, 2)),)
    )


def test_an_envelope_missing_a_field_is_malformed():
    malformed(decode_upstream, pack(UPSTREAM_FIELDS[:6]), "length 7")  # received_at missing
    malformed(decode_downstream, pack([[[b"push"]]]), "deliveries\\[0\\]")
    malformed(decode_downstream, pack([]))


# Hostile bytes


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_every_truncation_of_an_envelope_is_malformed(name):
    data = ENCODED[name]
    for end in range(len(data)):
        malformed(DECODERS[name], data[:end])


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_every_single_bit_flip_of_an_envelope_decodes_or_is_malformed(name):
    data = ENCODED[name]
    for position in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[position] ^= 1 << bit
            decodes_or_is_malformed(DECODERS[name], bytes(flipped))


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_trailing_bytes_are_malformed(name):
    malformed(DECODERS[name], ENCODED[name] + b"\x00", "trailing")


@pytest.mark.parametrize("name", sorted(DECODERS))
@given(data=st.binary(max_size=300))
@settings(max_examples=300)
def test_random_bytes_decode_or_are_malformed(name: str, data: bytes):
    decodes_or_is_malformed(DECODERS[name], data)


@given(
    name=st.sampled_from(sorted(DECODERS)),
    changes=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), min_size=1, max_size=8
    ),
)
@settings(max_examples=500)
def test_envelopes_with_random_bytes_overwritten_decode_or_are_malformed(name, changes):
    data = bytearray(ENCODED[name])
    for position, value in changes:
        data[position % len(data)] = value
    decodes_or_is_malformed(DECODERS[name], bytes(data))


msgpack_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=U64_MAX),
    st.floats(),
    st.text(max_size=20),
    st.binary(max_size=20),
)
msgpack_values = st.recursive(
    msgpack_scalars,
    lambda children: st.lists(children, max_size=8) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=20,
)
upstream_fields = st.one_of(msgpack_scalars, *(st.just(value) for value in UPSTREAM_FIELDS))
upstream_shaped = st.lists(upstream_fields, min_size=6, max_size=9)
delivery_shaped = st.lists(
    st.one_of(
        st.binary(max_size=8), st.lists(st.one_of(msgpack_scalars, st.integers(0, 9)), max_size=4), msgpack_values
    ),
    min_size=1,
    max_size=3,
)
downstream_shaped = st.lists(st.one_of(st.lists(delivery_shaped, max_size=4), msgpack_values), max_size=2)


@given(value=st.one_of(msgpack_values, upstream_shaped, downstream_shaped))
@settings(max_examples=1000)
def test_any_messagepack_value_decodes_as_a_well_typed_envelope_or_is_malformed(value: Any):
    data = pack(value)
    for decode in DECODERS.values():
        decodes_or_is_malformed(decode, data)


@given(upstream_shaped)
@settings(max_examples=500)
def test_an_upstream_shaped_array_of_any_values_decodes_only_when_every_field_fits(fields: list[Any]):
    """Mostly the right fields with a few of anything: a well-typed Upstream or MALFORMED."""
    decodes_or_is_malformed(decode_upstream, pack(fields))


@pytest.mark.parametrize("field", ["user_id", "session_id", "connection_id"])
def test_a_negative_id_is_malformed_and_named(field):
    malformed(decode_upstream, upstream_with(**{field: -1}), f"`{field}`")
    malformed(decode_upstream, upstream_with(**{field: -(2**63)}), f"`{field}`")


def test_a_negative_connection_id_in_a_delivery_is_malformed_and_named():
    data = pack([[[b"one", [1]], [b"two", [1, -7, 3]]]])
    error = malformed(decode_downstream, data, "`deliveries\\[1\\].connection_ids\\[1\\]`")
    assert error.message.startswith("malformed Downstream: ")


def test_a_received_at_beyond_int64_is_malformed():
    """MessagePack holds ints up to 2**64 - 1 (nothing larger reaches a decoder): received_at is int64."""
    malformed(decode_upstream, upstream_with(received_at=2**63), "`received_at`")
    assert decode_upstream(upstream_with(user_id=U64_MAX)).user_id == U64_MAX


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"user_id": "7"}, "user_id"),
        ({"user_id": 7.0}, "user_id"),
        ({"user_id": True}, "user_id"),
        ({"user_id": None}, "user_id"),
        ({"session_id": [1]}, "session_id"),
        ({"frame": "client frame as text"}, "frame"),
        ({"frame": 5}, "frame"),
        ({"device_id": b"bytes"}, "device_id"),
        ({"node_id": {"a": 1}}, "node_id"),
        ({"received_at": 1.5}, "received_at"),
    ],
)
def test_a_field_of_the_wrong_type_is_malformed_and_named(fields, named):
    malformed(decode_upstream, upstream_with(**fields), f"`{named}`")


@pytest.mark.parametrize("fields", [{"frame": b""}, {"user_id": 0}, {"node_id": ""}])
def test_an_upstream_without_its_frame_user_or_node_is_malformed(fields):
    (named,) = fields
    malformed(decode_upstream, upstream_with(**fields), f"`{named}`")


@pytest.mark.parametrize(
    "data",
    [
        pack({"frame": b"x", "user_id": 1}),  # a map, not an array
        pack([[b"push", [1]]]),  # a delivery where the list of deliveries goes
        pack([[[b"push", (1, "2")]]]),
        pack([[[b"push", [1.0]]]]),
        pack([[[b"push", 5]]]),
        pack([[[None, [1]]]]),
        pack([None]),
        pack(None),
    ],
)
def test_a_downstream_of_the_wrong_shape_is_malformed(data):
    malformed(decode_downstream, data)


@pytest.mark.parametrize(
    "header",
    [
        bytes([0xDD, 0xFF, 0xFF, 0xFF, 0xFF]),  # array32 of 4 billion elements
        bytes([0x91, 0xDD, 0xFF, 0xFF, 0xFF, 0xFF]),  # ... as the list of deliveries
        bytes([0x91, 0x91, 0x92, 0xC6, 0xFF, 0xFF, 0xFF, 0xFF]),  # bin32 of 4 GiB as a frame
        bytes([0x91, 0x91, 0x92, 0xC4, 0x01, 0x61, 0xDD, 0x7F, 0xFF, 0xFF, 0xFF]),  # 2 billion connection ids
        bytes([0x97, 0xC6, 0xFF, 0xFF, 0xFF, 0xF0]),  # an Upstream frame of 4 GiB
        bytes([0x97, 0xC4, 0x01, 0x61, 0x01, 0xDB, 0xFF, 0xFF, 0xFF, 0xFF]),  # str32 device_id of 4 GiB
    ],
)
def test_an_absurd_length_is_malformed_at_once_without_allocating(header):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        for decode in DECODERS.values():
            malformed(decode, header + bytes(64))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 0.5
    assert peak < 1024 * 1024


def test_an_envelope_larger_than_nats_can_carry_is_malformed_unread(monkeypatch):
    monkeypatch.setattr(envelopes, "MAX_ENVELOPE_BYTES", len(ENCODED["Upstream"]) - 1)
    malformed(decode_upstream, ENCODED["Upstream"], "over")
    monkeypatch.setattr(envelopes, "MAX_ENVELOPE_BYTES", len(ENCODED["Downstream"]) - 1)
    malformed(decode_downstream, ENCODED["Downstream"], "over")


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xc1", b"\xff\xff\xff\xff", b"\x90", b"\x80"])
def test_empty_and_tiny_buffers_are_malformed(data):
    for decode in DECODERS.values():
        malformed(decode, data)


def test_a_string_that_is_not_utf8_is_malformed():
    data = upstream_with(device_id="ab").replace(b"\xa2ab", b"\xa2\xff\xfe")
    malformed(decode_upstream, data, "UTF-8")


# Encoding


@pytest.mark.parametrize(
    "fields",
    [
        {"user_id": -1},
        {"session_id": -1},
        {"connection_id": -5},
        {"user_id": 2**64},
        {"connection_id": 2**70},
        {"received_at": 2**63},
        {"received_at": -(2**63) - 1},
    ],
)
def test_an_upstream_number_out_of_its_field_range_cannot_be_encoded(fields):
    with pytest.raises(ValueError, match="out of range"):
        encode_upstream(msgspec.structs.replace(UPSTREAM, **fields))


def test_a_connection_id_above_uint64_cannot_be_encoded_and_a_negative_one_cannot_be_decoded():
    """encode_downstream leaves negative ids to the reader (checking each would double its cost)."""
    with pytest.raises(ValueError, match="out of range"):
        encode_downstream(Downstream(deliveries=(Delivery(frame=b"f", connection_ids=(2**64,)),)))
    data = encode_downstream(Downstream(deliveries=(Delivery(frame=b"f", connection_ids=(-1,)),)))
    malformed(decode_downstream, data, "connection_ids")


def test_an_upstream_carries_further_frames_in_order_and_refuses_an_empty_one():
    grouped = msgspec.structs.replace(UPSTREAM, more_frames=(b"second", b"third"))
    assert decode_upstream(encode_upstream(grouped)).more_frames == (b"second", b"third")
    malformed(decode_upstream, upstream_with(more_frames=[b"second", b""]), "more_frames")
    assert decode_upstream(pack(UPSTREAM_FIELDS[:7])).more_frames == ()  # as a writer before it wrote
