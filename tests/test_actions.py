"""Write paths: what they store and the exact events they emit after commit."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import transaction

from linkup.actions import receipts
from linkup.actions.credentials import do_issue_token, do_revoke_token
from linkup.actions.events import notify_group, room_group, user_group
from linkup.actions.messages import do_send_message
from linkup.actions.rooms import do_add_members, do_create_room, do_remove_member
from linkup.core.errors import Forbidden, NotFound, ServerError
from linkup.models import ApiToken, Membership, Message, MessagingError, Notification, Room
from linkup.store import views

pytestmark = pytest.mark.django_db


def cid() -> str:
    return str(uuid.uuid4())


def test_send_emits_one_doorbell_to_the_room(alice: Any, bob: Any, emitted: Any) -> None:
    (room, _), _ = emitted(do_create_room, alice, "direct", [bob.pk])
    (message, created), events = emitted(do_send_message, alice, room["id"], cid(), "hi")
    assert created and message["seq"] == 1
    # A lone send is a batch of one: the room's doorbell, then the notification it made.
    assert events[0] == (room_group(room["id"]), {"type": "chat.message", "message": message})
    assert [(group, event["type"]) for group, event in events[1:]] == [
        (notify_group(bob.pk), "notify.new")
    ]
    membership = Membership.objects.get(room_id=room["id"], user=alice)
    assert (membership.delivered_seq, membership.read_seq) == (1, 1)
    assert Room.objects.get(pk=room["id"]).last_seq == 1


def test_duplicate_send_emits_nothing(alice: Any, bob: Any, emitted: Any) -> None:
    (room, _), _ = emitted(do_create_room, alice, "direct", [bob.pk])
    client_id = cid()
    (first, _), _ = emitted(do_send_message, alice, room["id"], client_id, "hi")
    (again, created), events = emitted(do_send_message, alice, room["id"], client_id, "x")
    assert again == first and not created and events == []
    assert Message.objects.count() == 1


def test_same_client_id_in_another_room_is_a_new_message(
    alice: Any, bob: Any, carol: Any, emitted: Any
) -> None:
    (one, _), _ = emitted(do_create_room, alice, "direct", [bob.pk])
    (two, _), _ = emitted(do_create_room, alice, "direct", [carol.pk])
    client_id = cid()
    (a, _), _ = emitted(do_send_message, alice, one["id"], client_id, "x")
    (b, created), _ = emitted(do_send_message, alice, two["id"], client_id, "x")
    assert created and a["id"] != b["id"] and b["seq"] == 1


def test_send_to_foreign_or_missing_room_is_not_found(
    alice: Any, bob: Any, carol: Any, emitted: Any
) -> None:
    (room, _), _ = emitted(do_create_room, alice, "direct", [bob.pk])
    for room_id in (room["id"], 10**9):
        with pytest.raises(NotFound) as refused:
            emitted(do_send_message, carol, room_id, cid(), "x")
        assert refused.value.detail == "room not found"
    assert Message.objects.count() == 0


def test_rolled_back_transaction_emits_nothing(alice: Any, bob: Any, emitted: Any) -> None:
    (room, _), _ = emitted(do_create_room, alice, "direct", [bob.pk])

    def send_then_fail() -> None:
        with transaction.atomic():
            do_send_message(alice, room["id"], cid(), "doomed")
            raise RuntimeError("after the send, before the commit")

    with pytest.raises(RuntimeError):
        emitted(send_then_fail)
    _, events = emitted(lambda: None)
    assert events == [] and Message.objects.count() == 0
    assert Room.objects.get(pk=room["id"]).last_seq == 0


def test_unserializable_event_fails_inside_the_transaction(
    alice: Any, bob: Any, emitted: Any, monkeypatch: Any
) -> None:
    (room, _), _ = emitted(do_create_room, alice, "direct", [bob.pk])
    real = views.sender_dict  # the sender in the message object
    monkeypatch.setattr(views, "sender_dict", lambda u: {**real(u), "bad": object()})
    with pytest.raises(ServerError):
        emitted(do_send_message, alice, room["id"], cid(), "secret body")
    assert Message.objects.count() == 0
    # Recorded for the operator with the payload's shape, never its text.
    (record,) = MessagingError.objects.filter(category="serialization")
    assert '"bad":"object"' in record.context["shape"]
    assert "secret body" not in str(record.context)


def test_direct_room_is_created_once_and_announced_to_both(
    alice: Any, bob: Any, emitted: Any
) -> None:
    (room, created), events = emitted(do_create_room, alice, "direct", [bob.pk])
    assert created and {m["username"] for m in room["members"]} == {"alice", "bob"}
    assert sorted(g for g, _ in events) == sorted([user_group(alice.pk), user_group(bob.pk)])
    assert all(e["type"] == "room.updated" and e["room"]["id"] == room["id"] for _, e in events)
    (again, created_again), events_again = emitted(do_create_room, bob, "direct", [alice.pk])
    assert again["id"] == room["id"] and not created_again and events_again == []


def test_group_members_get_their_own_view(alice: Any, bob: Any, carol: Any, emitted: Any) -> None:
    (room, _), events = emitted(do_create_room, alice, "group", [bob.pk, carol.pk], "g")
    assert room["role"] == "owner"
    roles = {g: e["room"]["role"] for g, e in events if e["type"] == "room.updated"}
    assert roles == {
        user_group(alice.pk): "owner",
        user_group(bob.pk): "member",
        user_group(carol.pk): "member",
    }


def test_added_member_markers_start_at_last_seq(
    alice: Any, bob: Any, carol: Any, emitted: Any
) -> None:
    (room, _), _ = emitted(do_create_room, alice, "group", [bob.pk], "g")
    for _ in range(3):
        emitted(do_send_message, bob, room["id"], cid(), "x")
    _, events = emitted(do_add_members, alice, room["id"], [carol.pk])
    membership = Membership.objects.get(room_id=room["id"], user=carol)
    assert (membership.delivered_seq, membership.read_seq) == (3, 3)
    updated = [g for g, e in events if e["type"] == "room.updated"]
    assert sorted(updated) == sorted(user_group(u.pk) for u in (alice, bob, carol))
    # The one added is told so by a notification (not the ones already there).
    assert [g for g, e in events if e["type"] == "notify.new"] == [notify_group(carol.pk)]
    _, no_events = emitted(do_add_members, alice, room["id"], [carol.pk])
    assert no_events == []


def test_only_owner_or_admin_manage_members(alice: Any, bob: Any, carol: Any, emitted: Any) -> None:
    (room, _), _ = emitted(do_create_room, alice, "group", [bob.pk], "g")
    with pytest.raises(Forbidden):
        emitted(do_add_members, bob, room["id"], [carol.pk])
    with pytest.raises(NotFound):
        emitted(do_add_members, carol, room["id"], [carol.pk])
    with pytest.raises(Forbidden):
        emitted(do_remove_member, bob, room["id"], alice.pk)


def test_removal_tells_the_removed_and_the_rest(
    alice: Any, bob: Any, carol: Any, emitted: Any
) -> None:
    (room, _), _ = emitted(do_create_room, alice, "group", [bob.pk, carol.pk], "g")
    _, events = emitted(do_remove_member, alice, room["id"], bob.pk)
    assert (user_group(bob.pk), {"type": "room.removed", "room": room["id"]}) in events
    updated = sorted(g for g, e in events if e["type"] == "room.updated")
    assert updated == sorted([user_group(alice.pk), user_group(carol.pk)])
    assert not Membership.objects.filter(room_id=room["id"], user=bob).exists()


def test_owner_leaving_hands_the_group_on(alice: Any, bob: Any, carol: Any, emitted: Any) -> None:
    (room, _), _ = emitted(do_create_room, alice, "group", [bob.pk, carol.pk], "g")
    emitted(do_remove_member, alice, room["id"], alice.pk)
    owners = Membership.objects.filter(room_id=room["id"], role="owner")
    assert owners.count() == 1


def test_receipt_fans_out_in_small_rooms_only(
    alice: Any, bob: Any, emitted: Any, settings: Any
) -> None:
    (room, _), _ = emitted(do_create_room, alice, "direct", [bob.pk])
    emitted(do_send_message, alice, room["id"], cid(), "x")
    receipt, events = emitted(receipts.do_move_marker, bob, room["id"], "delivered", 1)
    assert receipt["seq"] == 1
    watermark = {"type": "chat.watermark", "room": room["id"], "delivered_seq": 1, "read_seq": 0}
    assert events == [
        (room_group(room["id"]), {"type": "chat.receipt", "receipt": receipt}),
        (room_group(room["id"]), watermark),
    ]
    settings.LINKUP = {**settings.LINKUP, "RECEIPT_FANOUT_MAX_MEMBERS": 1}
    receipt, events = emitted(receipts.do_move_marker, bob, room["id"], "read", 5)
    assert receipt["seq"] == 1  # clamped to last_seq
    watermark = {"type": "chat.watermark", "room": room["id"], "delivered_seq": 1, "read_seq": 1}
    (notification,) = Notification.objects.filter(recipient=bob)
    assert events == [
        (user_group(bob.pk), {"type": "chat.receipt", "receipt": receipt}),
        # Reading the message reads its notification, on every tab.
        (notify_group(bob.pk), {"type": "notify.read", "ids": [notification.pk]}),
        (room_group(room["id"]), watermark),
    ]
    again, none = emitted(receipts.do_move_marker, bob, room["id"], "read", 1)
    assert again is None and none == []


def test_revoking_a_token_tells_its_sockets(alice: Any, emitted: Any) -> None:
    do_issue_token(alice)
    token = ApiToken.objects.get(user=alice)
    _, events = emitted(do_revoke_token, token.pk)
    revoked = {"type": "auth.revoked", "token_id": token.pk}
    # Chat sockets and notifications sockets alike.
    assert events == [(user_group(alice.pk), revoked), (notify_group(alice.pk), revoked)]
    assert not ApiToken.objects.exists()
