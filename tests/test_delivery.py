"""Proof of the delivery protocol over real consumers: a Hypothesis state machine (send,
resend, change a message (edit, delete for everyone or for me, react), disconnect, reconnect,
sync, mark read, ping) and a channel layer that loses 10 % of its doorbells."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from linkup.actions import receipts
from linkup.actions.events import collecting_events
from linkup.actions.rooms import do_create_room
from linkup.core.protocol import invisible
from linkup.models import Membership, Message, Room
from linkup.realtime.hub import Hub
from linkup.store import queries
from tests.conftest import expected_status, make_user, token_for
from tests.wsutil import connect, db, send

pytestmark = pytest.mark.django_db(transaction=True)


BODIES = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=20).filter(
    lambda s: not all(map(invisible, s))  # a body of only invisible characters is blank
)


@dataclass
class Client:
    """One tab: its socket (None while offline) and everything it has been shown."""

    user: Any
    token: str
    comm: WebsocketCommunicator | None = None
    view: dict[int, int] = field(default_factory=dict)  # seq -> message id, all sources
    live: list[int] = field(default_factory=list)  # seqs delivered live on this socket
    base: int = 0  # the room's last seq when this socket said hello
    acked: dict[str, int] = field(default_factory=dict)  # client_id -> message id
    # Messages that change: the newest object held per seq (by its `change`), the change
    # numbers delivered live on this socket, the room's last change at hello, and the
    # change cursor the client syncs from.
    objects: dict[int, dict[str, Any]] = field(default_factory=dict)
    live_changes: list[int] = field(default_factory=list)
    change_base: int = 0
    change_cursor: int = 0

    def hold(self, message: dict[str, Any]) -> None:
        """Keep the newer object (its `change`); a delete for me is for good (a frame
        encoded before it, with the same number, does not bring the message back)."""
        held = self.objects.get(message["seq"])
        if held is not None and held["deleted"] == "me" and message["deleted"] != "me":
            return
        if held is None or message["change"] >= held["change"]:
            self.objects[message["seq"]] = message

    def cursor(self) -> int:
        """Highest seq held with nothing missing below it."""
        seq = 0
        while seq + 1 in self.view:
            seq += 1
        return seq


class DeliveryMachine(RuleBasedStateMachine):
    users: ClassVar[list[Any]] = []
    tokens: ClassVar[list[str]] = []
    # One loop for the whole run: channels_redis keeps connections per event loop.
    loop: ClassVar[asyncio.AbstractEventLoop]

    def __init__(self) -> None:
        super().__init__()
        self.room = 0
        self.clients: list[Client] = []
        self.markers: dict[int, tuple[int, int]] = {}
        self.sent = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 10))

    @initialize()
    def open_room(self) -> None:
        alice, bob, carol = self.users

        def create() -> int:
            with collecting_events():
                room, _ = do_create_room(alice, "group", [bob.pk, carol.pk], "machine")
            return int(room["id"])

        self.room = self.run(db(create)())
        # Two tabs of alice, one each of bob and carol (disconnect makes any of them offline).
        self.clients = [
            Client(alice, self.tokens[0]),
            Client(alice, self.tokens[0]),
            Client(bob, self.tokens[1]),
            Client(carol, self.tokens[2]),
        ]
        for client in self.clients:
            self.run(self._connect(client))

    def teardown(self) -> None:
        for client in self.clients:
            if client.comm is not None:
                # Let the consumer finish what the last rule sent before it goes.
                self.run(send(client.comm, {"type": "ping"}))
                self.run(self._until(client, "pong"))
                self.run(client.comm.disconnect())

    # -- talking to a socket -----------------------------------------------------------

    raw = False  # the frames extension for every other socket

    async def _connect(self, client: Client) -> None:
        raw = self.raw and self.clients.index(client) % 2 == 1
        client.comm = await connect(client.token, raw=raw)
        client.live = []
        client.live_changes = []
        # No send is in flight between rules: what committed before hello is all there is.
        room = await db(lambda: Room.objects.get(pk=self.room))()
        client.base, client.change_base = room.last_seq, room.last_change

    def _take(self, client: Client, frame: dict[str, Any]) -> None:
        """Apply one server frame to the client's state, checking live-delivery rules."""
        if frame["type"] == "message.new":
            message = frame["message"]
            if message["room"] != self.room:
                return
            seq = message["seq"]
            assert seq not in client.live, f"seq {seq} delivered twice on one socket"
            assert not client.live or seq > client.live[-1], "live delivery out of order"
            # Gap-free: the next after the last sent, the first after the cursor at hello.
            expected = client.live[-1] + 1 if client.live else client.base + 1
            assert seq == expected, f"live delivery skipped to {seq} from {expected - 1}"
            client.live.append(seq)
            assert client.view.setdefault(seq, message["id"]) == message["id"]
            client.hold(message)
        elif frame["type"] == "message.updated":
            message = frame["message"]
            if frame["room"] != self.room:
                return
            if frame["change"] is not None:  # the room's change line: gap-free, in order
                number = frame["change"]
                expected = (
                    client.live_changes[-1] + 1 if client.live_changes else client.change_base + 1
                )
                assert number == expected, f"change {number} live after {expected - 1}"
                client.live_changes.append(number)
                assert message["change"] >= number
                client.change_cursor = max(client.change_cursor, number)
            else:
                assert message["deleted"] == "me", "only a delete for me has no number"
            # Held even before its message.new (the two lines are ordered each on its own).
            client.hold(message)
        elif frame["type"] == "error":
            raise AssertionError(f"unexpected error frame {frame}")

    async def _until(self, client: Client, kind: str) -> dict[str, Any]:
        assert client.comm is not None
        while True:
            frame = json.loads(await client.comm.receive_from(timeout=5))
            if frame["type"] == kind:
                return frame
            self._take(client, frame)

    async def _sync(self, client: Client) -> None:
        while True:
            assert client.comm is not None
            frame = {
                "type": "sync",
                "cursors": {str(self.room): client.cursor()},
                "changes": {str(self.room): client.change_cursor},
            }
            await send(client.comm, frame)
            result = await self._until(client, "sync.result")
            (entry,) = [e for e in result["rooms"] if e["room"] == self.room]
            for message in entry["messages"]:
                assert client.view.setdefault(message["seq"], message["id"]) == message["id"]
                client.hold(message)
            for change in entry["changes"]:
                client.hold(change["message"])
                client.change_cursor = max(client.change_cursor, change["change"])
            if not entry["changes_has_more"]:
                client.change_cursor = max(client.change_cursor, entry["last_change"])
            for seq in entry["deleted_for_me"]:  # deleted for me on another tab
                if seq in client.objects and client.objects[seq]["deleted"] != "me":
                    client.objects[seq] = {**client.objects[seq], "deleted": "me", "body": ""}
            if not entry["has_more"] and not entry["changes_has_more"]:
                return

    def online(self) -> list[int]:
        return [i for i, c in enumerate(self.clients) if c.comm is not None]

    def offline(self) -> list[int]:
        return [i for i, c in enumerate(self.clients) if c.comm is None]

    # -- rules -------------------------------------------------------------------------

    @precondition(lambda self: self.online())
    @rule(data=st.data(), body=BODIES)
    def send_message(self, data: Any, body: str) -> None:
        client = self.clients[data.draw(st.sampled_from(self.online()))]
        self.sent += 1
        client_id = f"m{self.room}-{self.sent}"

        async def go() -> None:
            assert client.comm is not None
            frame = {
                "type": "message.send",
                "room": self.room,
                "client_id": client_id,
                "body": body,
            }
            await send(client.comm, frame)
            ack = await self._until(client, "message.ack")
            assert ack["client_id"] == client_id
            client.acked[client_id] = ack["message"]["id"]

        self.run(go())

    @precondition(lambda self: any(c.acked and c.comm for c in self.clients))
    @rule(data=st.data())
    def resend(self, data: Any) -> None:
        choices = [i for i in self.online() if self.clients[i].acked]
        client = self.clients[data.draw(st.sampled_from(choices))]
        client_id = data.draw(st.sampled_from(sorted(client.acked)))

        async def go() -> None:
            assert client.comm is not None
            await send(
                client.comm,
                {
                    "type": "message.send",
                    "room": self.room,
                    "client_id": client_id,
                    "body": "again",
                },
            )
            ack = await self._until(client, "message.ack")
            assert ack["message"]["id"] == client.acked[client_id], "a resend stored anew"

        self.run(go())

    def stored(self) -> int:
        """Messages stored so far (every first ack stored one): known without asking, so
        what the rules draw never depends on timing (Hypothesis replays them)."""
        return len({cid for c in self.clients for cid in c.acked})

    @precondition(lambda self: self.online() and self.stored())
    @rule(
        data=st.data(),
        change=st.sampled_from(["edit", "delete", "hide", "react", "unreact"]),
        emoji=st.sampled_from(["👍", "❤️"]),
    )
    def change_message(self, data: Any, change: str, emoji: str) -> None:
        """Edit, delete (for everyone or for me) or react to a stored message: answered
        `change.ack`, or refused (someone else's message, one already deleted)."""
        client = self.clients[data.draw(st.sampled_from(self.online()))]
        seq = data.draw(st.integers(1, self.stored()))
        self.sent += 1
        frame: dict[str, Any] = {
            "room": self.room,
            "seq": seq,
            "client_id": f"c{self.room}-{self.sent}",
        }
        if change == "edit":
            frame.update(type="message.edit", body=f"edited {self.sent}")
        elif change in ("delete", "hide"):
            frame.update(type="message.delete", scope="everyone" if change == "delete" else "me")
        else:
            frame.update(
                type="reaction", emoji=emoji, state="add" if change == "react" else "remove"
            )

        async def go() -> None:
            assert client.comm is not None
            await send(client.comm, frame)
            while True:
                answer = json.loads(await client.comm.receive_from(timeout=5))
                if answer["type"] == "change.ack":
                    assert answer["client_id"] == frame["client_id"]
                    client.hold(answer["message"])
                    return
                if answer["type"] == "error" and answer.get("ref") == frame["client_id"]:
                    assert answer["code"] == "forbidden", answer  # not mine, or deleted
                    return
                self._take(client, answer)

        self.run(go())

    @precondition(lambda self: self.online())
    @rule(data=st.data())
    def disconnect(self, data: Any) -> None:
        client = self.clients[data.draw(st.sampled_from(self.online()))]
        assert client.comm is not None
        self.run(client.comm.disconnect())
        client.comm = None

    @precondition(lambda self: self.offline())
    @rule(data=st.data())
    def reconnect_and_sync(self, data: Any) -> None:
        client = self.clients[data.draw(st.sampled_from(self.offline()))]
        self.run(self._connect(client))
        self.run(self._sync(client))
        self._assert_matches_database(client)

    @precondition(lambda self: self.online())
    @rule(data=st.data())
    def sync(self, data: Any) -> None:
        client = self.clients[data.draw(st.sampled_from(self.online()))]
        self.run(self._sync(client))
        self._assert_matches_database(client)

    @precondition(lambda self: self.online())
    @rule(data=st.data())
    def ping(self, data: Any) -> None:
        """By the pong, the socket has been sent every message committed before the ping."""
        client = self.clients[data.draw(st.sampled_from(self.online()))]
        last = self.run(db(lambda: Room.objects.get(pk=self.room).last_seq)())
        assert client.comm is not None
        self.run(send(client.comm, {"type": "ping"}))
        self.run(self._until(client, "pong"))
        if client.live:
            assert client.live[-1] == last, (client.live, last)

    @precondition(lambda self: self.online())
    @rule(data=st.data(), seq=st.integers(0, 40), kind=st.sampled_from(["read", "delivered"]))
    def mark(self, data: Any, seq: int, kind: str) -> None:
        client = self.clients[data.draw(st.sampled_from(self.online()))]
        assert client.comm is not None
        self.run(
            send(client.comm, {"type": "receipt", "room": self.room, "kind": kind, "seq": seq})
        )

    # -- invariants --------------------------------------------------------------------

    def _assert_matches_database(self, client: Client) -> None:
        stored = dict(
            self.run(
                db(
                    lambda: list(Message.objects.filter(room_id=self.room).values_list("seq", "id"))
                )()
            )
        )
        assert client.view == stored, "after sync the view must equal the database"
        # And every message it holds is as the database has it now, for this user: edits,
        # deletions and reactions included.
        user, room = client.user, self.room
        now = {
            m["seq"]: m
            for m in self.run(db(lambda: queries.history(user, room, limit=100)["messages"])())
        }
        held = {seq: m for seq, m in client.objects.items() if seq in now}
        assert held == {seq: now[seq] for seq in held}, "after sync each message is current"

    @invariant()
    def storage_is_gap_free_and_exactly_once(self) -> None:
        if not self.room:
            return
        rows = self.run(
            db(
                lambda: list(
                    Message.objects.filter(room_id=self.room).values_list("seq", "client_id")
                )
            )()
        )
        seqs = sorted(seq for seq, _ in rows)
        assert seqs == list(range(1, len(seqs) + 1))
        acked = {cid for c in self.clients for cid in c.acked}
        assert {cid for _, cid in rows} == acked  # every ack stored once, nothing else

    @invariant()
    def markers_never_decrease_and_status_follows(self) -> None:
        if not self.room:
            return

        def load() -> tuple[dict[int, tuple[int, int]], Room, dict[int, int]]:
            markers = {
                m.user_id: (m.delivered_seq, m.read_seq)
                for m in Membership.objects.filter(room_id=self.room)
            }
            senders = dict(
                Message.objects.filter(room_id=self.room).values_list("seq", "sender_id")
            )
            return markers, Room.objects.get(pk=self.room), senders

        markers, room, senders = self.run(db(load)())
        for user_id, (delivered, read) in markers.items():
            old = self.markers.get(user_id, (0, 0))
            assert delivered >= old[0] and read >= old[1], "a marker went down"
            assert read <= delivered <= room.last_seq
        self.markers = markers
        for seq, sender in senders.items():
            assert receipts.message_status(
                seq, room.delivered_watermark, room.read_watermark
            ) == expected_status(markers, sender, seq)


