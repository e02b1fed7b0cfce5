"""Notifications: who gets one, the REST calls, and `/ws/notifications/` (live, read sync)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkup.actions import notifications
from linkup.actions.messages import Send, do_send_batch
from linkup.actions.rooms import do_add_members, do_create_room
from linkup.core.errors import LinkupError
from linkup.core.protocol import NotificationReadFrame, PingFrame, parse_notification_frame
from linkup.models import FallbackSchedule, Membership, Notification, UserPresence
from tests.conftest import make_user, token_for
from tests.test_api import Api, assert_error
from tests.wsutil import connect, db, drain, recv_type, send

pytestmark = pytest.mark.django_db(transaction=True)

NOTIFICATION_KEYS = {"id", "kind", "title", "body", "data", "created_at", "read"}


def cid() -> str:
    return str(uuid.uuid4())


def direct(a: Any, b: Any) -> int:
    room, _ = do_create_room(a, "direct", [b.pk])
    return int(room["id"])


def group(owner: Any, *members: Any, name: str = "team") -> int:
    room, _ = do_create_room(owner, "group", [m.pk for m in members], name)
    return int(room["id"])


def sent(sender: Any, room: int, body: str, focused: dict[int, set[int]] | None = None) -> Any:
    ((outcome, error, _),) = do_send_batch([Send(sender, room, cid(), body)], focused)
    assert error is None, error
    return outcome[0]


def of(user: Any) -> list[Notification]:
    return list(Notification.objects.filter(recipient=user).order_by("pk"))


# -- who gets one -----------------------------------------------------------------------------


def test_a_direct_message_notifies_the_other_member_only(alice: Any, bob: Any) -> None:
    room = direct(alice, bob)
    message = sent(alice, room, "hello   there\nbob")
    (n,) = of(bob)
    assert of(alice) == []
    assert (n.kind, n.title, n.body) == ("message", "alice", "hello there bob")
    assert n.data == {
        "room": room,
        "seq": message["seq"],
        "message": message["id"],
        "sender": {"id": alice.pk, "username": "alice"},
    }
    assert n.state == "pending"
    # Its fallback run is scheduled (once per user, however many notifications).
    sent(alice, room, "again")
    assert FallbackSchedule.objects.filter(user=bob).count() == 1


def test_looking_at_the_room_or_muting_it_spares_the_notification(alice: Any, bob: Any) -> None:
    room = direct(alice, bob)
    sent(alice, room, "you are looking", focused={room: {bob.pk}})
    assert of(bob) == []
    sent(alice, room, "someone else looks", focused={room: {alice.pk}, room + 1: {bob.pk}})
    assert len(of(bob)) == 1
    notifications.do_set_muted(bob, room, True)
    sent(alice, room, "muted")
    assert len(of(bob)) == 1
    notifications.do_set_muted(bob, room, False)
    sent(alice, room, "unmuted")
    assert len(of(bob)) == 2


def test_a_group_notifies_only_those_it_mentions(alice: Any, bob: Any, carol: Any) -> None:
    room = group(alice, bob, carol, name="team")
    Notification.objects.all().delete()  # "added to the group" ones
    sent(alice, room, "no mention here, bob")
    assert of(bob) == [] and of(carol) == []
    sent(alice, room, "@bob, look. And @alice (me) and @nobody and email@bob.")
    (n,) = of(bob)
    assert (n.kind, n.title) == ("mention", "alice mentioned you in team")
    assert of(carol) == [] and of(alice) == []
    sent(bob, room, "thanks @carol.")
    assert [n.kind for n in of(carol)] == ["mention"]


def test_muting_tells_the_users_other_tabs(alice: Any, bob: Any, emitted: Any) -> None:
    from linkup.actions.events import user_group

    room = direct(alice, bob)
    _, events = emitted(notifications.do_set_muted, bob, room, True)
    assert [(g, e["type"], e["room"]["muted"]) for g, e in events] == [
        (user_group(bob.pk), "room.updated", True)
    ]
    _, again = emitted(notifications.do_set_muted, bob, room, True)
    assert again == []


def test_being_added_to_a_group_notifies_the_added(alice: Any, bob: Any, carol: Any) -> None:
    room = group(alice, bob, name="crew")
    (n,) = of(bob)
    assert (n.kind, n.title, n.data["room"]) == ("added", "alice added you to crew", room)
    assert of(alice) == []
    do_add_members(alice, room, [carol.pk, bob.pk])
    assert [n.kind for n in of(carol)] == ["added"] and len(of(bob)) == 1


def test_reading_the_room_reads_its_notifications(alice: Any, bob: Any) -> None:
    from linkup.actions.receipts import do_move_marker

    room = direct(alice, bob)
    first = sent(alice, room, "one")
    sent(alice, room, "two")
    do_move_marker(bob, room, "read", first["seq"])
    assert [n.read_at is not None for n in of(bob)] == [True, False]
    do_move_marker(bob, room, "delivered", 99)  # delivered is not read
    assert [n.read_at is not None for n in of(bob)] == [True, False]
    do_move_marker(bob, room, "read", 99)
    assert all(n.state == "read" for n in of(bob))


USERNAME = st.text(
    alphabet=st.characters(categories=["L", "Nd"], include_characters="_.+-"),
    min_size=1,
    max_size=20,
).filter(lambda n: n.rstrip(".-+@") == n)


@given(st.text(max_size=300), USERNAME, st.sampled_from([" ", ".", ",", "!", "\n", ""]))
def test_mention_parsing_never_crashes_and_finds_what_it_names(
    text: str, name: str, after: str
) -> None:
    found = notifications.mentioned_usernames(text)
    assert all("@" + n in text for n in found)  # nothing it was not given
    assert name in notifications.mentioned_usernames(f"{text} @{name}{after}")


# -- REST ---------------------------------------------------------------------------------------


def test_rest_lists_marks_read_and_reads_all(alice: Any, bob: Any) -> None:
    room = direct(alice, bob)
    for body in ("a", "b", "c"):
        sent(alice, room, body)
    api = Api(bob)
    listed = api.get("/notifications")
    assert listed.status_code == 200, listed.content
    page = listed.json()
    assert page["unread_count"] == 3 and page["has_more"] is False
    assert [n["body"] for n in page["notifications"]] == ["c", "b", "a"]  # newest first
    assert all(set(n) == NOTIFICATION_KEYS and n["read"] is False for n in page["notifications"])
    # Shown on this visit: delivered by the stored path, so no email will follow.
    assert {n.delivered_via for n in of(bob)} == {"stored"}

    first = page["notifications"][-1]["id"]
    marked = api.post(f"/notifications/{first}/read")
    assert marked.status_code == 200 and marked.json() == {"ids": [first], "unread_count": 2}
    again = api.post(f"/notifications/{first}/read")
    assert again.json() == {"ids": [], "unread_count": 2}
    unread = api.get("/notifications", unread=1).json()
    assert [n["body"] for n in unread["notifications"]] == ["c", "b"]
    paged = api.get("/notifications", limit=1).json()
    assert len(paged["notifications"]) == 1 and paged["has_more"] is True
    older = api.get("/notifications", before_id=paged["notifications"][0]["id"]).json()
    assert [n["body"] for n in older["notifications"]] == ["b", "a"]

    everything = api.post("/notifications/read-all").json()
    assert len(everything["ids"]) == 2 and everything["unread_count"] == 0
    assert api.get("/notifications", unread=1).json()["notifications"] == []


def test_rest_refuses_what_is_not_yours_and_bad_input(alice: Any, bob: Any, carol: Any) -> None:
    sent(alice, direct(alice, bob), "for bob")
    (n,) = of(bob)
    assert_error(Api(carol).post(f"/notifications/{n.pk}/read"), 404, "not_found")
    assert_error(Api(carol).post("/notifications/999999/read"), 404, "not_found")
    assert_error(Api(bob).get("/notifications", limit=0), 400, "invalid_request")
    assert_error(Api().get("/notifications"), 401, "unauthorized")
    assert of(bob)[0].read_at is None
    # Another user's read-all leaves it alone.
    assert Api(carol).post("/notifications/read-all").json()["ids"] == []
    assert of(bob)[0].read_at is None


def test_rest_mutes_a_room(alice: Any, bob: Any, carol: Any) -> None:
    room = direct(alice, bob)
    response = Api(bob).post(f"/rooms/{room}/mute", {"muted": True})
    assert response.status_code == 200 and response.json() == {"room": room, "muted": True}
    assert Membership.objects.get(room_id=room, user=bob).muted
    assert Api(bob).get(f"/rooms/{room}").json()["muted"] is True
    assert Api(alice).get(f"/rooms/{room}").json()["muted"] is False  # per member
    assert_error(Api(bob).post(f"/rooms/{room}/mute", {"muted": "yes"}), 400, "invalid_request")
    assert_error(Api(carol).post(f"/rooms/{room}/mute", {"muted": True}), 404, "not_found")


def test_rest_push_subscriptions(alice: Any, settings: Any) -> None:
    api = Api(alice)
    assert api.get("/push/key").json() == {"public_key": None}
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    point = ec.generate_private_key(ec.SECP256R1()).public_key()
    keys = {
        "p256dh": b64(point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)),
        "auth": b64(b"0123456789abcdef"),
    }
    sub = {"endpoint": "https://push.example/abc", "keys": keys}
    assert api.post("/push/subscriptions", sub).status_code == 201
    assert api.post("/push/subscriptions", sub).status_code == 200
    for endpoint in (
        "http://push.example/x",  # not https
        "https://localhost/x",  # this machine
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",  # a private network
        "https://[::1]/x",
        "https://169.254.169.254/latest",  # cloud metadata
    ):
        refused = api.post("/push/subscriptions", {**sub, "endpoint": endpoint})
        assert_error(refused, 400, "invalid_request")
    for bad in ({"p256dh": "k", "auth": keys["auth"]}, {"p256dh": keys["p256dh"], "auth": "a"}):
        refused = api.post("/push/subscriptions", {**sub, "keys": bad})
        assert_error(refused, 400, "invalid_request")
    assert alice.linkup_push.count() == 1
    for i in range(12):  # at most ten a user: the oldest go
        api.post("/push/subscriptions", {**sub, "endpoint": f"https://push.example/{i}"})
    assert alice.linkup_push.count() == 10
    deleted = api.delete("/push/subscriptions?endpoint=https://push.example/11")
    assert deleted.status_code == 200 and alice.linkup_push.count() == 9


# -- the notifications socket -------------------------------------------------------------------


async def test_socket_sends_backlog_then_live_and_records_live_delivery(
    alice: Any, bob: Any
) -> None:
    room = await db(direct)(alice, bob)
    await db(sent)(alice, room, "before the socket")
    comm = await connect(await db(token_for)(bob), path="/ws/notifications/", expect_hello=False)
    hello = await recv_type(comm, "hello")
    assert hello["unread_count"] == 1 and hello["user"] == bob.pk
    backlog = await recv_type(comm, "notification")
    assert backlog["notification"]["body"] == "before the socket"
    # Through the whole send path (REST): the doorbell rings this socket.
    response = await db(
        lambda: Api(alice).post(f"/rooms/{room}/messages", {"client_id": cid(), "body": "live"})
    )()
    assert response.status_code == 201
    live = await recv_type(comm, "notification")
    assert live["notification"]["body"] == "live" and set(live["notification"]) == NOTIFICATION_KEYS
    await comm.receive_nothing(0.3)
    rows = await db(of)(bob)
    assert [n.delivered_via for n in rows] == ["live", "live"]
    await comm.disconnect()


def hidden_since(user: Any) -> Any:
    return UserPresence.objects.filter(user=user).values_list("hidden_since", flat=True).first()


async def until(check: Any, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await db(check)():
        assert asyncio.get_running_loop().time() < deadline, "never came true"
        await asyncio.sleep(0.02)


async def test_with_every_tab_hidden_a_user_is_away_and_the_bell_does_not_count_as_seen(
    alice: Any, bob: Any
) -> None:
    """A tab out of sight still shows the notification in its bell, but that is not seeing
    it: it stays pending for Web Push and email (linkup.tasks.fallback), and the user is
    recorded away. A tab back in sight counts again."""
    room = await db(direct)(alice, bob)
    token = await db(token_for)(bob)
    chat = await connect(token)
    bell = await connect(token, path="/ws/notifications/")
    await drain(bell)
    await send(chat, {"type": "focus", "room": None, "visible": False})
    await until(lambda: hidden_since(bob) is not None)
    await db(sent)(alice, room, "while away")
    assert (await recv_type(bell, "notification"))["notification"]["body"] == "while away"
    await bell.receive_nothing(0.3)
    assert [n.delivered_via for n in await db(of)(bob)] == [""]
    # Another tab, in sight (a socket that says nothing of it counts as in sight).
    other = await connect(token)
    await db(sent)(alice, room, "a second tab")
    await recv_type(bell, "notification")
    await bell.receive_nothing(0.3)
    assert [n.delivered_via for n in await db(of)(bob)] == ["", "live"]
    await other.disconnect()  # gone: every tab left is hidden again
    await until(lambda: hidden_since(bob) is not None)
    await send(chat, {"type": "focus", "room": None, "visible": True})
    await until(lambda: hidden_since(bob) is None)
    await db(sent)(alice, room, "back")
    await recv_type(bell, "notification")
    await bell.receive_nothing(0.3)
    assert [n.delivered_via for n in await db(of)(bob)] == ["", "live", "live"]
    # A visibility that is not a boolean: a clear error, the socket stays.
    await drain(chat)
    await send(chat, {"type": "focus", "room": None, "visible": "yes"})
    error = await recv_type(chat, "error")
    assert error["code"] == "invalid_frame" and "visible" in error["detail"]
    await send(chat, {"type": "ping"})  # still open: answered (after any catch-up)
    assert "pong" in [frame["type"] for frame in await drain(chat, 0.5)]
    await chat.disconnect()
    await bell.disconnect()


async def test_read_state_is_synced_across_tabs(alice: Any, bob: Any) -> None:
    room = await db(direct)(alice, bob)
    await db(sent)(alice, room, "x")
    token = await db(token_for)(bob)
    tab1 = await connect(token, path="/ws/notifications/")
    tab2 = await connect(token, path="/ws/notifications/")
    (n,) = [f["notification"] for f in await drain(tab1)]
    await drain(tab2)
    await send(tab1, {"type": "notification.read", "ids": [n["id"]]})
    for tab in (tab1, tab2):
        assert await recv_type(tab, "notification.read") == {
            "type": "notification.read",
            "ids": [n["id"]],
        }
    # Over REST too.
    await db(sent)(alice, room, "y")
    (m,) = [f["notification"] for f in await drain(tab1)]
    await drain(tab2)
    await db(lambda: Api(bob).post("/notifications/read-all"))()
    for tab in (tab1, tab2):
        assert (await recv_type(tab, "notification.read"))["ids"] == [m["id"]]
    await tab1.disconnect()
    await tab2.disconnect()


async def test_notification_sockets_share_their_process_hub_membership(
    alice: Any, bob: Any
) -> None:
    """Like chat sockets, notification sockets hold no channel of their own: the process's
    hub is the one member of the user's notification group, whatever the number of tabs,
    and leaves it with the last tab."""
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    from linkup.actions.events import notify_group
    from linkup.realtime.hub import hub

    room = await db(direct)(alice, bob)
    token = await db(token_for)(bob)
    tabs = [await connect(token, path="/ws/notifications/") for _ in range(3)]
    group = notify_group(bob.pk)
    layer = get_channel_layer()
    assert len(hub().members[group]) == 3
    assert group in hub().joined  # one layer membership, the hub's channel
    in_memory = isinstance(layer, InMemoryChannelLayer)
    if in_memory:
        assert set(layer.groups[group]) == {hub().channel}
    await db(sent)(alice, room, "to every tab")
    for tab in tabs:
        assert (await recv_type(tab, "notification"))["notification"]["body"] == "to every tab"
    for tab in tabs:
        await tab.disconnect()
    assert group not in hub().members
    for _ in range(100):
        if group not in hub().joined:
            break
        await asyncio.sleep(0.01)
    assert group not in hub().joined
    assert not in_memory or group not in layer.groups


async def test_socket_answers_bad_frames_with_errors_and_stays_open(alice: Any, bob: Any) -> None:
    comm = await connect(await db(token_for)(bob), path="/ws/notifications/")
    for frame, code in (
        ("not json", "invalid_frame"),
        ('{"type": "nope"}', "unknown_type"),
        ('{"type": "notification.read", "ids": "1"}', "invalid_frame"),
        ('{"type": "notification.read", "ids": [0]}', "invalid_frame"),
        ('{"type": "notification.read", "ids": [424242]}', "not_found"),
        ("x" * 70000, "too_large"),
    ):
        await comm.send_to(text_data=frame)
        error = await recv_type(comm, "error")
        assert error["code"] == code, (frame[:40], error)
    await send(comm, {"type": "ping"})
    assert (await recv_type(comm, "pong"))["ts"].endswith("Z")
    await comm.disconnect()


async def test_socket_refuses_without_credentials(alice: Any) -> None:
    comm = await connect(path="/ws/notifications/", expect_hello=False)
    connected, _ = comm.connected_result  # type: ignore[attr-defined]
    assert not connected


async def test_logout_closes_the_notifications_socket(alice: Any) -> None:
    from linkup.actions.credentials import do_revoke_token
    from linkup.models import ApiToken
    from linkup.realtime.edges import perform

    token = await db(token_for)(alice)
    comm = await connect(token, path="/ws/notifications/")
    token_id = await db(lambda: ApiToken.objects.get(user=alice).pk)()
    await perform(do_revoke_token, token_id)
    output = await comm.receive_output(timeout=1)
    assert output == {"type": "websocket.close", "code": 4401}


async def test_focus_frames_spare_the_room_across_sockets(alice: Any, bob: Any) -> None:
    """The chat socket's `focus` is what the send path reads: a tab showing the room gets no
    notification; once it shows another room (or none), notifications resume."""
    room = await db(direct)(alice, bob)
    chat = await connect(await db(token_for)(bob))
    await send(chat, {"type": "focus", "room": room})
    await send(chat, {"type": "ping"})
    await recv_type(chat, "pong")

    def rest_send(body: str) -> None:
        response = Api(alice).post(f"/rooms/{room}/messages", {"client_id": cid(), "body": body})
        assert response.status_code == 201

    await db(rest_send)("seen in the open room")
    assert await db(of)(bob) == []
    await send(chat, {"type": "focus", "room": None})
    await send(chat, {"type": "ping"})
    await drain(chat)
    await db(rest_send)("room not shown")
    assert [n.body for n in await db(of)(bob)] == ["room not shown"]
    await chat.disconnect()
    await db(rest_send)("socket gone")
    assert len(await db(of)(bob)) == 2


@given(st.one_of(st.text(max_size=200), st.binary(max_size=50), st.none()))
def test_notification_frames_parse_or_fail_cleanly(data: Any) -> None:
    try:
        frame = parse_notification_frame(data, max_bytes=100)
    except LinkupError as exc:
        assert exc.as_frame()["code"] in ("invalid_frame", "unknown_type", "too_large")
    else:
        assert isinstance(frame, (PingFrame, NotificationReadFrame))


def test_many_recipients_get_one_query_worth_of_notifications(
    django_assert_max_num_queries: Any,
) -> None:
    owner = make_user("owner")
    members = [make_user(f"m{i}") for i in range(30)]
    room = group(owner, *members)
    body = " ".join(f"@m{i}" for i in range(30))
    # Lock, memberships, earlier sends, inserts, markers, watermarks, the sender's display
    # name, notifications, schedule: a fixed number of statements whatever the number
    # mentioned.
    with django_assert_max_num_queries(21):
        sent(owner, room, body)
    assert Notification.objects.filter(kind="mention").count() == 30


async def test_notification_sockets_per_user_are_capped(alice: Any, settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "MAX_CONNECTIONS_PER_USER": 2}
    token = await db(token_for)(alice)
    first = await connect(token, path="/ws/notifications/")
    second = await connect(token, path="/ws/notifications/")
    third = await connect(token, path="/ws/notifications/", expect_hello=False)
    assert third.connected_result == (False, 4429)  # type: ignore[attr-defined]
    chat = await connect(token)  # counted apart: a tab opens one of each
    await first.disconnect()
    fourth = await connect(token, path="/ws/notifications/")
    for comm in (second, fourth, chat):
        await comm.disconnect()


async def test_notifications_committed_together_each_reach_the_socket(alice: Any, bob: Any) -> None:
    """A batch's events for one notifications group go to the layer one event a message:
    the notifications socket is a Channels consumer, not a hub, and takes each as it is."""
    from linkup.realtime.edges import collect
    from linkup.realtime.hub import publish

    room = await db(direct)(alice, bob)
    comm = await connect(await db(token_for)(bob), path="/ws/notifications/", expect_hello=False)
    await recv_type(comm, "hello")
    _, events = await collect(
        do_send_batch, [Send(alice, room, cid(), "one"), Send(alice, room, cid(), "two")]
    )
    await publish(events)
    bodies = [(await recv_type(comm, "notification"))["notification"]["body"] for _ in range(2)]
    assert bodies == ["one", "two"]
    await comm.disconnect()
