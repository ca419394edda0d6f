"""Bulk statements of the send path, written per database because the ORM's generic forms cost
more CPU than the database work itself at batch sizes of hundreds (measured with py-spy on W5):
PostgreSQL gets plain SQL with each id list as one array literal, UPDATE ... FROM unnest(...) and
COPY on Django's own psycopg connection; SQLite gets the ORM and executemany. Every statement runs
on Django's connection, inside the caller's transaction.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import weakref
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections
from psycopg.pq import TransactionStatus

from friends.models import Block, Friendship
from messaging.models import Conversation, ConversationKind, Membership, Message

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


def text_array(values: Sequence[str]) -> str:
    """A PostgreSQL text[] literal (every element quoted; the strings hold no NUL)."""
    text = "".join(values)
    if '"' in text or "\\" in text:  # rare: escape element by element
        esc = _ARRAY_ESCAPES
        values = [value.translate(esc) for value in values]
    return '{"' + '","'.join(values) + '"}' if values else "{}"


# Up to this many new messages go in by one INSERT ... SELECT FROM unnest, in the round trip of the
# batch's UPDATEs and COMMIT; more by COPY, which costs two round trips of its own but less per row.
SMALL_INSERT_ROWS = 64


@contextlib.contextmanager
def own_transaction() -> Iterator[None]:
    """A PostgreSQL transaction for one send batch, outside any atomic block, whose BEGIN rides in
    the round trip of the batch's reads (lock_and_read(begin=True)) and whose COMMIT in that of its
    writes (record_sends(commit=True)). Django's atomic spends a round trip on each, and with COPY's
    two that made six a batch: at the small batches of moderate traffic the round trips, not the
    rows, were the cost of a batch. What is still open at the end (a batch that stored nothing) is
    committed here; on an error it is rolled back before the error goes on."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql" or db.in_atomic_block:
        raise RuntimeError("own_transaction is for PostgreSQL outside an atomic block")
    db.ensure_connection()
    raw = db.connection
    try:
        yield
    except BaseException:
        _prepared_on.pop(raw, None)  # the next batch checks them again (a server that lost them)
        if raw.info.transaction_status != TransactionStatus.IDLE:
            # On a broken connection the error in hand says more (and Django closes the connection).
            with contextlib.suppress(psycopg.Error):
                raw.execute("ROLLBACK")
        raise
    if raw.info.transaction_status != TransactionStatus.IDLE:
        with db.wrap_database_errors:
            raw.execute("COMMIT")


class BatchReads(NamedTuple):
    """What a send batch reads under its conversation locks."""

    conversations: dict[int, tuple[int, str, str]]
    """The live conversations, locked: {id: (last_seq, kind, direct_key)}."""
    stored: list[tuple[Any, ...]]
    """Rows (STORED_COLUMNS) of the messages, live or not, already stored under the batch's keys."""
    memberships: list[tuple[int, int, int]]
    """(membership id, conversation id, user id) of every live member of those conversations (and
    maybe of the batch's deleted conversations)."""
    blocks: set[tuple[int, int]]
    """(user, blocked): the live blocks between the two users of a direct conversation of the batch."""
    friendships: set[tuple[int, int]]
    """(user, friend): the same for friendships, when asked for (else empty)."""


def lock_and_read(
    conversation_ids: Collection[int], keys: Collection[tuple[int, str]], *, friendships: bool, begin: bool = False
) -> BatchReads:
    """Locks the batch's live conversations in id order (PostgreSQL; SQLite serialises writers on
    its own), then reads what the rules need. On PostgreSQL that is one round trip of five
    statements: the locks are held from the first, and each waiting round trip of the locked part
    is paid by every batch queued behind it (W5). `begin` opens own_transaction's transaction first."""
    db = connections[DEFAULT_DB_ALIAS]  # one lookup: each attribute read through `connection` costs one
    if db.vendor != "postgresql":
        return _lock_and_read_orm(conversation_ids, keys, friendships=friendships)
    senders, cmids = zip(*keys, strict=True) if keys else ((), ())
    params = {"c": int_array(conversation_ids), "s": int_array(senders), "k": text_array(cmids)}
    results: list[list[tuple[Any, ...]]] = []
    db.ensure_connection()
    # A client-side binding cursor sends the statements as one simple query (Django's cursor API
    # runs one statement a call); errors still become Django's.
    with db.wrap_database_errors, psycopg.ClientCursor(db.connection) as cursor:
        if begin:  # own_transaction: before the BEGIN, the connection is outside any transaction
            _prepare(db.connection)
            reads = _read_statements(friendships=friendships)
            small = len(keys) <= SMALL_INSERT_ROWS  # a large batch's planning is small beside its rows
            cursor.execute("BEGIN; " + (_executes(reads) if small else "; ".join(reads)), params)
        else:
            cursor.execute("; ".join(_read_statements(friendships=friendships)), params)
        if begin:
            cursor.nextset()  # BEGIN's result holds no rows
        results.append(cursor.fetchall())
        while cursor.nextset():
            results.append(cursor.fetchall())
    locked, stored, memberships, blocks, *friends = results
    return BatchReads(
        {cid: (seq, kind, key) for cid, seq, kind, key in locked},
        stored,
        memberships,
        {(user, other) for user, other in blocks},
        {(user, other) for user, other in friends[0]} if friends else set(),
    )


