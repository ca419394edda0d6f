"""The messaging admin: changelists with search and filters, soft-deleted rows, and the recall action."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from messaging.models import Membership, Message
from messaging.tests.conftest import send

pytestmark = pytest.mark.django_db

ADMIN = "/admin/messaging"

CHANGELISTS = [
    f"{ADMIN}/conversation/",
    f"{ADMIN}/conversation/?q=Climbers",
    f"{ADMIN}/conversation/?kind__exact=group&deleted__exact=0",
    f"{ADMIN}/conversation/?kind__exact=direct&deleted__exact=1",
    f"{ADMIN}/membership/",
    f"{ADMIN}/membership/?q=bob",
    f"{ADMIN}/membership/?role__exact=owner&conversation__kind__exact=group&muted__exact=0&deleted__exact=0",
    f"{ADMIN}/message/",
    f"{ADMIN}/message/?q=secret",
    f"{ADMIN}/message/?kind__exact=system&conversation__kind__exact=group",
    f"{ADMIN}/message/?recalled__exact=1&deleted__exact=0",
    f"{ADMIN}/message/?deleted__exact=1",
]


@pytest.fixture
def admin_client_of(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.mark.parametrize("url", CHANGELISTS)
def test_a_superuser_walks_the_changelists_with_search_and_filters(
    admin_client_of: Client, alice: User, direct: int, group: int, url: str
) -> None:
    send(alice, direct, "a secret plan")

    response = admin_client_of.get(url)

    assert response.status_code == 200


def test_message_search_finds_bodies_and_soft_deleted_rows_are_listed(
    admin_client_of: Client, alice: User, direct: int
) -> None:
    send(alice, direct, "a secret plan", "nothing to see")
    Message.objects.filter(body="nothing to see").update(deleted=True)

    found = admin_client_of.get(f"{ADMIN}/message/?q=secret").content.decode()
    deleted = admin_client_of.get(f"{ADMIN}/message/?deleted__exact=1").content.decode()

    assert "a secret plan" in found
    assert "nothing to see" not in found
    assert "nothing to see" in deleted


def test_a_superuser_opens_each_row(admin_client_of: Client, alice: User, direct: int, group: int) -> None:
    send(alice, direct, "hello")
    message = Message.objects.filter(conversation_id=direct).get()
    membership = Membership.objects.filter(conversation_id=direct).first()
    assert membership is not None

    for url in (
        f"{ADMIN}/conversation/{group}/change/",
        f"{ADMIN}/membership/{membership.id}/change/",
        f"{ADMIN}/message/{message.id}/change/",
    ):
        assert admin_client_of.get(url).status_code == 200, url


def test_the_recall_action_recalls_the_selected_messages(admin_client_of: Client, alice: User, direct: int) -> None:
    send(alice, direct, "one", "two", "three")
    chosen = list(Message.objects.filter(body__in=["one", "three"]).values_list("id", flat=True))

    response = admin_client_of.post(
        f"{ADMIN}/message/", {"action": "recall_selected", "_selected_action": [str(i) for i in chosen]}, follow=True
    )

    assert response.status_code == 200
    assert "Recalled 2 message(s)." in response.content.decode()
    assert set(Message.objects.filter(recalled=True).values_list("body", flat=True)) == {"one", "three"}


def test_the_admin_adds_edits_and_deletes_nothing(admin_client_of: Client, alice: User, direct: int) -> None:
    send(alice, direct, "hello")
    message = Message.objects.get()

    assert admin_client_of.get(f"{ADMIN}/message/add/").status_code == 403
    assert admin_client_of.post(f"{ADMIN}/message/{message.id}/delete/", {"post": "yes"}).status_code == 403
    assert Message.objects.filter(id=message.id).exists()


def test_a_plain_user_cannot_open_the_admin(alice: User, direct: int) -> None:
    client = Client()
    client.force_login(alice)

    assert client.get(f"{ADMIN}/message/").status_code == 302