def test_delivery_state_machine(settings: Any) -> None:
    # Rate limits are tested elsewhere; here thousands of sends share three users.
    settings.LINKUP = {**settings.LINKUP, "SEND_RATE_PER_S": 1e6, "SEND_BURST": 10**6}
    DeliveryMachine.users = [make_user("alice"), make_user("bob"), make_user("carol")]
    DeliveryMachine.tokens = [token_for(u) for u in DeliveryMachine.users]
    DeliveryMachine.loop = asyncio.new_event_loop()
    try:
        run_state_machine_as_test(
            DeliveryMachine,
            settings=hypothesis_settings(max_examples=100, stateful_step_count=15, deadline=None),
        )
    finally:
        DeliveryMachine.loop.close()


class TwoHubMachine(DeliveryMachine):
    """The same rules with the sockets spread over two hubs (as over two server processes)
    that share the database and a channel layer that loses, repeats and delays doorbells."""

    raw = True

    def __init__(self) -> None:
        super().__init__()
        self.hubs = [Hub(), Hub()]
        self.next_hub = 0

    def pick_hub(self) -> Hub:
        self.next_hub += 1
        return self.hubs[self.next_hub % 2]

    def teardown(self) -> None:
        super().teardown()
        for hub in self.hubs:
            self.run(hub.close())


