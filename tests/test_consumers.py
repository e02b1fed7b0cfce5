"""The chat socket, driven through WebsocketCommunicator against the real consumer."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from linkup.actions.credentials import do_issue_ticket, do_revoke_token
from linkup.actions.events import collecting_events, publish
from linkup.actions.messages import do_send_message
from linkup.actions.rooms import do_add_members, do_create_room, do_remove_member
from linkup.models import ApiToken, Message, MessagingError, Room
from tests.conftest import token_for
from tests.wsutil import connect, db, drain, recv, recv_type, send

pytestmark = pytest.mark.django_db(transaction=True)


def cid() -> str:
    return str(uuid.uuid4())


def direct(a: Any, b: Any) -> int:
    room, _ = do_create_room(a, "direct", [b.pk])
    return int(room["id"])


@pytest.fixture
def setup(alice: Any, bob: Any, carol: Any) -> dict[str, Any]:
    return {
        "room": direct(alice, bob),
        "alice": token_for(alice),
        "bob": token_for(bob),
        "carol": token_for(carol),
    }


async def test_hello_is_first_frame(setup: dict[str, Any], alice: Any) -> None:
    comm = await connect(setup["alice"], expect_hello=False)
    hello = await recv(comm)
    assert hello["type"] == "hello" and hello["protocol"] == 1
    assert hello["user"] == alice.pk and hello["heartbeat_s"] == 30
    assert hello["server_time"].endswith("Z")
    await comm.disconnect()


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"authorization", b"Bearer not-a-token")],
        [(b"authorization", b"Basic YWxpY2U6cHc=")],
    ],
)
async def test_handshake_without_valid_credentials_is_refused(
    setup: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    comm = await connect(headers=headers, expect_hello=False)
    connected, code = comm.connected_result  # type: ignore[attr-defined]
    assert not connected and code == 4401


async def test_token_in_query_string_is_not_accepted(setup: dict[str, Any]) -> None:
    comm = await connect(path=f"/ws/chat/?token={setup['alice']}", expect_hello=False)
    assert comm.connected_result == (False, 4401)  # type: ignore[attr-defined]


async def test_ticket_opens_one_socket_only(setup: dict[str, Any], alice: Any) -> None:
    ticket, _ = await db(do_issue_ticket)(alice)
    first = await connect(path=f"/ws/chat/?ticket={ticket}")
    second = await connect(path=f"/ws/chat/?ticket={ticket}", expect_hello=False)
    assert second.connected_result == (False, 4401)  # type: ignore[attr-defined]
    await first.disconnect()


async def test_send_acks_then_reaches_every_member_socket(setup: dict[str, Any]) -> None:
    a1 = await connect(setup["alice"])
    a2 = await connect(setup["alice"])
    b = await connect(setup["bob"])
    c = await connect(setup["carol"])
    client_id = cid()
    await send(
        a1,
        {
            "type": "message.send",
            "room": setup["room"],
            "client_id": client_id,
            "body": "  hello  ",
        },
    )
    ack = await recv_type(a1, "message.ack")
    assert ack["client_id"] == client_id
    message = ack["message"]
    assert message["seq"] == 1 and message["body"] == "hello" and message["room"] == setup["room"]
    for comm in (a1, a2, b):
        new = await recv_type(comm, "message.new")
        assert new["message"] == message
    assert await c.receive_nothing(timeout=0.3)
    for comm in (a1, a2, b, c):
        await comm.disconnect()


async def test_duplicate_client_id_returns_original_and_broadcasts_nothing(
    setup: dict[str, Any],
) -> None:
    a = await connect(setup["alice"])
    b = await connect(setup["bob"])
    frame = {"type": "message.send", "room": setup["room"], "client_id": cid(), "body": "once"}
    await send(a, frame)
    first = (await recv_type(a, "message.ack"))["message"]
    await recv_type(a, "message.new")
    await recv_type(b, "message.new")
    await send(a, {**frame, "body": "a different body"})
    again = await recv_type(a, "message.ack")
    assert again["message"] == first
    assert await a.receive_nothing(timeout=0.3) and await b.receive_nothing(timeout=0.3)
    assert await db(Message.objects.count)() == 1
    await a.disconnect()
    await b.disconnect()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "invalid_frame"),
        ("[1, 2]", "invalid_frame"),
        ('{"type": 5}', "invalid_frame"),
        ('{"type": "nope"}', "unknown_type"),
        ('{"type": "message.send", "room": 1, "client_id": "x", "body": "   "}', "invalid_frame"),
        ('{"type": "message.send", "room": true, "client_id": "x", "body": "b"}', "invalid_frame"),
        (
            '{"type": "message.send", "room": 1, "client_id": "x", "body": "a\\u0000b"}',
            "invalid_frame",
        ),
        ('{"type": "receipt", "room": 1, "kind": "seen", "seq": 1}', "invalid_frame"),
        ('{"type": "typing", "room": 1, "state": "maybe"}', "invalid_frame"),
        ('{"type": "sync", "cursors": {"abc": 1}}', "invalid_frame"),
        ('{"type": "focus"}', "invalid_frame"),
    ],
)
async def test_bad_frames_get_error_frames_and_the_socket_stays_open(
    setup: dict[str, Any], raw: str, code: str
) -> None:
    a = await connect(setup["alice"])
    await a.send_to(text_data=raw)
    error = await recv_type(a, "error")
    assert error["code"] == code
    await send(a, {"type": "ping"})
    assert (await recv_type(a, "pong"))["ts"].endswith("Z")
    assert await db(Message.objects.count)() == 0
    await a.disconnect()


async def test_error_echoes_client_id_as_ref(setup: dict[str, Any]) -> None:
    a = await connect(setup["alice"])
    client_id = cid()
    await send(a, {"type": "message.send", "room": 10**12, "client_id": client_id, "body": "x"})
    error = await recv_type(a, "error")
    assert error == {
        "type": "error",
        "code": "not_found",
        "detail": "room not found",
        "ref": client_id,
    }
    await a.disconnect()


async def test_binary_and_oversized_frames(setup: dict[str, Any]) -> None:
    a = await connect(setup["alice"])
    await a.send_to(bytes_data=b"\x00\x01")
    assert (await recv_type(a, "error"))["code"] == "invalid_frame"
    await a.send_to(text_data='{"type":"ping","pad":"' + "x" * 70_000 + '"}')
    assert (await recv_type(a, "error"))["code"] == "too_large"
    await send(a, {"type": "ping"})
    await recv_type(a, "pong")
    await a.disconnect()


async def test_abusive_socket_is_closed_with_1008(setup: dict[str, Any], settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "ABUSE_MAX_BAD_FRAMES": 5}
    a = await connect(setup["alice"])
    for _ in range(5):
        await a.send_to(text_data="garbage")
        await recv_type(a, "error")
    output = await a.receive_output(timeout=2)
    assert output == {"type": "websocket.close", "code": 1008}


async def test_sends_are_rate_limited_with_burst(setup: dict[str, Any], settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "SEND_RATE_PER_S": 0.001, "SEND_BURST": 3}
    a = await connect(setup["alice"])
    for _ in range(3):
        await send(
            a, {"type": "message.send", "room": setup["room"], "client_id": cid(), "body": "x"}
        )
        await recv_type(a, "message.ack")
        await recv_type(a, "message.new")
    refused_id = cid()
    await send(
        a, {"type": "message.send", "room": setup["room"], "client_id": refused_id, "body": "x"}
    )
    error = await recv_type(a, "error")
    assert error["code"] == "rate_limited" and error["ref"] == refused_id
    assert error["retry_after_s"] > 0
    assert await db(Message.objects.count)() == 3
    await a.disconnect()


async def test_lost_doorbell_gap_is_filled_in_order(setup: dict[str, Any], alice: Any) -> None:
    b = await connect(setup["bob"])
    a = await connect(setup["alice"])

    def send_silently(body: str) -> None:
        with collecting_events():  # events collected and dropped: every doorbell lost
            do_send_message(alice, setup["room"], cid(), body)

    await db(send_silently)("one")
    await db(send_silently)("two")
    await send(
        a, {"type": "message.send", "room": setup["room"], "client_id": cid(), "body": "three"}
    )
    seqs = [f["message"]["seq"] for f in await drain(b) if f["type"] == "message.new"]
    assert seqs == [1, 2, 3]
    await a.disconnect()
    await b.disconnect()


async def test_ping_delivers_what_lost_doorbells_hid(setup: dict[str, Any], alice: Any) -> None:
    b = await connect(setup["bob"])

    def send_silently() -> None:
        with collecting_events():
            do_send_message(alice, setup["room"], cid(), "quiet")

    await db(send_silently)()
    assert await b.receive_nothing(timeout=0.2)
    await send(b, {"type": "ping"})
    new = await recv_type(b, "message.new")
    assert new["message"]["seq"] == 1
    await recv_type(b, "pong")
    await b.disconnect()


async def test_doorbells_out_of_order_are_delivered_in_seq_order(
    setup: dict[str, Any], alice: Any
) -> None:
    b = await connect(setup["bob"])
    collected: list[Any] = []

    def send_collect(body: str) -> None:
        with collecting_events() as events:
            do_send_message(alice, setup["room"], cid(), body)
        collected.extend(events)

    await db(send_collect)("first")
    await db(send_collect)("second")
    await publish(list(reversed(collected)))  # the doorbell of 2 rings before that of 1
    frames = await drain(b)
    assert [f["message"]["seq"] for f in frames] == [1, 2]
    await b.disconnect()


async def test_receipts_reach_members_and_are_monotonic(setup: dict[str, Any]) -> None:
    a = await connect(setup["alice"])
    b = await connect(setup["bob"])
    for body in ("1", "2"):
        await send(
            a, {"type": "message.send", "room": setup["room"], "client_id": cid(), "body": body}
        )
        await recv_type(a, "message.ack")
        await recv_type(a, "message.new")
    await drain(b)
    await send(b, {"type": "receipt", "room": setup["room"], "kind": "read", "seq": 99})
    for comm in (a, b):
        receipt = await recv_type(comm, "receipt")
        assert receipt["kind"] == "read" and receipt["seq"] == 2  # clamped to last_seq
        assert receipt["at"].endswith("Z")
        # Everyone has read everything: the room's watermarks move, and every member hears.
        assert await recv_type(comm, "watermark") == {
            "type": "watermark",
            "room": setup["room"],
            "delivered_seq": 2,
            "read_seq": 2,
        }
    await send(b, {"type": "receipt", "room": setup["room"], "kind": "delivered", "seq": 1})
    assert await a.receive_nothing(timeout=0.3)  # read implies delivered: nothing moved
    await a.disconnect()
    await b.disconnect()


async def test_typing_reaches_others_only_and_stops_on_close(setup: dict[str, Any]) -> None:
    a = await connect(setup["alice"])
    b = await connect(setup["bob"])
    await send(a, {"type": "typing", "room": setup["room"], "state": "start"})
    typing = await recv_type(b, "typing")
    assert typing["state"] == "start" and typing["room"] == setup["room"]
    assert await a.receive_nothing(timeout=0.2)
    await a.disconnect()
    stop = await recv_type(b, "typing")
    assert stop["state"] == "stop"
    await b.disconnect()


async def test_typing_frames_are_rate_limited_and_the_socket_stays_open(
    setup: dict[str, Any],
) -> None:
    a = await connect(setup["alice"])
    b = await connect(setup["bob"])
    for i in range(10):  # the burst: alternating start/stop, each relayed
        await send(a, {"type": "typing", "room": setup["room"], "state": ("start", "stop")[i % 2]})
    for i in range(10):
        assert (await recv_type(b, "typing"))["state"] == ("start", "stop")[i % 2]
    await send(a, {"type": "typing", "room": setup["room"], "state": "start"})
    refused = await recv_type(a, "error")
    assert refused["code"] == "rate_limited" and 0 < refused["retry_after_s"] <= 0.5
    assert await b.receive_nothing(timeout=0.2)  # not relayed
    await send(a, {"type": "ping"})
    assert (await recv_type(a, "pong"))["type"] == "pong"
    await a.disconnect()
    await b.disconnect()


async def test_typing_and_focus_in_foreign_room_are_not_found(
    setup: dict[str, Any], carol: Any
) -> None:
    c = await connect(setup["carol"])
    await send(c, {"type": "typing", "room": setup["room"], "state": "start"})
    assert (await recv_type(c, "error"))["code"] == "not_found"
    await send(c, {"type": "focus", "room": setup["room"]})
    assert (await recv_type(c, "error"))["code"] == "not_found"
    await send(c, {"type": "focus", "room": None})
    assert await c.receive_nothing(timeout=0.2)
    await c.disconnect()


async def test_sync_returns_messages_after_cursors(setup: dict[str, Any]) -> None:
    a = await connect(setup["alice"])
    for body in ("1", "2", "3"):
        await send(
            a, {"type": "message.send", "room": setup["room"], "client_id": cid(), "body": body}
        )
        await recv_type(a, "message.ack")
        await recv_type(a, "message.new")
    await send(a, {"type": "sync", "cursors": {str(setup["room"]): 1}})
    result = await recv_type(a, "sync.result")
    assert result["room_ids"] == [setup["room"]]
    (entry,) = result["rooms"]
    assert [m["seq"] for m in entry["messages"]] == [2, 3]
    assert entry["has_more"] is False and entry["last_seq"] == 3
    await a.disconnect()


async def test_added_member_is_subscribed_without_reconnect(
    setup: dict[str, Any], alice: Any, bob: Any, carol: Any
) -> None:
    group, _ = await db(do_create_room)(alice, "group", [bob.pk], "g")
    c = await connect(setup["carol"])
    a = await connect(setup["alice"])
    await send(
        a, {"type": "message.send", "room": group["id"], "client_id": cid(), "body": "before"}
    )
    await recv_type(a, "message.ack")
    assert await c.receive_nothing(timeout=0.2)

    def add() -> list[Any]:
        with collecting_events() as events:
            do_add_members(alice, group["id"], [carol.pk])
        return events

    await publish(await db(add)())
    updated = await recv_type(c, "room.updated")
    assert updated["room"]["id"] == group["id"] and updated["room"]["read_seq"] == 1
    await send(
        a, {"type": "message.send", "room": group["id"], "client_id": cid(), "body": "after"}
    )
    new = await recv_type(c, "message.new")
    assert new["message"]["body"] == "after" and new["message"]["seq"] == 2
    await a.disconnect()
    await c.disconnect()


async def test_removed_member_hears_nothing_more(
    setup: dict[str, Any], alice: Any, bob: Any
) -> None:
    group, _ = await db(do_create_room)(alice, "group", [bob.pk], "g")
    b = await connect(setup["bob"])
    a = await connect(setup["alice"])

    def remove() -> list[Any]:
        with collecting_events() as events:
            do_remove_member(alice, group["id"], bob.pk)
        return events

    await publish(await db(remove)())
    assert (await recv_type(b, "room.removed"))["room"] == group["id"]
    assert (await recv_type(a, "room.updated"))["room"]["members"] == [
        {"id": alice.pk, "username": "alice", "display_name": "", "avatar": None, "role": "owner"}
    ]
    await send(
        a, {"type": "message.send", "room": group["id"], "client_id": cid(), "body": "secret"}
    )
    await recv_type(a, "message.ack")
    assert await b.receive_nothing(timeout=0.3)
    await send(b, {"type": "ping"})
    assert (await recv_type(b, "pong"))["type"] == "pong"
    await a.disconnect()
    await b.disconnect()


async def test_revoked_token_closes_its_sockets_only(setup: dict[str, Any], alice: Any) -> None:
    other_token = await db(token_for)(alice)
    revoked = await connect(setup["alice"])
    kept = await connect(other_token)
    token_id = await db(lambda: ApiToken.objects.order_by("pk").filter(user=alice).first().pk)()

    def revoke() -> list[Any]:
        with collecting_events() as events:
            do_revoke_token(token_id)
        return events

    await publish(await db(revoke)())
    assert await revoked.receive_output(timeout=1) == {"type": "websocket.close", "code": 4401}
    await send(kept, {"type": "ping"})
    await recv_type(kept, "pong")
    await kept.disconnect()


async def test_connections_per_user_are_capped(setup: dict[str, Any], settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "MAX_CONNECTIONS_PER_USER": 2}
    first = await connect(setup["alice"])
    second = await connect(setup["alice"])
    third = await connect(setup["alice"], expect_hello=False)
    assert third.connected_result[0] is False  # type: ignore[attr-defined]
    await first.disconnect()
    fourth = await connect(setup["alice"])
    await second.disconnect()
    await fourth.disconnect()


async def test_every_frame_type_runs_without_sync_orm_on_the_loop(
    setup: dict[str, Any],
) -> None:
    """Django raises SynchronousOnlyOperation for an ORM call on the event loop; the consumer
    would turn it into a server_error frame and an async_context record. Drive every frame."""
    a = await connect(setup["alice"])
    b = await connect(setup["bob"])
    room = setup["room"]
    frames = [
        {"type": "message.send", "room": room, "client_id": cid(), "body": "hi"},
        {"type": "receipt", "room": room, "kind": "delivered", "seq": 1},
        {"type": "receipt", "room": room, "kind": "read", "seq": 1},
        {"type": "typing", "room": room, "state": "start"},
        {"type": "typing", "room": room, "state": "stop"},
        {"type": "focus", "room": room},
        {"type": "focus", "room": None},
        {"type": "sync", "cursors": {str(room): 0}},
        {"type": "sync", "cursors": {}},
        {"type": "ping"},
    ]
    seen = []
    for frame in frames:
        await send(b, frame)
        seen += await drain(b)
    await a.disconnect()
    await b.disconnect()
    assert not [f for f in seen if f["type"] == "error"], seen
    assert {"message.ack", "message.new", "sync.result", "pong"} <= {f["type"] for f in seen}
    assert await db(MessagingError.objects.count)() == 0


async def test_room_rows_are_untouched_by_refused_sends(setup: dict[str, Any]) -> None:
    a = await connect(setup["alice"])
    await send(
        a, {"type": "message.send", "room": setup["room"], "client_id": cid(), "body": "x" * 4001}
    )
    assert (await recv_type(a, "error"))["code"] == "invalid_frame"
    room = await db(Room.objects.get)(pk=setup["room"])
    assert room.last_seq == 0
    await a.disconnect()


@pytest.mark.parametrize("local_first", [True, False])
async def test_channel_layer_failure_never_fails_a_send(
    setup: dict[str, Any], monkeypatch: Any, settings: Any, local_first: bool
) -> None:
    """The layer down: the send commits all the same. The process's own sockets get the
    message from its hub at once; elsewhere (local_first off: as if on another process)
    the lost doorbell is made good at the next ping."""
    from channels.layers import get_channel_layer

    settings.LINKUP = {**settings.LINKUP, "HUB_LOCAL_FIRST": local_first}
    b = await connect(setup["bob"])
    a = await connect(setup["alice"])
    layer = get_channel_layer()

    async def broken(group: str, message: Any) -> None:
        raise ConnectionError("the layer is down")

    monkeypatch.setattr(layer, "group_send", broken)
    client_id = cid()
    await send(
        a,
        {
            "type": "message.send",
            "room": setup["room"],
            "client_id": client_id,
            "body": "still stored",
        },
    )
    ack = await recv_type(a, "message.ack")
    assert ack["client_id"] == client_id and ack["message"]["seq"] == 1
    if local_first:
        assert (await recv_type(b, "message.new"))["message"]["client_id"] == client_id
        await a.disconnect()
        await b.disconnect()
        return
    assert await b.receive_nothing(timeout=0.2)
    await send(b, {"type": "ping"})  # the lost doorbell is made good at the next ping
    assert (await recv_type(b, "message.new"))["message"]["client_id"] == client_id
    await recv_type(b, "pong")
    await a.disconnect()
    await b.disconnect()


async def test_unserializable_frame_becomes_server_error_and_is_recorded(
    setup: dict[str, Any], monkeypatch: Any, caplog: Any
) -> None:
    from linkup.store import views

    a = await connect(setup["alice"])
    real = views.sender_dict  # the sender in the message object
    monkeypatch.setattr(views, "sender_dict", lambda u: {**real(u), "when": object()})
    await send(
        a,
        {
            "type": "message.send",
            "room": setup["room"],
            "client_id": cid(),
            "body": "body text that must not be logged",
        },
    )
    error = await recv_type(a, "error")
    assert error["code"] == "server_error"
    record = await db(MessagingError.objects.get)()
    assert record.category == "serialization"
    assert '"when":"object"' in record.context["shape"]
    assert "must not be logged" not in str(record.context) + caplog.text
    assert await db(Message.objects.count)() == 0
    await a.disconnect()


async def test_logs_carry_no_bodies_or_tokens(
    setup: dict[str, Any], monkeypatch: Any, caplog: Any, settings: Any
) -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    settings.LINKUP = {**settings.LINKUP, "HUB_LOCAL_FIRST": False}  # every doorbell to the layer

    async def broken(group: str, message: Any) -> None:
        raise ConnectionError("down")

    monkeypatch.setattr(layer, "group_send", broken)  # forces delivery warnings with context
    caplog.set_level("DEBUG", logger="linkup")
    a = await connect(setup["alice"])
    await send(
        a,
        {
            "type": "message.send",
            "room": setup["room"],
            "client_id": cid(),
            "body": "top secret words",
        },
    )
    await recv_type(a, "message.ack")
    await a.disconnect()
    assert "channel layer send failed" in caplog.text
    assert "top secret words" not in caplog.text and setup["alice"] not in caplog.text


async def test_storage_failure_answers_unavailable_and_keeps_the_socket(
    setup: dict[str, Any], monkeypatch: Any
) -> None:
    from django.db import OperationalError

    def down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    from linkup.actions import messages

    a = await connect(setup["alice"])
    monkeypatch.setattr(messages, "_commit_together", down)  # the batch's write
    client_id = cid()
    await send(
        a,
        {"type": "message.send", "room": setup["room"], "client_id": client_id, "body": "retry me"},
    )
    error = await recv_type(a, "error")
    assert error["code"] == "unavailable" and error["ref"] == client_id
    assert error["retry_after_s"] == 2
    monkeypatch.undo()
    await send(
        a,
        {"type": "message.send", "room": setup["room"], "client_id": client_id, "body": "retry me"},
    )
    assert (await recv_type(a, "message.ack"))["message"]["seq"] == 1
    await a.disconnect()


async def test_room_joined_while_connecting_is_subscribed(
    setup: dict[str, Any], alice: Any, bob: Any, carol: Any, monkeypatch: Any
) -> None:
    """A join that commits between the consumer's subscribe and its cursor read."""
    from linkup.realtime.consumers import ChatConsumer

    group, _ = await db(do_create_room)(alice, "group", [bob.pk], "late")
    await db(direct)(carol, alice)  # carol has a room, so connecting subscribes to something
    real_enter = ChatConsumer._enter
    joined = False

    async def subscribe_then_join(self: Any, groups: list[str]) -> None:
        nonlocal joined
        await real_enter(self, groups)
        rooms = [g for g in groups if g.startswith("linkup.room.")]
        if rooms and not joined and self.user.pk == carol.pk:
            joined = True

            def add() -> None:
                with collecting_events():  # its room.updated doorbell is lost too
                    do_add_members(alice, group["id"], [carol.pk])

            await db(add)()

    monkeypatch.setattr(ChatConsumer, "_enter", subscribe_then_join)
    c = await connect(setup["carol"])
    a = await connect(setup["alice"])
    await send(
        a, {"type": "message.send", "room": group["id"], "client_id": cid(), "body": "welcome"}
    )
    new = await recv_type(c, "message.new")  # live, without waiting for a ping
    assert new["message"]["body"] == "welcome" and joined
    await a.disconnect()
    await c.disconnect()


