"""Blocking (issue 19): a person stops another from reaching them in direct chats, and each
stops seeing the other's presence and typing, while groups they share carry on.

The rule is held by a Hypothesis property over any sequence of blocks, unblocks and sends;
the wire (REST and the socket) and what leaks (presence, typing, group additions) by
examples."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkup.actions import blocks
from linkup.actions.changes import do_edit_message, do_react
from linkup.actions.messages import Send, do_send_batch, do_send_message
from linkup.actions.presence import do_announce_presences, presence_views
from linkup.actions.rooms import do_add_members, do_create_room
from linkup.core.errors import Forbidden, InvalidInput
from linkup.models import Block, Invitation, Message, Notification
from tests.conftest import make_user, token_for
from tests.test_api import Api, assert_error
from tests.wsutil import connect, db, drain, recv_type, send

pytestmark = pytest.mark.django_db(transaction=True)


def cid() -> str:
    return str(uuid.uuid4())


# -- the rule, against a model -------------------------------------------------------------------


@pytest.fixture
def trio(db: Any) -> tuple[list[Any], dict[tuple[int, int], int], int]:
    """Three people, a direct room between each two and a group of all three: made once for
    all of a property's examples (each starts by lifting every block)."""
    people = [make_user(f"p{uuid.uuid4().hex[:10]}") for _ in range(3)]
    rooms: dict[tuple[int, int], int] = {}
    for a in range(3):
        for b in range(a + 1, 3):
            rooms[(a, b)] = int(do_create_room(people[a], "direct", [people[b].pk])[0]["id"])
    group = int(do_create_room(people[0], "group", [people[1].pk, people[2].pk], "g")[0]["id"])
    return people, rooms, group


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["block", "unblock", "send"]),
            st.integers(0, 2),
            st.integers(0, 2),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_a_direct_message_goes_through_exactly_when_neither_blocked_the_other(
    trio: tuple[list[Any], dict[tuple[int, int], int], int],
    script: list[tuple[str, int, int]],
) -> None:
    people, rooms, group = trio
    Block.objects.all().delete()  # each example starts with no block
    blocked: set[tuple[int, int]] = set()  # (blocker, blocked)
    for action, a, b in script:
        if action == "block" and a != b:
            blocks.do_block(people[a], people[b].pk)
            blocked.add((a, b))
        elif action == "unblock" and a != b:
            blocks.do_unblock(people[a], people[b].pk)
            blocked.discard((a, b))
        elif action == "send" and a != b:
            room = rooms[tuple(sorted((a, b)))]  # type: ignore[index]
            before = Message.objects.filter(room_id=room).count()
            apart = (a, b) in blocked or (b, a) in blocked
            # In one batch with a group send: the refusal is the direct send's alone.
            outcomes = do_send_batch(
                [Send(people[a], room, cid(), "hi"), Send(people[a], group, cid(), "all")]
            )
            (direct, error, _), (in_group, _, _) = outcomes
            assert in_group is not None  # groups carry on
            if apart:
                assert direct is None and isinstance(error, Forbidden)
                assert Message.objects.filter(room_id=room).count() == before  # nothing stored
                mine = (a, b) in blocked
                assert ("unblock" in error.detail) == mine  # only the blocker is told why
            else:
                assert direct is not None and error is None
        # Presence and typing follow the same pairs.
        for x in range(3):
            hidden = blocks.hidden_pairs_of([people[x].pk]).get(people[x].pk, set())
            assert hidden == {
                people[y].pk for y in range(3) if (x, y) in blocked or (y, x) in blocked
            }
    assert set(Block.objects.values_list("blocker_id", "blocked_id")) >= {
        (people[a].pk, people[b].pk) for a, b in blocked
    }


# -- the actions ---------------------------------------------------------------------------------


def test_blocking_oneself_or_nobody_is_a_clear_error(alice: Any) -> None:
    with pytest.raises(InvalidInput, match="yourself"):
        blocks.do_block(alice, alice.pk)
    with pytest.raises(InvalidInput, match="unknown user"):
        blocks.do_block(alice, 10**9)
    with pytest.raises(InvalidInput, match="positive integer"):
        blocks.do_block(alice, "2")


def test_blocking_twice_changes_nothing_and_unblocking_restores(alice: Any, bob: Any) -> None:
    room = int(do_create_room(alice, "direct", [bob.pk])[0]["id"])
    first, created = blocks.do_block(alice, bob.pk)
    again, created_again = blocks.do_block(alice, bob.pk)
    assert created and not created_again and first == again
    assert blocks.list_blocks(alice) == [first] and blocks.list_blocks(bob) == []
    with pytest.raises(Forbidden):
        do_send_message(bob, room, cid(), "hello?")
    assert blocks.do_unblock(alice, bob.pk) and not blocks.do_unblock(alice, bob.pk)
    message, _ = do_send_message(bob, room, cid(), "hello again")
    assert message["body"] == "hello again"


