"""Bulk statements of the send path, written per database because the ORM's generic forms cost
more CPU than the database work itself at batch sizes of hundreds (measured with py-spy on W5):
PostgreSQL gets plain SQL with each id list as one array literal, UPDATE ... FROM unnest(...) and
COPY on Django's own psycopg connection; SQLite gets the ORM and executemany. Every statement runs
on Django's connection, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection

from friends.models import Block, Friendship
from messaging.models import Conversation, Membership, Message

# The columns of a stored message as the send path returns it (StoredMessage's fields, in order).
STORED_COLUMNS = (
    "id",
    "conversation_id",
    "seq",
    "sender_id",
    "client_msg_id",
    "kind",
    "body",
    "reply_to_id",
    "created_at",
)

_ARRAY_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


def int_array(values: Iterable[int]) -> str:
    """A PostgreSQL bigint[] literal, sent as one text parameter: Django's client-side binding quotes a
    list element by element in Python, which cost more than the query (py-spy on W5). ints only."""
    return "{" + ",".join(map(str, values)) + "}"


def text_array(values: Iterable[str]) -> str:
    """A PostgreSQL text[] literal (every element quoted; the strings hold no NUL)."""
    esc = _ARRAY_ESCAPES
    return "{" + ",".join(['"' + value.translate(esc) + '"' for value in values]) + "}"


def _rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def lock_conversations(ids: Collection[int]) -> dict[int, tuple[int, str, str]]:
    """Locks the live conversations in id order (PostgreSQL; SQLite serialises writers on its own):
    {id: (last_seq, kind, direct_key)}; last_seq stays ours until the transaction ends."""
    if connection.vendor == "postgresql":
        rows = _rows(
            f"SELECT id, last_seq, kind, direct_key FROM {_table(Conversation)} "  # noqa: S608
            "WHERE id = ANY(%s::bigint[]) AND NOT deleted ORDER BY id FOR UPDATE",
            [int_array(ids)],
        )
    else:
        rows = list(
            Conversation.objects.select_for_update()
            .filter(id__any=ids)
            .order_by("id")
            .values_list("id", "last_seq", "kind", "direct_key")
        )
    return {cid: (seq, kind, key) for cid, seq, kind, key in rows}


def live_memberships(conversation_ids: Collection[int]) -> list[tuple[int, int, int]]:
    """(membership id, conversation id, user id) of every live member of these conversations."""
    if not conversation_ids:
        return []
    if connection.vendor == "postgresql":
        return _rows(
            f"SELECT id, conversation_id, user_id FROM {_table(Membership)} "  # noqa: S608
            "WHERE conversation_id = ANY(%s::bigint[]) AND NOT deleted",
            [int_array(conversation_ids)],
        )
    return list(
        Membership.objects.filter(conversation_id__any=conversation_ids).values_list("id", "conversation_id", "user_id")
    )


def stored_by_key(keys: Collection[tuple[int, str]]) -> list[tuple[Any, ...]]:
    """Rows (STORED_COLUMNS) of the messages, live or not, already stored under these (sender,
    client_msg_id) keys."""
    if not keys:
        return []
    if connection.vendor == "postgresql":
        # Exact pairs: `sender = ANY(..) AND client_msg_id = ANY(..)` probes the index for the cross
        # product (200 senders x 1,024 ids took 290 ms in W5); a join on unnest probes each key once.
        senders, cmids = zip(*keys, strict=True)
        return _rows(
            f"SELECT {', '.join('m.' + name for name in STORED_COLUMNS)} FROM {_table(Message)} AS m "  # noqa: S608
            "JOIN unnest(%s::bigint[], %s::text[]) AS k(sender_id, client_msg_id) "
            "ON m.sender_id = k.sender_id AND m.client_msg_id = k.client_msg_id",
            [int_array(senders), text_array(cmids)],
        )
    senders_set = {sender for sender, _ in keys}
    cmids_set = {cmid for _, cmid in keys}
    rows = Message.all_objects.filter(sender_id__any=senders_set, client_msg_id__any=cmids_set).values_list(
        *STORED_COLUMNS
    )
    return [row for row in rows if (row[3], row[4]) in keys]


def blocks_among(users: Collection[int]) -> set[tuple[int, int]]:
    """(user, blocked) of the live blocks between any two of these users."""
    if connection.vendor == "postgresql":
        users_literal = int_array(users)
        rows = _rows(
            f"SELECT user_id, blocked_id FROM {_table(Block)} "  # noqa: S608
            "WHERE user_id = ANY(%s::bigint[]) AND blocked_id = ANY(%s::bigint[]) AND NOT deleted",
            [users_literal, users_literal],
        )
    else:
        rows = list(
            Block.objects.filter(user_id__any=users, blocked_id__any=users).values_list("user_id", "blocked_id")
        )
    return {(user, blocked) for user, blocked in rows}


def friendships_between(users: Collection[int], friends: Collection[int]) -> set[tuple[int, int]]:
    """(user, friend) of the live friendships from any of `users` to any of `friends`."""
    if connection.vendor == "postgresql":
        rows = _rows(
            f"SELECT user_id, friend_id FROM {_table(Friendship)} "  # noqa: S608
            "WHERE user_id = ANY(%s::bigint[]) AND friend_id = ANY(%s::bigint[]) AND NOT deleted",
            [int_array(users), int_array(friends)],
        )
    else:
        rows = list(
            Friendship.objects.filter(user_id__any=users, friend_id__any=friends).values_list("user_id", "friend_id")
        )
    return {(user, friend) for user, friend in rows}


# The message columns in the order rows are given (the model's concrete fields, checked by a test).
MESSAGE_COLUMNS = (
    "id",
    "created_at",
    "updated_at",
    "deleted",
    "conversation_id",
    "seq",
    "sender_id",
    "client_msg_id",
    "kind",
    "body",
    "reply_to_id",
    "edited_at",
    "recalled",
)


def _table(model: Any) -> str:
    return str(connection.ops.quote_name(model._meta.db_table))


def advance_seqs(last_seq: dict[int, int], last_message_id: dict[int, int], now: datetime) -> None:
    """Sets each conversation's last_seq and last_message_id in one statement."""
    ids = list(last_seq)
    if not ids:
        return
    seqs = [last_seq[i] for i in ids]
    last_ids = [last_message_id[i] for i in ids]
    table = _table(Conversation)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS c SET last_seq = v.seq, last_message_id = v.mid, updated_at = %s "  # noqa: S608
                "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v(id, seq, mid) WHERE c.id = v.id",
                [now, int_array(ids), int_array(seqs), int_array(last_ids)],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET last_seq = %s, last_message_id = %s, updated_at = %s WHERE id = %s",  # noqa: S608
                [(seq, mid, now, cid) for cid, seq, mid in zip(ids, seqs, last_ids, strict=True)],
            )