async def test_room_left_while_connecting_is_not_followed(
    setup: dict[str, Any], alice: Any, bob: Any, carol: Any, monkeypatch: Any
) -> None:
    """The rooms read with the token are subscribed before the cursors are read: one the
    user left in between is left again, and nothing of it reaches the socket."""
    from linkup.realtime.consumers import ChatConsumer
    from linkup.realtime.hub import hub

    group, _ = await db(do_create_room)(alice, "group", [carol.pk], "leaving")
    real_enter = ChatConsumer._enter
    entered: list[list[str]] = []

    async def subscribe_then_leave(self: Any, groups: list[str]) -> None:
        await real_enter(self, groups)
        if self.user.pk == carol.pk and not entered:
            entered.append(groups)

            def leave() -> None:
                with collecting_events():  # its doorbells are lost: the read must tell
                    do_remove_member(carol, group["id"], carol.pk)

            await db(leave)()

    monkeypatch.setattr(ChatConsumer, "_enter", subscribe_then_leave)
    c = await connect(setup["carol"])
    # The first subscription took the token's rooms, the left one among them.
    assert f"linkup.room.{group['id']}" in entered[0]
    assert not hub().members.get(f"linkup.room.{group['id']}")  # and left again
    a = await connect(setup["alice"])
    await send(a, {"type": "message.send", "room": group["id"], "client_id": cid(), "body": "x"})
    await recv_type(a, "message.ack")
    assert await c.receive_nothing(timeout=0.3)
    await a.disconnect()
    await c.disconnect()