def test_the_blocked_cannot_open_a_direct_room_and_the_blocker_only_their_own(
    alice: Any, bob: Any, carol: Any
) -> None:
    blocks.do_block(alice, bob.pk)
    with pytest.raises(Forbidden) as refused:
        do_create_room(bob, "direct", [alice.pk])
    assert "block" not in refused.value.detail  # bob is not told why
    with pytest.raises(Forbidden, match="unblock"):
        do_create_room(alice, "direct", [bob.pk])  # none yet: alice must unblock first
    blocks.do_unblock(alice, bob.pk)
    room = int(do_create_room(bob, "direct", [alice.pk])[0]["id"])
    blocks.do_block(alice, bob.pk)
    assert int(do_create_room(alice, "direct", [bob.pk])[0]["id"]) == room  # hers to read
    with pytest.raises(Forbidden):
        do_create_room(bob, "direct", [alice.pk])
    assert do_create_room(carol, "direct", [alice.pk])[1]  # others are unaffected


def test_no_edits_or_reactions_across_a_block(alice: Any, bob: Any) -> None:
    room = int(do_create_room(alice, "direct", [bob.pk])[0]["id"])
    mine, _ = do_send_message(bob, room, cid(), "before the block")
    theirs, _ = do_send_message(alice, room, cid(), "hers")
    blocks.do_block(alice, bob.pk)
    with pytest.raises(Forbidden):
        do_edit_message(bob, room, mine["seq"], "edited", cid())
    with pytest.raises(Forbidden):
        do_react(bob, room, theirs["seq"], "👍", "add")
    with pytest.raises(Forbidden):
        do_react(alice, room, mine["seq"], "👍", "add")


def test_someone_blocked_cannot_add_the_blocker_to_a_group_and_is_not_told(
    alice: Any, bob: Any, carol: Any
) -> None:
    blocks.do_block(alice, bob.pk)
    room = do_create_room(bob, "group", [alice.pk, carol.pk], "g")[0]
    assert room["invited"] == [alice.pk]  # as if she were asked
    assert {m["id"] for m in room["members"]} == {bob.pk, carol.pk}
    assert not Invitation.objects.filter(user=alice).exists()
    assert not Notification.objects.filter(recipient=alice).exists()
    other = do_create_room(bob, "group", [carol.pk], "later")[0]
    added = do_add_members(bob, other["id"], [alice.pk])
    assert added["invited"] == [alice.pk]
    assert alice.pk not in {m["id"] for m in added["members"]}
    assert not Invitation.objects.filter(user=alice).exists()
    # In a group they share already, both carry on.
    group = do_create_room(carol, "group", [alice.pk, bob.pk], "shared")[0]
    assert {m["id"] for m in group["members"]} == {alice.pk, bob.pk, carol.pk}
    do_send_message(bob, group["id"], cid(), "hi all")
    do_send_message(alice, group["id"], cid(), "hi")


def test_presence_and_last_seen_are_hidden_both_ways(alice: Any, bob: Any, carol: Any) -> None:
    do_create_room(carol, "group", [alice.pk, bob.pk], "g")
    do_announce_presences([(alice.pk, "offline", 1_700_000_000.0)])
    blocks.do_block(alice, bob.pk)
    for viewer, other in ((bob, alice), (alice, bob)):
        view = presence_views(viewer.pk, [other.pk], {other.pk})
        assert view[other.pk] == {"status": "offline", "last_seen": None}
    assert presence_views(carol.pk, [alice.pk], {alice.pk})[alice.pk]["status"] == "online"


# -- over the wire -------------------------------------------------------------------------------


def test_the_rest_endpoints_answer_as_the_contract_says(alice: Any, bob: Any) -> None:
    api = Api(alice)
    first = api.post("/blocks", {"user_id": bob.pk})
    assert first.status_code == 201, first.content
    assert first.json()["block"]["user"] == {"id": bob.pk, "username": bob.username}
    assert api.post("/blocks", {"user_id": bob.pk}).status_code == 200
    listed = api.get("/blocks").json()
    assert [b["user"]["id"] for b in listed["blocks"]] == [bob.pk]
    assert set(listed["blocks"][0]) == {"user", "created_at"}
    assert_error(api.post("/blocks", {"user_id": alice.pk}), 400, "invalid_request")
    assert_error(api.post("/blocks", {"user_id": 10**9}), 400, "invalid_request")
    assert_error(api.post("/blocks", {"user_id": "x"}), 400, "invalid_request")
    assert_error(api.post("/blocks", {}), 400, "invalid_request")
    refused = Api(bob).post("/rooms", {"kind": "direct", "members": [alice.pk]})
    assert_error(refused, 403, "forbidden")
    assert api.delete(f"/blocks/{bob.pk}").status_code == 204
    assert api.delete(f"/blocks/{bob.pk}").status_code == 204
    assert api.get("/blocks").json() == {"blocks": []}
    room = Api(bob).post("/rooms", {"kind": "direct", "members": [alice.pk]})
    assert room.status_code == 201
    assert_error(Api().get("/blocks"), 401, "unauthorized")


