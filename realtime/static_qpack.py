"""HTTP/3 for the WebTransport server with QPACK's static table only: no per-connection header state.

A WebTransport connection carries one request (the CONNECT that opens the session) and one response,
so QPACK's dynamic table (RFC 9204 3.2) saves nothing here, while aioquic keeps a decoder and an
encoder for every connection: 9 KiB of each idle session's 46. With no dynamic table a header block
stands alone, so one made for the call decodes or encodes it exactly as a kept one would.

The server announces a table capacity of 0 and no blocked streams (SETTINGS); a client then encodes
with the static table and literals only (3.2.3), and must not insert anything on its encoder stream:
an insert is an encoder stream error, as it would be for aioquic's decoder given these settings. Our
encoder never uses the table the client allows, which RFC 9204 leaves to the encoder.
"""

from __future__ import annotations

import pylsqpack
from aioquic.h3.connection import H3Connection
from aioquic.quic.connection import QuicConnection

Headers = list[tuple[bytes, bytes]]


class _NoTable:
    """Reads 0 whatever H3Connection.__init__ assigns: its QPACK settings, fixed there at 4096 and 16."""

    def __get__(self, instance: object, owner: type | None = None) -> int:
        return 0

    def __set__(self, instance: object, value: int) -> None:
        pass


class StaticQpack:
    """Stands for both of aioquic's pylsqpack objects (the Decoder and the Encoder), with their methods."""

    __slots__ = ()

    # decoding the client's header blocks and encoder stream
    def feed_header(self, stream_id: int, data: bytes) -> tuple[bytes, Headers]:
        result: tuple[bytes, Headers] = pylsqpack.Decoder(0, 0).feed_header(stream_id, data)
        return result

    def resume_header(self, stream_id: int) -> tuple[bytes, Headers]:
        # only for a stream blocked on the dynamic table, which a fresh decoder has never seen: refused
        result: tuple[bytes, Headers] = pylsqpack.Decoder(0, 0).resume_header(stream_id)
        return result

    def feed_encoder(self, data: bytes) -> list[int]:
        unblocked: list[int] = pylsqpack.Decoder(0, 0).feed_encoder(data)
        return unblocked

    def cancel_stream(self, stream_id: int) -> bytes:
        cancelled: bytes = pylsqpack.Decoder(0, 0).cancel_stream(stream_id)
        return cancelled

    # encoding our responses, and reading the client's decoder stream
    def apply_settings(self, max_table_capacity: int, blocked_streams: int) -> bytes:
        return b""  # the table the client allows is left unused: nothing to tell its decoder

    def encode(self, stream_id: int, headers: Headers) -> tuple[bytes, bytes]:
        result: tuple[bytes, bytes] = pylsqpack.Encoder().encode(stream_id, headers)
        return result

    def feed_decoder(self, data: bytes) -> None:
        pylsqpack.Encoder().feed_decoder(data)


_STATIC_QPACK = StaticQpack()


class StaticQpackH3Connection(H3Connection):
    _max_table_capacity = _NoTable()
    _blocked_streams = _NoTable()

    def __init__(self, quic: QuicConnection, enable_webtransport: bool = False) -> None:
        super().__init__(quic, enable_webtransport=enable_webtransport)
        self._decoder = _STATIC_QPACK  # type: ignore[assignment]
        self._encoder = _STATIC_QPACK  # type: ignore[assignment]
