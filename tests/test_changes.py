"""Messages that change after they are sent (issue 17): replies, reactions, edits and deletes,
through one change log per room that sync replays.

The rules are checked on the actions, the wire on sockets and REST, and the log's promise by
a Hypothesis property: a client that replays a room's changes from any cursor it held ends
with the database's view of every message it holds."""

from __future__ import annotations

import datetime as dt
import urllib.parse
import uuid
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from linkup.actions.changes import (
    do_delete_message,
    do_edit_message,
    do_moderate_delete,
    do_react,
    edit_history,
)
from linkup.actions.events import collecting_events
from linkup.actions.messages import do_send_message
from linkup.actions.rooms import do_create_room
from linkup.core.errors import Forbidden, InvalidInput, NotFound
from linkup.core.protocol import check_emoji, parse_frame
from linkup.models import (
    DeletedForMe,
    Membership,
    Message,
    MessageChange,
    MessageEdit,
    Notification,
    Reaction,
    Room,
)
from linkup.store import queries
from tests.conftest import make_user, token_for
from tests.test_api import Api, assert_error
from tests.wsutil import connect, db, drain, recv_type, send

pytestmark = pytest.mark.django_db(transaction=True)


def cid() -> str:
    return str(uuid.uuid4())


def send_text(user: Any, room: int, body: str, **kwargs: Any) -> dict[str, Any]:
    message, _ = do_send_message(user, room, cid(), body, **kwargs)
    return dict(message)


@pytest.fixture
def group(alice: Any, bob: Any, carol: Any) -> int:
    room, _ = do_create_room(alice, "group", [bob.pk, carol.pk], "g")
    return int(room["id"])


def history_of(user: Any, room: int) -> dict[int, dict[str, Any]]:
    return {m["seq"]: m for m in queries.history(user, room, limit=100)["messages"]}


# -- the message object --------------------------------------------------------------------------


def test_a_new_message_carries_every_new_field_empty(alice: Any, group: int) -> None:
    m = send_text(alice, group, "hello")
    assert m["reply_to"] is None and m["reactions"] == [] and m["attachments"] == []
    assert m["edited_at"] is None and m["deleted"] is None and m["change"] == 0
    assert history_of(alice, group)[m["seq"]] == {**m}


# -- replies ---------------------------------------------------------------------------------------


def test_a_reply_quotes_its_original_and_loses_the_preview_when_it_is_deleted(
    alice: Any, bob: Any, group: int
) -> None:
    original = send_text(alice, group, "x" * 150)
    reply = send_text(bob, group, "agreed", reply_to=original["seq"])
    assert reply["reply_to"] == {
        "seq": original["seq"],
        "sender": {"id": alice.pk, "username": "alice"},
        "preview": "x" * 100,
        "deleted": False,
    }
    do_delete_message(alice, group, original["seq"], "everyone")
    seen = history_of(bob, group)
    assert seen[reply["seq"]]["reply_to"]["preview"] == ""
    assert seen[reply["seq"]]["reply_to"]["deleted"] is True
    assert seen[original["seq"]]["reply_to"] is None


def test_a_reply_to_a_missing_seq_or_another_room_is_refused(
    alice: Any, bob: Any, group: int
) -> None:
    other, _ = do_create_room(alice, "direct", [bob.pk])
    elsewhere = send_text(alice, int(other["id"]), "in the direct room")
    for seq in (99, elsewhere["seq"] + 5):
        with pytest.raises(InvalidInput):
            do_send_message(alice, group, cid(), "re", reply_to=seq)
    # seq 1 exists in the direct room, not in the group (which has no message yet).
    with pytest.raises(InvalidInput):
        do_send_message(alice, group, cid(), "re", reply_to=elsewhere["seq"])
    assert not Message.objects.filter(room_id=group).exists()


# -- reactions -------------------------------------------------------------------------------------


