"""Scale-out deployment: several server processes behind one PostgreSQL and one Redis.

`LINKUP_WORKERS=N python -m linkup_server serve` runs N uvicorn workers on one port; two
processes on two ports (what a load balancer spreads clients over) share every message."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.live import api, live_server, new_user, refused_start, send_over_rest

pytestmark = pytest.mark.live
scaleout = pytest.mark.skipif(
    not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")),
    reason="needs the scale-out configuration (the suite's second pass runs it)",
)


def bearer(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


async def next_message(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    async def loop() -> dict[str, Any]:
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "message.new":
                return frame["message"]

    return await asyncio.wait_for(loop(), timeout)


@scaleout
@pytest.mark.scaleout
async def test_a_message_sent_through_one_process_reaches_sockets_on_the_other() -> None:
    with live_server() as first, live_server(share=first) as second:
        alice, bob = new_user(first["base"]), new_user(first["base"])
        status, room = api(
            first["base"],
            "POST",
            "/rooms",
            {"kind": "direct", "members": [bob["id"]]},
            alice["token"],
        )
        assert status == 201
        async with (
            connect(second["ws"] + "/ws/chat/", additional_headers=bearer(bob)) as on_second,
            connect(first["ws"] + "/ws/chat/", additional_headers=bearer(alice)) as on_first,
        ):
            for ws in (on_second, on_first):
                assert json.loads(await ws.recv())["type"] == "hello"
            # Over a socket on the first process ...
            client_id = str(uuid.uuid4())
            await on_first.send(
                json.dumps(
                    {
                        "type": "message.send",
                        "room": room["id"],
                        "client_id": client_id,
                        "body": "across",
                    }
                )
            )
            got = await next_message(on_second)
            assert (got["client_id"], got["seq"]) == (client_id, 1)
            # ... and over REST on the second, to the socket on the first.
            status, sent = send_over_rest(second["base"], room["id"], "back", bob["token"])
            assert status == 201
            mine = await next_message(on_first)  # alice's own message comes first
            assert mine["seq"] == 1
            got = await next_message(on_first)
            assert (got["seq"], got["body"]) == (2, "back") == (sent["seq"], sent["body"])


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


@scaleout
@pytest.mark.scaleout
async def test_workers_setting_runs_that_many_processes_on_one_port() -> None:
    with live_server({"LINKUP_WORKERS": "2"}) as server:
        deadline = time.monotonic() + 20
        while len(_children(server["proc"].pid)) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert len(_children(server["proc"].pid)) >= 2
        alice, bob = new_user(server["base"]), new_user(server["base"])
        api(
            server["base"],
            "POST",
            "/rooms",
            {"kind": "direct", "members": [bob["id"]]},
            alice["token"],
        )
        # Several sockets of bob land on either worker; every one hears alice's message.
        sockets = [
            await connect(server["ws"] + "/ws/chat/", additional_headers=bearer(bob))
            for _ in range(6)
        ]
        try:
            status, sent = api(server["base"], "GET", "/rooms", token=alice["token"])
            room_id = sent["rooms"][0]["id"]
            status, message = send_over_rest(
                server["base"], room_id, "to every tab", alice["token"]
            )
            assert status == 201
            for ws in sockets:
                assert (await next_message(ws))["id"] == message["id"]
        finally:
            for ws in sockets:
                await ws.close()


def test_workers_without_the_scale_out_configuration_refuse_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update({"LINKUP_WORKERS": "2", "PORT": "1", "LINKUP_VAR_DIR": "/tmp/linkup-no-workers"})
    assert "LINKUP_WORKERS > 1 needs the scale-out configuration" in refused_start(env)
