"""End to end: a started server process, real HTTP and real WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.conftest import SCALEOUT
from tests.live import api, new_user

pytestmark = pytest.mark.live


def bearer(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


async def frame_of(ws: ClientConnection, kind: str, timeout: float = 5) -> dict[str, Any]:
    async def loop() -> dict[str, Any]:
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame

    return await asyncio.wait_for(loop(), timeout)


async def test_conversation_over_real_sockets(server: dict[str, Any]) -> None:
    a, b = new_user(server["base"]), new_user(server["base"])
    status, room = api(
        server["base"], "POST", "/rooms", {"kind": "direct", "members": [b["id"]]}, a["token"]
    )
    assert status == 201
    url = server["ws"] + "/ws/chat/"
    async with (
        connect(url, additional_headers=bearer(a)) as wa,
        connect(url, additional_headers=bearer(b)) as wb,
    ):
        assert (await frame_of(wa, "hello"))["protocol"] == 1
        await frame_of(wb, "hello")
        sent = []
        for i in range(15):  # within the send burst (20)
            client_id = str(uuid.uuid4())
            await wa.send(
                json.dumps(
                    {
                        "type": "message.send",
                        "room": room["id"],
                        "client_id": client_id,
                        "body": f"m{i}",
                    }
                )
            )
            sent.append(client_id)
        acks = [await frame_of(wa, "message.ack") for _ in sent]
        assert [x["client_id"] for x in acks] == sent
        got = [(await frame_of(wb, "message.new"))["message"] for _ in sent]
        assert [m["seq"] for m in got] == list(range(1, 16))
        assert [m["client_id"] for m in got] == sent
        # A resend of an acknowledged client_id: the original, and nothing broadcast.
        await wa.send(
            json.dumps(
                {"type": "message.send", "room": room["id"], "client_id": sent[0], "body": "m0"}
            )
        )
        assert (await frame_of(wa, "message.ack"))["message"]["seq"] == 1
        with pytest.raises(asyncio.TimeoutError):
            await frame_of(wb, "message.new", timeout=0.5)
        await wb.send("{not json")
        assert (await frame_of(wb, "error"))["code"] == "invalid_frame"
        await wb.send(json.dumps({"type": "sync", "cursors": {str(room["id"]): 13}}))
        result = await frame_of(wb, "sync.result")
        assert [m["seq"] for m in result["rooms"][0]["messages"]] == [14, 15]
    status, history = api(
        server["base"], "GET", f"/rooms/{room['id']}/messages?limit=5", token=b["token"]
    )
    assert status == 200 and [m["seq"] for m in history["messages"]] == [11, 12, 13, 14, 15]


async def test_reconnecting_client_catches_up_from_its_cursor(server: dict[str, Any]) -> None:
    a, b = new_user(server["base"]), new_user(server["base"])
    _, room = api(
        server["base"], "POST", "/rooms", {"kind": "direct", "members": [b["id"]]}, a["token"]
    )
    url = server["ws"] + "/ws/chat/"
    async with connect(url, additional_headers=bearer(b)) as wb:
        await frame_of(wb, "hello")
        async with connect(url, additional_headers=bearer(a)) as wa:
            await frame_of(wa, "hello")
            for i in range(3):
                await wa.send(
                    json.dumps(
                        {
                            "type": "message.send",
                            "room": room["id"],
                            "client_id": str(uuid.uuid4()),
                            "body": str(i),
                        }
                    )
                )
                await frame_of(wa, "message.ack")
        cursor = 0
        for _ in range(3):
            cursor = (await frame_of(wb, "message.new"))["message"]["seq"]
    # b is offline while a sends more over HTTP.
    for i in range(4):
        status, _ = api(
            server["base"],
            "POST",
            f"/rooms/{room['id']}/messages",
            {"client_id": str(uuid.uuid4()), "body": f"offline {i}"},
            a["token"],
        )
        assert status == 201
    async with connect(url, additional_headers=bearer(b)) as wb:
        await frame_of(wb, "hello")
        await wb.send(json.dumps({"type": "sync", "cursors": {str(room["id"]): cursor}}))
        result = await frame_of(wb, "sync.result")
        assert [m["seq"] for m in result["rooms"][0]["messages"]] == [4, 5, 6, 7]


async def test_logout_closes_sockets_opened_with_the_token(server: dict[str, Any]) -> None:
    a = new_user(server["base"])
    async with connect(server["ws"] + "/ws/chat/", additional_headers=bearer(a)) as wa:
        await frame_of(wa, "hello")
        status, _ = api(server["base"], "POST", "/auth/logout", {}, a["token"])
        assert status == 200
        await asyncio.wait_for(wa.wait_closed(), timeout=1.5)
        assert wa.close_code == 4401


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1.evil.io"])
async def test_cookie_handshake_from_foreign_origin_is_refused(
    server: dict[str, Any], origin: str
) -> None:
    headers = {"Origin": origin, "Cookie": "sessionid=whatever"}
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server["ws"] + "/ws/chat/", additional_headers=headers):
            pass
    assert refused.value.response.status_code == 403


async def test_ticket_handshake(server: dict[str, Any]) -> None:
    a = new_user(server["base"])
    status, body = api(server["base"], "POST", "/auth/ws-ticket", {}, a["token"])
    assert status == 200
    url = server["ws"] + "/ws/chat/?ticket=" + body["ticket"]
    async with connect(url) as ws:
        assert (await frame_of(ws, "hello"))["user"] == a["id"]
    with pytest.raises(InvalidStatus):
        async with connect(url):
            pass


@pytest.mark.scaleout
async def test_a_thousand_sockets_on_the_redis_layer(server: dict[str, Any]) -> None:
    """redis-py 8 caps its pool at 100 connections unless configured: 1,000 sockets prove the
    configured cap, and one message reaches every one of them."""
    assert SCALEOUT
    users = [new_user(server["base"], "k") for _ in range(50)]
    owner = users[0]
    status, room = api(
        server["base"],
        "POST",
        "/rooms",
        {"kind": "group", "name": "big", "members": [u["id"] for u in users[1:]]},
        owner["token"],
    )
    assert status == 201
    url = server["ws"] + "/ws/chat/"
    sockets: list[ClientConnection] = []

    async def open_one(user: dict[str, Any]) -> ClientConnection:
        # No client keepalive: parsing 100,000 deliveries, this process can be too busy to
        # answer the server's pings in time, and that is not what is tested here.
        ws = await connect(
            url, additional_headers=bearer(user), open_timeout=30, ping_interval=None
        )
        await frame_of(ws, "hello", timeout=30)
        return ws

    try:
        for start in range(0, 1000, 100):
            batch = [users[i % 50] for i in range(start, start + 100)]
            sockets += await asyncio.gather(*(open_one(u) for u in batch))
        assert len(sockets) == 1000
        # 100 sockets of 50 users send at once: 100,000 deliveries through the layer.
        senders = sockets[:100]
        client_ids = [str(uuid.uuid4()) for _ in senders]
        await asyncio.gather(
            *(
                ws.send(
                    json.dumps(
                        {
                            "type": "message.send",
                            "room": room["id"],
                            "client_id": c,
                            "body": "to everyone",
                        }
                    )
                )
                for ws, c in zip(senders, client_ids, strict=True)
            )
        )

        async def collect(ws: ClientConnection) -> list[int]:
            return [
                (await frame_of(ws, "message.new", timeout=60))["message"]["seq"]
                for _ in client_ids
            ]

        received = await asyncio.gather(*(collect(ws) for ws in sockets))
        assert all(seqs == list(range(1, 101)) for seqs in received)
        pongs = 0
        for ws in sockets:
            await ws.send(json.dumps({"type": "ping"}))
        for ws in sockets:
            pongs += (await frame_of(ws, "pong", timeout=30))["type"] == "pong"
        assert pongs == 1000
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    assert "Too many connections" not in server["log"].read_text()


@pytest.mark.scaleout
async def test_idle_socket_survives_on_the_redis_layer(server: dict[str, Any]) -> None:
    """redis-py 8's default 5 s read timeout killed consumers idle in channels_redis's 5 s
    blocking pop ("Timeout reading"). A socket idle for 7 s must still hear and answer."""
    a, b = new_user(server["base"]), new_user(server["base"])
    _, room = api(
        server["base"], "POST", "/rooms", {"kind": "direct", "members": [b["id"]]}, a["token"]
    )
    url = server["ws"] + "/ws/chat/"
    async with connect(url, additional_headers=bearer(b)) as idle:
        await frame_of(idle, "hello")
        await asyncio.sleep(7)
        status, _ = api(
            server["base"],
            "POST",
            f"/rooms/{room['id']}/messages",
            {"client_id": str(uuid.uuid4()), "body": "still there?"},
            a["token"],
        )
        assert status == 201
        assert (await frame_of(idle, "message.new"))["message"]["body"] == "still there?"
        await idle.send(json.dumps({"type": "ping"}))
        await frame_of(idle, "pong")
    assert "Timeout reading" not in server["log"].read_text()