def test_reactions_count_per_emoji_say_me_to_the_reactor_and_are_idempotent(
    alice: Any, bob: Any, carol: Any, group: int
) -> None:
    seq = send_text(alice, group, "news")["seq"]
    mine = do_react(bob, group, seq, "👍", "add")
    assert mine["reactions"] == [{"emoji": "👍", "count": 1, "me": True}]
    assert mine["change"] == 1
    again = do_react(bob, group, seq, "👍", "add")  # changes nothing, takes no number
    assert again == mine
    do_react(carol, group, seq, "👍", "add")
    do_react(carol, group, seq, "❤️", "add")
    assert history_of(alice, group)[seq]["reactions"] == [
        {"emoji": "👍", "count": 2, "me": False},
        {"emoji": "❤️", "count": 1, "me": False},
    ]
    assert history_of(carol, group)[seq]["reactions"] == [
        {"emoji": "👍", "count": 2, "me": True},
        {"emoji": "❤️", "count": 1, "me": True},
    ]
    do_react(bob, group, seq, "🎉", "remove")  # not there: nothing
    gone = do_react(bob, group, seq, "👍", "remove")
    assert gone["reactions"][0] == {"emoji": "👍", "count": 1, "me": False}
    assert Room.objects.get(pk=group).last_change == 4
    assert list(MessageChange.objects.filter(room_id=group).values_list("change", flat=True)) == [
        1,
        2,
        3,
        4,
    ]


@pytest.mark.parametrize("good", ["👍", "❤️", "❤", "👨‍👩‍👧", "🇫🇷", "👍🏽", "#️⃣", "🏳️‍🌈"])
def test_one_emoji_is_a_reaction_stored_as_sent(good: str) -> None:
    assert check_emoji(good) == good


@pytest.mark.parametrize("bad", ["", "a", "👍👍", "👍 ", "1", "\u200d", "<b>", "🇫", 7, None])
def test_anything_but_one_emoji_is_refused(bad: Any) -> None:
    with pytest.raises(InvalidInput):
        check_emoji(bad)


def test_a_site_can_allow_only_its_own_set() -> None:
    assert check_emoji(":+1:", [":+1:", "👍"]) == ":+1:"
    with pytest.raises(InvalidInput):
        check_emoji("❤️", [":+1:", "👍"])


@given(st.text(max_size=12))
def test_a_reaction_is_accepted_exactly_when_it_is_one_emoji(text: str) -> None:
    import emoji

    try:
        check_emoji(text)
        accepted = True
    except InvalidInput:
        accepted = False
    assert accepted == (bool(text) and emoji.is_emoji(text))


# -- edits -----------------------------------------------------------------------------------------


def test_the_sender_edits_within_the_window_and_the_old_text_is_kept(
    alice: Any, bob: Any, group: int
) -> None:
    seq = send_text(alice, group, "teh plan")["seq"]
    key = cid()
    edited = do_edit_message(alice, group, seq, "the plan", key)
    assert edited["body"] == "the plan" and edited["edited_at"] and edited["change"] == 1
    assert do_edit_message(alice, group, seq, "the plan", key) == edited  # the same edit again
    do_edit_message(alice, group, seq, "the plan!", cid())
    versions = [v["body"] for v in edit_history(alice, group, seq)["versions"]]
    assert versions == ["teh plan", "the plan", "the plan!"]
    with pytest.raises(Forbidden):
        edit_history(bob, group, seq)  # not the sender, not an admin
    assert history_of(bob, group)[seq]["body"] == "the plan!"


def test_nobody_else_edits_and_nobody_edits_after_the_window(
    alice: Any, bob: Any, group: int, settings: Any
) -> None:
    seq = send_text(alice, group, "mine")["seq"]
    with pytest.raises(Forbidden):
        do_edit_message(bob, group, seq, "yours", cid())
    later = timezone.now() + dt.timedelta(minutes=16)
    with pytest.raises(Forbidden, match="15 minutes"):
        do_edit_message(alice, group, seq, "too late", cid(), now=later)
    with pytest.raises(NotFound):
        do_edit_message(alice, group, 99, "none", cid())
    assert Message.objects.get(room_id=group, seq=seq).body == "mine"
    assert Room.objects.get(pk=group).last_change == 0
    assert not MessageEdit.objects.exists()


