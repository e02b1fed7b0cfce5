"""Account deletion (issue 19): a person deletes their account, or staff do; their messages
stay in others' rooms from "Deleted user", everything else of theirs goes, and nothing
else breaks.

The invariant, held by Hypothesis over small worlds of rooms, messages, reactions and
blocks with any of their people deleted in any order: no foreign key dangles, every group
with members has one owner, no direct room is left with nobody, the deleted people's
messages are all still there (from nobody), and their reactions are gone from every
message, each removal in its room's change log."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from linkup.actions import blocks
from linkup.actions.changes import do_react
from linkup.actions.farewell import do_delete_account
from linkup.actions.messages import do_send_message
from linkup.actions.rooms import do_create_room
from linkup.models import (
    ApiToken,
    Block,
    Membership,
    Message,
    MessageChange,
    Notification,
    Reaction,
    Room,
    UserPresence,
)
from linkup.store import queries
from tests.conftest import make_user, token_for
from tests.test_api import Api, assert_error
from tests.wsutil import connect, db

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()
PASSWORD = "pw-" + "x" * 8  # make_user's


def cid() -> str:
    return str(uuid.uuid4())


@settings(max_examples=100)
@given(
    rooms=st.lists(
        st.tuples(st.booleans(), st.sets(st.integers(0, 3), min_size=2, max_size=4)),
        min_size=1,
        max_size=3,
    ),
    sends=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3)), max_size=8),
    reactions=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 3)), max_size=5),
    blocked=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=2),
    leaving=st.lists(st.integers(0, 3), min_size=1, max_size=4, unique=True),
)
def test_deleting_any_accounts_leaves_a_consistent_world(
    rooms: list[tuple[bool, set[int]]],
    sends: list[tuple[int, int]],
    reactions: list[tuple[int, int]],
    blocked: list[tuple[int, int]],
    leaving: list[int],
) -> None:
    people = [make_user(f"d{uuid.uuid4().hex[:10]}") for _ in range(4)]
    made: list[tuple[int, set[int]]] = []
    for direct, members in rooms:
        owner, *rest = sorted(members)
        if direct:
            room = do_create_room(people[owner], "direct", [people[rest[0]].pk])[0]
            made.append((int(room["id"]), {owner, rest[0]}))
        else:
            others = [people[m].pk for m in rest]
            room = do_create_room(people[owner], "group", others, "g")[0]
            made.append((int(room["id"]), {owner, *rest}))
    sent: list[tuple[int, int, int]] = []  # (room, seq, sender index)
    for r, who in sends:
        room_id, members = made[r % len(made)]
        if who in members:
            message, _ = do_send_message(people[who], room_id, cid(), f"from {who}")
            sent.append((room_id, message["seq"], who))
    for m, who in reactions:
        if sent:
            room_id, seq, _ = sent[m % len(sent)]
            if who in next(ms for rid, ms in made if rid == room_id):
                do_react(people[who], room_id, seq, "👍", "add")
    for a, b in blocked:
        if a != b:
            blocks.do_block(people[a], people[b].pk)
    pks = [p.pk for p in people]  # a deleted instance's pk becomes None
    gone = [pks[i] for i in leaving]
    for i in leaving:
        people[i].delete()  # as the admin would; the API does the same (below)
    connection.check_constraints()  # no foreign key dangles
    assert not User.objects.filter(pk__in=gone).exists()
    for pk in gone:
        assert not Membership.objects.filter(user_id=pk).exists()
        assert not Reaction.objects.filter(user_id=pk).exists()
        assert not Block.objects.filter(blocker_id=pk).exists()
        assert not Block.objects.filter(blocked_id=pk).exists()
        assert not ApiToken.objects.filter(user_id=pk).exists()
        assert not Notification.objects.filter(recipient_id=pk).exists()
        assert not UserPresence.objects.filter(user_id=pk).exists()
    for room_id, seq, who in sent:
        message = Message.objects.filter(room_id=room_id, seq=seq).first()
        room_left = Room.objects.filter(pk=room_id).exists()
        if message is None:  # only with its whole room, when nobody was left in it
            assert not room_left
            continue
        assert message.body == f"from {who}"  # kept (ACCOUNT_DELETE_ERASES_MESSAGES unset)
        assert (message.sender_id is None) == (pks[who] in gone)
        if message.sender_id is None:
            view = queries.message_dict(message, 0)
            assert view["sender"] == {"id": None, "username": "Deleted user"}
    for room in Room.objects.all():
        members = list(Membership.objects.filter(room=room))
        assert members, "a room with nobody left"
        if room.kind == "group":
            assert sum(m.role == "owner" for m in members) == 1
    # Every reaction taken back was a change of its room: clients learn by their cursors.
    for room in Room.objects.all():
        changes = list(
            MessageChange.objects.filter(room=room)
            .order_by("change")
            .values_list("change", flat=True)
        )
        assert changes == list(range(1, room.last_change + 1))


# -- over the wire -------------------------------------------------------------------------------


def test_a_person_deletes_their_account_and_the_others_see_deleted_user(
    alice: Any, bob: Any, carol: Any
) -> None:
    direct = int(do_create_room(alice, "direct", [bob.pk])[0]["id"])
    group = int(do_create_room(alice, "group", [bob.pk, carol.pk], "g")[0]["id"])
    do_send_message(alice, direct, cid(), "hello bob")
    said, _ = do_send_message(alice, group, cid(), "hello all")
    do_send_message(bob, group, cid(), "hi alice")
    do_react(alice, group, said["seq"] + 1, "❤️", "add")
    api = Api(alice)
    assert_error(
        api.delete("/me", data='{"password": "wrong"}', content_type="application/json"),
        403,
        "forbidden",
    )
    assert_error(api.delete("/me"), 400, "invalid_request")
    gone = api.delete("/me", data=f'{{"password": "{PASSWORD}"}}', content_type="application/json")
    assert gone.status_code == 204, gone.content
    assert_error(api.get("/rooms"), 401, "unauthorized")  # the token ended
    seen = Api(bob).get(f"/rooms/{group}/messages").json()["messages"]
    assert seen[0]["sender"] == {"id": None, "username": "Deleted user"}
    assert seen[0]["body"] == "hello all"
    assert seen[1]["reactions"] == []  # alice's heart is gone
    assert Api(bob).get(f"/rooms/{direct}/messages").json()["messages"][0]["sender"] == {
        "id": None,
        "username": "Deleted user",
    }
    room = Api(bob).get(f"/rooms/{group}").json()
    roles = {m["id"]: m["role"] for m in room["members"]}
    assert roles == {bob.pk: "owner", carol.pk: "member"}  # ownership passed on


def test_erasing_the_messages_too_is_a_setting(alice: Any, bob: Any, settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "ACCOUNT_DELETE_ERASES_MESSAGES": True}
    group = int(do_create_room(bob, "group", [alice.pk], "g")[0]["id"])
    do_send_message(alice, group, cid(), "erase me")
    do_delete_account(alice)
    (message,) = Api(bob).get(f"/rooms/{group}/messages").json()["messages"]
    assert message["body"] == "" and message["deleted"] == "everyone"
    assert message["sender"]["username"] == "Deleted user"


def test_staff_delete_with_the_command_and_nothing_is_protected(alice: Any, bob: Any) -> None:
    group = int(do_create_room(bob, "group", [alice.pk], "g")[0]["id"])
    do_send_message(alice, group, cid(), "still here")
    out = io.StringIO()
    call_command("linkup_delete_account", alice.username, "--yes", stdout=out)
    assert "Deleted" in out.getvalue()
    assert Message.objects.get(room_id=group).sender_id is None
    with pytest.raises(Exception, match="no such user"):
        call_command("linkup_delete_account", "nobody-at-all", "--yes")


async def test_their_sockets_close_at_once(alice: Any, bob: Any) -> None:
    socket = await connect(await db(token_for)(alice))
    await db(do_delete_account)(alice)
    closed = await socket.receive_output(timeout=3)
    assert closed["type"] == "websocket.close"
