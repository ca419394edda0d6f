"""Hypothesis strategies for every frame and envelope, and one fixed example of each."""

from __future__ import annotations

from hypothesis import strategies as st

from schema.codec import (
    AnyFrame,
    Auth,
    AuthResult,
    Cursor,
    Delivery,
    Downstream,
    ErrorCode,
    ErrorFrame,
    Kicked,
    Message,
    MessageAck,
    MessageKind,
    Ping,
    Pong,
    PresenceUpdate,
    PushAck,
    PushMessage,
    ReadReceipt,
    ReadUpdate,
    Resync,
    SendError,
    SendErrorCode,
    SendMessage,
    Sync,
    SyncResult,
    SystemNotification,
    Typing,
    TypingUpdate,
    Upstream,
)

ids = st.integers(min_value=1, max_value=2**64 - 1)
seqs = st.integers(min_value=0, max_value=2**64 - 1)
optional_ids = seqs
times = st.integers(min_value=-(2**63), max_value=2**63 - 1)
u16s = st.integers(min_value=1, max_value=2**16 - 1)
u32s = st.integers(min_value=0, max_value=2**32 - 1)
texts = st.text(max_size=40)
required_texts = st.text(min_size=1, max_size=40)
kinds = st.sampled_from(MessageKind)

messages = st.builds(
    Message,
    id=ids,
    conversation_id=ids,
    seq=ids,
    sender_id=optional_ids,
    client_msg_id=texts,
    kind=kinds,
    body=st.text(max_size=200),
    reply_to_id=optional_ids,
    created_at=times,
    edited_at=times,
    recalled=st.booleans(),
)

client_frames = st.one_of(
    st.builds(Auth, token=required_texts, device_id=texts, platform=texts),
    st.just(Ping()),
    st.builds(
        SendMessage,
        client_msg_id=required_texts,
        conversation_id=ids,
        kind=kinds,
        body=st.text(max_size=200),
        reply_to_id=optional_ids,
    ),
    st.builds(PushAck, conversation_id=ids, seq=seqs),
    st.builds(
        Sync,
        cursors=st.lists(st.builds(Cursor, conversation_id=ids, after_seq=seqs), max_size=5).map(tuple),
    ),
    st.builds(ReadReceipt, conversation_id=ids, seq=seqs),
    st.builds(Typing, conversation_id=ids),
)

server_frames = st.one_of(
    st.builds(AuthResult, user_id=ids, session_id=optional_ids, heartbeat_seconds=u32s),
    st.just(Pong()),
    st.builds(MessageAck, client_msg_id=required_texts, message_id=ids, conversation_id=ids, seq=ids, created_at=times),
    st.builds(SendError, client_msg_id=required_texts, code=u16s, reason=texts),
    st.builds(PushMessage, message=messages),
    st.builds(
        SyncResult,
        conversation_id=ids,
        messages=st.lists(messages, max_size=4).map(tuple),
        has_more=st.booleans(),
    ),
    st.builds(ReadUpdate, conversation_id=ids, user_id=ids, seq=seqs),
    st.builds(TypingUpdate, conversation_id=ids, user_id=ids),
    st.builds(PresenceUpdate, user_id=ids, online=st.booleans()),
    st.builds(SystemNotification, text=texts),
    st.builds(Kicked, reason=texts),
    st.builds(ErrorFrame, code=u16s, message=texts),
    st.just(Resync()),
)

frames = st.one_of(client_frames, server_frames)

upstreams = st.builds(
    Upstream,
    frame=st.binary(min_size=1, max_size=100),
    user_id=ids,
    device_id=texts,
    session_id=optional_ids,
    node_id=required_texts,
    connection_id=optional_ids,
    received_at=times,
)

downstreams = st.builds(
    Downstream,
    deliveries=st.lists(
        st.builds(
            Delivery,
            frame=st.binary(max_size=100),
            connection_ids=st.lists(optional_ids, max_size=6).map(tuple),
        ),
        max_size=4,
    ).map(tuple),
)

