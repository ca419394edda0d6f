"""Users, device sessions, access tokens, friendships and conversations of one bench run, made directly
through the models and services (no HTTP login: thousands of Argon2 hashes would dominate the set-up),
and removed again afterwards.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.models import Device, User
from accounts.tokens import issue_tokens
from bench.platform import BenchError
from friends.models import Friendship
from messaging.models import Conversation, Membership, Message
from messaging.services import get_or_create_direct_conversation
from messaging.services.conversations import create_group

BENCH_SQLITE_NAME = "bench.sqlite3"


@dataclass
class Population:
    run: str
    user_ids: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # access token per user, same order as user_ids
    conversation_ids: list[int] = field(default_factory=list)
    seeds: dict[int, dict[int, int]] = field(default_factory=dict)  # user index -> {conversation: last seq}

    def users(self) -> list[dict[str, Any]]:
        """What a load generator needs of each user; `seed` is what a real client reads from GET
        /conversations (lastSeq) before it connects, so that it knows where each conversation stands."""
        return [
            {
                "userId": user_id,
                "token": token,
                "deviceId": f"bench-{self.run}-{index}",
                "seed": {str(c): seq for c, seq in self.seeds.get(index, {}).items()},
            }
            for index, (user_id, token) in enumerate(zip(self.user_ids, self.tokens, strict=True))
        ]


def require_migrated() -> None:
    """Refuses a database with migrations not applied, naming the fix, rather than failing later on a
    missing table halfway through setting a run up."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        first = pending[0][0]
        raise BenchError(
            f"database {connection.settings_dict['NAME']!r} has {len(pending)} unapplied migrations "
            f"(first: {first.app_label}.{first.name}): run `manage.py migrate` on it first"
        )


def use_bench_database() -> str:
    """The database URL the servers get. On SQLite the development file is swapped for var/bench.sqlite3
    (migrated here) so that a bench never fills the developer's data; any other database is used as is."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        dev_file = Path(settings.VAR_DIR) / "db.sqlite3"
        if Path(str(db["NAME"])).resolve() == dev_file.resolve():
            connection.close()
            db["NAME"] = str(Path(settings.VAR_DIR) / BENCH_SQLITE_NAME)
            from django.core.management import call_command

            call_command("migrate", verbosity=0, interactive=False)
        require_migrated()
        return f"sqlite:///{db['NAME']}"
    require_migrated()
    from urllib.parse import quote

    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def create_users(count: int) -> Population:
    """`count` users, each with one live device session and an access token for it."""
    population = Population(run=uuid.uuid4().hex[:8])
    users = [User(username=f"b{population.run}{i}", nickname=f"bench {i}", password="!") for i in range(count)]
    User.objects.bulk_create(users, batch_size=1000)
    population.user_ids = [user.id for user in users]
    now = timezone.now()
    devices = []
    for index, user in enumerate(users):
        device = Device(user=user, device_id=f"bench-{population.run}-{index}", platform="other", last_seen_at=now)
        pair = issue_tokens(user, device.id)
        device.refresh_jti = pair.refresh_jti
        device.refresh_expires_at = pair.refresh_expires_at
        devices.append(device)
        population.tokens.append(pair.access)
    Device.objects.bulk_create(devices, batch_size=1000)
    return population


def make_pairs(population: Population) -> list[tuple[int, int, int]]:
    """Users 2i and 2i+1 become friends with a direct conversation: [(sender index, receiver index, id)]."""
    users = {user.id: user for user in User.objects.filter(id__in=population.user_ids)}
    ids = population.user_ids
    friendships = []
    for i in range(0, len(ids) - 1, 2):
        friendships += [
            Friendship(user_id=ids[i], friend_id=ids[i + 1]),
            Friendship(user_id=ids[i + 1], friend_id=ids[i]),
        ]
    Friendship.objects.bulk_create(friendships, batch_size=1000)
    pairs = []
    for i in range(0, len(ids) - 1, 2):
        conversation_id = get_or_create_direct_conversation(users[ids[i]], other_user_id=ids[i + 1]).conversation_id
        population.conversation_ids.append(conversation_id)
        population.seeds[i] = population.seeds[i + 1] = {conversation_id: 0}
        pairs.append((i, i + 1, conversation_id))
    return pairs


def make_group(population: Population) -> int:
    """One group of every user of the population, owned by the first."""
    owner = User.objects.get(id=population.user_ids[0])
    change = create_group(owner, name=f"bench {population.run}", member_ids=population.user_ids[1:])
    population.conversation_ids.append(change.conversation_id)
    last_seq = Conversation.objects.get(id=change.conversation_id).last_seq
    for index in range(len(population.user_ids)):
        population.seeds[index] = {change.conversation_id: last_seq}
    return change.conversation_id


def remove(population: Population) -> None:
    """Everything the run made: messages, memberships, conversations, friendships, devices, users."""
    conversation_ids, user_ids = population.conversation_ids, population.user_ids
    for start in range(0, max(len(user_ids), len(conversation_ids)), 500):
        conversations = conversation_ids[start : start + 500]
        users = user_ids[start : start + 500]
        Message.all_objects.filter(conversation_id__in=conversations).delete()
        Membership.all_objects.filter(conversation_id__in=conversations).delete()
        Conversation.all_objects.filter(id__in=conversations).delete()
        Friendship.all_objects.filter(user_id__in=users).delete()
        Device.all_objects.filter(user_id__in=users).delete()
        User.all_objects.filter(id__in=users).delete()