async def test_frames_for_a_closing_socket_are_dropped_quietly() -> None:
    """Events still queued for a socket being closed (idle 4408, say) send nothing, and a
    server that refuses frames after closing under us (uvicorn's keepalive timeout) does not
    crash the consumer."""
    from linkup.realtime.consumers import ChatConsumer

    sent: list[str] = []
    server_closed = False

    async def like_uvicorn(message: dict[str, Any]) -> None:
        # uvicorn raises this for any frame after the socket's close went out.
        if server_closed:
            raise RuntimeError(f"Unexpected ASGI message {message['type']!r}, after close.")
        sent.append(message["type"])

    consumer = ChatConsumer()
    consumer.base_send = like_uvicorn
    await consumer.send_frame({"type": "pong"})
    await consumer.close(code=4408)
    await consumer.send_frame({"type": "presence", "user": 1, "status": "online"})
    assert sent == ["websocket.send", "websocket.close"]

    other = ChatConsumer()
    other.base_send = like_uvicorn
    server_closed = True
    await other.send_frame({"type": "pong"})  # no exception
    assert other.closing

    async def gone(message: dict[str, Any]) -> None:
        from uvicorn.protocols.utils import ClientDisconnected

        raise ClientDisconnected()  # the client went between our read and this send

    third = ChatConsumer()
    third.base_send = gone
    await third.send_frame({"type": "message.ack"})
    assert third.closing

    fourth = ChatConsumer()
    fourth.base_send = gone
    await fourth.close(code=4408)  # the client went first: closing raises nothing
    assert fourth.closing