@pytest.mark.django_db  # one transaction, rolled back at the end (each example its own room)
@given(
    editor=st.sampled_from(["sender", "admin", "member"]),
    after_s=st.integers(0, 3 * 24 * 3600),
    action=st.sampled_from(["edit", "delete"]),
)
def test_a_change_applies_exactly_when_its_rule_allows_it(
    editor: str, after_s: int, action: str
) -> None:
    """An edit applies only by its sender within EDIT_WINDOW_S; a delete for everyone by
    its sender within DELETE_WINDOW_S, or by the room's owner (here: "admin") at any time.
    Otherwise `forbidden`, and nothing changes (no number, no text)."""
    owner, sender, member = (make_user(f"{r}-{uuid.uuid4().hex[:8]}") for r in "osm")
    room, _ = do_create_room(owner, "group", [sender.pk, member.pk], "g")
    rid = int(room["id"])
    sent = send_text(sender, rid, "original")
    who = {"sender": sender, "admin": owner, "member": member}[editor]
    when = timezone.now() + dt.timedelta(seconds=after_s)
    if action == "edit":
        allowed = editor == "sender" and after_s <= 15 * 60
        run = lambda: do_edit_message(who, rid, sent["seq"], "changed", cid(), now=when)  # noqa: E731
    else:
        allowed = editor == "admin" or (editor == "sender" and after_s <= 2 * 24 * 3600)
        run = lambda: do_delete_message(who, rid, sent["seq"], "everyone", now=when)  # noqa: E731
    try:
        run()
        applied = True
    except Forbidden:
        applied = False
    row = Message.objects.get(room_id=rid, seq=sent["seq"])
    assert applied == allowed
    assert (row.body == "original") == (not allowed)
    assert Room.objects.get(pk=rid).last_change == (1 if allowed else 0)


# -- deletes ---------------------------------------------------------------------------------------


def test_delete_for_everyone_erases_body_edits_reactions_and_notification_text(
    alice: Any, bob: Any, group: int
) -> None:
    seq = send_text(alice, group, "@bob secret")["seq"]
    do_edit_message(alice, group, seq, "@bob the secret", cid())
    do_react(bob, group, seq, "😮", "add")
    assert Notification.objects.filter(room_id=group, seq=seq, body__contains="secret").exists()
    gone = do_delete_message(alice, group, seq, "everyone")
    assert gone["deleted"] == "everyone" and gone["body"] == "" and gone["reactions"] == []
    assert gone["edited_at"] is None and gone["seq"] == seq and gone["sender"]["id"] == alice.pk
    row = Message.objects.get(room_id=group, seq=seq)
    assert row.body == "" and row.deleted_at is not None
    assert not MessageEdit.objects.exists() and not Reaction.objects.exists()
    assert not Notification.objects.filter(body__contains="secret").exists()
    # Deleting again changes nothing; a deleted message takes no edit and no reaction.
    assert do_delete_message(alice, group, seq, "everyone") == gone
    with pytest.raises(Forbidden):
        do_edit_message(alice, group, seq, "back", cid())
    with pytest.raises(Forbidden):
        do_react(bob, group, seq, "👍", "add")
    assert Room.objects.get(pk=group).last_change == 3  # edit, reaction, delete


def test_only_the_sender_in_the_window_or_an_admin_deletes_for_everyone(
    alice: Any, bob: Any, carol: Any, group: int
) -> None:
    by_bob = send_text(bob, group, "oops")["seq"]
    with pytest.raises(Forbidden):
        do_delete_message(carol, group, by_bob, "everyone")
    later = timezone.now() + dt.timedelta(days=3)
    with pytest.raises(Forbidden, match="2 days"):
        do_delete_message(bob, group, by_bob, "everyone", now=later)
    # alice owns the group: any message, any time.
    assert do_delete_message(alice, group, by_bob, "everyone", now=later)["deleted"] == "everyone"
    Membership.objects.filter(room_id=group, user=carol).update(role="admin")
    by_alice = send_text(alice, group, "hm")["seq"]
    assert do_delete_message(carol, group, by_alice, "everyone")["deleted"] == "everyone"