@functools.cache
def _read_statements(*, friendships: bool) -> tuple[str, ...]:
    """lock_and_read's statements on PostgreSQL (parameters c, s and k)."""
    conversation_table = _table(Conversation)
    # The two users of each direct conversation, both ways: '<lower id>:<higher id>'.
    pairs = (
        f"WITH p AS (SELECT split_part(direct_key, ':', 1)::bigint AS a, split_part(direct_key, ':', 2)::bigint AS b "  # noqa: S608
        f"FROM {conversation_table} WHERE id = ANY(%(c)s::bigint[]) AND NOT deleted AND kind = 'direct' "
        "AND direct_key LIKE '%%:%%'), pairs AS (SELECT a, b FROM p UNION ALL SELECT b, a FROM p) "
    )
    statements = [
        f"SELECT id, last_seq, kind, direct_key FROM {conversation_table} "  # noqa: S608
        "WHERE id = ANY(%(c)s::bigint[]) AND NOT deleted ORDER BY id FOR UPDATE",
        # One unique-index probe per key. `sender = ANY(..) AND client_msg_id = ANY(..)` probes the
        # cross product (200 senders x 1,024 ids took 290 ms in W5), and a plain join on unnest is
        # planned as a hash join over the whole table when its statistics are stale (W5: 15 ms a
        # batch at 30,000 rows, growing with the table); LIMIT 1 in LATERAL keeps it on the index.
        f"SELECT {', '.join('m.' + name for name in STORED_COLUMNS)} "  # noqa: S608
        "FROM unnest(%(s)s::bigint[], %(k)s::text[]) AS k(sender_id, client_msg_id) "
        f"CROSS JOIN LATERAL (SELECT * FROM {_table(Message)} AS x "
        "WHERE x.sender_id = k.sender_id AND x.client_msg_id = k.client_msg_id LIMIT 1) AS m",
        # Deleted conversations' members too: the caller looks only at the live ones it locked.
        f"SELECT id, conversation_id, user_id FROM {_table(Membership)} "  # noqa: S608
        "WHERE conversation_id = ANY(%(c)s::bigint[]) AND NOT deleted",
        f"{pairs}SELECT x.user_id, x.blocked_id FROM {_table(Block)} AS x "  # noqa: S608
        "JOIN pairs ON x.user_id = pairs.a AND x.blocked_id = pairs.b WHERE NOT x.deleted",
    ]
    if friendships:
        statements.append(
            f"{pairs}SELECT x.user_id, x.friend_id FROM {_table(Friendship)} AS x "  # noqa: S608
            "JOIN pairs ON x.user_id = pairs.a AND x.friend_id = pairs.b WHERE NOT x.deleted"
        )
    return tuple(statements)


def _lock_and_read_orm(
    conversation_ids: Collection[int], keys: Collection[tuple[int, str]], *, friendships: bool
) -> BatchReads:
    conversations = {
        cid: (seq, kind, key)
        for cid, seq, kind, key in Conversation.objects.select_for_update()
        .filter(id__any=conversation_ids)
        .order_by("id")
        .values_list("id", "last_seq", "kind", "direct_key")
    }
    stored: list[tuple[Any, ...]] = []
    if keys:
        senders = {sender for sender, _ in keys}
        cmids = {cmid for _, cmid in keys}
        rows = Message.all_objects.filter(sender_id__any=senders, client_msg_id__any=cmids).values_list(*STORED_COLUMNS)
        stored = [row for row in rows if (row[3], row[4]) in keys]
    memberships = list(
        Membership.objects.filter(conversation_id__any=conversations).values_list("id", "conversation_id", "user_id")
    )
    pairs: set[tuple[int, int]] = set()
    for _, kind, key in conversations.values():
        low, sep, high = key.partition(":")
        if kind == ConversationKind.DIRECT and sep:
            pairs |= {(int(low), int(high)), (int(high), int(low))}
    users = {user for pair in pairs for user in pair}
    blocks: set[tuple[int, int]] = set()
    friends: set[tuple[int, int]] = set()
    if users:
        blocks = set(
            Block.objects.filter(user_id__any=users, blocked_id__any=users).values_list("user_id", "blocked_id")
        )
        if friendships:
            friends = set(
                Friendship.objects.filter(user_id__any=users, friend_id__any=users).values_list("user_id", "friend_id")
            )
    return BatchReads(conversations, stored, memberships, blocks & pairs, friends & pairs)