def test_delivery_state_machine_across_two_hubs(settings: Any, monkeypatch: Any) -> None:
    """Every socket is sent every message committed after its hello once, in seq order,
    whatever the layer does to the doorbells: each group send is lost, repeated or delayed
    (so overtaken) 15, 15 and 20 times in a hundred, and a hub hears even its own
    process's doorbells only from the layer."""
    from linkup.realtime import consumers

    settings.LINKUP = {
        **settings.LINKUP,
        "SEND_RATE_PER_S": 1e6,
        "SEND_BURST": 10**6,
        "HUB_LOCAL_FIRST": False,
    }
    TwoHubMachine.users = [make_user("alice"), make_user("bob"), make_user("carol")]
    TwoHubMachine.tokens = [token_for(u) for u in TwoHubMachine.users]
    TwoHubMachine.loop = loop = asyncio.new_event_loop()
    dice = random.Random(20261203)
    layer = get_channel_layer()
    real_group_send = layer.group_send
    counts = {"lost": 0, "repeated": 0, "delayed": 0, "sent": 0}

    async def unreliable_group_send(group: str, message: dict[str, Any]) -> None:
        counts["sent"] += 1
        roll = dice.random()
        if roll < 0.15:
            counts["lost"] += 1
            return
        if roll < 0.3:
            counts["repeated"] += 1
            await real_group_send(group, message)
        elif roll < 0.5:
            counts["delayed"] += 1
            later = real_group_send(group, message)
            loop.call_later(dice.uniform(0.001, 0.03), loop.create_task, later)
            return
        await real_group_send(group, message)

    machine: list[TwoHubMachine] = []

    def hub_of_machine() -> Hub:
        return machine[-1].pick_hub()

    real_init = TwoHubMachine.__init__

    def init(self: TwoHubMachine) -> None:
        real_init(self)
        machine.append(self)

    monkeypatch.setattr(TwoHubMachine, "__init__", init)
    monkeypatch.setattr(layer, "group_send", unreliable_group_send)
    monkeypatch.setattr(consumers, "hub", hub_of_machine)
    try:
        run_state_machine_as_test(
            TwoHubMachine,
            settings=hypothesis_settings(max_examples=100, stateful_step_count=30, deadline=None),
        )
    finally:
        loop.close()
    assert all(counts.values()), counts  # the layer did each of its tricks
    print(f"two hubs: {len(machine)} runs, doorbells {counts}")


