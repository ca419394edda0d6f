"""Every write of the messaging app and the rules behind it; views, the admin and the logic worker call these.

sending.py holds send_messages, the one write path of every message (batches from the logic worker,
REST sends, system messages); conversations.py holds direct conversations, groups, read state and
recall. Each function runs in one transaction and returns a frozen dataclass.
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
    StoredMessage,
    max_body_bytes,
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
    "send_messages",
    "set_member_role",
    "transfer_group_ownership",
    "update_group",
]