async def test_a_client_whose_unsent_bytes_stay_too_many_is_closed_and_aborted(
    setup: dict[str, Any], settings: Any
) -> None:
    """The hub writes without waiting: a socket whose transport keeps more than
    SLOW_CONSUMER_MAX_BYTES unsent for SLOW_CONSUMER_TIMEOUT_S is closed (1013) and its
    connection aborted (what was queued for it freed); the other sockets carry on."""
    settings.LINKUP = {
        **settings.LINKUP,
        "SLOW_CONSUMER_MAX_BYTES": 1000,
        "SLOW_CONSUMER_TIMEOUT_S": 0.2,
    }
    slow = await connect(setup["bob"], raw=True)
    fine = await connect(setup["bob"], raw=True)
    aborted: list[bool] = []
    frames = slow.scope["extensions"]["linkup.frames"]
    frames["buffered"] = lambda: 5000  # the client stopped reading
    frames["abort"] = lambda: aborted.append(True)
    a = await connect(setup["alice"])
    await send(a, {"type": "message.send", "room": setup["room"], "client_id": cid(), "body": "hi"})
    assert (await recv_type(fine, "message.new"))["message"]["body"] == "hi"
    assert (await recv_type(slow, "message.new"))["message"]["body"] == "hi"  # written
    closed = await slow.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": 1013, "reason": ""} or (
        closed["type"] == "websocket.close" and closed["code"] == 1013
    )
    assert aborted == [True]
    await send(a, {"type": "message.send", "room": setup["room"], "client_id": cid(), "body": "on"})
    assert (await recv_type(fine, "message.new"))["message"]["body"] == "on"
    for comm in (a, fine):
        await comm.disconnect()


