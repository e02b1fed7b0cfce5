"""The embedded channel layer keeps the in-memory layer's behaviour with a periodic sweep."""

from __future__ import annotations

import asyncio
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from linkup.realtime.layers import EmbeddedChannelLayer

CHANNELS = [f"specific.inmemory!c{i}" for i in range(4)]
GROUPS = ["room-1", "room-2"]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(GROUPS), st.sampled_from(CHANNELS)),
        st.tuples(st.just("discard"), st.sampled_from(GROUPS), st.sampled_from(CHANNELS)),
        st.tuples(st.just("send"), st.sampled_from(GROUPS), st.integers(0, 10**6)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ops=ops)
def test_group_send_delivers_once_in_order_to_members_at_send_time(ops: list) -> None:
    async def scenario() -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        layer = EmbeddedChannelLayer(capacity=1000)
        members: dict[str, set[str]] = {g: set() for g in GROUPS}
        expected: dict[str, list[int]] = {c: [] for c in CHANNELS}
        for op, group, arg in ops:
            if op == "add":
                await layer.group_add(group, arg)
                members[group].add(arg)
            elif op == "discard":
                await layer.group_discard(group, arg)
                members[group].discard(arg)
            else:
                await layer.group_send(group, {"type": "x", "n": arg})
                for channel in members[group]:
                    expected[channel].append(arg)
        got: dict[str, list[int]] = {c: [] for c in CHANNELS}
        for channel in CHANNELS:
            while channel in layer.channels and not layer.channels[channel].empty():
                got[channel].append((await layer.receive(channel))["n"])
        return got, expected

    got, expected = asyncio.run(scenario())
    assert got == expected


async def test_a_group_send_is_copied_from_the_sender() -> None:
    layer = EmbeddedChannelLayer()
    for channel in CHANNELS[:2]:
        await layer.group_add("g", channel)
    message = {"type": "x", "items": [1]}
    await layer.group_send("g", message)
    message["items"].append(2)  # the sender changing its dict afterwards changes nothing
    assert (await layer.receive(CHANNELS[0]))["items"] == [1]
    assert (await layer.receive(CHANNELS[1]))["items"] == [1]


async def test_a_full_channel_drops_only_its_own_message() -> None:
    layer = EmbeddedChannelLayer(capacity=1)
    for channel in CHANNELS[:2]:
        await layer.group_add("g", channel)
    await layer.send(CHANNELS[0], {"type": "filler"})
    await layer.group_send("g", {"type": "x"})
    assert (await layer.receive(CHANNELS[0]))["type"] == "filler"
    assert (await layer.receive(CHANNELS[1]))["type"] == "x"
    assert CHANNELS[0] not in layer.channels  # the dropped message never queued


async def test_expiry_still_sweeps_at_most_once_per_interval() -> None:
    layer = EmbeddedChannelLayer(group_expiry=60, sweep_interval=30)
    await layer.group_add("g", CHANNELS[0])
    await layer.group_send("g", {"type": "x"})  # sweeps now; next sweep in 30 s
    layer.groups["g"][CHANNELS[0]] = time.time() - 61  # joined long ago
    await layer.group_send("g", {"type": "y"})  # within the interval: no sweep yet
    assert CHANNELS[0] in layer.groups["g"]
    layer._next_sweep = 0.0  # the interval has passed
    await layer.group_send("g", {"type": "z"})
    assert CHANNELS[0] not in layer.groups["g"]
    received = [(await layer.receive(CHANNELS[0]))["type"] for _ in range(2)]
    assert received == ["x", "y"]
