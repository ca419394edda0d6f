"""The internal NATS envelopes (Upstream, Downstream) to bytes and back. Internal to schema/: import
encode_upstream, decode_upstream, encode_downstream and decode_downstream from schema.codec.

Envelopes never reach a browser, so they are not FlatBuffers but msgspec MessagePack, which writes
and reads them 8-60 times faster (schema/README.md). Each is an array of its fields in declaration
order (array_like Structs in schema.frames). A reader ignores elements past the fields it knows, so
a field added at the end with a default keeps old and new processes talking; removing, reordering or
retyping one does not. The decoders trust nothing: whatever the bytes, they return an envelope whose
every field has its declared type and range, or raise FrameError(MALFORMED).
"""

from __future__ import annotations

import re
from typing import Annotated, get_args, get_origin

import msgspec

from schema.decoder import Buffer
from schema.frames import Downstream, ErrorCode, FrameError, Upstream

MAX_ENVELOPE_BYTES = 64 * 1024 * 1024
"""NATS's ceiling for max_payload: no larger envelope can arrive, so a larger buffer is refused unread.
Lengths inside an envelope need no limit of their own: one claiming more bytes or elements than
follow it is refused before anything is allocated for it."""

_I64_MIN, _I64_END = -(2**63), 2**63
_encode = msgspec.msgpack.Encoder().encode
_decode_upstream = msgspec.msgpack.Decoder(Upstream).decode
_decode_downstream = msgspec.msgpack.Decoder(Downstream).decode


def _out_of_range(envelope: str, detail: object) -> ValueError:
    return ValueError(f"cannot encode {envelope}: a number is out of range for its field ({detail})")


def encode_upstream(upstream: Upstream) -> bytes:
    """The bytes of one Upstream. Raises ValueError for a number out of its field's range."""
    # One expression for the hot path: an OR of ints is negative when any of them is.
    if (upstream.user_id | upstream.session_id | upstream.connection_id) < 0 or not (
        _I64_MIN <= upstream.received_at < _I64_END
    ):
        raise _out_of_range("Upstream", "a negative id or a received_at outside int64")
    try:
        return _encode(upstream)
    except OverflowError as exc:  # an int above 2**64 - 1
        raise _out_of_range("Upstream", exc) from None


def encode_downstream(downstream: Downstream) -> bytes:
    """The bytes of one Downstream. Raises ValueError for a connection id above uint64's range; a
    negative one is left to decode_downstream to refuse (naming it): looking at every id here would
    cost twice the encoding, and they all come from decoded Upstreams and the presence store."""
    try:
        return _encode(downstream)
    except OverflowError as exc:
        raise _out_of_range("Downstream", exc) from None


def decode_upstream(data: Buffer) -> Upstream:
    """The Upstream these bytes hold; its frame stays bytes. Raises FrameError(MALFORMED), and nothing
    else, for anything else: garbage, truncation, trailing bytes, a field of the wrong type or out
    of its range (a negative id, a received_at beyond int64), an empty frame or node_id, a user_id of 0."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise FrameError(ErrorCode.MALFORMED, f"malformed Upstream: {len(data)} bytes is over {MAX_ENVELOPE_BYTES}")
    try:
        return _decode_upstream(data)
    except ValueError as exc:  # msgspec.DecodeError (and ValidationError), UnicodeDecodeError
        raise _malformed(Upstream, exc) from None


def decode_downstream(data: Buffer) -> Downstream:
    """The Downstream these bytes hold; each delivery's frame stays bytes. Raises FrameError(MALFORMED),
    and nothing else, for anything else (as decode_upstream; connection ids are uint64)."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise FrameError(ErrorCode.MALFORMED, f"malformed Downstream: {len(data)} bytes is over {MAX_ENVELOPE_BYTES}")
    try:
        return _decode_downstream(data)
    except ValueError as exc:
        raise _malformed(Downstream, exc) from None


_PATH = re.compile(r"`\$((?:\[\d+\])*)`")


def _malformed(envelope: type[msgspec.Struct], exc: ValueError) -> FrameError:
    """FrameError(MALFORMED) with msgspec's message, its array path ($[0][3][1]) named by field
    (deliveries[3].connection_ids)."""
    if isinstance(exc, UnicodeDecodeError):
        detail = "a string is not valid UTF-8"
    else:
        detail = _PATH.sub(lambda match: f"`{_field_path(envelope, match.group(1))}`", str(exc))
    return FrameError(ErrorCode.MALFORMED, f"malformed {envelope.__name__}: {detail}")


def _field_path(envelope: type[msgspec.Struct], indices: str) -> str:
    path = ""
    kind: object = envelope
    for index in map(int, re.findall(r"\d+", indices)):
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct) and index < len(kind.__struct_fields__):
            field = msgspec.structs.fields(kind)[index]
            path += f".{field.name}" if path else field.name
            kind = field.type
        else:
            path += f"[{index}]"
            kind = next(iter(get_args(kind)), None)  # the element type of tuple[T, ...]
        while get_origin(kind) is Annotated:
            kind = get_args(kind)[0]
    return path or "$"