@functools.cache
def _table(model: Any) -> str:
    """A model's table name, quoted (a process talks to one database, so once is enough)."""
    return str(connection.ops.quote_name(model._meta.db_table))


def record_sends(
    rows: Sequence[NewMessage], last_seq: dict[int, int], last_message_id: dict[int, int], read_upto: dict[int, int],
    now: datetime, *, commit: bool = False,
) -> None:  # fmt: skip
    """Writes a batch: each conversation's last_seq and last_message_id, the senders' read positions
    ({membership id: seq}, moved forward only) and the new messages. On PostgreSQL the UPDATEs, a
    small batch's INSERT and (with `commit`, in own_transaction) the COMMIT are one round trip; a
    larger batch's messages go first, by COPY."""
    ids = list(last_seq)
    seqs = [last_seq[i] for i in ids]
    last_ids = [last_message_id[i] for i in ids]
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql":
        statements: list[str] = []
        params: dict[str, object] = {"now": now}
        update_conversations, update_memberships, insert = _write_statements()
        if ids:
            statements.append(update_conversations)
            params |= {"c": int_array(ids), "cs": int_array(seqs), "cm": int_array(last_ids)}
        if read_upto:
            statements.append(update_memberships)
            params |= {"m": int_array(read_upto), "ms": int_array(read_upto.values())}
        if len(rows) <= SMALL_INSERT_ROWS:
            if rows:
                statements.append(insert)
                _insert_params(rows, params)
        else:
            insert_new_messages(rows, now)
        if statements:
            db.ensure_connection()
            # In own_transaction the statements were prepared with the reads (before its BEGIN).
            small = commit and len(rows) <= SMALL_INSERT_ROWS
            sql = _executes(statements) if small else "; ".join(statements)
            # One round trip for all (a client-side binding cursor sends them as one simple query).
            with db.wrap_database_errors, psycopg.ClientCursor(db.connection) as cursor:
                cursor.execute(sql + ("; COMMIT" if commit else ""), params)
        return
    conversations, memberships = _table(Conversation), _table(Membership)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {conversations} SET last_seq = %s, last_message_id = %s, updated_at = %s WHERE id = %s",  # noqa: S608
            [(seq, mid, now, cid) for cid, seq, mid in zip(ids, seqs, last_ids, strict=True)],
        )
        cursor.executemany(
            f"UPDATE {memberships} SET last_read_seq = %s, updated_at = %s WHERE id = %s AND last_read_seq < %s",  # noqa: S608
            [(seq, now, mid, seq) for mid, seq in read_upto.items()],
        )
    insert_new_messages(rows, now)


@functools.cache
def _write_statements() -> tuple[str, str, str]:
    """record_sends' statements on PostgreSQL: the conversations' UPDATE (parameters c, cs, cm, now),
    the read positions' UPDATE (m, ms, now) and a small batch's INSERT (the n_* arrays, now)."""
    return (
        f"UPDATE {_table(Conversation)} AS c SET last_seq = v.seq, last_message_id = v.mid, "  # noqa: S608
        "updated_at = %(now)s::timestamptz "
        "FROM unnest(%(c)s::bigint[], %(cs)s::bigint[], %(cm)s::bigint[]) AS v(id, seq, mid) WHERE c.id = v.id",
        f"UPDATE {_table(Membership)} AS m SET last_read_seq = v.seq, updated_at = %(now)s::timestamptz "  # noqa: S608
        "FROM unnest(%(m)s::bigint[], %(ms)s::bigint[]) AS v(id, seq) WHERE m.id = v.id AND m.last_read_seq < v.seq",
        f"INSERT INTO {_table(Message)} ({', '.join(MESSAGE_COLUMNS)}) "  # noqa: S608
        "SELECT v.id, %(now)s::timestamptz, %(now)s::timestamptz, false, v.c, v.seq, v.s, v.k, v.kind, v.b, v.r, "
        "NULL, false FROM unnest(%(n_id)s::bigint[], %(n_c)s::bigint[], %(n_seq)s::bigint[], %(n_s)s::bigint[], "
        "%(n_k)s::text[], %(n_kind)s::text[], %(n_b)s::text[], %(n_r)s::bigint[]) AS v(id, c, seq, s, k, kind, b, r)",
    )


