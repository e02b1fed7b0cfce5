"""Typing: the pure state (time injected, Hypothesis) and the socket's use of it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkup.actions.rooms import do_create_room
from linkup.realtime.typing import TypingTracker
from tests.conftest import token_for
from tests.wsutil import connect, db, recv_type, send

steps = st.lists(
    st.tuples(
        st.sampled_from(["start", "stop", "tick"]),
        st.integers(1, 3),
        st.floats(0, 4, allow_nan=False),  # seconds since the previous step
    ),
    max_size=40,
)


@given(steps)
def test_relayed_typing_alternates_and_never_outlives_its_refresh(
    script: list[tuple[str, int, float]],
) -> None:
    tracker = TypingTracker(expire_s=5.0, relay_interval_s=3.0)
    now = 1000.0
    relayed: dict[int, list[tuple[str, float]]] = {1: [], 2: [], 3: []}
    last_refresh: dict[int, float] = {}
    for action, room, delay in script:
        now += delay
        if action == "start":
            if tracker.start(room, now):
                relayed[room].append(("start", now))
            last_refresh[room] = now
        elif action == "stop":
            if tracker.stop(room):
                relayed[room].append(("stop", now))
            last_refresh.pop(room, None)
        else:
            for lapsed in tracker.expired(now):
                relayed[lapsed].append(("stop", now))
                # It lapsed only after expire_s without a refresh.
                assert now - last_refresh.pop(lapsed) >= 5.0
            # Nothing still typing has gone expire_s without a refresh.
            assert all(now - at < 5.0 for at in last_refresh.values())
        assert tracker.rooms() == sorted(last_refresh)
        expected_due = min(last_refresh.values()) + 5.0 if last_refresh else None
        assert tracker.next_expiry() == expected_due
    for room, events in relayed.items():
        previous: tuple[str, float] | None = None
        for state, at in events:
            if state == "stop":
                assert previous is not None and previous[0] == "start", "stop without start"
            elif previous is not None and previous[0] == "start":
                # A refresh relayed while typing goes on: never sooner than 3 s after the last.
                assert at - previous[1] >= 3.0
            previous = (state, at)
        # Whatever is still typing ends with a relayed start: closing the socket stops it.
        assert (previous is not None and previous[0] == "start") == (room in last_refresh)


@pytest.mark.django_db(transaction=True)
async def test_typing_lapses_without_refresh_and_ends_on_send(
    alice: Any, bob: Any, settings: Any
) -> None:
    settings.LINKUP = {**settings.LINKUP, "TYPING_EXPIRE_S": 0.3, "TYPING_RELAY_INTERVAL_S": 0.2}
    room, _ = await db(do_create_room)(alice, "direct", [bob.pk])
    a = await connect(await db(token_for)(alice))
    b = await connect(await db(token_for)(bob))
    await send(a, {"type": "typing", "room": room["id"], "state": "start"})
    assert (await recv_type(b, "typing"))["state"] == "start"
    await send(a, {"type": "typing", "room": room["id"], "state": "start"})  # absorbed
    stop = await recv_type(b, "typing", timeout=2)  # no refresh: the server ends it
    assert stop == {"type": "typing", "room": room["id"], "user": alice.pk, "state": "stop"}
    await send(a, {"type": "typing", "room": room["id"], "state": "start"})
    assert (await recv_type(b, "typing"))["state"] == "start"
    await send(
        a,
        {
            "type": "message.send",
            "room": room["id"],
            "client_id": str(uuid.uuid4()),
            "body": "done typing",
        },
    )
    assert (await recv_type(b, "message.new"))["message"]["body"] == "done typing"
    assert (await recv_type(b, "typing"))["state"] == "stop"
    assert await b.receive_nothing(timeout=0.5)  # and no second stop when it would lapse
    await a.disconnect()
    await b.disconnect()
