"""W5 of WORKLOADS.md: the logic worker alone, fed from NATS as fast as it takes, on PostgreSQL,
against a raw psycopg COPY of the same rows in the same run.

One `manage.py run_logic` process does all of its work (decode, checks, dedup, seqs, write, ack,
routing: every recipient is online on a sink node, so pushes are looked up and published). This
process feeds it as access nodes do (each sender a connection with one upstream envelope out at a
time, holding up to `envelope` sends), at most `window` sends in flight, and counts MessageAcks on
its own node.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from accounts.models import User
from bench.node import SimNode, upstream_bytes
from bench.population import require_migrated
from friends.models import Friendship
from imsite.snowflake import generator
from messaging.models import Conversation, Membership, Message
from messaging.services import get_or_create_direct_conversation
from realtime.presence import Location, open_presence
from schema.codec import FrameType, SendMessage, encode_frame, frame_type

FEED_NODE = "bench-feed"
SINK_NODE = "bench-sink"


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    user = f"{db.get('USER')}{password}@" if db.get("USER") else ""
    return f"postgres://{user}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _setup(run: str, pairs: int) -> tuple[list[tuple[int, int, int]], list[int]]:
    """pairs of friends with a direct conversation: [(sender, receiver, conversation)], all user ids."""
    users = [User(username=f"b{run}{i}", nickname=f"bench {i}", password="!") for i in range(2 * pairs)]
    User.objects.bulk_create(users)
    friendships = []
    for i in range(pairs):
        a, b = users[2 * i], users[2 * i + 1]
        friendships += [Friendship(user_id=a.id, friend_id=b.id), Friendship(user_id=b.id, friend_id=a.id)]
    Friendship.objects.bulk_create(friendships)
    triples = []
    for i in range(pairs):
        a, b = users[2 * i], users[2 * i + 1]
        triples.append((a.id, b.id, get_or_create_direct_conversation(a, other_user_id=b.id).conversation_id))
    return triples, [u.id for u in users]


def _cleanup(user_ids: list[int], conversation_ids: list[int]) -> None:
    Message.all_objects.filter(conversation_id__in=conversation_ids).delete()
    Membership.all_objects.filter(conversation_id__in=conversation_ids).delete()
    Conversation.all_objects.filter(id__in=conversation_ids).delete()
    Friendship.all_objects.filter(user_id__in=user_ids).delete()
    User.all_objects.filter(id__in=user_ids).delete()
    _vacuum()


def _vacuum() -> None:
    """VACUUM (ANALYZE) of the tables a run writes. Every run deletes what it stored, and without
    autovacuum (the bench server runs without it) the dead rows pile up run after run in the tables
    and indexes the worker writes, while the COPY baseline writes a fresh table."""
    tables = [model._meta.db_table for model in (Message, Conversation, Membership, Friendship, User)]
    with connection.cursor() as cursor:  # autocommit: VACUUM cannot run in a transaction
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")


async def _feed(
    nats_url: str, triples: list[tuple[int, int, int]], messages: int, window: int, envelope: int, run: str
) -> tuple[float, int]:
    """Feeds `messages` sends, at most `window` in flight, the way access nodes publish them: each
    sender is a connection with one upstream envelope out at a time, holding the sends that queued
    while the previous one was out (up to `envelope`; the session core's send window)."""
    import nats

    nc = await nats.connect(nats_url)
    presence = await open_presence(nc.jetstream())
    for index, (_, receiver, _) in enumerate(triples):  # every recipient online on the sink node
        await presence.register(Location(receiver, SINK_NODE, index + 1, session_id=index + 1, device_id="bench"))
    # Encode the frames before the clock starts: the feeder measures the worker, not itself.
    connections = len(triples)
    frames = [
        encode_frame(
            SendMessage(client_msg_id=f"{run}-{n}", conversation_id=triples[n % connections][2], body=f"w5 {n:08d}")
        )
        for n in range(messages)
    ]
    queued: list[list[bytes]] = [[] for _ in range(connections)]
    out = [0] * connections  # sends of each connection's envelope in flight
    acked = 0
    done = asyncio.Event()
    credit = asyncio.Semaphore(window)
    node = SimNode(nats_url, FEED_NODE, decode=False)

    due: list[int] = []  # connections whose next envelope is to be published
    wake = asyncio.Event()

    def release(index: int) -> None:
        out[index] = min(len(queued[index]), envelope)  # claimed now, published by the publisher
        due.append(index)
        wake.set()

    async def publisher() -> None:
        while True:
            await wake.wait()
            wake.clear()
            taken = due[:]
            del due[:]
            for index in taken:
                count = out[index]
                group, queued[index] = queued[index][:count], queued[index][count:]
                payload = upstream_bytes(
                    group[0], user_id=triples[index][0], node_id=FEED_NODE, connection_id=index + 1, more=group[1:]
                )
                await node.publish_raw(payload)

    def on_delivery(connection_id: int, frame: bytes) -> None:
        nonlocal acked
        if frame_type(frame) == FrameType.MESSAGE_ACK:
            acked += 1
            credit.release()
            index = connection_id - 1
            out[index] -= 1
            if out[index] == 0 and queued[index]:
                release(index)
            if acked == messages:
                done.set()

    node.on_delivery = on_delivery
    await node.start()
    started = time.perf_counter()
    publishing = asyncio.create_task(publisher())
    # The whole feed is bounded: a worker that stops answering ends the run, it does not hang it.
    async with asyncio.timeout(max(60.0, messages / 1000)):
        for n, frame in enumerate(frames):
            await credit.acquire()
            index = n % connections
            queued[index].append(frame)
            if out[index] == 0:
                release(index)
        await done.wait()
    elapsed = time.perf_counter() - started
    publishing.cancel()
    await node.close()
    await presence.close()
    await nc.drain()
    return elapsed, acked


def _copy_baseline(messages: int, triples: list[tuple[int, int, int]], batch: int, run: str) -> float:
    """The same rows through a raw psycopg COPY into a copy of the message table, indexes included."""
    table = f"bench_copy_{run}"
    columns = [str(f.column) for f in Message._meta.concrete_fields]
    ids = generator().next_ids(messages)
    now = time.strftime("%Y-%m-%d %H:%M:%S+00")
    seqs: dict[int, int] = {}
    rows = []
    for n in range(messages):
        sender, _, conversation = triples[n % len(triples)]
        seqs[conversation] = seqs.get(conversation, 0) + 1
        values = {
            "id": ids[n], "created_at": now, "updated_at": now, "deleted": False, "conversation_id": conversation,
            "seq": seqs[conversation], "sender_id": sender, "client_msg_id": f"{run}-c{n}", "kind": "text",
            "body": f"w5 {n:08d}", "reply_to_id": 0, "edited_at": None, "recalled": False,
        }  # fmt: skip
        rows.append(tuple(values[c] for c in columns))
    raw = connection.connection  # Django's own psycopg connection
    with raw.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} (LIKE {Message._meta.db_table} INCLUDING ALL)")
    raw.commit()
    try:
        started = time.perf_counter()
        for start in range(0, messages, batch):
            with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows[start : start + batch]:
                    copy.write_row(row)
            raw.commit()
        return time.perf_counter() - started
    finally:
        with raw.cursor() as cursor:
            cursor.execute(f"DROP TABLE {table}")
        raw.commit()


