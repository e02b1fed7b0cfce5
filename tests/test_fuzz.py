"""Fuzzing against a started server: Hypothesis-generated frames on real sockets, and
schemathesis over the OpenAPI document. Bad input gets an error (a frame with a contract
code, or a 4xx JSON body), never `server_error` or a 5xx, and the socket stays open."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.live import api, live_server, new_user

pytestmark = pytest.mark.live

CLIENT_CODES = {
    "invalid_frame",
    "unknown_type",
    "not_found",
    "forbidden",
    "too_large",
    "rate_limited",
}
TYPES = [
    "message.send",
    "receipt",
    "typing",
    "focus",
    "sync",
    "ping",
    "nope",
    "",
    "notification.read",
]
FIELDS = ["type", "room", "client_id", "body", "kind", "seq", "state", "cursors", "ids"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(TYPES),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
FRAMES = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(TYPES)},
        optional={name: VALUES for name in FIELDS[1:]},
    ),
    st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6),
    VALUES,
)


# Budgets and throttles lifted: a refused request is held up to a second at the edge, and
# the fuzzer asks thousands of times (their own tests are tests/test_budgets.py and
# tests/test_hardening.py).
UNLIMITED = {
    f"LINKUP_{name}": "1000000000"
    for name in (
        "SEND_BURST",
        "TYPING_BURST",
        "SEARCH_BURST",
        "FRAME_BURST",
        "SYNC_CURSOR_BURST",
        "READ_BURST",
        "ROOM_CREATE_BURST",
        "MEMBER_ADD_BURST",
        "GROUP_CREATE_BURST",
        "VERIFY_EMAIL_BURST",
        "LOGIN_ACCOUNT_BURST",
        "LOGIN_ADDRESS_BURST",
    )
}


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    with live_server(extra_env=UNLIMITED) as srv:
        yield srv


@pytest.fixture(scope="module")
def fuzz_target(server: dict[str, Any]) -> dict[str, Any]:
    a, b = new_user(server["base"], "fz"), new_user(server["base"], "fz")
    status, room = api(
        server["base"], "POST", "/rooms", {"kind": "direct", "members": [b["id"]]}, a["token"]
    )
    assert status == 201
    return {**server, "token": a["token"], "room": room["id"]}


async def _one(target: dict[str, Any], path: str, frame: Any) -> list[dict[str, Any]]:
    import websockets

    headers = {"Authorization": f"Bearer {target['token']}"}
    async with websockets.connect(target["ws"] + path, additional_headers=headers) as ws:
        assert json.loads(await ws.recv())["type"] == "hello"
        await ws.send(json.dumps(frame))
        await ws.send(json.dumps({"type": "ping"}))
        replies = []
        while True:  # everything up to the pong: the socket is still open and serving
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if reply["type"] == "pong":
                return replies
            replies.append(reply)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frame=FRAMES, room_hint=st.booleans())
def test_generated_frames_get_errors_never_server_errors(
    fuzz_target: dict[str, Any], frame: Any, room_hint: bool
) -> None:
    if room_hint and isinstance(frame, dict) and "room" in frame:
        frame["room"] = fuzz_target["room"]  # reach past the membership check too
    for path in ("/ws/chat/", "/ws/notifications/"):
        replies = asyncio.run(_one(fuzz_target, path, frame))
        for reply in replies:
            if reply["type"] == "error":
                assert reply["code"] in CLIENT_CODES, (frame, reply)
                assert isinstance(reply["detail"], str) and reply["detail"]
            else:
                assert reply["type"] != "server_error", (frame, reply)


# -- schemathesis over the OpenAPI document ---------------------------------------------------


# Once, in the PostgreSQL + Redis pass: the document and the views are the same on both
# configurations, and this run there takes a third of its time on SQLite (about 25 s
# against 90 s: SQLite's one writer serialises the cases' writes behind fsyncs).
@pytest.mark.scaleout
def test_the_api_never_errors_and_keeps_its_schema(fuzz_target: dict[str, Any]) -> None:
    """Every operation of the OpenAPI document, with schemathesis-generated requests (valid
    and not), authenticated: no 5xx, every status documented, every body as documented.
    (Schemathesis's pytest plugin does not load under pytest 9, so its Python API drives
    Hypothesis here. The document has no links, so there is no stateful run.)"""
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(fuzz_target["base"] + "/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_target['token']}"}
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    tested = []
    for operation in operations:
        if operation.path.endswith("/auth/logout"):
            continue  # it would revoke the token every other case uses

        @settings(max_examples=40, suppress_health_check=list(HealthCheck), deadline=None)
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(base_url=fuzz_target["base"], headers=headers)
            case.validate_response(response, checks=checks)

        run()
        tested.append(f"{operation.method.upper()} {operation.path}")
    assert len(tested) >= 20, tested