def _insert_params(rows: Sequence[NewMessage], params: dict[str, object]) -> None:
    """The INSERT's parameters (one array per column), added to `params`."""
    mids, cids, seqs, senders, cmids, kinds, bodies, replies = zip(*rows, strict=True)
    params |= {
        "n_id": int_array(mids), "n_c": int_array(cids), "n_seq": int_array(seqs), "n_s": int_array(senders),
        "n_k": text_array(cmids), "n_kind": text_array(kinds), "n_b": text_array(bodies), "n_r": int_array(replies),
    }  # fmt: skip


# Prepared statements of the send path (PostgreSQL, own_transaction): a small batch's statements cost
# PostgreSQL more to plan than to run (the five reads: 0.37 ms of planning against 0.1 ms of
# execution), and the simple query that carries a batch's statements in one round trip plans each
# anew. PREPARE takes them once per connection; a small batch's round trips then send EXECUTEs (a
# batch of more than SMALL_INSERT_ROWS keeps the planned statements: W5's large batches measured
# slower through EXECUTE).
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_prepared_on: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


@functools.cache
def _as_prepared(sql: str) -> tuple[str, str, str]:
    """(name, PREPARE, EXECUTE with the same %(x)s parameters) of one statement."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    body = _PLACEHOLDER.sub(number, sql).replace("%%", "%")  # PREPARE goes without parameters
    name = "im_send_" + hashlib.blake2s(sql.encode(), digest_size=6).hexdigest()
    return name, f"PREPARE {name} AS {body}", f"EXECUTE {name}({', '.join(f'%({key})s' for key in order)})"


def _prepare(raw: Any) -> None:
    """Every statement of the send path prepared on this psycopg connection, once; outside any
    transaction (a PREPARE made in one that is rolled back would not last)."""
    if _prepared_on.get(raw):
        return
    wanted = [_as_prepared(sql) for sql in (*_read_statements(friendships=True), *_write_statements())]
    wanted += [_as_prepared(sql) for sql in _read_statements(friendships=False)]
    with raw.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        existing = {row[0] for row in cursor.fetchall()}
        missing = list(dict.fromkeys(prepare for name, prepare, _ in wanted if name not in existing))
        if missing:
            cursor.execute("; ".join(missing))
    _prepared_on[raw] = True


def lost_prepared_statements(error: BaseException) -> bool:
    """Whether a database error says a prepared statement of this connection is gone."""
    return isinstance(error.__cause__, psycopg.errors.InvalidSqlStatementName)


def _executes(statements: Iterable[str]) -> str:
    return "; ".join(_as_prepared(sql)[2] for sql in statements)


# A new message row: (id, conversation_id, seq, sender_id, client_msg_id, kind, body, reply_to_id);
# created_at and updated_at are the batch's time, deleted/recalled false, edited_at null.
NewMessage = tuple[int, int, int, int, str, str, str, int]

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_COPY_ESCAPE = re.compile(r"[\\\t\n\r]")


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
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql":
        ts = now.isoformat()
        esc = _COPY_ESCAPES
        # Most batches hold no tab, newline, carriage return or backslash at all: one scan of all
        # the text instead of two translate calls a row.
        if _NEEDS_COPY_ESCAPE.search("".join([row[4] + row[6] for row in rows])):
            rows = [(mid, cid, seq, sender, cmid.translate(esc), kind, body.translate(esc), reply)
                    for mid, cid, seq, sender, cmid, kind, body, reply in rows]  # fmt: skip
        data = "".join(
            [
                f"{mid}\t{ts}\t{ts}\tf\t{cid}\t{seq}\t{sender}\t{cmid}\t{kind}\t{body}\t{reply}\t\\N\tf\n"
                for mid, cid, seq, sender, cmid, kind, body, reply in rows
            ]
        ).encode()
        db.ensure_connection()
        # The raw psycopg cursor (COPY is not in Django's cursor API); errors still become Django's.
        with (
            db.wrap_database_errors,
            db.connection.cursor() as cursor,
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