async def test_tabs_of_one_user_connecting_together_each_keep_their_own_cursors(
    setup: dict[str, Any],
) -> None:
    """Their handshakes share one read of the user's rooms; each tab still gets every
    message (a shared cursor would let the first tab's delivery drop the others')."""
    import asyncio

    tabs = await asyncio.gather(*(connect(setup["bob"], raw=i % 2 == 0) for i in range(6)))
    a = await connect(setup["alice"])
    for body in ("one", "two"):
        await send(
            a, {"type": "message.send", "room": setup["room"], "client_id": cid(), "body": body}
        )
    for tab in tabs:
        got = [(await recv_type(tab, "message.new"))["message"]["body"] for _ in range(2)]
        assert got == ["one", "two"]
    for comm in (a, *tabs):
        await comm.disconnect()


async def test_a_socket_closed_while_it_catches_up_leaves_nothing_in_the_hub(
    setup: dict[str, Any], bob: Any
) -> None:
    """A room joined by a catch-up that finishes after the socket went is not left in the
    hub (which would keep offering it frames, and keep the group)."""
    from linkup.actions.events import room_group, user_group
    from linkup.realtime.hub import hub

    b = await connect(setup["bob"])
    assert hub().members.get(user_group(bob.pk))
    consumers = list(hub().members[user_group(bob.pk)])
    (consumer,) = consumers
    await b.disconnect()
    await consumer._enter([room_group(999_999)])  # what a late catch-up would do
    assert room_group(999_999) not in hub().members
    assert user_group(bob.pk) not in hub().members


