"""Length-prefixed framing on WebTransport streams: frames come back whole however the bytes are cut."""

from __future__ import annotations

import struct
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schema.codec import ErrorCode, FrameError, FrameReader, encode_frame, frame_with_length
from schema.tests.strategies import EXAMPLES

PAYLOADS = [encode_frame(frame) for frame in EXAMPLES.values()]
STREAM = b"".join(frame_with_length(payload) for payload in PAYLOADS)


def test_a_frame_goes_out_as_its_little_endian_u32_length_then_its_bytes():
    assert frame_with_length(b"abc") == b"\x03\x00\x00\x00abc"
    assert frame_with_length(b"") == b"\x00\x00\x00\x00"


def test_many_frames_in_one_chunk_all_come_out_in_order():
    assert FrameReader(max_size=65536).feed(STREAM) == PAYLOADS


def test_frames_fed_one_byte_at_a_time_come_out_whole():
    reader = FrameReader(max_size=65536)
    received = [frame for index in range(len(STREAM)) for frame in reader.feed(STREAM[index : index + 1])]
    assert received == PAYLOADS
    assert reader.buffered == 0


def test_a_stream_cut_anywhere_in_two_gives_the_same_frames():
    for cut in range(len(STREAM) + 1):
        reader = FrameReader(max_size=65536)
        assert reader.feed(STREAM[:cut]) + reader.feed(STREAM[cut:]) == PAYLOADS


@given(cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=30))
def test_a_stream_cut_into_random_chunks_gives_the_same_frames(cuts):
    bounds = [0, *sorted(cuts), len(STREAM)]
    reader = FrameReader(max_size=65536)
    received = [frame for start, end in pairwise(bounds) for frame in reader.feed(STREAM[start:end])]
    assert received == PAYLOADS


def test_a_partial_frame_waits_in_the_buffer():
    reader = FrameReader(max_size=100)
    assert reader.feed(b"\x05\x00\x00\x00ab") == []
    assert reader.buffered == 6
    assert reader.feed(b"cde\x01\x00") == [b"abcde"]
    assert reader.buffered == 2


def test_an_empty_frame_comes_out_as_empty_bytes():
    assert FrameReader(max_size=10).feed(b"\x00\x00\x00\x00" + frame_with_length(b"x")) == [b"", b"x"]


def test_a_frame_of_exactly_the_maximum_size_is_accepted():
    assert FrameReader(max_size=5).feed(frame_with_length(b"12345")) == [b"12345"]


def test_a_length_over_the_maximum_is_refused_before_its_payload_arrives():
    reader = FrameReader(max_size=64 * 1024)
    with pytest.raises(FrameError) as caught:
        reader.feed(struct.pack("<I", 64 * 1024 + 1))
    assert caught.value.code == ErrorCode.TOO_LARGE
    assert "65537" in caught.value.message


def test_an_oversize_length_after_good_frames_is_still_refused():
    reader = FrameReader(max_size=10)
    with pytest.raises(FrameError):
        reader.feed(frame_with_length(b"ok") + struct.pack("<I", 0xFFFF_FFFF))


def test_a_reader_that_refused_a_frame_refuses_everything_after():
    reader = FrameReader(max_size=10)
    with pytest.raises(FrameError):
        reader.feed(struct.pack("<I", 11))
    with pytest.raises(FrameError) as caught:
        reader.feed(frame_with_length(b"ok"))
    assert caught.value.code == ErrorCode.TOO_LARGE
    assert reader.buffered == 0


@given(st.binary(max_size=200))
def test_random_stream_bytes_give_frames_or_frame_error(data):
    reader = FrameReader(max_size=64)
    code: ErrorCode | None = None
    try:
        frames = reader.feed(data)
    except FrameError as error:
        frames, code = [], error.code
    if code is None:
        assert sum(4 + len(frame) for frame in frames) + reader.buffered == len(data)
    else:
        assert code == ErrorCode.TOO_LARGE


@pytest.mark.parametrize("max_size", [-1, 2**32])
def test_a_maximum_that_a_u32_cannot_express_is_refused(max_size):
    with pytest.raises(ValueError, match="max_size"):
        FrameReader(max_size=max_size)


def test_whole_frames_before_an_oversize_length_prefix_are_not_lost() -> None:
    from schema.framing import OversizeFrame

    reader = FrameReader(max_size=16)
    chunk = frame_with_length(b"first") + frame_with_length(b"second") + (1000).to_bytes(4, "little") + b"x"
    with pytest.raises(OversizeFrame) as caught:
        reader.feed(chunk)
    assert caught.value.frames == [b"first", b"second"]
    assert caught.value.code == ErrorCode.TOO_LARGE
    with pytest.raises(FrameError):
        reader.feed(frame_with_length(b"later"))


def test_feed_items_reports_an_oversize_frame_in_place_and_goes_on() -> None:
    reader = FrameReader(max_size=4)
    stream = frame_with_length(b"ok") + frame_with_length(b"too long") + frame_with_length(b"next")
    items = reader.feed_items(stream)
    assert items[0] == b"ok"
    assert isinstance(items[1], FrameError)
    assert items[1].code == ErrorCode.TOO_LARGE
    assert items[2:] == [b"next"]


@pytest.mark.parametrize("chunk", [1, 3, 7, 100])
def test_feed_items_skips_an_oversize_payload_split_over_chunks_without_buffering_it(chunk: int) -> None:
    reader = FrameReader(max_size=8)
    stream = frame_with_length(b"a") + frame_with_length(b"x" * 50) + frame_with_length(b"b")
    items: list[bytes | FrameError] = []
    for start in range(0, len(stream), chunk):
        items += reader.feed_items(stream[start : start + chunk])
        assert reader.buffered <= 8 + 4  # never more than one allowed frame and its prefix
    assert [item if isinstance(item, bytes) else item.code for item in items] == [b"a", ErrorCode.TOO_LARGE, b"b"]
