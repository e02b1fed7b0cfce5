"""Receipts: markers, their log, watermarks, sender status, message info; query bounds;
retention."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st

from linkup.actions import receipts
from linkup.actions.events import collecting_events, room_group
from linkup.actions.messages import do_send_message
from linkup.actions.rooms import do_add_members, do_create_room, do_remove_member
from linkup.core.errors import Forbidden, NotFound
from linkup.models import MarkerMove, Membership, Message, Room
from linkup.store import queries
from tests.conftest import expected_status, make_user

pytestmark = pytest.mark.django_db


def cid() -> str:
    return str(uuid.uuid4())


def send(user: Any, room_id: int, at: dt.datetime | None = None) -> dict[str, Any]:
    with collecting_events():
        message, _ = do_send_message(user, room_id, cid(), "x", now=at)
    return message


def test_status_follows_the_watermarks() -> None:
    assert receipts.message_status(3, delivered_watermark=2, read_watermark=1) == "sent"
    assert receipts.message_status(2, delivered_watermark=2, read_watermark=1) == "delivered"
    assert receipts.message_status(1, delivered_watermark=2, read_watermark=1) == "read"


def test_watermark_moves_when_the_lowest_member_moves(
    alice: Any, bob: Any, carol: Any, emitted: Any
) -> None:
    (room, _), _ = emitted(do_create_room, alice, "group", [bob.pk, carol.pk], "g")
    for _ in range(3):
        send(alice, room["id"])
    _, events = emitted(receipts.do_move_marker, bob, room["id"], "read", 3)
    assert [e["type"] for _, e in events] == ["chat.receipt"]  # carol still holds the minimum
    _, events = emitted(receipts.do_move_marker, carol, room["id"], "delivered", 2)
    assert events[-1] == (
        room_group(room["id"]),
        {"type": "chat.watermark", "room": room["id"], "delivered_seq": 2, "read_seq": 0},
    )
    view = queries.room_view(alice, room["id"])
    assert view["watermark"] == {"delivered_seq": 2, "read_seq": 0}
    statuses = [
        receipts.message_status(seq, view["watermark"]["delivered_seq"], 0) for seq in (1, 2, 3)
    ]
    assert statuses == ["delivered", "delivered", "sent"]


def test_watermark_rises_when_the_lowest_member_leaves(
    alice: Any, bob: Any, carol: Any, emitted: Any
) -> None:
    (room, _), _ = emitted(do_create_room, alice, "group", [bob.pk, carol.pk], "g")
    send(alice, room["id"])
    emitted(receipts.do_move_marker, bob, room["id"], "read", 1)
    _, events = emitted(do_remove_member, carol, room["id"], carol.pk)
    watermarks = [e for _, e in events if e["type"] == "chat.watermark"]
    assert watermarks == [
        {"type": "chat.watermark", "room": room["id"], "delivered_seq": 1, "read_seq": 1}
    ]


MEMBERS = 4


@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["send", "delivered", "read"]),
            st.integers(0, MEMBERS - 1),
            st.integers(0, 12),
        ),
        max_size=25,
    )
)
def test_markers_and_watermarks_invariants(steps: list[tuple[str, int, int]]) -> None:
    """Over any mix of sends and receipts: markers never decrease, read <= delivered <=
    last_seq, the watermarks equal the members' minimum markers, and the status derived from
    them agrees with every other member's markers."""
    users = [make_user(f"m{uuid.uuid4().hex[:8]}") for _ in range(MEMBERS)]
    with collecting_events():
        room, _ = do_create_room(users[0], "group", [u.pk for u in users[1:]], "p")
    previous: dict[int, tuple[int, int]] = {u.pk: (0, 0) for u in users}
    senders: dict[int, int] = {}
    for action, who, seq in steps:
        user = users[who]
        with collecting_events():
            if action == "send":
                message, _ = do_send_message(user, room["id"], cid(), "x")
                senders[message["seq"]] = user.pk
            else:
                receipts.do_move_marker(user, room["id"], action, seq)
        current = {
            m.user_id: (m.delivered_seq, m.read_seq)
            for m in Membership.objects.filter(room_id=room["id"])
        }
        stored = Room.objects.get(pk=room["id"])
        for user_id, (delivered, read) in current.items():
            old_delivered, old_read = previous[user_id]
            assert delivered >= old_delivered and read >= old_read
            assert read <= delivered <= stored.last_seq
        previous = current
        assert stored.delivered_watermark == min(d for d, _ in current.values())
        assert stored.read_watermark == min(r for _, r in current.values())
        for seq_, sender in senders.items():
            expected = expected_status(current, sender, seq_)
            status = receipts.message_status(
                seq_, stored.delivered_watermark, stored.read_watermark
            )
            assert status == expected, (seq_, current)


