"""Every write of the messaging app and the rules behind it; views, the admin and the logic worker call these.

sending.py holds send_messages, the one write path of every message (batches from the logic worker,
REST sends, system messages); conversations.py holds direct conversations, groups, read state and
recall. Each function runs in one transaction and returns a frozen record (a dataclass, or a
msgspec Struct for the send path's, which are made per message).
"""

from messaging.services.conversations import (
    DirectConversation,
    GroupChange,
    GroupEvent,
    ReadState,
    RecallResult,
    add_group_members,
    create_group,
    get_or_create_direct_conversation,
    leave_group,
    mark_read,
    mark_read_by_id,
    recall_message,
    remove_group_member,
    set_member_role,
    transfer_group_ownership,
    update_group,
)
from messaging.services.sending import (
    RejectCode,
    SendOutcome,
    SendRequest,
    SendStatus,
    SentBatch,
    StoredMessage,
    max_body_bytes,
    send_batch,
    send_messages,
)

__all__ = [
    "DirectConversation",
    "GroupChange",
    "GroupEvent",
    "ReadState",
    "RecallResult",
    "RejectCode",
    "SendOutcome",
    "SendRequest",
    "SendStatus",
    "SentBatch",
    "StoredMessage",
    "add_group_members",
    "create_group",
    "get_or_create_direct_conversation",
    "leave_group",
    "mark_read",
    "mark_read_by_id",
    "max_body_bytes",
    "recall_message",
    "remove_group_member",
    "send_batch",
    "send_messages",
    "set_member_role",
    "transfer_group_ownership",
    "update_group",
]
