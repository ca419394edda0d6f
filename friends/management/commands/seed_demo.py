"""manage.py seed_demo: demo users alice, bob and carol, all friends, plus an admin superuser.

Idempotent: existing users are left exactly as they are (their passwords are not reset) and
existing friendships are kept; a second run changes nothing and says so.

Friendships are made through friends.services, so they publish FriendsChanged events. When NATS is
not reachable (`make run` seeds before it starts the servers) nobody can be connected to hear them:
the events of that run are skipped rather than each waiting for a connection that is not coming.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models.functions import Lower

from accounts.models import User
from accounts.services import register_user
from friends import services
from friends.models import FriendRequest, RequestStatus
from friends.selectors import are_friends
from imsite import publisher
from imsite.api.health import check_nats
from imsite.errors import ServiceError

DEMO_USERS = (("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol"))
ADMIN_USERNAME = "admin"
DEFAULT_PASSWORD = "demo-pass-123"
DEFAULT_ADMIN_PASSWORD = "admin-pass-123"


def _existing(username: str) -> User | None:
    """The user of that name in any letter case, soft-deleted ones included."""
    return User.all_objects.alias(name=Lower("username")).filter(name=username.lower()).first()


class Command(BaseCommand):
    help = "Create demo users alice, bob and carol (all friends) and an admin superuser; safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password", default=DEFAULT_PASSWORD, help=f"Password of the demo users (default {DEFAULT_PASSWORD})"
        )
        parser.add_argument(
            "--admin-password",
            default=DEFAULT_ADMIN_PASSWORD,
            help=f"Password of the admin superuser (default {DEFAULT_ADMIN_PASSWORD})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password: str = options["password"]
        admin_password: str = options["admin_password"]
        self._check_password("--password", password, [name for name, _ in DEMO_USERS])
        self._check_password("--admin-password", admin_password, [ADMIN_USERNAME])
        changes = 0
        try:
            with self._events_if_nats_is_up(), transaction.atomic():
                users = []
                for username, nickname in DEMO_USERS:
                    user, created = self._demo_user(username, nickname, password)
                    users.append(user)
                    changes += created
                changes += self._admin(admin_password)
                for index, a in enumerate(users):
                    for b in users[index + 1 :]:
                        changes += self._befriend(a, b)
        except ServiceError as exc:
            raise CommandError(f"Seeding failed, nothing was changed: {exc.message}") from exc
        if changes:
            self.stdout.write(self.style.SUCCESS(f"Demo data ready ({changes} change(s))."))
        else:
            self.stdout.write("Demo data already present: nothing changed.")

    @contextmanager
    def _events_if_nats_is_up(self) -> Iterator[None]:
        try:
            check_nats()
        except OSError as exc:
            self.stdout.write(f"NATS is not reachable at {settings.NATS_URL} ({exc}): friend events are skipped.")
            previous = publisher.set_sink(lambda subject, payload: None)
            try:
                yield
            finally:
                publisher.set_sink(previous)
            return
        yield

    def _check_password(self, option: str, password: str, usernames: list[str]) -> None:
        for username in usernames:
            try:
                validate_password(password, User(username=username))
            except ValidationError as exc:
                raise CommandError(f"{option}: {' '.join(exc.messages)}") from exc

    def _demo_user(self, username: str, nickname: str, password: str) -> tuple[User, bool]:
        user = _existing(username)
        if user is not None:
            if user.deleted or not user.is_active:
                raise CommandError(f"User {user.username} exists but is deleted or banned; restore it or remove it.")
            self.stdout.write(f"User {user.username} exists: left unchanged (its password was not reset).")
            return user, False
        user = register_user(username=username, password=password, nickname=nickname)
        self.stdout.write(f"Created user {username} with password {password}")
        return user, True

    def _admin(self, password: str) -> bool:
        user = _existing(ADMIN_USERNAME)
        if user is not None:
            if not (user.is_superuser and user.is_staff and user.is_active and not user.deleted):
                self.stderr.write(
                    self.style.WARNING(
                        f"User {user.username} exists but is not an active superuser: left unchanged. "
                        "Use `manage.py createsuperuser` with another name for admin access."
                    )
                )
            else:
                self.stdout.write(f"Superuser {user.username} exists: left unchanged (its password was not reset).")
            return False
        User.objects.create_superuser(ADMIN_USERNAME, password, nickname="Admin")
        self.stdout.write(f"Created superuser {ADMIN_USERNAME} with password {password}")
        return True

    def _befriend(self, a: User, b: User) -> bool:
        if are_friends(a.id, b.id):
            self.stdout.write(f"{a.username} and {b.username} are already friends.")
            return False
        pending = FriendRequest.objects.filter(from_user_id=a.id, to_user_id=b.id, status=RequestStatus.PENDING).first()
        if pending is None:
            # A pending request from b to a crosses this one: they become friends at once.
            pending = services.send_friend_request(a, to_user_id=b.id, message="Hi, it's the demo!")
        if pending.status == RequestStatus.PENDING:
            services.accept_friend_request(b, request_id=pending.id)
        self.stdout.write(f"{a.username} and {b.username} are now friends.")
        return True
