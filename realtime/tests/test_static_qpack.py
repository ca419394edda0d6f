"""QPACK with the static table only: header blocks stand alone, and the dynamic table is refused."""

from __future__ import annotations

import pylsqpack
import pytest
from aioquic.h3.connection import Setting
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from realtime.static_qpack import StaticQpack, StaticQpackH3Connection

CONNECT = [
    (b":method", b"CONNECT"),
    (b":scheme", b"https"),
    (b":authority", b"127.0.0.1:4433"),
    (b":path", b"/wt"),
    (b":protocol", b"webtransport"),
    (b"origin", b"https://chat.example"),
]


def client_encoder(capacity: int) -> pylsqpack.Encoder:
    """A client's encoder once it has our SETTINGS."""
    encoder = pylsqpack.Encoder()
    encoder.apply_settings(max_table_capacity=capacity, blocked_streams=0)
    return encoder


def test_the_server_announces_no_dynamic_table_and_keeps_no_codec_of_its_own() -> None:
    quic = QuicConnection(configuration=QuicConfiguration(is_client=True))
    first, second = StaticQpackH3Connection(quic), StaticQpackH3Connection(quic)

    settings = first._get_local_settings()

    assert settings[Setting.QPACK_MAX_TABLE_CAPACITY] == 0
    assert settings[Setting.QPACK_BLOCKED_STREAMS] == 0
    shared = {id(first._decoder), id(first._encoder), id(second._decoder), id(second._encoder)}
    assert len(shared) == 1  # one stateless stand-in for all
    assert isinstance(first._decoder, StaticQpack)
    assert first._decoder.cancel_stream(0) == b""  # no table: nothing for the client's encoder to forget


def test_header_blocks_decode_one_after_another_as_a_kept_decoder_would() -> None:
    encoder, qpack = client_encoder(0), StaticQpack()
    for stream_id in (0, 4, 8):
        control, block = encoder.encode(stream_id, CONNECT)
        assert control == b""  # the client inserts nothing

        assert qpack.feed_header(stream_id, block) == (b"", CONNECT)


def test_our_responses_use_no_table_even_where_the_client_allows_one() -> None:
    qpack = StaticQpack()
    assert qpack.apply_settings(max_table_capacity=4096, blocked_streams=16) == b""

    control, block = qpack.encode(0, [(b":status", b"200")])

    assert control == b""
    assert pylsqpack.Decoder(0, 0).feed_header(0, block) == (b"", [(b":status", b"200")])


def test_a_block_or_an_insert_that_uses_the_dynamic_table_is_refused() -> None:
    qpack = StaticQpack()
    encoder = pylsqpack.Encoder()  # a client that ignores our settings
    set_capacity = encoder.apply_settings(max_table_capacity=4096, blocked_streams=16)
    inserts, _ = encoder.encode(0, CONNECT)
    _, block = encoder.encode(4, CONNECT)  # refers to the entries the first block inserted

    with pytest.raises(pylsqpack.DecompressionFailed):
        qpack.feed_header(4, block)
    with pytest.raises(pylsqpack.EncoderStreamError):
        qpack.feed_encoder(set_capacity + inserts)
    with pytest.raises(pylsqpack.DecoderStreamError):
        qpack.feed_decoder(b"\x80")  # an acknowledgement of a section we never sent