def test_delete_for_me_hides_it_from_me_alone_and_takes_no_change_number(
    alice: Any, bob: Any, group: int
) -> None:
    seq = send_text(alice, group, "fine")["seq"]
    mine = do_delete_message(bob, group, seq, "me")
    assert mine["deleted"] == "me" and mine["body"] == ""
    assert history_of(bob, group)[seq]["deleted"] == "me"
    assert history_of(alice, group)[seq]["body"] == "fine"
    assert Room.objects.get(pk=group).last_change == 0
    entry = next(e for e in queries.build_sync(bob, {group: 0})["rooms"] if e["room"] == group)
    assert entry["deleted_for_me"] == [seq]
    assert entry["messages"][0]["deleted"] == "me"


def test_staff_delete_through_the_admin_goes_through_the_change_log(alice: Any, group: int) -> None:
    seq = send_text(alice, group, "spam")["seq"]
    assert do_moderate_delete(group, seq) is True
    assert do_moderate_delete(group, seq) is False
    assert MessageChange.objects.get(room_id=group).kind == "delete"


def test_a_non_member_gets_not_found_for_every_change(alice: Any, bob: Any) -> None:
    room, _ = do_create_room(alice, "direct", [bob.pk])
    seq = send_text(alice, int(room["id"]), "private")["seq"]
    stranger = make_user("mallory")
    for attempt in (
        lambda: do_edit_message(stranger, int(room["id"]), seq, "x", cid()),
        lambda: do_delete_message(stranger, int(room["id"]), seq, "everyone"),
        lambda: do_delete_message(stranger, int(room["id"]), seq, "me"),
        lambda: do_react(stranger, int(room["id"]), seq, "👍", "add"),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert not DeletedForMe.objects.exists() and not Reaction.objects.exists()


# -- sync replays the log --------------------------------------------------------------------------


def test_sync_with_change_cursors_pages_the_changes(alice: Any, bob: Any, settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "SYNC_MAX_CHANGES": 2}
    room, _ = do_create_room(alice, "direct", [bob.pk])
    rid = int(room["id"])
    seq = send_text(alice, rid, "hi")["seq"]
    for emoji in ("👍", "❤️", "😂"):
        do_react(bob, rid, seq, emoji, "add")
    (entry,) = queries.build_sync(alice, {rid: seq}, {rid: 0})["rooms"]
    assert entry["last_change"] == 3 and entry["changes_has_more"] is True
    assert [c["change"] for c in entry["changes"]] == [1, 2]
    # Each change carries the message as it is now: all three reactions already.
    assert len(entry["changes"][0]["message"]["reactions"]) == 3
    (entry,) = queries.build_sync(alice, {rid: seq}, {rid: 2})["rooms"]
    assert [c["change"] for c in entry["changes"]] == [3] and not entry["changes_has_more"]
    (entry,) = queries.build_sync(alice, {rid: seq})["rooms"]
    assert "changes" not in entry  # protocol-1 clients ask for none, get none


OPS = st.lists(
    st.tuples(
        st.sampled_from(["send", "reply", "edit", "delete", "hide", "react", "unreact"]),
        st.integers(0, 2),  # who (alice, bob, carol)
        st.integers(1, 6),  # which seq
        st.sampled_from(["👍", "❤️", "😂"]),
    ),
    max_size=25,
)


@pytest.mark.django_db  # one transaction, rolled back at the end (each example its own room)
@given(ops=OPS, cut=st.integers(0, 30))
def test_replay_from_any_cursor_ends_at_the_database_view(
    ops: list[tuple[str, int, int, str]], cut: int
) -> None:
    """A client that held a room as of any change cursor and replays the changes after it
    (applying each change's message object over what it holds, by seq) ends with the
    database's view of every message it holds; change numbers are gap-free; a deleted
    body is in no table."""
    people = [make_user(f"u{n}-{uuid.uuid4().hex[:6]}") for n in range(3)]
    room, _ = do_create_room(people[0], "group", [p.pk for p in people[1:]], "g")
    rid = int(room["id"])
    viewer = people[1]
    snapshot: dict[int, dict[str, Any]] | None = None
    snapshot_change = 0
    secrets: list[str] = []
    for n, (op, who, seq, emoji) in enumerate(ops):
        user = people[who]
        if snapshot is None and Room.objects.get(pk=rid).last_change >= cut:
            snapshot = history_of(viewer, rid)
            snapshot_change = Room.objects.get(pk=rid).last_change
        try:
            if op in ("send", "reply"):
                body = f"text {n} {uuid.uuid4().hex[:8]}"
                reply = seq if op == "reply" else None
                do_send_message(user, rid, cid(), body, reply_to=reply)
                secrets.append(body)
            elif op == "edit":
                do_edit_message(user, rid, seq, f"edited {n}", cid())
            elif op == "delete":
                do_delete_message(user, rid, seq, "everyone")
            elif op == "hide":
                do_delete_message(user, rid, seq, "me")
            else:
                do_react(user, rid, seq, emoji, "add" if op == "react" else "remove")
        except (Forbidden, NotFound, InvalidInput):
            pass
    if snapshot is None:
        snapshot = history_of(viewer, rid)
        snapshot_change = Room.objects.get(pk=rid).last_change
    # Catch up as a client does: new messages by seq, then the changes after its cursor.
    last_seq = max(snapshot, default=0)
    held = dict(snapshot)
    synced = queries.build_sync(viewer, {rid: last_seq}, {rid: snapshot_change})
    (entry,) = synced["rooms"]
    for message in entry["messages"]:
        held[message["seq"]] = message
    for change in entry["changes"]:
        held[change["message"]["seq"]] = change["message"]
    for seq in entry["deleted_for_me"]:  # hidden on another device
        if seq in held:
            held[seq] = history_of(viewer, rid)[seq]
    assert held == history_of(viewer, rid)
    numbers = list(MessageChange.objects.filter(room_id=rid).values_list("change", flat=True))
    assert numbers == list(range(1, Room.objects.get(pk=rid).last_change + 1))
    for row in Message.objects.filter(room_id=rid, deleted_at__isnull=False):
        assert row.body == "" and not Reaction.objects.filter(message=row).exists()
        assert not MessageEdit.objects.filter(message=row).exists()


# -- the wire: sockets -----------------------------------------------------------------------------


def test_frames_parse_and_bad_ones_say_why() -> None:
    frame = parse_frame(
        '{"type":"reaction","room":1,"seq":2,"emoji":"👍","state":"add","client_id":"c"}'
    )
    assert frame.emoji == "👍"  # type: ignore[union-attr]
    for bad in (
        '{"type":"reaction","room":1,"seq":2,"emoji":"ok","state":"add"}',
        '{"type":"reaction","room":1,"seq":2,"emoji":"👍","state":"maybe"}',
        '{"type":"message.delete","room":1,"seq":2,"scope":"them"}',
        '{"type":"message.edit","room":1,"seq":2,"body":"  ","client_id":"c"}',
        '{"type":"message.send","room":1,"body":"x","client_id":"c","reply_to":"1"}',
        '{"type":"sync","cursors":{},"changes":{"01":0}}',
    ):
        with pytest.raises(InvalidInput):
            parse_frame(bad)


async def test_changes_reach_every_member_live_each_with_their_own_me(
    alice: Any, bob: Any, carol: Any
) -> None:
    room, _ = await db(do_create_room)(alice, "group", [bob.pk, carol.pk], "g")
    rid = int(room["id"])
    tokens = [await db(token_for)(u) for u in (alice, bob, carol)]
    socks = [await connect(t, raw=raw) for t, raw in zip(tokens, (True, False, True), strict=True)]
    await send(socks[0], {"type": "message.send", "room": rid, "client_id": "m1", "body": "hi"})
    await recv_type(socks[0], "message.ack")
    for sock in socks[1:]:
        await recv_type(sock, "message.new")
    await send(
        socks[1],
        {
            "type": "reaction",
            "room": rid,
            "seq": 1,
            "emoji": "👍",
            "state": "add",
            "client_id": "r",
        },
    )
    ack = await recv_type(socks[1], "change.ack")
    assert ack["client_id"] == "r" and ack["message"]["reactions"][0]["me"] is True
    seen = {}
    for n, sock in enumerate(socks):
        frames = [f for f in await drain(sock) if f["type"] == "message.updated"]
        assert [f["change"] for f in frames] == [1], frames
        seen[n] = frames[0]["message"]["reactions"]
    assert seen[0] == seen[2] == [{"emoji": "👍", "count": 1, "me": False}]
    assert seen[1] == [{"emoji": "👍", "count": 1, "me": True}]
    await send(
        socks[0],
        {"type": "message.edit", "room": rid, "seq": 1, "body": "hello", "client_id": "e"},
    )
    assert (await recv_type(socks[0], "change.ack"))["message"]["body"] == "hello"
    for sock in socks:
        frames = [f for f in await drain(sock) if f["type"] == "message.updated"]
        assert [(f["change"], f["message"]["body"]) for f in frames] == [(2, "hello")]
    # Delete for me: the deleter's own sockets only, with no change number.
    await send(
        socks[2],
        {"type": "message.delete", "room": rid, "seq": 1, "scope": "me", "client_id": "d"},
    )
    assert (await recv_type(socks[2], "change.ack"))["message"]["deleted"] == "me"
    frames = [f for f in await drain(socks[2]) if f["type"] == "message.updated"]
    assert [(f["change"], f["message"]["deleted"]) for f in frames] == [(None, "me")]
    for sock in socks[:2]:
        assert not [f for f in await drain(sock) if f["type"] == "message.updated"]
    # Someone else's message: forbidden, the socket stays open.
    await send(
        socks[1],
        {"type": "message.edit", "room": rid, "seq": 1, "body": "mine now", "client_id": "x"},
    )
    refused = await recv_type(socks[1], "error")
    assert refused["code"] == "forbidden" and refused["ref"] == "x"
    for sock in socks:
        await sock.disconnect()


async def test_a_socket_that_missed_a_change_fills_it_before_the_next(alice: Any, bob: Any) -> None:
    """A change whose doorbell never came (committed elsewhere, its ring lost) is read
    from the database before the next one is sent: the socket's change line has no gap."""
    room, _ = await db(do_create_room)(alice, "direct", [bob.pk])
    rid = int(room["id"])
    await db(send_text)(alice, rid, "one")
    sock = await connect(await db(token_for)(bob))

    # Change 1 commits with its doorbell lost (collected, and published by nobody).
    def lost() -> None:
        with collecting_events():
            do_react(alice, rid, 1, "👍", "add")

    await db(lost)()
    assert await sock.receive_nothing(timeout=0.2)
    # Change 2 goes the normal way: change 1 is filled first.
    await send(
        sock,
        {"type": "reaction", "room": rid, "seq": 1, "emoji": "❤️", "state": "add", "client_id": "r"},
    )
    frames = await drain(sock)
    updates = [f for f in frames if f["type"] == "message.updated"]
    assert [f["change"] for f in updates] == [1, 2], frames
    assert updates[-1]["message"]["reactions"][1]["me"] is True
    await sock.disconnect()


async def test_sync_frame_takes_change_cursors(alice: Any, bob: Any) -> None:
    room, _ = await db(do_create_room)(alice, "direct", [bob.pk])
    rid = int(room["id"])
    await db(send_text)(alice, rid, "one")
    await db(do_react)(bob, rid, 1, "👍", "add")
    sock = await connect(await db(token_for)(bob))
    await send(sock, {"type": "sync", "cursors": {str(rid): 1}, "changes": {str(rid): 0}})
    result = await recv_type(sock, "sync.result")
    (entry,) = result["rooms"]
    assert [c["change"] for c in entry["changes"]] == [1]
    assert entry["changes"][0]["message"]["reactions"][0]["me"] is True
    await sock.disconnect()


# -- the wire: REST --------------------------------------------------------------------------------


def test_rest_edits_deletes_reactions_and_reads_the_log(alice: Any, bob: Any, carol: Any) -> None:
    room, _ = do_create_room(alice, "direct", [bob.pk])
    rid = int(room["id"])
    a, b = Api(alice), Api(bob)
    sent = a.post(f"/rooms/{rid}/messages", {"client_id": cid(), "body": "hi"}).json()
    reply = b.post(
        f"/rooms/{rid}/messages", {"client_id": cid(), "body": "re", "reply_to": sent["seq"]}
    )
    assert reply.status_code == 201 and reply.json()["reply_to"]["preview"] == "hi"
    assert_error(
        b.post(f"/rooms/{rid}/messages", {"client_id": cid(), "body": "re", "reply_to": 99}),
        400,
        "invalid_request",
    )
    path = f"/rooms/{rid}/messages/{sent['seq']}"
    edited = a.client.patch(
        "/api/v1" + path,
        {"body": "hello", "client_id": cid()},
        content_type="application/json",
        **a.headers,
    )
    assert edited.status_code == 200 and edited.json()["body"] == "hello"
    assert_error(
        b.client.patch(
            "/api/v1" + path,
            {"body": "x", "client_id": cid()},
            content_type="application/json",
            **b.headers,
        ),
        403,
        "forbidden",
    )
    emoji = urllib.parse.quote("👍🏽")
    put = b.client.put(f"/api/v1{path}/reactions/{emoji}", **b.headers)
    assert put.status_code == 200 and put.json()["reactions"] == [
        {"emoji": "👍🏽", "count": 1, "me": True}
    ]
    assert_error(
        b.client.put(f"/api/v1{path}/reactions/{urllib.parse.quote('no')}", **b.headers),
        400,
        "invalid_request",
    )
    who = a.get(f"{path}/reactions").json()
    assert who == {"reactions": [{"emoji": "👍🏽", "users": [{"id": bob.pk, "username": "bob"}]}]}
    versions = a.get(f"{path}/history").json()["versions"]
    assert [v["body"] for v in versions] == ["hi", "hello"]
    log = a.get(f"/rooms/{rid}/changes", after_change=0).json()
    assert [(c["change"], c["kind"]) for c in log["changes"]] == [(1, "edit"), (2, "reaction")]
    assert log["has_more"] is False
    gone = b.client.delete(f"/api/v1{path}?scope=me", **b.headers)
    assert gone.status_code == 200 and gone.json()["deleted"] == "me"
    synced = b.get("/sync", cursors=f"{rid}:0", changes=f"{rid}:1").json()
    (entry,) = synced["rooms"]
    assert entry["deleted_for_me"] == [sent["seq"]] and entry["last_change"] == 2
    assert [c["change"] for c in entry["changes"]] == [2]
    assert "changes" not in b.get("/sync", cursors=f"{rid}:0").json()["rooms"][0]
    erased = a.client.delete(f"/api/v1{path}", **a.headers)
    assert erased.status_code == 200 and erased.json()["deleted"] == "everyone"
    # A stranger: the same 404 as for a missing room, whatever the method.
    c = Api(carol)
    for response in (
        c.get(f"{path}/reactions"),
        c.get(f"/rooms/{rid}/changes"),
        c.client.put(f"/api/v1{path}/reactions/{emoji}", **c.headers),
        c.client.delete(f"/api/v1{path}", **c.headers),
    ):
        assert_error(response, 404, "not_found")


# -- retention ------------------------------------------------------------------------------------


def test_a_purge_takes_the_changes_with_the_messages_and_tells_the_members(
    alice: Any, bob: Any, emitted: Any
) -> None:
    from linkup.actions.messages import do_purge_history

    room, _ = do_create_room(alice, "direct", [bob.pk])
    rid = int(room["id"])
    old = timezone.now() - dt.timedelta(days=40)
    for n in range(3):
        do_send_message(alice, rid, cid(), f"old {n}", now=old)
    do_react(bob, rid, 1, "👍", "add")
    do_delete_message(bob, rid, 2, "me")
    fresh = send_text(alice, rid, "new")
    do_react(bob, rid, fresh["seq"], "🎉", "add")
    counts, events = emitted(do_purge_history, timezone.now() - dt.timedelta(days=30))
    assert counts == {"rooms": 1, "messages": 3}
    assert list(MessageChange.objects.values_list("seq", flat=True)) == [fresh["seq"]]
    assert not DeletedForMe.objects.exists() and Reaction.objects.count() == 1
    told = {g: e["room"]["first_seq"] for g, e in events if e["type"] == "room.updated"}
    assert told == {f"linkup.user.{alice.pk}": 4, f"linkup.user.{bob.pk}": 4}
    (entry,) = queries.build_sync(bob, {rid: 0}, {rid: 0})["rooms"]
    assert [c["change"] for c in entry["changes"]] == [2]  # change 1's message is gone
    assert entry["deleted_for_me"] == [] and entry["first_seq"] == 4