MESSAGE = Message(
    id=7_212_345_678_901_234_567,
    conversation_id=7_212_345_678_901_230_001,
    seq=42,
    sender_id=7_212_345_678_901_220_002,
    client_msg_id="c2f1a7e0-5b7e-4f57-9f0a-0c1d2e3f4a5b",
    kind=MessageKind.TEXT,
    body="héllo, 世界 👋",
    reply_to_id=7_212_345_678_901_234_000,
    created_at=1_763_900_000_000,
    edited_at=1_763_900_000_500,
    recalled=False,
)

EXAMPLES: dict[str, AnyFrame] = {
    "Auth": Auth(token="eyJhbGciOiJIUzI1NiJ9.e30.sig", device_id="web-3f2a9c", platform="web"),
    "Ping": Ping(),
    "SendMessage": SendMessage(
        client_msg_id="c2f1a7e0-5b7e-4f57-9f0a-0c1d2e3f4a5b",
        conversation_id=7_212_345_678_901_230_001,
        kind=MessageKind.TEXT,
        body="hello bob",
        reply_to_id=7_212_345_678_901_234_000,
    ),
    "PushAck": PushAck(conversation_id=7_212_345_678_901_230_001, seq=42),
    "Sync": Sync(
        cursors=(
            Cursor(conversation_id=7_212_345_678_901_230_001, after_seq=41),
            Cursor(conversation_id=7_212_345_678_901_230_009, after_seq=0),
        )
    ),
    "ReadReceipt": ReadReceipt(conversation_id=7_212_345_678_901_230_001, seq=42),
    "Typing": Typing(conversation_id=7_212_345_678_901_230_001),
    "AuthResult": AuthResult(
        user_id=7_212_345_678_901_220_002, session_id=7_212_345_678_901_220_777, heartbeat_seconds=30
    ),
    "Pong": Pong(),
    "MessageAck": MessageAck(
        client_msg_id="c2f1a7e0-5b7e-4f57-9f0a-0c1d2e3f4a5b",
        message_id=7_212_345_678_901_234_567,
        conversation_id=7_212_345_678_901_230_001,
        seq=42,
        created_at=1_763_900_000_000,
    ),
    "SendError": SendError(
        client_msg_id="c2f1a7e0-5b7e-4f57-9f0a-0c1d2e3f4a5b",
        code=SendErrorCode.NOT_FRIENDS,
        reason="charlie is not your friend",
    ),
    "PushMessage": PushMessage(message=MESSAGE),
    "SyncResult": SyncResult(
        conversation_id=7_212_345_678_901_230_001,
        messages=(MESSAGE, Message(id=1, conversation_id=7_212_345_678_901_230_001, seq=43, sender_id=9, body="hi")),
        has_more=True,
    ),
    "ReadUpdate": ReadUpdate(conversation_id=7_212_345_678_901_230_001, user_id=7_212_345_678_901_220_002, seq=42),
    "TypingUpdate": TypingUpdate(conversation_id=7_212_345_678_901_230_001, user_id=7_212_345_678_901_220_002),
    "PresenceUpdate": PresenceUpdate(user_id=7_212_345_678_901_220_002, online=True),
    "SystemNotification": SystemNotification(text="maintenance at 02:00 UTC"),
    "Kicked": Kicked(reason="password_change"),
    "ErrorFrame": ErrorFrame(code=ErrorCode.TOO_LARGE, message="frame of 70000 bytes is over the limit"),
    "Resync": Resync(),
}

UPSTREAM = Upstream(
    frame=b"\x0c\x00\x00\x00client frame bytes",
    user_id=7_212_345_678_901_220_002,
    device_id="web-3f2a9c",
    session_id=7_212_345_678_901_220_777,
    node_id="access-1",
    connection_id=42,
    received_at=1_763_900_000_000,
)

DOWNSTREAM = Downstream(
    deliveries=(
        Delivery(frame=b"push one", connection_ids=(1, 2, 3)),
        Delivery(frame=b"push two", connection_ids=(2**64 - 1,)),
        Delivery(frame=b"", connection_ids=()),
    )
)