@pytest.mark.parametrize("closed_at", ["COUNTED", "ADMITTED", "READY", "PRESENT"])
async def test_a_socket_closed_at_any_phase_of_its_set_up_leaves_nothing_behind(
    setup: dict[str, Any], bob: Any, monkeypatch: pytest.MonkeyPatch, closed_at: str
) -> None:
    """Refused by the shared count (COUNTED), its set-up failed (ADMITTED), serving without
    presence after its join failed (READY), or closed in use (PRESENT): afterwards
    the user has no socket counted here or in the store, and the hub holds nothing of it."""
    import asyncio

    from linkup.realtime import coalesce
    from linkup.realtime.consumers import CHAT, ChatConsumer, Phase, _open
    from linkup.realtime.hub import hub
    from linkup.realtime.liveness import liveness

    reached: list[Phase] = []
    real_disconnect = ChatConsumer.disconnect

    async def noting(self: ChatConsumer, code: int) -> None:
        reached.append(self.phase)
        await real_disconnect(self, code)

    monkeypatch.setattr(ChatConsumer, "disconnect", noting)
    live = liveness()
    expect_hello = closed_at in ("READY", "PRESENT")
    if closed_at == "COUNTED":

        async def refused(consumer: Any, kind: str = CHAT) -> bool:
            return False

        monkeypatch.setattr(live, "admit", refused)
    elif closed_at == "ADMITTED":

        async def broken(user_id: int) -> Any:
            raise RuntimeError("the database went away")

        monkeypatch.setattr(coalesce.socket_states(), "get", broken)
    elif closed_at == "READY":

        async def failing_join(consumer: Any) -> None:
            raise ConnectionError("the presence store went away")

        monkeypatch.setattr(live, "join", failing_join)
    comm = await connect(setup["bob"], expect_hello=False)
    if expect_hello:
        assert (await recv(comm))["type"] == "hello"
        if closed_at == "PRESENT":
            for _ in range(200):
                if live.sockets:
                    break
                await asyncio.sleep(0.005)
        await comm.disconnect()
    else:
        assert comm.connected_result[0] is False  # refused, with its close code
        await comm.disconnect()  # the server tells the app, as uvicorn does
    assert [p.name for p in reached] == [closed_at]
    assert bob.pk not in _open[CHAT]
    assert not [g for g, members in hub().members.items() if members]
    store = live.store
    if hasattr(store, "conns"):  # the embedded store: nothing of bob's left live
        assert not store.conns.get(bob.pk)
