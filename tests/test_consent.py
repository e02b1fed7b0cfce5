"""Consent and caps for groups and mentions (issue 16, item 5): who may add a person to a
group (the others invite), the group size cap, groups created per hour, at most
NOTIFY_MENTIONS_MAX mentions notified per message, and at most NOTIFY_PER_SENDER_MAX
notifications from one sender to one recipient within the window."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from linkup.actions import notifications
from linkup.actions.presence import contacts_of
from linkup.actions.rooms import (
    do_accept_invitation,
    do_add_members,
    do_create_room,
    do_set_group_adds,
)
from linkup.core.errors import Forbidden, InvalidInput
from linkup.models import Invitation, Membership, Notification
from tests.conftest import make_user
from tests.test_api import Api, assert_error

pytestmark = pytest.mark.django_db(transaction=True)


def members_of(room_id: int) -> set[int]:
    return set(Membership.objects.filter(room_id=room_id).values_list("user_id", flat=True))


def test_a_stranger_invites_whoever_chose_consent(alice: Any, bob: Any, carol: Any) -> None:
    """carol lets nobody add her: alice's group holds bob, carol is invited, and until she
    accepts she is neither a member nor alice's presence contact."""
    as_carol, as_alice = Api(carol), Api(alice)
    response = as_carol.client.patch(
        "/api/v1/me", {"group_adds": "nobody"}, content_type="application/json", **as_carol.headers
    )
    assert response.status_code == 200 and response.json()["group_adds"] == "nobody"

    response = as_alice.post(
        "/rooms", {"kind": "group", "name": "Plans", "members": [bob.pk, carol.pk]}
    )
    assert response.status_code == 201, response.content
    room = response.json()
    assert room["invited"] == [carol.pk]
    assert {m["id"] for m in room["members"]} == {alice.pk, bob.pk}
    assert members_of(room["id"]) == {alice.pk, bob.pk}
    assert carol.pk not in contacts_of([alice.pk])[alice.pk]
    # Nothing of the group reaches carol but the invitation.
    assert as_carol.get("/rooms").json()["rooms"] == []
    assert_error(as_carol.get(f"/rooms/{room['id']}"), 404, "not_found")
    (note,) = Notification.objects.filter(recipient=carol)
    assert note.kind == "invited" and note.data["room"] == room["id"]
    # alice's people search shows no presence of carol (they share no room).
    (found,) = as_alice.get("/users", q="carol").json()["users"]
    assert found["status"] is None and found["last_seen"] is None

    (invitation,) = as_carol.get("/invitations").json()["invitations"]
    assert invitation["room"] == {"id": room["id"], "name": "Plans", "members": 2}
    assert invitation["by"] == {"id": alice.pk, "username": "alice"}
    # Only carol can accept it.
    assert_error(Api(bob).post(f"/invitations/{invitation['id']}/accept"), 404, "not_found")
    accepted = as_carol.post(f"/invitations/{invitation['id']}/accept")
    assert accepted.status_code == 200, accepted.content
    assert {m["id"] for m in accepted.json()["members"]} == {alice.pk, bob.pk, carol.pk}
    assert carol.pk in contacts_of([alice.pk])[alice.pk]
    assert as_carol.get("/invitations").json()["invitations"] == []
    # Answered: the invitation's notification is read.
    assert Notification.objects.get(pk=note.pk).read_at is not None
    assert_error(as_carol.post(f"/invitations/{invitation['id']}/accept"), 404, "not_found")


def test_contacts_may_add_and_strangers_invite(alice: Any, bob: Any, carol: Any) -> None:
    """bob lets people he shares a room with add him: carol (a stranger) invites him, alice
    (who has a direct room with him) adds him. A declined invitation is gone."""
    do_set_group_adds(bob, "contacts")
    do_create_room(alice, "direct", [bob.pk])
    by_carol, _ = do_create_room(carol, "group", [bob.pk], "Carol's")
    assert by_carol["invited"] == [bob.pk] and members_of(by_carol["id"]) == {carol.pk}
    by_alice, _ = do_create_room(alice, "group", [bob.pk], "Alice's")
    assert by_alice["invited"] == [] and members_of(by_alice["id"]) == {alice.pk, bob.pk}

    as_bob = Api(bob)
    (invitation,) = as_bob.get("/invitations").json()["invitations"]
    assert as_bob.delete(f"/invitations/{invitation['id']}").json() == {"ok": True}
    assert not Notification.objects.filter(recipient=bob, kind="invited", read_at=None).exists()
    assert not Invitation.objects.exists()
    assert_error(as_bob.delete(f"/invitations/{invitation['id']}"), 404, "not_found")
    # Adding to an existing group follows the same rule; a second invitation is one.
    added = do_add_members(carol, by_carol["id"], [bob.pk])
    again = do_add_members(carol, by_carol["id"], [bob.pk])
    assert added["invited"] == again["invited"] == [bob.pk]
    assert Invitation.objects.count() == 1
    assert Notification.objects.filter(recipient=bob, kind="invited").count() == 2  # not again


