"""Length-prefixed framing for WebTransport streams: each frame goes out as u32 (little endian) + bytes."""

from __future__ import annotations

import struct

from schema.frames import ErrorCode, FrameError

_U32 = struct.Struct("<I")
MAX_PREFIXED_SIZE = 0xFFFF_FFFF


def frame_with_length(payload: bytes) -> bytes:
    """One frame as it goes on a stream: its length, then its bytes."""
    if len(payload) > MAX_PREFIXED_SIZE:
        raise ValueError(f"a frame of {len(payload)} bytes does not fit a u32 length prefix")
    return _U32.pack(len(payload)) + payload


class OversizeFrame(FrameError):
    """A length prefix over the limit. `frames` holds the whole frames that came before it in the
    same feed: they are good and must still be handled before the stream is closed."""

    def __init__(self, message: str, frames: list[bytes]) -> None:
        super().__init__(ErrorCode.TOO_LARGE, message)
        self.frames = frames


class FrameReader:
    """Splits the bytes of one stream, arriving in chunks of any size, into whole frames.

    `feed`: a length above max_size raises OversizeFrame (a FrameError(TOO_LARGE) carrying the whole
    frames that preceded it in the same chunk) as soon as its 4 bytes arrive, before any of the payload
    is buffered; every later feed raises the same error, and the caller closes the stream (a client
    facing a server it cannot follow).
    `feed_items`: such a frame becomes a FrameError in its place and its payload is thrown away as it
    arrives, never buffered, so the stream goes on with the next frame (a server answering a client's
    oversize frame with an Error frame, as over the WebSocket).
    """

    __slots__ = ("_buffer", "_error", "_skip", "max_size")

    def __init__(self, max_size: int) -> None:
        if not 0 <= max_size <= MAX_PREFIXED_SIZE:
            raise ValueError(f"max_size must be between 0 and {MAX_PREFIXED_SIZE}, got {max_size}")
        self.max_size = max_size
        self._buffer = bytearray()
        self._error: FrameError | None = None
        self._skip = 0  # payload bytes of an oversize frame still to throw away (feed_items)

    @property
    def buffered(self) -> int:
        """Bytes received that are not yet part of a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """The frames completed by these bytes, in order (often none, sometimes many)."""
        if self._error is not None:
            raise FrameError(self._error.code, self._error.message)
        buffer = self._buffer
        buffer += data
        end_of_data = len(buffer)
        frames: list[bytes] = []
        start = 0
        while end_of_data - start >= 4:
            (size,) = _U32.unpack_from(buffer, start)
            if size > self.max_size:
                message = f"frame of {size} bytes is over the limit of {self.max_size} bytes"
                self._error = FrameError(ErrorCode.TOO_LARGE, message)
                buffer.clear()
                raise OversizeFrame(message, frames)
            end = start + 4 + size
            if end > end_of_data:
                break
            frames.append(bytes(buffer[start + 4 : end]))
            start = end
        if start:
            del buffer[:start]
        return frames

    def feed_items(self, data: bytes) -> list[bytes | FrameError]:
        """The frames completed by these bytes, in order, with a FrameError(TOO_LARGE) in place of each
        frame over the limit (reported when its length arrives; its payload is skipped)."""
        if self._skip:
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = data[dropped:]
        buffer = self._buffer
        buffer += data
        end_of_data = len(buffer)
        items: list[bytes | FrameError] = []
        start = 0
        while end_of_data - start >= 4:
            (size,) = _U32.unpack_from(buffer, start)
            if size > self.max_size:
                message = f"frame of {size} bytes is over the limit of {self.max_size} bytes"
                items.append(FrameError(ErrorCode.TOO_LARGE, message))
                available = end_of_data - start - 4
                if size > available:
                    self._skip = size - available
                    start = end_of_data
                    break
                start += 4 + size
                continue
            end = start + 4 + size
            if end > end_of_data:
                break
            items.append(bytes(buffer[start + 4 : end]))
            start = end
        if start:
            del buffer[:start]
        return items