def run_w5(
    *, messages: int, pairs: int, window: int, envelope: int, batch: int, out: io.TextIOBase | Any
) -> dict[str, Any]:
    if connection.vendor != "postgresql":
        raise RuntimeError("W5 runs on PostgreSQL: set DATABASE_URL=postgres://...")
    run = uuid.uuid4().hex[:8]
    require_migrated()
    _vacuum()  # whatever earlier runs (of any version) left behind
    triples, user_ids = _setup(run, pairs)
    conversation_ids = [c for _, _, c in triples]
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "NATS_URL": settings.NATS_URL,
        "LOG_LEVEL": "INFO",
        "DEBUG": "0",  # DEBUG would record every query
        "SECRET_KEY": settings.SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    log = tempfile.NamedTemporaryFile("w+", prefix="w5-worker-", suffix=".log", delete=False)  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "run_logic", "--batch-size", str(batch)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while "logic worker ready" not in Path(log.name).read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the logic worker did not start; its log is {log.name}")
            time.sleep(0.05)
        worker_cpu_before = _cpu_seconds(worker.pid)
        feeder_cpu_before = time.process_time()
        elapsed, acked = asyncio.run(_feed(settings.NATS_URL, triples, messages, window, envelope, run))
        worker_cpu = _cpu_seconds(worker.pid) - worker_cpu_before
        feeder_cpu = time.process_time() - feeder_cpu_before
        stored = Message.objects.filter(conversation_id__in=conversation_ids).count()
        copy_seconds = _copy_baseline(messages, triples, batch, run)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        _cleanup(user_ids, conversation_ids)
    worker_rate = messages / elapsed
    copy_rate = messages / copy_seconds
    result = {
        "workload": "W5",
        "parameters": {
            "messages": messages,
            "conversations": pairs,
            "window": window,
            "sendsPerEnvelope": envelope,
            "batchSize": batch,
        },
        "figures": {
            "storedMsgsPerSecond": round(worker_rate),
            "copyRowsPerSecond": round(copy_rate),
            "ratioToCopy": round(worker_rate / copy_rate, 3),
            "seconds": round(elapsed, 3),
            "workerCpuMicrosPerMessage": round(worker_cpu / messages * 1e6, 1),
            "workerBusyShare": round(worker_cpu / elapsed, 2),
            "feederCpuMicrosPerMessage": round(feeder_cpu / messages * 1e6, 1),
            "acked": acked,
            "stored": stored,
            "lost": messages - stored,
        },
        "transport": "nats",
        "machine": {"cores": os.cpu_count()},
        "versions": {"python": sys.version.split()[0], "postgresql": getattr(connection, "pg_version", None)},
    }
    out.write(json.dumps(result) + "\n")
    return result
