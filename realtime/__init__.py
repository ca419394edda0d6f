"""The access layer: WebTransport and WebSocket sessions, presence and the shared session core."""