def test_the_site_default_decides_for_who_did_not_choose(
    alice: Any, bob: Any, carol: Any, settings: Any
) -> None:
    settings.LINKUP = {**settings.LINKUP, "GROUP_ADDS_DEFAULT": "nobody"}
    do_set_group_adds(carol, "everyone")
    room, _ = do_create_room(alice, "group", [bob.pk, carol.pk], "G")
    assert room["invited"] == [bob.pk] and members_of(room["id"]) == {alice.pk, carol.pk}
    assert Api(bob).get("/me").json()["group_adds"] == "nobody"


def test_group_size_is_capped(alice: Any, settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "GROUP_MAX_MEMBERS": 4}
    people = [make_user(f"user{i}") for i in range(5)]
    with pytest.raises(InvalidInput, match="at most 4 members"):
        do_create_room(alice, "group", [p.pk for p in people[:4]], "Too big")
    room, _ = do_create_room(alice, "group", [p.pk for p in people[:2]], "Fits")
    with pytest.raises(InvalidInput, match="at most 4 members"):
        do_add_members(alice, room["id"], [p.pk for p in people[2:4]])
    assert members_of(room["id"]) == {alice.pk, people[0].pk, people[1].pk}
    # Over REST: 400, nothing added.
    response = Api(alice).post(
        f"/rooms/{room['id']}/members", {"user_ids": [p.pk for p in people[2:]]}
    )
    assert_error(response, 400, "invalid_request")
    # An invitation accepted into a full group is refused, and stays usable.
    do_set_group_adds(people[4], "nobody")
    do_add_members(alice, room["id"], [people[4].pk])
    do_add_members(alice, room["id"], [people[2].pk])  # the group is full now
    invitation = Invitation.objects.get(user=people[4])
    with pytest.raises(Forbidden, match="full"):
        do_accept_invitation(people[4], invitation.pk)
    assert Invitation.objects.filter(pk=invitation.pk).exists()
    assert len(members_of(room["id"])) == 4


def test_groups_created_per_hour_are_capped(alice: Any, bob: Any, settings: Any) -> None:
    settings.LINKUP = {
        **settings.LINKUP,
        "GROUP_CREATE_BURST": 2,
        "GROUP_CREATE_RATE_PER_S": 0.0001,
    }
    caller = Api(alice)
    for i in range(2):
        body = {"kind": "group", "name": f"g{i}", "members": [bob.pk]}
        assert caller.post("/rooms", body).status_code == 201
    refused = caller.post("/rooms", {"kind": "group", "name": "g3", "members": [bob.pk]})
    assert_error(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) > 60
    # A direct room is not a group.
    assert caller.post("/rooms", {"kind": "direct", "members": [bob.pk]}).status_code == 201


def message(room_id: int, seq: int, sender: Any, body: str) -> dict[str, Any]:
    return {
        "id": seq,
        "room": room_id,
        "seq": seq,
        "body": body,
        "sender": {"id": sender.pk, "username": sender.get_username()},
    }


def test_at_most_fifty_mentions_notify(alice: Any, settings: Any) -> None:
    people = [make_user(f"member{i:02d}") for i in range(60)]
    room, _ = do_create_room(alice, "group", [p.pk for p in people], "Big")
    Notification.objects.all().delete()
    named = list(reversed(people))  # the order of the text, not of the ids
    body = " ".join(f"@{p.username}" for p in named) + " @alice"
    created = notifications.for_new_messages([message(room["id"], 1, alice, body)])
    assert [n.recipient_id for n in created] == [p.pk for p in named[:50]]
    assert Notification.objects.filter(kind="mention").count() == 50