def test_a_rest_send_across_a_block_is_forbidden_and_stores_nothing(alice: Any, bob: Any) -> None:
    room = int(do_create_room(alice, "direct", [bob.pk])[0]["id"])
    blocks.do_block(bob, alice.pk)
    refused = Api(alice).post(f"/rooms/{room}/messages", {"client_id": cid(), "body": "x"})
    assert_error(refused, 403, "forbidden")
    assert not Message.objects.filter(room_id=room).exists()


async def test_the_socket_blocks_and_only_the_blockers_sockets_hear_of_it(
    alice: Any, bob: Any
) -> None:
    room, _ = await db(do_create_room)(alice, "direct", [bob.pk])
    a = await connect(await db(token_for)(alice))
    a2 = await connect(await db(token_for)(alice))
    b = await connect(await db(token_for)(bob))
    await send(a, {"type": "block", "user_id": bob.pk, "blocked": True})
    for socket in (a, a2):
        frame = await recv_type(socket, "block.updated")
        assert frame == {
            "type": "block.updated",
            "user": {"id": bob.pk, "username": bob.username},
            "blocked": True,
        }
    assert await b.receive_nothing(timeout=0.3)  # bob is told nothing
    await send(b, {"type": "message.send", "room": room["id"], "client_id": "c1", "body": "hey"})
    error = await recv_type(b, "error")
    assert error["code"] == "forbidden" and error.get("ref") == "c1"
    await send(a, {"type": "block", "user_id": alice.pk})
    assert (await recv_type(a, "error"))["code"] == "invalid_frame"
    await send(a, {"type": "block", "user_id": bob.pk, "blocked": False})
    assert (await recv_type(a, "block.updated"))["blocked"] is False
    await send(b, {"type": "message.send", "room": room["id"], "client_id": "c2", "body": "hey"})
    assert (await recv_type(b, "message.ack"))["message"]["body"] == "hey"
    for socket in (a, a2, b):
        await socket.disconnect()


async def test_typing_in_a_shared_group_skips_the_other_side_of_a_block(
    alice: Any, bob: Any, carol: Any
) -> None:
    group, _ = await db(do_create_room)(carol, "group", [alice.pk, bob.pk], "g")
    await db(blocks.do_block)(alice, bob.pk)
    a = await connect(await db(token_for)(alice))
    b = await connect(await db(token_for)(bob))
    c = await connect(await db(token_for)(carol))
    await send(a, {"type": "typing", "room": group["id"], "state": "start"})
    assert (await recv_type(c, "typing"))["user"] == alice.pk
    assert not [f for f in await drain(b) if f["type"] == "typing"]
    await send(b, {"type": "typing", "room": group["id"], "state": "start"})
    assert (await recv_type(c, "typing"))["user"] == bob.pk
    assert not [f for f in await drain(a) if f["type"] == "typing"]
    # Lifted while connected: the sockets learn it at once.
    await send(a, {"type": "block", "user_id": bob.pk, "blocked": False})
    await recv_type(a, "block.updated")
    await send(a, {"type": "typing", "room": group["id"], "state": "stop"})
    assert (await recv_type(b, "typing"))["state"] == "stop"
    for socket in (a, b, c):
        await socket.disconnect()


async def test_presence_frames_do_not_cross_a_block(alice: Any, bob: Any, carol: Any) -> None:
    await db(do_create_room)(carol, "group", [alice.pk, bob.pk], "g")
    await db(blocks.do_block)(bob, alice.pk)
    b = await connect(await db(token_for)(bob), presence=True)
    c = await connect(await db(token_for)(carol), presence=True)
    await drain(b)
    await drain(c)
    a = await connect(await db(token_for)(alice))
    seen_by_carol = [f for f in await drain(c, timeout=0.5) if f["type"] == "presence"]
    assert [f["user"] for f in seen_by_carol] == [alice.pk]
    assert not [f for f in await drain(b, timeout=0.3) if f["type"] == "presence"]
    for socket in (a, b, c):
        await socket.disconnect()
