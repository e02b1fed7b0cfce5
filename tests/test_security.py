"""Security sweeps: cross-site WebSocket hijacking with a valid session, authorization of every
REST route for outsiders (the same 404 as for what does not exist), CSRF on every
cookie-authenticated write, and limits that concurrent bursts cannot race past."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import uuid
from typing import Any

import pytest
from django.test import Client

from linkup.actions.rooms import do_create_room
from linkup.realtime.sending import submit_send
from linkup.web.api import api as ninja_api
from tests.conftest import token_for
from tests.live import api as live_api
from tests.test_api import API, Api, assert_error
from tests.wsutil import APP, Socket, recv_type

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-" + "x" * 8
HOST = "127.0.0.1:8000"


def session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def handshake(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[bool, Any, Socket]:
    comm = Socket(APP, path, headers=headers)
    connected, code = await comm.connect(timeout=5)
    return connected, code, comm


# -- cross-site WebSocket hijacking -----------------------------------------------------------

FOREIGN_ORIGINS = [
    None,  # no Origin header at all
    "null",  # sandboxed iframes, file: pages
    "http://evil.example",
    "http://127.0.0.1:8000.evil.example",  # look-alike: our host as a prefix
    "http://evil.example/127.0.0.1:8000",
    "http://127.0.0.1:8001",  # another port is another origin
    "https://127.0.0.1:8000@evil.example",
    "ws://127.0.0.1:8000",
    "http://localhost.evil.example",
]


@pytest.mark.parametrize("path", ["/ws/chat/", "/ws/notifications/"])
@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
async def test_a_valid_session_from_a_foreign_origin_is_refused_before_accept(
    alice: Any, path: str, origin: str | None
) -> None:
    from tests.wsutil import db

    cookie = await db(session_cookie)(alice)
    headers = [(b"cookie", cookie.encode()), (b"host", HOST.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    connected, code, comm = await handshake(path, headers)
    assert not connected and code == 4403, (origin, code)
    assert await comm.receive_nothing(0.1)  # no frame was sent


@pytest.mark.parametrize("path", ["/ws/chat/", "/ws/notifications/"])
async def test_the_same_session_from_our_origin_is_accepted(alice: Any, path: str) -> None:
    from tests.wsutil import db

    cookie = await db(session_cookie)(alice)
    headers = [
        (b"cookie", cookie.encode()),
        (b"host", HOST.encode()),
        (b"origin", f"http://{HOST}".encode()),
    ]
    connected, _, comm = await handshake(path, headers)
    assert connected
    assert (await recv_type(comm, "hello"))["user"] == alice.pk
    await comm.disconnect()


# -- authorization of every REST route --------------------------------------------------------


def _routes() -> list[tuple[str, str]]:
    document = ninja_api.get_openapi_schema()
    return [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    ]


ROOM_ROUTES = [(m, p) for m, p in _routes() if "{room_id}" in p]
BODIES: dict[str, Any] = {
    "/rooms/{room_id}/members": {"user_ids": [1]},
    "/rooms/{room_id}/messages": {"client_id": "c-1", "body": "x"},
    "/rooms/{room_id}/receipts": {"kind": "read", "seq": 1},
    "/rooms/{room_id}/mute": {"muted": True},
    "/rooms/{room_id}/messages/{seq}": {"client_id": "c-1", "body": "x"},
    "/rooms/{room_id}": {"name": "x"},
    "/rooms/{room_id}/members/{user_id}": {"role": "admin"},
}


def call(api: Api, method: str, path: str, body: Any = None) -> Any:
    """Any method on an Api caller (bearer token or none), with a JSON body for writes."""
    if method == "GET":
        return api.get(path)
    return api.client.generic(
        method,
        API + path,
        data=b"{}" if body is None else json.dumps(body),
        content_type="application/json",
        **api.headers,
    )


def _fill(path: str, room: int, user: int) -> str:
    return (
        path.removeprefix(API)
        .replace("{room_id}", str(room))
        .replace("{user_id}", str(user))
        .replace("{seq}", "1")
        .replace("{emoji}", "%F0%9F%91%8D")  # 👍
    )


def test_every_room_route_answers_outsiders_as_if_the_room_did_not_exist(
    alice: Any, bob: Any, carol: Any
) -> None:
    assert len(ROOM_ROUTES) >= 8, ROOM_ROUTES  # the sweep covers what the document lists
    room, _ = do_create_room(alice, "group", [bob.pk], "secret")
    Api(alice).post(f"/rooms/{room['id']}/messages", {"client_id": "c-0", "body": "private"})
    missing = 10**9
    outsider = Api(carol)
    for method, path in ROOM_ROUTES:
        body = BODIES.get(path.removeprefix(API))

        def answer(room_id: int, method: str = method, path: str = path, body: Any = body) -> Any:
            return call(outsider, method, _fill(path, room_id, bob.pk), body)

        theirs, nothing = answer(room["id"]), answer(missing)
        assert_error(theirs, 404, "not_found")
        assert theirs.json() == nothing.json(), (method, path)  # nothing to tell them apart
        assert b"private" not in theirs.content and b"secret" not in theirs.content
    # Nothing changed for the members.
    assert Api(alice).get(f"/rooms/{room['id']}").json()["last_seq"] == 1


def test_every_route_but_the_public_ones_needs_credentials(db: Any) -> None:
    # The verification link's token is its own credential (tests/test_verification.py).
    public = {("POST", "/auth/token"), ("POST", "/auth/register"), ("POST", "/auth/verify-email")}
    # An attachment answers anyone who may not see it, anonymous included, with the same 404
    # as a missing file (the contract): no way to learn that an id exists.
    # A profile picture answers the same way (an <img> fetches it).
    files = {
        ("GET", "/attachments/{upload_id}"),
        ("GET", "/attachments/{upload_id}/thumbnail"),
        ("GET", "/users/{user_id}/avatar"),
    }
    for method, path in _routes():
        bare = path.removeprefix(API)
        if (method, bare) in public:
            continue
        target = _fill(bare, 1, 1).replace("{notification_id}", "1")
        target = target.replace("{upload_id}", "0b5b0c4e-8f5e-4d7e-9a55-3f1f3c8c0d11")
        if (method, bare) in files:
            assert_error(call(Api(), method, target), 404, "not_found")
            continue
        assert_error(call(Api(), method, target), 401, "unauthorized")
    assert files <= set((m, p.removeprefix(API)) for m, p in _routes())


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_an_unknown_api_path_is_not_found_whatever_the_method(alice: Any, method: str) -> None:
    """Not a CSRF 403 (the check ran before the route was known): a 404, signed in by a
    bearer token, by a session without its CSRF token, or not at all."""
    signed_in = Client(enforce_csrf_checks=True)
    signed_in.force_login(alice)
    callers = [
        (Client(enforce_csrf_checks=True), {"HTTP_AUTHORIZATION": f"Bearer {token_for(alice)}"}),
        (signed_in, {}),
        (Client(enforce_csrf_checks=True), {}),
    ]
    for client, headers in callers:
        for path in ("/nonexistent", "/rooms/1/nonexistent", "/rooms/1/messages/5/forward"):
            response = getattr(client, method)(API + path, **headers)
            assert_error(response, 404, "not_found")


def test_cookie_authenticated_writes_need_the_csrf_token(alice: Any, bob: Any) -> None:
    """Every unsafe route, called with a valid session but no CSRF token, is refused (403)
    and changes nothing; the same call with a bearer token needs none."""
    room, _ = do_create_room(alice, "direct", [bob.pk])
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    writes = [
        (m, p)
        for m, p in _routes()
        if m != "GET" and not p.endswith(("/token", "/register", "/auth/verify-email"))
    ]
    assert len(writes) >= 10
    for method, path in writes:
        target = API + _fill(path.removeprefix(API), room["id"], alice.pk).replace(
            "{notification_id}", "1"
        )
        body = BODIES.get(path.removeprefix(API), {})
        call = getattr(client, method.lower())
        response = call(target, body, content_type="application/json")
        assert_error(response, 403, "forbidden")
    status = Api(alice).get(f"/rooms/{room['id']}").json()
    assert status["last_seq"] == 0 and status["muted"] is False
    assert Api(alice).get("/me").status_code == 200  # the token still works


# -- limits that concurrency cannot race past --------------------------------------------------


@pytest.mark.live
def test_a_concurrent_burst_cannot_race_past_the_limit(server: dict[str, Any]) -> None:
    """50 REST sends at once on 50 connections, then 50 socket sends at once over 5 sockets
    of the same user, against a started server: the token bucket (20, refilled 10 a
    second) lets no more through than it holds, however they interleave."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.live import new_user, send_over_rest

    base = server["base"]
    a, b = new_user(base, "burst"), new_user(base, "burst")
    status, room = live_api(
        base, "POST", "/rooms", {"kind": "direct", "members": [b["id"]]}, a["token"]
    )
    assert status == 201
    started = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        codes = list(
            pool.map(lambda i: send_over_rest(base, room["id"], f"r{i}", a["token"])[0], range(50))
        )
    elapsed = time.monotonic() - started
    assert 20 <= codes.count(201) <= 20 + math.ceil(10 * elapsed), (codes.count(201), elapsed)
    assert codes.count(201) + codes.count(429) == 50

    async def over_sockets() -> tuple[int, int, float]:
        import websockets

        await asyncio.sleep(2.5)  # the bucket refills
        headers = {"Authorization": f"Bearer {a['token']}"}
        # Each socket is sent every accepted message, which this test never reads: with its
        # queue full a client cannot read the server's close either, so do not wait for it.
        sockets = [
            await websockets.connect(
                server["ws"] + "/ws/chat/", additional_headers=headers, close_timeout=0.2
            )
            for _ in range(5)
        ]
        for ws in sockets:
            assert json.loads(await ws.recv())["type"] == "hello"
        began = time.monotonic()
        frames = [
            json.dumps(
                {"type": "message.send", "room": room["id"], "client_id": f"s{i}", "body": "x"}
            )
            for i in range(50)
        ]
        await asyncio.gather(*(sockets[i % 5].send(f) for i, f in enumerate(frames)))
        acks = refusals = 0
        while acks + refusals < 50:
            for ws in sockets:
                try:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 0.05))
                except TimeoutError:
                    continue
                acks += frame["type"] == "message.ack"
                refusals += frame["type"] == "error" and frame["code"] == "rate_limited"
        took = time.monotonic() - began
        await asyncio.gather(*(ws.close() for ws in sockets))
        return acks, refusals, took

    acks, refusals, took = asyncio.run(over_sockets())
    assert 20 <= acks <= 20 + math.ceil(10 * took) and acks + refusals == 50, (acks, took)