def test_message_info_for_the_sender(alice: Any, bob: Any, carol: Any) -> None:
    t0 = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    with collecting_events():
        room, _ = do_create_room(alice, "group", [bob.pk, carol.pk], "g", now=t0)
    first = send(alice, room["id"], at=t0 + dt.timedelta(seconds=1))
    send(alice, room["id"], at=t0 + dt.timedelta(seconds=2))
    with collecting_events():
        receipts.do_move_marker(bob, room["id"], "delivered", 1, now=t0 + dt.timedelta(seconds=3))
        receipts.do_move_marker(bob, room["id"], "read", 2, now=t0 + dt.timedelta(seconds=4))
        dave = make_user("dave")
        do_add_members(alice, room["id"], [dave.pk], now=t0 + dt.timedelta(seconds=5))
    info = receipts.message_info(alice, room["id"], first["seq"])
    assert info["message"]["id"] == first["id"] and info["status"] == "sent"
    assert info["members"] == [  # dave joined later: he never waited for it
        {
            "user": {"id": bob.pk, "username": "bob"},
            "delivered_at": "2026-01-01T12:00:03.000Z",
            "read_at": "2026-01-01T12:00:04.000Z",
        },
        {"user": {"id": carol.pk, "username": "carol"}, "delivered_at": None, "read_at": None},
    ]
    with pytest.raises(Forbidden):
        receipts.message_info(bob, room["id"], first["seq"])
    with pytest.raises(NotFound):
        receipts.message_info(alice, room["id"], 99)
    assert MarkerMove.objects.filter(user=bob).count() == 3  # delivered 1, read 2 (+delivered 2)


def _queries_for(func: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        func()
    return len(captured.captured_queries)


def _rooms_with_messages(owner: Any, others: list[Any], count: int) -> list[int]:
    ids = []
    for i in range(count):
        with collecting_events():
            room, _ = do_create_room(owner, "group", [u.pk for u in others], f"r{i}")
        send(owner, room["id"])
        send(others[0], room["id"])
        ids.append(room["id"])
    return ids


def test_room_list_costs_the_same_queries_for_3_or_30_rooms(
    alice: Any, bob: Any, carol: Any
) -> None:
    _rooms_with_messages(alice, [bob, carol], 3)
    few = _queries_for(lambda: queries.list_rooms(alice))
    _rooms_with_messages(alice, [bob, carol], 27)
    many = _queries_for(lambda: queries.list_rooms(alice))
    rooms = queries.list_rooms(alice)
    assert len(rooms) == 30 and few == many == 3
    assert all(r["last_message"]["sender"]["username"] == "bob" for r in rooms)
    assert all(r["unread_count"] == 1 for r in rooms)


def test_sync_costs_the_same_queries_for_3_or_40_rooms(alice: Any, bob: Any, carol: Any) -> None:
    ids = _rooms_with_messages(alice, [bob, carol], 3)
    few = _queries_for(lambda: queries.build_sync(bob, dict.fromkeys(ids, 0)))
    ids += _rooms_with_messages(alice, [bob, carol], 37)
    many = _queries_for(lambda: queries.build_sync(bob, dict.fromkeys(ids, 0)))
    result = queries.build_sync(bob, dict.fromkeys(ids, 0))
    # The rooms, their markers, the caller's deletions for themselves, the pages.
    assert few == many <= 4
    assert len(result["rooms"]) == 40
    assert all([m["seq"] for m in r["messages"]] == [1, 2] for r in result["rooms"])


def test_offline_member_finds_receipts_in_sync(alice: Any, bob: Any, carol: Any) -> None:
    with collecting_events():
        room, _ = do_create_room(alice, "group", [bob.pk, carol.pk], "g")
    send(alice, room["id"])
    send(alice, room["id"])
    with collecting_events():
        receipts.do_move_marker(carol, room["id"], "read", 2)
    (entry,) = queries.build_sync(bob, {room["id"]: 0})["rooms"]
    assert [m["seq"] for m in entry["messages"]] == [1, 2]
    assert entry["markers"][str(carol.pk)] == {"delivered_seq": 2, "read_seq": 2}
    assert entry["markers"][str(bob.pk)] == {"delivered_seq": 0, "read_seq": 0}
    assert entry["watermark"] == {"delivered_seq": 0, "read_seq": 0}


def test_purge_keeps_a_contiguous_tail_and_reports_first_seq(alice: Any, bob: Any) -> None:
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with collecting_events():
        room, _ = do_create_room(alice, "direct", [bob.pk])
    for i in range(5):
        send(alice, room["id"], at=old + dt.timedelta(minutes=i))
    for _ in range(3):
        send(bob, room["id"])
    out = io.StringIO()
    call_command("linkup_purge", "--older-than-days", "30", stdout=out)
    assert "Purged 5 messages from 1 rooms" in out.getvalue()
    seqs = list(Message.objects.filter(room_id=room["id"]).values_list("seq", flat=True))
    assert sorted(seqs) == [6, 7, 8]
    view = queries.room_view(bob, room["id"])
    assert view["first_seq"] == 6 and view["last_seq"] == 8
    page = queries.history(bob, room["id"], before_seq=7)
    assert [m["seq"] for m in page["messages"]] == [6] and page["has_more"] is False
    (entry,) = queries.build_sync(bob, {room["id"]: 0})["rooms"]
    assert entry["first_seq"] == 6 and [m["seq"] for m in entry["messages"]] == [6, 7, 8]


def test_purge_without_retention_keeps_everything(alice: Any, bob: Any) -> None:
    with collecting_events():
        room, _ = do_create_room(alice, "direct", [bob.pk])
    send(alice, room["id"], at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    out = io.StringIO()
    call_command("linkup_purge", stdout=out)
    assert "history is kept" in out.getvalue()
    assert Message.objects.count() == 1