async def test_every_pinging_client_holds_everything_despite_lost_doorbells(
    alice: Any, bob: Any, carol: Any, settings: Any
) -> None:
    """A layer that drops 10 % of group messages (and carries every doorbell, the process's
    own too): by the reply to its next ping, every connected client holds every message,
    gap-free and in order, each once."""
    settings.LINKUP = {**settings.LINKUP, "HUB_LOCAL_FIRST": False}
    layer = get_channel_layer()
    real_group_send = layer.group_send
    dice = random.Random(20261123)
    dropped = 0

    async def lossy_group_send(group: str, message: dict[str, Any]) -> None:
        nonlocal dropped
        if dice.random() < 0.10:
            dropped += 1
            return
        await real_group_send(group, message)

    layer.group_send = lossy_group_send

    def create() -> int:
        with collecting_events():
            room, _ = do_create_room(alice, "group", [bob.pk, carol.pk], "lossy")
        return int(room["id"])

    room = await db(create)()
    tokens = {u.pk: await db(token_for)(u) for u in (alice, bob, carol)}
    sockets = [
        await connect(tokens[alice.pk]),
        await connect(tokens[alice.pk]),
        await connect(tokens[bob.pk]),
        await connect(tokens[carol.pk]),
    ]
    senders = [sockets[0], sockets[2], sockets[3]]
    live: list[list[int]] = [[] for _ in sockets]

    async def frame_of(index: int, kind: str) -> dict[str, Any]:
        while True:
            frame = json.loads(await sockets[index].receive_from(timeout=5))
            assert frame["type"] != "error", frame
            if frame["type"] == "message.new":
                live[index].append(frame["message"]["seq"])
            if frame["type"] == kind:
                return frame

    total = 0
    for round_ in range(20):
        for comm in senders:
            await send(
                comm,
                {
                    "type": "message.send",
                    "room": room,
                    "client_id": str(uuid.uuid4()),
                    "body": f"r{round_}",
                },
            )
            total += 1
    for index in (0, 2, 3):  # every send committed before anyone pings
        for _ in range(20):
            await frame_of(index, "message.ack")
    for index in range(len(sockets)):
        await send(sockets[index], {"type": "ping"})
        await frame_of(index, "pong")
    for comm in sockets:
        await comm.disconnect()
    assert dropped > 0, "the layer dropped nothing: the test proves nothing"
    for seqs in live:
        assert seqs == list(range(1, total + 1))
    print(f"lossy layer: {total} messages, 4 sockets, {dropped} group sends dropped")
