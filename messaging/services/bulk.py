"""Bulk statements of the send path, written per database because the ORM's generic forms cost
more CPU than the database work itself at batch sizes of hundreds (measured with py-spy on W5):
PostgreSQL gets UPDATE ... FROM unnest(...) and COPY on Django's own psycopg connection; SQLite
gets executemany. Every statement runs on Django's connection, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection

from messaging.models import Conversation, Membership, Message

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
                [now, ids, seqs, last_ids],
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
                [now, list(read_upto), list(read_upto.values())],
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
