"""Group commit (linkup/actions/messages.py, linkup/realtime/sending.py): a batch in one
transaction is the same as the same sends in smaller batches; concurrent sends share
transactions; a refused send or a failed batch loses nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from django.db import OperationalError
from django.db.models import Max
from hypothesis import given
from hypothesis import strategies as st

from linkup.actions import messages
from linkup.actions.events import collecting_events
from linkup.actions.messages import Send, do_send_batch
from linkup.actions.rooms import do_create_room
from linkup.core.errors import LinkupError, Unavailable
from linkup.models import MarkerMove, Membership, Message, Room
from linkup.realtime import sending
from linkup.realtime.sending import SendQueue
from linkup.store import sendsql
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)

# A send: (sender index, room index, client_id). Rooms: 0 = direct a-b, 1 = group a-b-c,
# 2 = direct b-c (a is not in it), 3 = a room that does not exist.
SENDS = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 3), st.sampled_from(["x", "y", "z"])),
    max_size=12,
)


def cast() -> tuple[list[Any], list[int]]:
    """Three new users and their rooms (ids), as above."""
    tag = uuid.uuid4().hex[:8]
    a, b, c = (make_user(f"{n}{tag}") for n in "abc")
    with collecting_events():
        direct = do_create_room(a, "direct", [b.pk])[0]["id"]
        group = do_create_room(a, "group", [b.pk, c.pk], "g")[0]["id"]
        other = do_create_room(b, "direct", [c.pk])[0]["id"]
    return [a, b, c], [direct, group, other, 10**9]


def normalized(
    outcome: tuple[Any, LinkupError | None, list[Any]], rooms: list[int]
) -> tuple[Any, ...]:
    """What must agree between the batch and one-at-a-time: errors, seqs, created flags,
    bodies, and the message events (by room index, not by database id). Watermark events
    may be coalesced by a batch: `final_state` compares what they announce."""
    result, error, events = outcome
    if error is not None:
        return ("error", error.code)
    message, created = result
    shown = tuple(
        (
            rooms.index(int(group.rsplit(".", 1)[1])) if ".room." in group else "user",
            event["type"],
            event.get("message", {}).get("seq"),
        )
        for group, event in events
        if event["type"] != "chat.watermark"
    )
    return (message["seq"], created, message["body"], message["client_id"], shown)


def final_state(got: list[Any], rooms: list[int], users: list[Any]) -> dict[str, Any]:
    """Per room: the watermarks stored and the last ones announced, every member's markers,
    and the highest logged marker move per member and kind."""
    announced: dict[int, tuple[int, int]] = {}
    for _result, _error, events in got:
        for _group, event in events:
            if event["type"] == "chat.watermark":
                announced[rooms.index(event["room"])] = (event["delivered_seq"], event["read_seq"])
    letter = {u.pk: u.username[0] for u in users}
    state: dict[str, Any] = {"announced": announced}
    for index, room_id in enumerate(rooms[:3]):
        room = Room.objects.get(pk=room_id)
        state[f"watermarks {index}"] = (room.delivered_watermark, room.read_watermark)
        state[f"markers {index}"] = sorted(
            (letter[m.user_id], m.delivered_seq, m.read_seq)
            for m in Membership.objects.filter(room_id=room_id)
        )
        state[f"moves {index}"] = sorted(
            (letter[user], kind, top)
            for user, kind, top in MarkerMove.objects.filter(room_id=room_id)
            .values("user_id", "kind")
            .annotate(top=Max("seq"))
            .values_list("user_id", "kind", "top")
        )
    return state


@pytest.fixture(params=["update from values", "one update a row", "one insert a row"])
def update_style(request: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run with the multi-row UPDATE ... FROM (VALUES ...) and INSERT ... RETURNING, and with
    the per-row fallbacks that databases without them (SQLite before 3.33 and 3.35) get."""
    from django.db import connection

    if request.param == "one update a row":
        if connection.vendor != "sqlite":
            # PostgreSQL takes the per-row path only for one row, as every style does.
            pytest.skip("only SQLite before 3.33 updates a row at a time")
        monkeypatch.setattr(sendsql, "_updates_from_values", lambda connection: False)
    if request.param == "one insert a row":
        if connection.vendor != "sqlite":
            pytest.skip("only SQLite before 3.35 inserts a row at a time")
        monkeypatch.setattr(sendsql, "_returning", lambda connection: False)


@given(plan=SENDS, cuts=st.lists(st.booleans(), max_size=12))
def test_a_batch_commits_exactly_what_the_same_sends_in_smaller_batches_would(
    plan: list[Any], cuts: list[bool], update_style: None
) -> None:
    """One rule, one implementation: a lone send is a batch of one, so the property holds
    the group commit to the same sends cut into smaller batches (all of one, often)."""
    outcomes = []
    for batched in (True, False):
        users, rooms = cast()
        sends = [
            Send(users[u], rooms[r], cid, f"{u}-{r}-{cid}-{i}")
            for i, (u, r, cid) in enumerate(plan)
        ]
        if batched:
            got = do_send_batch(sends)
        else:
            got, batch = [], []
            for i, send in enumerate(sends):
                batch.append(send)
                if i == len(sends) - 1 or (cuts[i] if i < len(cuts) else True):
                    got += do_send_batch(batch)
                    batch = []
        stored = {
            index: list(
                Message.objects.filter(room_id=room)
                .order_by("seq")
                .values_list("seq", "sender__username", "client_id", "body")
            )
            for index, room in enumerate(rooms[:3])
        }
        # Names differ between the two casts by their tag: compare the letter only.
        stored = {
            k: [(s, name[0], cid, body) for s, name, cid, body in v] for k, v in stored.items()
        }
        outcomes.append(
            ([normalized(o, rooms) for o in got], stored, final_state(got, rooms, users))
        )
    assert outcomes[0] == outcomes[1]
    _, stored, state = outcomes[0]
    for index in range(3):  # what was announced last is what is stored
        if index in state["announced"]:
            assert state["announced"][index] == state[f"watermarks {index}"]
    for rows in stored.values():  # and the usual promises hold
        assert [seq for seq, *_ in rows] == list(range(1, len(rows) + 1))


