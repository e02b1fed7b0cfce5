"""The delivery hub (linkup/realtime/hub.py) and its per-room line (linkup/realtime/delivery.py):
messages pass on once and in seq order whatever order their doorbells come in; a gap is read
from the database once for the room, not once per socket; one layer membership per group."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer
from hypothesis import given, settings
from hypothesis import strategies as st

from linkup.actions.events import room_group, user_group
from linkup.actions.messages import do_send_message
from linkup.actions.rooms import do_create_room
from linkup.realtime.delivery import RoomLine
from linkup.realtime.hub import Hub, room_of
from linkup.realtime.wire import Outgoing
from linkup.store import queries
from tests.wsutil import db


@settings(max_examples=300)
@given(st.lists(st.integers(1, 30), max_size=60), st.integers(0, 5))
def test_a_room_line_passes_each_message_once_in_seq_order(arrivals: list[int], start: int) -> None:
    """Any arrivals (repeated, overtaken, missing): what passes is start+1, start+2, ...
    with nothing skipped; once the missing ones are read, everything held has passed."""
    line: RoomLine[int] = RoomLine(start)
    passed: list[int] = []
    for seq in arrivals:
        passed += [s for s, item in line.offer(seq, seq) if s == item]
        assert passed == list(range(start + 1, start + 1 + len(passed)))
        assert all(s > (line.last or 0) + 1 for s in line.held)  # held only past a gap
    span = line.missing()
    if span is not None:
        after, end = span
        assert after == line.last and end == max(line.held) - 1
        for seq in range(after + 1, end + 1):  # what the database holds
            passed += [s for s, _ in line.offer(seq, seq)]
    assert not line.held and line.missing() is None
    assert passed == list(range(start + 1, max([start, *arrivals]) + 1))


@settings(max_examples=100)
@given(st.lists(st.integers(1, 30), max_size=40), st.lists(st.integers(1, 30), max_size=20))
def test_a_line_that_gives_up_still_passes_in_order(before: list[int], after: list[int]) -> None:
    """When the missing ones cannot be read, `release` passes what is held in order, and
    the line goes on from there: never a seq twice, never one lower than the last."""
    line: RoomLine[None] = RoomLine(0)
    passed: list[int] = []
    for seq in before:
        passed += [s for s, _ in line.offer(seq, None)]
    passed += [s for s, _ in line.release()]
    for seq in after:
        passed += [s for s, _ in line.offer(seq, None)]
    assert passed == sorted(set(passed))


def test_room_of_reads_room_groups_only() -> None:
    assert room_of(room_group(42)) == 42
    assert room_of(user_group(42)) is None and room_of("linkup.room.x") is None


class Member:
    """A socket as the hub sees it, recording what it is offered."""

    def __init__(self, user: int) -> None:
        self.hub_user = user
        self.hidden_users: set[int] = set()
        self.messages: list[int] = []
        self.frames: list[str] = []
        self.events: list[dict[str, Any]] = []

    def offer_message(self, room_id: int, seq: int, out: Outgoing) -> None:
        assert out.framed.endswith(out.payload)
        self.messages.append(seq)

    def offer_frame(self, room_id: int | None, out: Outgoing) -> None:
        self.frames.append(out.text)

    def offer_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)


def message_event(room: int, message: dict[str, Any]) -> dict[str, Any]:
    return {"type": "chat.message", "message": message}


@pytest.mark.django_db(transaction=True)
async def test_a_gap_is_read_once_for_the_room_after_the_reorder_wait(
    alice: Any, bob: Any, settings: Any, monkeypatch: Any
) -> None:
    settings.LINKUP = {**settings.LINKUP, "HUB_REORDER_WAIT_S": 0.01}

    def create() -> tuple[int, list[dict[str, Any]]]:
        room, _ = do_create_room(alice, "direct", [bob.pk])
        sent = [do_send_message(alice, room["id"], f"c{i}", f"m{i}")[0] for i in range(4)]
        return int(room["id"]), sent

    room, sent = await db(create)()
    reads: list[tuple[int, int, int]] = []
    real = queries.messages_after

    def counted(room_id: int, after: int, limit: int) -> list[Any]:
        reads.append((room_id, after, limit))
        return real(room_id, after, limit)

    monkeypatch.setattr(queries, "messages_after", counted)
    hub = Hub()
    members = [Member(alice.pk), Member(alice.pk), Member(bob.pk)]
    for member in members:
        await hub.enter(member, [room_group(room)])
    hub.known(room, 0, 0)
    group = room_group(room)
    hub.dispatch(group, message_event(room, sent[3]))  # 4 first: 1 to 3 were lost or late
    hub.dispatch(group, message_event(room, sent[0]))  # 1 comes: it passes at once
    assert [m.messages for m in members] == [[1]] * 3
    await asyncio.sleep(0.2)
    assert [m.messages for m in members] == [[1, 2, 3, 4]] * 3
    assert reads == [(room, 1, 2)]  # once for the room: seqs 2 and 3
    hub.dispatch(group, message_event(room, sent[1]))  # a late repeat passes no more
    assert [m.messages for m in members] == [[1, 2, 3, 4]] * 3
    await hub.close()


@pytest.mark.django_db(transaction=True)
async def test_a_message_committed_here_ahead_of_the_line_reads_the_gap_without_waiting(
    alice: Any, bob: Any, settings: Any, monkeypatch: Any
) -> None:
    """Two processes send in one room: this one commits seq 3 while seq 2's doorbell (from
    the other) is still on its way. Seq 2 is committed (seqs are taken under the room's
    lock), so the hub reads it at once instead of waiting the reorder wait out."""
    settings.LINKUP = {**settings.LINKUP, "HUB_REORDER_WAIT_S": 60.0}

    def create() -> tuple[int, list[dict[str, Any]]]:
        room, _ = do_create_room(alice, "direct", [bob.pk])
        sent = [do_send_message(alice, room["id"], f"c{i}", f"m{i}")[0] for i in range(3)]
        return int(room["id"]), sent

    room, sent = await db(create)()
    hub = Hub()
    member = Member(bob.pk)
    await hub.enter(member, [room_group(room)])
    hub.known(room, 1, 0)
    await hub.publish([(room_group(room), message_event(room, sent[2]))])  # 3, committed here
    for _ in range(100):
        if member.messages == [2, 3]:
            break
        await asyncio.sleep(0.01)
    assert member.messages == [2, 3]  # well inside the 60 s wait
    # A doorbell from elsewhere that comes early still waits for the late ones (they may
    # be on their way): nothing is read for it yet.
    reads: list[int] = []
    monkeypatch.setattr(queries, "messages_after", lambda *args: reads.append(1) or [])
    hub.dispatch(room_group(room), message_event(room, {**sent[2], "seq": 5}))
    await asyncio.sleep(0.05)
    assert member.messages == [2, 3] and reads == []
    await hub.close()


@pytest.mark.django_db(transaction=True)
async def test_frames_are_encoded_once_and_typing_skips_the_typist(alice: Any) -> None:
    hub = Hub()
    mine, theirs = Member(1), Member(2)
    for member in (mine, theirs):
        await hub.enter(member, [room_group(7)])
    made: list[Outgoing] = []
    real_of = Outgoing.of

    def counting(frame: Any) -> Outgoing:
        made.append(real_of(frame))
        return made[-1]

    Outgoing.of = counting  # type: ignore[method-assign]
    try:
        hub.dispatch(room_group(7), {"type": "chat.typing", "room": 7, "user": 1, "state": "start"})
        hub.dispatch(
            room_group(7),
            {"type": "chat.watermark", "room": 7, "delivered_seq": 3, "read_seq": 2},
        )
    finally:
        Outgoing.of = real_of  # type: ignore[method-assign]
    assert len(made) == 2  # one per event, not one per socket
    assert mine.frames == [made[1].text] and theirs.frames == [made[0].text, made[1].text]
    hub.dispatch(room_group(7), {"type": "room.updated", "room": {"id": 7}})
    assert mine.events == theirs.events == [{"type": "room.updated", "room": {"id": 7}}]
    await hub.close()


@pytest.mark.django_db(transaction=True)
async def test_one_layer_membership_per_group_however_many_sockets(monkeypatch: Any) -> None:
    hub = Hub()
    assert hub.layer is not None
    calls: list[tuple[str, str]] = []
    real_add, real_discard = hub.layer.group_add, hub.layer.group_discard

    async def add(group: str, channel: str) -> None:
        calls.append(("add", group))
        await real_add(group, channel)

    async def discard(group: str, channel: str) -> None:
        calls.append(("discard", group))
        await real_discard(group, channel)

    monkeypatch.setattr(hub.layer, "group_add", add)
    monkeypatch.setattr(hub.layer, "group_discard", discard)
    members = [Member(i) for i in range(50)]
    await asyncio.gather(*(hub.enter(m, [room_group(1), room_group(2)]) for m in members))
    assert sorted(calls) == [("add", room_group(1)), ("add", room_group(2))]
    for member in members[:-1]:
        hub.exit(member, [room_group(1), room_group(2)])
    await asyncio.sleep(0.05)
    assert len(calls) == 2  # one member left in each
    hub.exit(members[-1], [room_group(1)])
    await hub.enter(Member(99), [room_group(1)])  # back before the leave ran: still joined
    await asyncio.sleep(0.05)
    assert hub.joined == {room_group(1), room_group(2)}
    await hub.close()


@pytest.mark.django_db(transaction=True)
async def test_on_the_in_process_layer_a_hub_alone_in_a_group_publishes_nothing(
    monkeypatch: Any,
) -> None:
    """Its own sockets have the events already; the layer would only echo them back. With
    another hub in the group (another event loop of the process), it publishes."""
    one, other = Hub(), Hub()
    assert one.layer is not None
    sent: list[str] = []
    real = one.layer.group_send

    async def counting(group: str, message: dict[str, Any]) -> None:
        sent.append(group)
        await real(group, message)

    monkeypatch.setattr(one.layer, "group_send", counting)
    mine = Member(1)
    await one.enter(mine, [room_group(5)])
    event = {"type": "chat.typing", "room": 5, "user": 2, "state": "start"}
    await one.publish([(room_group(5), event)])
    if not isinstance(one.layer, InMemoryChannelLayer):  # Redis: other processes may listen
        assert sent == [room_group(5)] and len(mine.frames) == 1
        await one.close()
        await other.close()
        return
    assert sent == [] and len(mine.frames) == 1
    theirs = Member(3)
    await other.enter(theirs, [room_group(5)])
    await one.publish([(room_group(5), event)])
    await asyncio.sleep(0.05)
    assert sent == [room_group(5)] and len(mine.frames) == 2 and len(theirs.frames) == 1
    await one.close()
    await other.close()