def raise_read_positions(read_upto: dict[int, int], now: datetime) -> None:
    """Moves memberships' last_read_seq forward (never back) in one statement: {membership id: seq}."""
    if not read_upto:
        return
    table = _table(Membership)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS m SET last_read_seq = v.seq, updated_at = %s "  # noqa: S608
                "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, seq) "
                "WHERE m.id = v.id AND m.last_read_seq < v.seq",
                [now, int_array(read_upto), int_array(read_upto.values())],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET last_read_seq = %s, updated_at = %s WHERE id = %s AND last_read_seq < %s",  # noqa: S608
                [(seq, now, mid, seq) for mid, seq in read_upto.items()],
            )


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

# A new message row: (id, conversation_id, seq, sender_id, client_msg_id, kind, body, reply_to_id);
# created_at and updated_at are the batch's time, deleted/recalled false, edited_at null.
NewMessage = tuple[int, int, int, int, str, str, str, int]


def insert_new_messages(rows: Sequence[NewMessage], now: datetime) -> None:
    """Inserts new messages: COPY on PostgreSQL, executemany elsewhere.

    On PostgreSQL the COPY text is formatted here, one f-string a row, and written at once:
    psycopg's per-row write_row, then a generic per-value formatter, were the largest single costs
    of the send path in the W5 profile.
    """
    if not rows:
        return
    table = _table(Message)
    columns = ", ".join(MESSAGE_COLUMNS)
    if connection.vendor == "postgresql":
        ts = now.isoformat()
        esc = _COPY_ESCAPES
        data = "".join(
            f"{mid}\t{ts}\t{ts}\tf\t{cid}\t{seq}\t{sender}\t{cmid.translate(esc)}\t{kind}\t"
            f"{body.translate(esc)}\t{reply}\t\\N\tf\n"
            for mid, cid, seq, sender, cmid, kind, body, reply in rows
        ).encode()
        connection.ensure_connection()
        # The raw psycopg cursor (COPY is not in Django's cursor API); errors still become Django's.
        with (
            connection.wrap_database_errors,
            connection.connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            copy.write(data)
        return
    placeholders = ", ".join(["%s"] * len(MESSAGE_COLUMNS))
    params = [
        (mid, now, now, False, cid, seq, sender, cmid, kind, body, reply, None, False)
        for mid, cid, seq, sender, cmid, kind, body, reply in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", params)  # noqa: S608