def test_a_sender_notifies_one_recipient_at_most_n_times_a_window(
    alice: Any, bob: Any, carol: Any, settings: Any
) -> None:
    settings.LINKUP = {
        **settings.LINKUP,
        "NOTIFY_PER_SENDER_MAX": 5,
        "NOTIFY_PER_SENDER_WINDOW_S": 60.0,
    }
    direct, _ = do_create_room(alice, "direct", [bob.pk])
    other, _ = do_create_room(carol, "direct", [bob.pk])
    start = timezone.now()
    batch = [message(direct["id"], i, alice, f"hi {i}") for i in range(1, 9)]
    assert len(notifications.for_new_messages(batch, now=start)) == 5
    # Another sender is counted apart.
    assert len(notifications.for_new_messages([message(other["id"], 1, carol, "yo")])) == 1
    # Within the window: nothing more from alice; after it, again.
    later = [message(direct["id"], 9, alice, "still there?")]
    assert notifications.for_new_messages(later, now=start + dt.timedelta(seconds=59)) == []
    after = notifications.for_new_messages(later, now=start + dt.timedelta(seconds=61))
    assert len(after) == 1


@pytest.mark.django_db  # one transaction, rolled back at the end (each example starts clean)
@hsettings(max_examples=100, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=40),
    cap=st.integers(min_value=1, max_value=6),
)
def test_no_window_holds_more_than_the_cap(offsets: list[int], cap: int) -> None:
    """Whatever the times of a sender's messages (in order), every window of
    NOTIFY_PER_SENDER_WINDOW_S holds at most `cap` of its notifications to a recipient, and
    a message notifies whenever the window before it holds fewer than `cap`."""
    from django.conf import settings as django_settings

    window = 60
    saved = django_settings.LINKUP
    django_settings.LINKUP = {
        **saved,
        "NOTIFY_PER_SENDER_MAX": cap,
        "NOTIFY_PER_SENDER_WINDOW_S": float(window),
    }
    try:
        Notification.objects.all().delete()
        sender, _ = _pair()
        room = Membership.objects.filter(user=sender, room__kind="direct").first().room_id
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        made: list[int] = []
        for i, offset in enumerate(sorted(offsets), start=1):
            before = [t for t in made if offset - window < t <= offset]
            got = notifications.for_new_messages(
                [message(room, i, sender, "x")], now=start + dt.timedelta(seconds=offset)
            )
            assert len(got) == (1 if len(before) < cap else 0)
            made += [offset] * len(got)
        for t in made:
            assert sum(1 for u in made if t - window < u <= t) <= cap
    finally:
        django_settings.LINKUP = saved


def _pair() -> tuple[Any, Any]:
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    sender = users.filter(username="h-sender").first() or make_user("h-sender")
    recipient = users.filter(username="h-recipient").first() or make_user("h-recipient")
    if not Membership.objects.filter(user=sender, room__kind="direct").exists():
        do_create_room(sender, "direct", [recipient.pk])
    return sender, recipient


@pytest.mark.django_db
@hsettings(max_examples=100, deadline=None)
@given(
    rules=st.lists(st.sampled_from(["everyone", "contacts", "nobody", ""]), min_size=4, max_size=4),
    known=st.lists(st.booleans(), min_size=4, max_size=4),
    default=st.sampled_from(["everyone", "contacts", "nobody"]),
)
def test_only_who_allowed_it_is_added(rules: list[str], known: list[bool], default: str) -> None:
    """For any choices, any site default and any acquaintances, a new group holds its creator
    and exactly those who allow the creator to add them; everyone else asked is invited and
    is neither a member nor the creator's presence contact through it."""
    from django.conf import settings as django_settings
    from django.contrib.auth import get_user_model

    from linkup.models import Account, Room

    saved = django_settings.LINKUP
    django_settings.LINKUP = {**saved, "GROUP_ADDS_DEFAULT": default}
    try:
        Room.objects.all().delete()
        users = get_user_model().objects
        creator = users.filter(username="p-creator").first() or make_user("p-creator")
        others = [users.filter(username=f"p-{i}").first() or make_user(f"p-{i}") for i in range(4)]
        for other, rule, knows in zip(others, rules, known, strict=True):
            Account.objects.update_or_create(user_id=other.pk, defaults={"group_adds": rule})
            if knows:
                do_create_room(creator, "direct", [other.pk])
        room, _ = do_create_room(creator, "group", [o.pk for o in others], "P")
        allowed = {
            o.pk
            for o, rule, knows in zip(others, rules, known, strict=True)
            if (rule or default) == "everyone" or ((rule or default) == "contacts" and knows)
        }
        assert members_of(room["id"]) == {creator.pk} | allowed
        assert set(room["invited"]) == {o.pk for o in others} - allowed
        assert set(
            Invitation.objects.filter(room_id=room["id"]).values_list("user_id", flat=True)
        ) == set(room["invited"])
        contacts = set(contacts_of([creator.pk])[creator.pk])
        for o, knows in zip(others, known, strict=True):
            assert (o.pk in contacts) == (o.pk in allowed or knows)
    finally:
        django_settings.LINKUP = saved