def test_body_and_frame_limits_hold_on_rest(alice: Any, bob: Any) -> None:
    room, _ = do_create_room(alice, "direct", [bob.pk])
    api = Api(alice)
    too_long = api.post(f"/rooms/{room['id']}/messages", {"client_id": "a", "body": "é" * 4001})
    assert_error(too_long, 400, "invalid_request")
    exact = api.post(f"/rooms/{room['id']}/messages", {"client_id": "b", "body": "é" * 4000})
    assert exact.status_code == 201
    control = api.post(f"/rooms/{room['id']}/messages", {"client_id": "c", "body": "a\x00b"})
    assert_error(control, 400, "invalid_request")


def test_tokens_never_appear_in_answers_or_urls(alice: Any) -> None:
    token = token_for(alice)
    for method, path in _routes():
        if method != "GET" or "{" in path:
            continue
        response = Api(alice, token=token).get(path.removeprefix(API))
        assert token.encode() not in response.content, path
    assert not re.search(r"token=", str(ninja_api.get_openapi_schema()))


async def test_sends_through_the_queue_refuse_outsiders(alice: Any, bob: Any, carol: Any) -> None:
    from linkup.core.errors import NotFound
    from tests.wsutil import db

    room, _ = await db(do_create_room)(alice, "direct", [bob.pk])
    with pytest.raises(NotFound):
        await submit_send(carol, room["id"], str(uuid.uuid4()), "let me in")


async def test_a_value_the_database_cannot_store_is_the_requests_fault() -> None:
    """Found by schemathesis on PostgreSQL: a NUL character in a query parameter made the
    database refuse the statement, which answered 503 `unavailable` (retry later) instead of
    400. A DataError is now the request's fault."""
    from django.db import DataError

    from linkup.core.errors import InvalidInput
    from linkup.realtime.edges import perform

    def refuse() -> None:
        raise DataError("A string literal cannot contain NUL (0x00) characters.")

    with pytest.raises(InvalidInput):
        await perform(refuse)


def test_nul_in_a_parameter_is_a_400_on_every_database(alice: Any) -> None:
    response = call(Api(alice), "DELETE", "/push/subscriptions?endpoint=x%00y")
    assert response.status_code in (200, 400), response.content  # SQLite stores NUL; PG refuses
    if response.status_code == 400:
        assert_error(response, 400, "invalid_request")
    users = Api(alice).get("/users", q="a\x00b")
    assert users.status_code in (200, 400)