async def test_concurrent_sends_share_transactions_and_stay_gap_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from asgiref.sync import sync_to_async

    rung: list[Any] = []

    async def ring(events: list[Any]) -> None:
        rung.extend(events)

    monkeypatch.setattr(sending, "publish", ring)
    users, rooms = await sync_to_async(cast)()
    queue = SendQueue()
    results = await asyncio.gather(
        *(queue.submit(Send(users[i % 2], rooms[0], f"c{i}", f"m{i}")) for i in range(60))
    )
    seqs = sorted(message["seq"] for message, created in results)
    assert seqs == list(range(1, 61))
    assert all(created for message, created in results)
    assert sum(queue.batch_sizes) == 60
    assert max(queue.batch_sizes) > 1  # they did share a transaction
    assert queue.ringing is not None
    await queue.ringing
    # The queue rang one doorbell a message, in commit order, and no caller had to.
    doorbells = [e["message"]["seq"] for _, e in rung if e["type"] == "chat.message"]
    assert doorbells == list(range(1, 61))


async def test_a_refused_send_in_a_batch_fails_alone() -> None:
    from asgiref.sync import sync_to_async

    users, rooms = await sync_to_async(cast)()
    queue = SendQueue()
    a = users[0]
    good_one, foreign, good_two = await asyncio.gather(
        queue.submit(Send(a, rooms[0], "g1", "one")),
        queue.submit(Send(a, rooms[2], "f1", "not mine")),  # a is not in this room
        queue.submit(Send(a, rooms[0], "g2", "two")),
        return_exceptions=True,
    )
    assert isinstance(foreign, LinkupError) and foreign.code == "not_found"
    assert [m["seq"] for m, _ in (good_one, good_two)] == [1, 2]
    assert not await Message.objects.filter(room_id=rooms[2]).aexists()


async def test_a_failed_batch_fails_every_send_with_its_own_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from asgiref.sync import sync_to_async

    users, rooms = await sync_to_async(cast)()

    def down(sends: list[Send], focused: Any = None, **_: Any) -> Any:
        raise OperationalError("the database went away")

    monkeypatch.setattr(sending, "do_send_batch", down)
    queue = SendQueue()
    errors = await asyncio.gather(
        *(queue.submit(Send(users[0], rooms[0], f"c{i}", "x")) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(e, Unavailable) and e.retry_after_s for e in errors)
    assert len({id(e) for e in errors}) == 3  # each caller may set its own ref
    assert not await Message.objects.filter(room_id=rooms[0]).aexists()
    assert not queue.running and not queue.waiting


async def test_a_send_that_breaks_the_set_wise_write_fails_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(_break_the_set_wise_write)(monkeypatch)


def _break_the_set_wise_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch is written set-wise; one send whose event cannot be serialized makes it go
    again one send at a time, where that send alone fails (and is recorded)."""
    from linkup.models import MessagingError

    users, rooms = cast()
    real = messages.send_event_on_commit

    def poisoned(group: str, event: Any) -> None:
        if event.get("message", {}).get("body") == "poison":
            event = {**event, "message": {**event["message"], "when": object()}}
        real(group, event)

    monkeypatch.setattr(messages, "send_event_on_commit", poisoned)
    a, b, _ = users
    outcomes = do_send_batch(
        [
            Send(a, rooms[0], "p1", "one"),
            Send(b, rooms[1], "p2", "poison"),
            Send(b, rooms[0], "p3", "two"),
        ]
    )
    assert [o[1].code if o[1] else o[0][0]["seq"] for o in outcomes] == [1, "server_error", 2]
    assert list(Message.objects.filter(room_id=rooms[0]).values_list("body", flat=True)) == [
        "one",
        "two",
    ]
    assert not Message.objects.filter(room_id=rooms[1]).exists()
    assert Room.objects.get(pk=rooms[1]).last_seq == 0
    assert MessagingError.objects.filter(category="serialization").count() == 1


async def test_a_ringing_that_fails_never_stops_later_doorbells(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One batch's doorbells fail to ring (the layer raised, or the ringing was cancelled):
    the batches after it still ring, and a sender waiting for the ringing is not failed."""
    from asgiref.sync import sync_to_async

    rung: list[int] = []
    calls = 0

    async def flaky(events: list[Any]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the layer is gone")
        rung.extend(e["message"]["seq"] for _, e in events if e["type"] == "chat.message")

    monkeypatch.setattr(sending, "publish", flaky)
    users, rooms = await sync_to_async(cast)()
    queue = SendQueue()
    await queue.submit(Send(users[0], rooms[0], "first", "lost doorbell"))
    await queue.rung()  # it failed: neither raised here nor hung
    await queue.submit(Send(users[0], rooms[0], "second", "cancelled doorbell"))
    assert queue.ringing is not None
    queue.ringing.cancel()  # the next one is cancelled outright
    await queue.submit(Send(users[0], rooms[0], "third", "rings"))
    await queue.rung()
    assert rung == [3] and calls == 2
