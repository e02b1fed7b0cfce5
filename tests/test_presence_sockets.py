"""Presence over real consumers: who hears, multi-tab, reload, going offline with last seen,
privacy, idle close. The sweep runs with time injected (liveness().tick(now=...))."""

from __future__ import annotations

import time
from typing import Any

import pytest

from linkup.actions.events import collecting_events
from linkup.actions.presence import do_set_privacy
from linkup.actions.rooms import do_create_room
from linkup.models import UserPresence
from linkup.realtime.liveness import liveness
from tests.conftest import token_for
from tests.wsutil import connect, db, recv_type

pytestmark = pytest.mark.django_db(transaction=True)

GONE = 31.0  # past the 30 s grace


@pytest.fixture
def people(alice: Any, bob: Any, carol: Any) -> dict[str, Any]:
    def setup() -> dict[str, Any]:
        with collecting_events():
            do_create_room(alice, "direct", [bob.pk])  # carol shares nothing with alice
        return {
            name: token_for(u) for name, u in (("alice", alice), ("bob", bob), ("carol", carol))
        }

    return setup()


async def test_contacts_hear_online_and_offline_with_last_seen(
    people: dict[str, Any], alice: Any
) -> None:
    b = await connect(people["bob"], presence=True)
    c = await connect(people["carol"], presence=True)
    a = await connect(people["alice"])
    frame = await recv_type(b, "presence")
    assert frame == {"type": "presence", "user": alice.pk, "status": "online", "last_seen": None}
    await a.disconnect()
    gone = time.time()
    assert await liveness().tick(now=gone + 10) == []  # within the grace: still online
    transitions = await liveness().tick(now=gone + GONE + 10)
    assert [(u, s) for u, s, _ in transitions] == [(alice.pk, "offline")]
    offline = await recv_type(b, "presence")
    assert offline["status"] == "offline" and offline["last_seen"].endswith("Z")
    stored = await db(UserPresence.objects.get)(user=alice)
    assert stored.last_seen is not None
    assert await c.receive_nothing(timeout=0.2)  # carol shares no room with alice
    await b.disconnect()
    await c.disconnect()


async def test_second_tab_and_reload_do_not_flicker(people: dict[str, Any], alice: Any) -> None:
    b = await connect(people["bob"], presence=True)
    a1 = await connect(people["alice"])
    assert (await recv_type(b, "presence"))["status"] == "online"
    a2 = await connect(people["alice"])
    await a1.disconnect()
    now = time.time()
    assert await liveness().tick(now=now + GONE) == []  # a2 still open
    await a2.disconnect()
    a3 = await connect(people["alice"])  # a reload: back within the grace
    assert await liveness().tick(now=time.time() + 20) == []
    assert await b.receive_nothing(timeout=0.2)  # no offline, no second online
    await a3.disconnect()
    await b.disconnect()


async def test_hidden_last_seen_is_reciprocal(people: dict[str, Any], alice: Any, bob: Any) -> None:
    await db(do_set_privacy)(bob, True)
    b = await connect(people["bob"], presence=True)
    a = await connect(people["alice"], presence=True)
    await recv_type(b, "presence")
    await a.disconnect()
    await liveness().tick(now=time.time() + GONE + 10)
    offline = await recv_type(b, "presence")
    assert offline["status"] == "offline" and offline["last_seen"] is None  # bob hides his
    await b.disconnect()


async def test_silent_socket_is_closed_with_4408(people: dict[str, Any]) -> None:
    a = await connect(people["alice"])
    await liveness().tick(now=time.time() + 76)  # past IDLE_TIMEOUT_S (75)
    assert await a.receive_output(timeout=1) == {"type": "websocket.close", "code": 4408}


async def test_a_frame_keeps_a_socket_alive(people: dict[str, Any]) -> None:
    from tests.wsutil import send

    a = await connect(people["alice"])
    await send(a, {"type": "ping"})
    await recv_type(a, "pong")
    await liveness().tick(now=time.time() + 70)  # 70 s after the ping: not silent long enough
    await send(a, {"type": "ping"})
    assert (await recv_type(a, "pong"))["type"] == "pong"
    await a.disconnect()


async def test_large_rooms_read_presence_instead_of_being_pushed_it(
    people: dict[str, Any], alice: Any, bob: Any, carol: Any, settings: Any
) -> None:
    """Presence frames go to those sharing a room of at most PRESENCE_FANOUT_MAX_MEMBERS;
    in a larger room members see presence in room answers, not as frames."""
    # 1: no room qualifies by size; direct rooms always do.
    settings.LINKUP = {**settings.LINKUP, "PRESENCE_FANOUT_MAX_MEMBERS": 1}

    def group() -> None:
        with collecting_events():
            do_create_room(alice, "group", [bob.pk, carol.pk], "three")

    await db(group)()
    b = await connect(people["bob"], presence=True)
    c = await connect(people["carol"], presence=True)
    a = await connect(people["alice"])
    assert (await recv_type(b, "presence"))["user"] == alice.pk  # their direct room
    assert await c.receive_nothing(timeout=0.3)  # only the group of three: over the cap
    for ws in (a, b, c):
        await ws.disconnect()
