"""REST API under /api/v1 against the wire contract (Authentication, REST, Errors, Paging, Sync).

Requests go through Django's test client into the async ninja views, so each test exercises
routing, authentication, validation, the action or query, serialization and the error edge.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
import warnings
from typing import Any

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from linkup.actions import credentials
from linkup.models import ApiToken, Membership, Message, Room
from tests.conftest import make_user, token_for

User = get_user_model()

API = "/api/v1"

pytestmark = [
    # The views reach the database through channels' database_sync_to_async, which calls
    # close_old_connections() and so closes the connection of a test wrapped in a transaction:
    # these tests commit for real and the database is flushed after each one.
    pytest.mark.django_db(transaction=True),
]

ROOM_KEYS = {
    "id",
    "kind",
    "name",
    "members",
    "last_message",
    "last_seq",
    "unread_count",
    "read_seq",
    "delivered_seq",
}
MESSAGE_KEYS = {"id", "room", "seq", "sender", "body", "client_id", "created_at"}
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PASSWORD = "correct horse"


class Api:
    """A JSON caller of /api/v1: bearer token of a user, a given client (session), or nobody."""

    def __init__(
        self, user: Any = None, *, token: str | None = None, client: Client | None = None
    ) -> None:
        self.client = client or Client()
        self.headers: dict[str, str] = {}
        if token is None and user is not None:
            token = token_for(user)
        if token is not None:
            self.headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"

    def get(self, path: str, **query: Any) -> Any:
        return self.client.get(API + path, query, **self.headers)

    def post(self, path: str, data: Any = None, **extra: Any) -> Any:
        body = {} if data is None else data
        return self.client.post(
            API + path, body, content_type="application/json", **self.headers, **extra
        )

    def delete(self, path: str, **extra: Any) -> Any:
        return self.client.delete(API + path, **self.headers, **extra)

    def patch(self, path: str, data: Any = None) -> Any:
        body = {} if data is None else data
        return self.client.patch(API + path, body, content_type="application/json", **self.headers)

    def put(self, path: str, data: Any = None) -> Any:
        body = {} if data is None else data
        return self.client.put(API + path, body, content_type="application/json", **self.headers)


NO_PROFILE = {"display_name": "", "avatar": None}  # a person who set no name or picture


def me_dict(user: Any, **changed: Any) -> dict[str, Any]:
    """What `GET /me` answers a user who changed nothing but `changed`."""
    return {
        "id": user.pk,
        "username": user.get_username(),
        "hide_last_seen": False,
        "group_adds": "everyone",
        "email": "",
        "email_verified": False,
        "theme": "",
        "language": "",
        "display_name": "",
        "about": "",
        "avatar": None,
        **changed,
    }


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert the contract's error body `{"error": {"code", "detail"}}` with this status."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert list(body) == ["error"], body
    assert set(body["error"]) == {"code", "detail"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["detail"], str) and body["error"]["detail"], body
    return body


def parse_time(value: str) -> dt.datetime:
    assert TIME_RE.match(value), value
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


def open_direct(user: Any, other: Any) -> int:
    response = Api(user).post("/rooms", {"kind": "direct", "members": [other.pk]})
    assert response.status_code in (200, 201), response.content
    return int(response.json()["id"])


def open_group(owner: Any, *members: Any, name: str = "team") -> int:
    response = Api(owner).post(
        "/rooms", {"kind": "group", "name": name, "members": [m.pk for m in members]}
    )
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def send(user: Any, room_id: int, body: str = "hi", client_id: str | None = None) -> Any:
    return Api(user).post(
        f"/rooms/{room_id}/messages", {"client_id": client_id or str(uuid.uuid4()), "body": body}
    )


def room_of(user: Any, room_id: int) -> dict[str, Any]:
    response = Api(user).get(f"/rooms/{room_id}")
    assert response.status_code == 200, response.content
    return dict(response.json())


def bulk_room(owner: Any, sender: Any, n: int, *members: Any, name: str = "bulk") -> int:
    """A group room holding messages seq 1..n (bodies "m<seq>"), created without the API."""
    now = timezone.now()
    room = Room.objects.create(
        kind=Room.Kind.GROUP,
        name=name,
        created_by=owner,
        created_at=now,
        last_activity_at=now,
        last_seq=n,
    )
    people = dict.fromkeys([owner, sender, *members])
    Membership.objects.bulk_create(
        Membership(
            room=room,
            user=u,
            joined_at=now,
            role=Membership.Role.OWNER if u == owner else Membership.Role.MEMBER,
        )
        for u in people
    )
    Message.objects.bulk_create(
        Message(
            room=room, seq=s, sender=sender, body=f"m{s}", client_id=f"bulk-{s}", created_at=now
        )
        for s in range(1, n + 1)
    )
    return int(room.pk)


# -- registration ----------------------------------------------------------------------------


def test_register_creates_a_user_who_can_log_in(db: Any) -> None:
    response = Api().post("/auth/register", {"username": "zed", "password": PASSWORD})
    assert response.status_code == 201, response.content
    user = User.objects.get(username="zed")
    assert response.json() == {"user": {"id": user.pk, "username": "zed"}}
    assert user.check_password(PASSWORD)
    login = Api().post("/auth/token", {"username": "zed", "password": PASSWORD})
    assert login.status_code == 200
    assert login.json()["user"] == {"id": user.pk, "username": "zed"}


def test_register_with_email(db: Any) -> None:
    response = Api().post(
        "/auth/register", {"username": "yan", "password": PASSWORD, "email": "yan@example.com"}
    )
    assert response.status_code == 201, response.content
    assert User.objects.get(username="yan").email == "yan@example.com"


@pytest.mark.parametrize("second", ["zed", "ZED", "Zed", " zed "])
def test_register_duplicate_username_is_a_conflict_case_insensitively(db: Any, second: str) -> None:
    first = Api().post("/auth/register", {"username": "zed", "password": PASSWORD})
    assert first.status_code == 201
    response = Api().post("/auth/register", {"username": second, "password": PASSWORD})
    assert_error(response, 409, "conflict")
    assert User.objects.filter(username__iexact="zed").count() == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [("émile", "ÉMILE"), ("Ωmega", "ωMEGA"), ("zed", "ｚｅｄ")],
    ids=["accented", "greek", "fullwidth"],
)
def test_register_duplicate_non_ascii_username_is_a_conflict(
    db: Any, first: str, second: str
) -> None:
    """Case-insensitive beyond ASCII; fullwidth letters are the same name after NFKC, the
    normalization Django's own create_user applies to usernames."""
    created = Api().post("/auth/register", {"username": first, "password": PASSWORD})
    assert created.status_code == 201, created.content
    response = Api().post("/auth/register", {"username": second, "password": PASSWORD})
    assert_error(response, 409, "conflict")
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "two words", "password": PASSWORD},
        {"username": "bang!", "password": PASSWORD},
        {"username": "", "password": PASSWORD},
        {"username": "   ", "password": PASSWORD},
        {"username": "x" * 151, "password": PASSWORD},
        {"username": "zed", "password": "1234567"},
        {"username": "zed", "password": ""},
        {"username": 5, "password": PASSWORD},
        {"username": "zed", "password": 12345678},
        {"username": "zed", "password": None},
        {"username": "zed", "password": PASSWORD, "email": 7},
        {"username": "zed"},
        {"password": PASSWORD},
        [],
    ],
    ids=lambda p: repr(p)[:40],
)
def test_register_refuses_bad_input(db: Any, payload: Any) -> None:
    response = Api().post("/auth/register", payload)
    assert_error(response, 400, "invalid_request")
    assert User.objects.count() == 0


def test_register_refused_when_closed(db: Any, settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "REGISTRATION_OPEN": False}
    response = Api().post("/auth/register", {"username": "zed", "password": PASSWORD})
    assert_error(response, 403, "forbidden")
    assert not User.objects.filter(username="zed").exists()


# -- tokens ----------------------------------------------------------------------------------


def test_token_login_returns_a_working_bearer_token(db: Any) -> None:
    alice = make_user("alice", PASSWORD)
    response = Api().post("/auth/token", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"token", "user"}
    assert body["user"] == {"id": alice.pk, "username": "alice"}
    assert isinstance(body["token"], str) and len(body["token"]) >= 32
    # Stored as a digest only.
    assert not ApiToken.objects.filter(digest=body["token"]).exists()
    assert ApiToken.objects.filter(digest=credentials.digest(body["token"])).exists()
    me = Api(token=body["token"]).get("/me")
    assert me.status_code == 200
    assert me.json() == me_dict(alice)


def test_token_wrong_password_and_unknown_user_look_the_same(db: Any) -> None:
    make_user("alice", PASSWORD)
    wrong = Api().post("/auth/token", {"username": "alice", "password": "not it at all"})
    unknown = Api().post("/auth/token", {"username": "nobody", "password": PASSWORD})
    # A NUL in the username (PostgreSQL refuses to compare one): unknown, not a 500.
    nul = Api().post("/auth/token", {"username": "ali\u0000ce", "password": PASSWORD})
    assert_error(wrong, 401, "unauthorized")
    assert_error(unknown, 401, "unauthorized")
    assert wrong.content == unknown.content == nul.content
    assert ApiToken.objects.count() == 0


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"username": "alice"},
        {"password": PASSWORD},
        {"username": 1, "password": PASSWORD},
        {"username": "alice", "password": None},
    ],
    ids=repr,
)
def test_token_refuses_missing_or_mistyped_fields(alice: Any, payload: Any) -> None:
    assert_error(Api().post("/auth/token", payload), 400, "invalid_request")
    assert ApiToken.objects.count() == 0


# -- authentication required -----------------------------------------------------------------

AUTHENTICATED = [
    ("get", "/me"),
    ("get", "/users"),
    ("get", "/rooms"),
    ("post", "/rooms"),
    ("get", "/rooms/1"),
    ("post", "/rooms/1/members"),
    ("delete", "/rooms/1/members/1"),
    ("get", "/rooms/1/messages"),
    ("post", "/rooms/1/messages"),
    ("post", "/rooms/1/receipts"),
    ("get", "/sync"),
    ("post", "/auth/logout"),
    ("post", "/auth/ws-ticket"),
]


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED, ids=lambda v: str(v))
@pytest.mark.parametrize(
    "authorization", [None, "Bearer garbage", "Bearer ", "Basic YWxpY2U6eA==", "garbage"]
)
def test_authenticated_endpoints_refuse_missing_or_bad_credentials(
    alice: Any, method: str, path: str, authorization: str | None
) -> None:
    client = Client()
    extra = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    if method == "post":
        response = client.post(API + path, {}, content_type="application/json", **extra)
    else:
        response = getattr(client, method)(API + path, **extra)
    assert_error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"] == "Bearer"


def test_bearer_of_deactivated_user_is_refused(alice: Any) -> None:
    token = token_for(alice)
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert_error(Api(token=token).get("/me"), 401, "unauthorized")


def test_logout_revokes_only_the_token_in_use(alice: Any) -> None:
    first, second = token_for(alice), token_for(alice)
    response = Api(token=first).post("/auth/logout")
    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True}
    assert_error(Api(token=first).get("/me"), 401, "unauthorized")
    assert_error(Api(token=first).post("/auth/logout"), 401, "unauthorized")
    assert Api(token=second).get("/me").json() == me_dict(alice)
    assert ApiToken.objects.filter(user=alice).count() == 1


def test_logout_with_session_ends_the_session(alice: Any) -> None:
    client = Client()
    client.force_login(alice)
    assert Api(client=client).get("/me").status_code == 200
    response = Api(client=client).post("/auth/logout")
    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True}
    assert_error(Api(client=client).get("/me"), 401, "unauthorized")


# -- socket tickets --------------------------------------------------------------------------


def test_ws_ticket_redeems_once(alice: Any) -> None:
    before = timezone.now()
    response = Api(alice).post("/auth/ws-ticket")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"ticket", "expires_at"}
    expires = parse_time(body["expires_at"])
    assert dt.timedelta(seconds=29) <= expires - before <= dt.timedelta(seconds=31)
    user = credentials.redeem_ticket(body["ticket"])
    assert user is not None and user.pk == alice.pk
    assert credentials.redeem_ticket(body["ticket"]) is None


def test_ws_ticket_expired_is_refused(alice: Any) -> None:
    ticket = Api(alice).post("/auth/ws-ticket").json()["ticket"]
    later = timezone.now() + dt.timedelta(seconds=31)
    assert credentials.redeem_ticket(ticket, now=later) is None
    assert credentials.redeem_ticket("not-a-ticket") is None
    assert credentials.redeem_ticket(token_for(alice)) is None  # tokens are not tickets


# -- session cookie and CSRF -----------------------------------------------------------------


def test_session_cookie_authenticates_reads(alice: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.get(API + "/me")
    assert response.status_code == 200, response.content
    assert response.json() == me_dict(alice)


def test_session_write_without_csrf_token_is_forbidden(alice: Any, bob: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(
        API + "/rooms", {"kind": "direct", "members": [bob.pk]}, content_type="application/json"
    )
    assert_error(response, 403, "forbidden")
    client.cookies["csrftoken"] = "A" * 32
    response = client.post(
        API + "/rooms",
        {"kind": "direct", "members": [bob.pk]},
        content_type="application/json",
        HTTP_X_CSRFTOKEN="B" * 32,
    )
    assert_error(response, 403, "forbidden")
    assert Room.objects.count() == 0


def test_session_write_with_matching_csrf_token_succeeds(alice: Any, bob: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    secret = "A" * 32
    client.cookies["csrftoken"] = secret
    response = client.post(
        API + "/rooms",
        {"kind": "direct", "members": [bob.pk]},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=secret,
    )
    assert response.status_code == 201, response.content
    assert Room.objects.count() == 1


def test_bearer_requests_never_need_csrf(alice: Any, bob: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    api = Api(alice, client=client)
    response = api.post("/rooms", {"kind": "direct", "members": [bob.pk]})
    assert response.status_code == 201, response.content
    room_id = response.json()["id"]
    assert send(alice, room_id).status_code == 201
    assert api.post("/auth/ws-ticket").status_code == 200
    assert api.post("/auth/logout").status_code == 200


def test_bearer_header_takes_precedence_over_the_session(alice: Any, bob: Any) -> None:
    client = Client()
    client.force_login(alice)
    assert Api(bob, client=client).get("/me").json() == me_dict(bob)
    assert_error(Api(token="garbage", client=client).get("/me"), 401, "unauthorized")


# -- people ----------------------------------------------------------------------------------


def test_me(alice: Any) -> None:
    response = Api(alice).get("/me")
    assert response.status_code == 200
    assert response.json() == me_dict(alice)


def test_the_theme_is_kept_and_anything_else_refused(alice: Any) -> None:
    api = Api(alice)
    for theme in ("dark", "light", ""):
        changed = api.patch("/me", {"theme": theme})
        assert changed.status_code == 200 and changed.json() == me_dict(alice, theme=theme)
        assert api.get("/me").json()["theme"] == theme
    api.patch("/me", {"theme": "dark"})
    for wrong in ("DARK", "blue", 1, None, "<script>"):
        if wrong is None:
            assert_error(api.patch("/me", {}), 400, "invalid_request")
            continue
        assert_error(api.patch("/me", {"theme": wrong}), 400, "invalid_request")
    assert api.get("/me").json()["theme"] == "dark"  # nothing half-changed
    page = Client()
    page.force_login(alice)
    assert b'<html lang="en" data-theme="dark">' in page.get("/").content


def test_users_search_by_substring_excluding_the_caller(alice: Any, bob: Any, carol: Any) -> None:
    alicia = make_user("alicia")
    malice = make_user("malice")
    api = Api(alice)
    found = api.get("/users", q="lic")
    assert found.status_code == 200
    assert sorted(found.json()["users"], key=lambda u: u["id"]) == [
        # Nobody is connected: offline, never seen.
        # Strangers (no room shared with the caller): no presence shown.
        {"id": alicia.pk, "username": "alicia", **NO_PROFILE, "status": None, "last_seen": None},
        {"id": malice.pk, "username": "malice", **NO_PROFILE, "status": None, "last_seen": None},
    ]
    # Fewer than three characters find nobody: no listing everyone a letter at a time.
    for short in ("", "a", "li", "  li  "):
        assert api.get("/users", q=short).json() == {"users": []}
    assert api.get("/users", q="alice").json()["users"] == [
        {"id": malice.pk, "username": "malice", **NO_PROFILE, "status": None, "last_seen": None}
    ]
    assert api.get("/users", q="nobody-like-this").json() == {"users": []}


def test_users_search_shows_presence_only_to_people_sharing_a_room(
    alice: Any, bob: Any, carol: Any
) -> None:
    from linkup.actions.rooms import do_create_room

    do_create_room(alice, "direct", [bob.pk])
    found = {u["username"]: u for u in Api(alice).get("/users", q="o").json()["users"]}
    assert found == {}  # one letter finds nobody
    bob_seen = Api(alice).get("/users", q="bob").json()["users"]
    assert bob_seen == [
        {"id": bob.pk, "username": "bob", **NO_PROFILE, "status": "offline", "last_seen": None}
    ]
    carol_seen = Api(alice).get("/users", q="carol").json()["users"]
    assert carol_seen == [
        {"id": carol.pk, "username": "carol", **NO_PROFILE, "status": None, "last_seen": None}
    ]


def test_users_search_is_rate_limited(alice: Any, settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "SEARCH_RATE_PER_S": 0.001, "SEARCH_BURST": 3}
    api = Api(alice)
    assert [api.get("/users", q="bob").status_code for _ in range(3)] == [200, 200, 200]
    refused = api.get("/users", q="bob")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1


# -- rooms -----------------------------------------------------------------------------------


def test_direct_room_created_once_and_shared(alice: Any, bob: Any) -> None:
    first = Api(alice).post("/rooms", {"kind": "direct", "members": [bob.pk]})
    assert first.status_code == 201, first.content
    room = first.json()
    assert set(room) >= ROOM_KEYS
    assert room["kind"] == "direct"
    assert {m["id"] for m in room["members"]} == {alice.pk, bob.pk}
    assert room["last_message"] is None
    assert (room["last_seq"], room["unread_count"], room["read_seq"], room["delivered_seq"]) == (
        0,
        0,
        0,
        0,
    )
    again = Api(alice).post("/rooms", {"kind": "direct", "members": [bob.pk]})
    assert again.status_code == 200
    assert again.json()["id"] == room["id"]
    other_side = Api(bob).post("/rooms", {"kind": "direct", "members": [alice.pk]})
    assert other_side.status_code == 200
    assert other_side.json()["id"] == room["id"]
    assert Room.objects.count() == 1
    assert Membership.objects.filter(room_id=room["id"]).count() == 2


@pytest.mark.parametrize("members", ["self", "two", "none", "unknown", "zero", "string"], ids=str)
def test_direct_room_refuses_bad_members(alice: Any, bob: Any, carol: Any, members: str) -> None:
    ids: Any = {
        "self": [alice.pk],
        "two": [bob.pk, carol.pk],
        "none": [],
        "unknown": [carol.pk + 1000],
        "zero": [0],
        "string": [str(bob.pk)],
    }[members]
    response = Api(alice).post("/rooms", {"kind": "direct", "members": ids})
    assert_error(response, 400, "invalid_request")
    assert Room.objects.count() == 0


def test_group_room_created_with_owner_and_members(alice: Any, bob: Any, carol: Any) -> None:
    response = Api(alice).post(
        "/rooms", {"kind": "group", "name": "  Team  ", "members": [bob.pk, carol.pk, alice.pk]}
    )
    assert response.status_code == 201, response.content
    room = response.json()
    assert set(room) >= ROOM_KEYS
    assert room["kind"] == "group"
    assert room["name"] == "Team"
    roles = {m["id"]: (m["username"], m["role"]) for m in room["members"]}
    assert roles == {
        alice.pk: ("alice", "owner"),
        bob.pk: ("bob", "member"),
        carol.pk: ("carol", "member"),
    }
    assert len(room["members"]) == 3
    assert room_of(bob, room["id"])["id"] == room["id"]
    # Groups are never deduplicated like direct rooms.
    assert open_group(alice, bob, carol, name="Team") != room["id"]


@pytest.mark.parametrize("name", [None, "", "   ", 5, "x" * 201], ids=repr)
def test_group_room_needs_a_name(alice: Any, bob: Any, name: Any) -> None:
    payload: dict[str, Any] = {"kind": "group", "members": [bob.pk]}
    if name is not None:
        payload["name"] = name
    assert_error(Api(alice).post("/rooms", payload), 400, "invalid_request")
    assert Room.objects.count() == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "channel", "members": []},
        {"members": []},
        {"kind": "group", "name": "g", "members": [10**9]},
        {"kind": "group", "name": "g", "members": "1"},
    ],
    ids=repr,
)
def test_create_room_refuses_bad_payloads(alice: Any, payload: Any) -> None:
    assert_error(Api(alice).post("/rooms", payload), 400, "invalid_request")
    assert Room.objects.count() == 0


def test_room_list_has_contract_fields_in_activity_order(alice: Any, bob: Any, carol: Any) -> None:
    older = open_direct(alice, bob)
    newer = open_group(alice, carol, name="later")
    api = Api(alice)
    rooms = api.get("/rooms").json()["rooms"]
    assert [r["id"] for r in rooms] == [newer, older]
    for room in rooms:
        assert set(room) >= ROOM_KEYS
    assert send(bob, older, "wake up").status_code == 201
    listed = api.get("/rooms")
    assert listed.status_code == 200
    assert list(listed.json()) == ["rooms"]
    rooms = listed.json()["rooms"]
    assert [r["id"] for r in rooms] == [older, newer]
    top = rooms[0]
    assert top["last_seq"] == 1
    assert top["last_message"]["body"] == "wake up"
    assert top["last_message"]["sender"] == {"id": bob.pk, "username": "bob"}
    assert send(carol, newer, "me too").status_code == 201
    assert [r["id"] for r in api.get("/rooms").json()["rooms"]] == [newer, older]
    # Rooms of others are not listed.
    open_direct(bob, carol)
    assert len(api.get("/rooms").json()["rooms"]) == 2


def test_unread_count_counts_messages_by_others_not_yet_read(
    alice: Any, bob: Any, carol: Any
) -> None:
    room = open_group(alice, bob, carol)
    send(bob, room, "one")
    send(bob, room, "two")
    send(carol, room, "three")
    mine = room_of(alice, room)
    assert (mine["unread_count"], mine["read_seq"], mine["last_seq"]) == (3, 0, 3)
    assert room_of(bob, room)["unread_count"] == 1
    assert room_of(carol, room)["unread_count"] == 0
    Api(alice).post(f"/rooms/{room}/receipts", {"kind": "read", "seq": 2})
    assert room_of(alice, room)["unread_count"] == 1
    send(alice, room, "four")
    assert room_of(alice, room)["unread_count"] == 0
    assert room_of(bob, room)["unread_count"] == 2
    listed = {r["id"]: r for r in Api(bob).get("/rooms").json()["rooms"]}
    assert listed[room]["unread_count"] == 2


ROOM_SCOPED = [
    ("get", "/rooms/{id}", None),
    ("get", "/rooms/{id}/messages", None),
    ("post", "/rooms/{id}/messages", {"client_id": "c-1", "body": "hello"}),
    ("post", "/rooms/{id}/receipts", {"kind": "read", "seq": 1}),
    ("post", "/rooms/{id}/members", {"user_ids": [1]}),
    ("delete", "/rooms/{id}/members/{me}", None),
]


@pytest.mark.parametrize(("method", "path", "payload"), ROOM_SCOPED, ids=lambda v: str(v)[:30])
def test_foreign_and_missing_rooms_look_identical(
    alice: Any, bob: Any, carol: Any, method: str, path: str, payload: Any
) -> None:
    foreign = open_group(bob, alice, name="secret")
    send(bob, foreign, "private")
    missing = foreign + 1000
    api = Api(carol)

    def call(room_id: int) -> Any:
        url = path.format(id=room_id, me=carol.pk)
        if method == "post":
            return api.post(url, payload)
        return getattr(api, method)(url)

    seen, absent = call(foreign), call(missing)
    assert_error(seen, 404, "not_found")
    assert_error(absent, 404, "not_found")
    assert seen.content == absent.content
    assert Message.objects.count() == 1
    assert not Membership.objects.filter(user=carol).exists()


# -- membership ------------------------------------------------------------------------------


def test_only_the_owner_adds_members(alice: Any, bob: Any, carol: Any) -> None:
    dave, erin = make_user("dave"), make_user("erin")
    room = open_group(alice, bob)
    added = Api(alice).post(f"/rooms/{room}/members", {"user_ids": [carol.pk]})
    assert added.status_code == 200, added.content
    assert {m["id"] for m in added.json()["members"]} == {alice.pk, bob.pk, carol.pk}
    assert room_of(carol, room)["id"] == room
    # Adding someone already there changes nothing.
    again = Api(alice).post(f"/rooms/{room}/members", {"user_ids": [carol.pk, bob.pk]})
    assert again.status_code == 200
    assert Membership.objects.filter(room_id=room).count() == 3
    assert_error(Api(bob).post(f"/rooms/{room}/members", {"user_ids": [dave.pk]}), 403, "forbidden")
    assert_error(
        Api(dave).post(f"/rooms/{room}/members", {"user_ids": [erin.pk]}), 404, "not_found"
    )
    assert_error(
        Api(alice).post(f"/rooms/{room}/members", {"user_ids": [10**9]}), 400, "invalid_request"
    )
    assert_error(
        Api(alice).post(f"/rooms/{room}/members", {"user_ids": []}), 400, "invalid_request"
    )
    assert set(Membership.objects.filter(room_id=room).values_list("user_id", flat=True)) == {
        alice.pk,
        bob.pk,
        carol.pk,
    }


def test_leaving_and_removing_members(alice: Any, bob: Any, carol: Any) -> None:
    dave = make_user("dave")
    room = open_group(alice, bob, carol, dave)
    send(alice, room, "before")
    # A plain member removes nobody else, not even the owner.
    assert_error(Api(bob).delete(f"/rooms/{room}/members/{carol.pk}"), 403, "forbidden")
    assert_error(Api(bob).delete(f"/rooms/{room}/members/{alice.pk}"), 403, "forbidden")
    # Anyone leaves.
    left = Api(dave).delete(f"/rooms/{room}/members/{dave.pk}")
    assert left.status_code == 200, left.content
    assert left.json() == {"ok": True}
    assert_error(Api(dave).get(f"/rooms/{room}"), 404, "not_found")
    # The owner removes a member, who then sees nothing of the room.
    removed = Api(alice).delete(f"/rooms/{room}/members/{carol.pk}")
    assert removed.status_code == 200, removed.content
    assert removed.json() == {"ok": True}
    carol_api = Api(carol)
    assert_error(carol_api.get(f"/rooms/{room}"), 404, "not_found")
    assert_error(carol_api.get(f"/rooms/{room}/messages"), 404, "not_found")
    assert_error(
        carol_api.post(f"/rooms/{room}/messages", {"client_id": "x", "body": "let me in"}),
        404,
        "not_found",
    )
    assert room not in [r["id"] for r in carol_api.get("/rooms").json()["rooms"]]
    assert room not in carol_api.get("/sync").json()["room_ids"]
    assert {m["id"] for m in room_of(alice, room)["members"]} == {alice.pk, bob.pk}
    # Removing someone who is not a member.
    assert_error(Api(alice).delete(f"/rooms/{room}/members/{carol.pk}"), 404, "not_found")
    assert Message.objects.filter(room_id=room).count() == 1


def test_owner_leaving_hands_the_group_on(alice: Any, bob: Any, carol: Any) -> None:
    room = open_group(alice, bob, carol)
    assert Api(alice).delete(f"/rooms/{room}/members/{alice.pk}").status_code == 200
    roles = {m["id"]: m["role"] for m in room_of(bob, room)["members"]}
    assert sorted(roles.values()) == ["member", "owner"]
    assert alice.pk not in roles


def test_direct_room_membership_cannot_change(alice: Any, bob: Any, carol: Any) -> None:
    room = open_direct(alice, bob)
    assert_error(
        Api(alice).post(f"/rooms/{room}/members", {"user_ids": [carol.pk]}), 403, "forbidden"
    )
    assert_error(Api(alice).delete(f"/rooms/{room}/members/{bob.pk}"), 403, "forbidden")
    assert_error(Api(alice).delete(f"/rooms/{room}/members/{alice.pk}"), 403, "forbidden")
    assert Membership.objects.filter(room_id=room).count() == 2


def test_new_member_markers_start_at_last_seq(alice: Any, bob: Any, carol: Any) -> None:
    room = open_group(alice, bob)
    for body in ("one", "two", "three"):
        assert send(bob, room, body).status_code == 201
    assert Api(alice).post(f"/rooms/{room}/members", {"user_ids": [carol.pk]}).status_code == 200
    view = room_of(carol, room)
    assert (view["last_seq"], view["read_seq"], view["delivered_seq"], view["unread_count"]) == (
        3,
        3,
        3,
        0,
    )
    sync = Api(carol).get("/sync").json()
    (entry,) = sync["rooms"]
    assert entry["markers"][str(carol.pk)] == {"delivered_seq": 3, "read_seq": 3}
    send(bob, room, "four")
    assert room_of(carol, room)["unread_count"] == 1


# -- messages --------------------------------------------------------------------------------


def test_send_is_idempotent_per_client_id(alice: Any, bob: Any) -> None:
    room = open_direct(alice, bob)
    before = timezone.now()
    first = send(alice, room, "  hello  ", client_id="c-1")
    assert first.status_code == 201, first.content
    message = first.json()
    assert set(message) >= MESSAGE_KEYS
    assert message["room"] == room
    assert message["seq"] == 1
    assert message["sender"] == {"id": alice.pk, "username": "alice"}
    assert message["body"] == "hello"
    assert message["client_id"] == "c-1"
    created = parse_time(message["created_at"])
    assert before - dt.timedelta(seconds=1) <= created <= timezone.now() + dt.timedelta(seconds=1)
    repeat = send(alice, room, "something else", client_id="c-1")
    assert repeat.status_code == 200, repeat.content
    assert repeat.json() == message
    assert Message.objects.filter(room_id=room).count() == 1
    assert Room.objects.get(pk=room).last_seq == 1
    # Another sender's identical client_id is their own message.
    theirs = send(bob, room, "hello", client_id="c-1")
    assert theirs.status_code == 201
    assert theirs.json()["id"] != message["id"]
    assert theirs.json()["seq"] == 2


def test_same_client_id_in_another_room_is_a_new_message(alice: Any, bob: Any, carol: Any) -> None:
    one = open_direct(alice, bob)
    two = open_direct(alice, carol)
    a = send(alice, one, "hi", client_id="same")
    b = send(alice, two, "hi", client_id="same")
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]
    assert (a.json()["room"], b.json()["room"]) == (one, two)
    assert b.json()["seq"] == 1
    assert Message.objects.count() == 2


@pytest.mark.parametrize(
    "payload",
    [
        {"client_id": "c", "body": ""},
        {"client_id": "c", "body": " "},
        {"client_id": "c", "body": " \n\t \u3000"},
        {"client_id": "c", "body": "x" * 4001},
        {"client_id": "c", "body": "😀" * 4001},
        {"client_id": "c", "body": "\x00"},
        {"client_id": "c", "body": "a\x00b"},
        {"client_id": "c", "body": "bell\x07"},
        {"client_id": "c", "body": "lone \ud800 surrogate"},
        {"client_id": "c", "body": 5},
        {"client_id": "c", "body": None},
        {"client_id": "c"},
        {"body": "hi"},
        {"client_id": "", "body": "hi"},
        {"client_id": "has space", "body": "hi"},
        {"client_id": "x" * 65, "body": "hi"},
        {"client_id": 7, "body": "hi"},
    ],
    ids=lambda p: repr(p)[:40],
)
def test_send_refuses_bad_input_and_stores_nothing(alice: Any, bob: Any, payload: Any) -> None:
    room = open_direct(alice, bob)
    response = Api(alice).post(f"/rooms/{room}/messages", payload)
    assert_error(response, 400, "invalid_request")
    assert Message.objects.count() == 0
    assert Room.objects.get(pk=room).last_seq == 0


def test_send_rate_limit_answers_429_with_retry_after(alice: Any, bob: Any, settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "SEND_BURST": 2, "SEND_RATE_PER_S": 0.01}
    room = open_direct(alice, bob)
    assert send(alice, room, "one").status_code == 201
    assert send(alice, room, "two").status_code == 201
    refused = send(alice, room, "three", client_id="third")
    assert_error(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) >= 1
    assert not Message.objects.filter(client_id="third").exists()
    assert Room.objects.get(pk=room).last_seq == 2
    # Per user: bob still has his own burst.
    assert send(bob, room, "mine").status_code == 201


def test_body_length_counts_code_points(alice: Any, bob: Any) -> None:
    room = open_direct(alice, bob)
    astral = send(alice, room, "😀" * 4000)
    assert astral.status_code == 201, astral.content
    assert astral.json()["body"] == "😀" * 4000
    assert Message.objects.get(room_id=room, seq=1).body == "😀" * 4000
    padded = send(alice, room, "  " + "x" * 4000 + "\n")
    assert padded.status_code == 201, padded.content
    assert len(padded.json()["body"]) == 4000
    multiline = send(alice, room, "line one\n\tline two")
    assert multiline.status_code == 201
    assert multiline.json()["body"] == "line one\n\tline two"


def test_seq_counts_up_per_room(alice: Any, bob: Any, carol: Any) -> None:
    one = open_direct(alice, bob)
    two = open_direct(alice, carol)
    seqs = [send(alice if i % 2 else bob, one, f"m{i}").json()["seq"] for i in range(3)]
    assert seqs == [1, 2, 3]
    assert send(carol, two, "elsewhere").json()["seq"] == 1
    assert send(alice, one, "four").json()["seq"] == 4
    assert room_of(bob, one)["last_seq"] == 4
    history = Api(bob).get(f"/rooms/{one}/messages").json()
    assert [m["seq"] for m in history["messages"]] == [1, 2, 3, 4]
    assert [m["body"] for m in history["messages"]] == ["m0", "m1", "m2", "four"]
    assert history["has_more"] is False


# -- paging ----------------------------------------------------------------------------------

PAGE_SIZES = [*range(0, 31), 50, 51, 101, 130]


def expected_page(
    n: int, after: int | None, before: int | None, limit: int | None
) -> tuple[list[int], bool]:
    """Reference model of the Paging section over the seqs 1..n."""
    seqs = list(range(1, n + 1))
    size = 50 if limit is None else min(limit, 100)
    if after is not None:
        later = [s for s in seqs if s > after]
        return later[:size], len(later) > size
    earlier = [s for s in seqs if s < before] if before is not None else seqs
    return earlier[-size:], len(earlier) > size


def test_history_paging_matches_the_reference_model(alice: Any, bob: Any) -> None:
    rooms = {n: bulk_room(alice, bob, n, name=f"r{n}") for n in PAGE_SIZES}
    api = Api(alice)

    @given(
        n=st.sampled_from(PAGE_SIZES),
        direction=st.sampled_from(["after", "before", "newest"]),
        cursor=st.integers(0, 140),
        limit=st.none() | st.integers(1, 130) | st.sampled_from([100, 101, 999, 1000]),
    )
    def check(n: int, direction: str, cursor: int, limit: int | None) -> None:
        after = cursor if direction == "after" else None
        before = cursor if direction == "before" else None
        query = {
            k: v
            for k, v in {"after_seq": after, "before_seq": before, "limit": limit}.items()
            if v is not None
        }
        response = api.get(f"/rooms/{rooms[n]}/messages", **query)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"messages", "has_more"}
        seqs, has_more = expected_page(n, after, before, limit)
        assert [m["seq"] for m in body["messages"]] == seqs
        assert body["has_more"] is has_more
        for message in body["messages"]:
            assert message["room"] == rooms[n]
            assert message["body"] == f"m{message['seq']}"
            assert message["sender"] == {"id": bob.pk, "username": "bob"}

    check()


def test_history_limits(alice: Any, bob: Any) -> None:
    room = bulk_room(alice, bob, 130)
    api = Api(alice)

    def page(**query: Any) -> tuple[list[int], bool]:
        response = api.get(f"/rooms/{room}/messages", **query)
        assert response.status_code == 200, response.content
        return [m["seq"] for m in response.json()["messages"]], response.json()["has_more"]

    assert page() == (list(range(81, 131)), True)
    assert page(limit=100) == (list(range(31, 131)), True)
    assert page(limit=101) == (list(range(31, 131)), True)
    assert page(limit=1000) == (list(range(31, 131)), True)
    assert page(after_seq=0, limit=500) == (list(range(1, 101)), True)
    assert page(after_seq=30, limit=500) == (list(range(31, 131)), False)
    assert page(before_seq=31) == (list(range(1, 31)), False)
    assert page(before_seq=0) == ([], False)
    assert page(after_seq=130) == ([], False)
    for bad in (
        {"limit": 1001},
        {"limit": 0},
        {"limit": -1},
        {"limit": "ten"},
        {"after_seq": -1},
        {"before_seq": "x"},
        {"after_seq": 1, "before_seq": 5},
        {"after_seq": 0, "before_seq": 0},
    ):
        assert_error(api.get(f"/rooms/{room}/messages", **bad), 400, "invalid_request")


# -- receipts --------------------------------------------------------------------------------


def test_receipts_move_markers_monotonically(alice: Any, bob: Any) -> None:
    room = open_direct(alice, bob)
    for i in range(5):
        send(bob, room, f"m{i}")
    api = Api(alice)

    def receipt(kind: str, seq: int) -> dict[str, Any]:
        response = api.post(f"/rooms/{room}/receipts", {"kind": kind, "seq": seq})
        assert response.status_code == 200, response.content
        return dict(response.json())

    def markers() -> tuple[int, int]:
        view = room_of(alice, room)
        return view["read_seq"], view["delivered_seq"]

    moved = receipt("read", 3)
    assert moved["accepted"] is True
    assert {k: v for k, v in moved["receipt"].items() if k != "at"} == {
        "type": "receipt",
        "room": room,
        "user": alice.pk,
        "kind": "read",
        "seq": 3,
    }
    parse_time(moved["receipt"]["at"])
    assert markers() == (3, 3)
    assert receipt("read", 3) == {"accepted": False, "receipt": None}
    assert receipt("read", 1) == {"accepted": False, "receipt": None}
    assert receipt("delivered", 2) == {"accepted": False, "receipt": None}
    assert markers() == (3, 3)
    assert receipt("delivered", 4)["receipt"]["seq"] == 4
    assert markers() == (3, 4)
    clamped = receipt("read", 99)
    assert clamped["accepted"] is True
    assert clamped["receipt"]["seq"] == 5
    assert markers() == (5, 5)
    assert receipt("delivered", 10**12)["accepted"] is False
    assert markers() == (5, 5)
    assert room_of(bob, room)["read_seq"] == 5  # bob's own sends moved his markers


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "seen", "seq": 1},
        {"kind": "read", "seq": -1},
        {"kind": "read", "seq": "1"},
        {"kind": "read", "seq": 1.5},
        {"kind": "read", "seq": True},
        {"kind": "read"},
        {"seq": 1},
    ],
    ids=repr,
)
def test_receipts_refuse_bad_input(alice: Any, bob: Any, payload: Any) -> None:
    room = open_direct(alice, bob)
    send(bob, room)
    assert_error(Api(alice).post(f"/rooms/{room}/receipts", payload), 400, "invalid_request")
    assert room_of(alice, room)["read_seq"] == 0


def test_receipt_markers_match_the_reference_model(alice: Any, bob: Any) -> None:
    rooms = {n: bulk_room(alice, bob, n, name=f"r{n}") for n in (0, 1, 5, 20)}
    api = Api(alice)

    @given(
        n=st.sampled_from(sorted(rooms)),
        steps=st.lists(
            st.tuples(st.sampled_from(["read", "delivered"]), st.integers(0, 25)), max_size=8
        ),
    )
    def check(n: int, steps: list[tuple[str, int]]) -> None:
        room = rooms[n]
        mine = Membership.objects.filter(room_id=room, user=alice)
        mine.update(read_seq=0, delivered_seq=0)
        read = delivered = 0
        for kind, seq in steps:
            target = min(seq, n)
            if kind == "read":
                accepted = target > read
                read = max(read, target)
                delivered = max(delivered, read)
            else:
                accepted = target > delivered
                delivered = max(delivered, target)
            response = api.post(f"/rooms/{room}/receipts", {"kind": kind, "seq": seq})
            assert response.status_code == 200, response.content
            body = response.json()
            assert body["accepted"] is accepted
            if accepted:
                assert body["receipt"]["seq"] == target
                assert body["receipt"]["kind"] == kind
            else:
                assert body["receipt"] is None
            assert mine.values_list("read_seq", "delivered_seq").get() == (read, delivered)
        view = room_of(alice, room)
        assert (view["read_seq"], view["delivered_seq"], view["unread_count"]) == (
            read,
            delivered,
            n - read,
        )

    check()


# -- sync ------------------------------------------------------------------------------------


def test_sync_lists_cursor_rooms_and_summarizes_the_rest(alice: Any, bob: Any, carol: Any) -> None:
    direct = open_direct(alice, bob)
    for body in ("one", "two", "three"):
        send(bob, direct, body)
    group = open_group(alice, carol, name="busy")
    send(carol, group, "a")
    send(carol, group, "b")
    quiet = open_group(alice, bob, name="quiet")
    foreign = open_direct(bob, carol)
    send(bob, foreign, "not for alice")

    api = Api(alice)
    response = api.get("/sync", cursors=f"{direct}:1,{foreign}:0")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"room_ids", "rooms"}
    assert sorted(body["room_ids"]) == sorted([direct, group, quiet])
    entries = {e["room"]: e for e in body["rooms"]}
    assert set(entries) == {direct, group, quiet}
    for entry in entries.values():
        assert set(entry) == {
            "room",
            "last_seq",
            "last_change",
            "deleted_for_me",
            "messages",
            "has_more",
            "markers",
            # Linkup's additions (docs/protocol.md): retention and the room's watermarks.
            "first_seq",
            "watermark",
        }

    listed = entries[direct]
    assert listed["last_seq"] == 3
    assert [m["seq"] for m in listed["messages"]] == [2, 3]
    assert [m["body"] for m in listed["messages"]] == ["two", "three"]
    assert all(set(m) >= MESSAGE_KEYS for m in listed["messages"])
    assert listed["has_more"] is False
    assert listed["markers"] == {
        str(alice.pk): {"delivered_seq": 0, "read_seq": 0},
        str(bob.pk): {"delivered_seq": 3, "read_seq": 3},
    }
    summary = entries[group]
    assert (summary["last_seq"], summary["messages"], summary["has_more"]) == (2, [], True)
    assert summary["markers"] == {
        str(alice.pk): {"delivered_seq": 0, "read_seq": 0},
        str(carol.pk): {"delivered_seq": 2, "read_seq": 2},
    }
    empty = entries[quiet]
    assert (empty["last_seq"], empty["messages"], empty["has_more"]) == (0, [], False)
    assert set(empty["markers"]) == {str(alice.pk), str(bob.pk)}

    caught_up = api.get("/sync", cursors=f"{direct}:3,{group}:0").json()
    entries = {e["room"]: e for e in caught_up["rooms"]}
    assert (entries[direct]["messages"], entries[direct]["has_more"]) == ([], False)
    assert [m["body"] for m in entries[group]["messages"]] == ["a", "b"]
    assert entries[group]["has_more"] is False

    everything = api.get("/sync").json()
    assert {e["room"]: e["has_more"] for e in everything["rooms"]} == {
        direct: True,
        group: True,
        quiet: False,
    }
    assert all(e["messages"] == [] for e in everything["rooms"])


def test_sync_caps_messages_per_room(alice: Any, bob: Any) -> None:
    room = bulk_room(alice, bob, 150)
    api = Api(alice)

    def entry(cursor: int) -> dict[str, Any]:
        response = api.get("/sync", cursors=f"{room}:{cursor}")
        assert response.status_code == 200, response.content
        (found,) = response.json()["rooms"]
        return dict(found)

    first = entry(0)
    assert [m["seq"] for m in first["messages"]] == list(range(1, 101))
    assert first["has_more"] is True
    rest = entry(100)
    assert [m["seq"] for m in rest["messages"]] == list(range(101, 151))
    assert rest["has_more"] is False
    assert [m["seq"] for m in entry(149)["messages"]] == [150]
    assert entry(500)["messages"] == []


def test_sync_caps_bytes_per_room(alice: Any, bob: Any) -> None:
    """At most 256 KiB of messages per room; has_more tells the rest (at least one message)."""
    room = bulk_room(alice, bob, 30)
    big = "😀" * 4000  # 16,000 bytes of UTF-8
    Message.objects.filter(room_id=room).update(body=big)
    api = Api(alice)
    response = api.get("/sync", cursors=f"{room}:0")
    assert response.status_code == 200, response.content
    (entry,) = response.json()["rooms"]
    seqs = [m["seq"] for m in entry["messages"]]
    assert 1 <= len(seqs) < 30
    assert seqs == list(range(1, len(seqs) + 1))
    assert entry["has_more"] is True
    assert all(m["body"] == big for m in entry["messages"])
    assert sum(len(orjson.dumps(m)) for m in entry["messages"]) <= 256 * 1024
    following = api.get("/sync", cursors=f"{room}:{seqs[-1]}").json()["rooms"][0]
    assert following["messages"][0]["seq"] == seqs[-1] + 1


@pytest.mark.parametrize(
    "cursors",
    [
        "x",
        "1",
        "1:",
        ":1",
        "1:-1",
        "a:1",
        "0:1",
        "1:1:1",
        "1:x",
        "1:1.5",
        "1: 1",
        "99999999999999999999:1",
        "1:99999999999999999999",
    ],
)
def test_sync_refuses_malformed_cursors(alice: Any, cursors: str) -> None:
    assert_error(Api(alice).get("/sync", cursors=cursors), 400, "invalid_request")


@pytest.mark.parametrize("cursors", ["1:\u00b2", "1:" + "9" * 5000], ids=["superscript", "huge"])
def test_sync_refuses_non_ascii_or_huge_cursor_seqs(alice: Any, cursors: str) -> None:
    """`str.isdigit()` accepts "²" and 5,000-digit strings that int() then rejects."""
    assert_error(Api(alice).get("/sync", cursors=cursors), 400, "invalid_request")


# -- errors at the edge ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nope", "/rooms/1/nope", "/rooms/1/messages/1/nope", "/auth", "/me/extra", "/"]
)
def test_unknown_paths_answer_json_404(alice: Any, path: str) -> None:
    for api in (Api(), Api(alice)):
        response = api.get(path)
        assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", "/me", "GET"),
        ("put", "/rooms", None),
        ("get", "/auth/token", "POST"),
        ("put", "/rooms/1", None),
        ("get", "/rooms/1/receipts", "POST"),
    ],
)
def test_wrong_method_answers_json_405(
    alice: Any, method: str, path: str, allowed: str | None
) -> None:
    response = getattr(Client(), method)(API + path, **Api(alice).headers)
    assert_error(response, 405, "invalid_request")
    if allowed is not None:
        assert allowed in response["Allow"]


@pytest.mark.parametrize(
    ("path", "needs_room"),
    [
        ("/auth/token", False),
        ("/auth/register", False),
        ("/rooms", False),
        ("/rooms/{id}/messages", True),
        ("/rooms/{id}/receipts", True),
        ("/rooms/{id}/members", True),
    ],
)
@pytest.mark.parametrize("raw", ["{bad", "", "null", "[1, 2]", '"text"', "{'a': 1}"])
def test_invalid_json_bodies_are_invalid_requests(
    alice: Any, bob: Any, path: str, needs_room: bool, raw: str
) -> None:
    room = open_group(alice, bob) if needs_room else 0
    response = Api(alice).post(path.format(id=room), raw)
    assert_error(response, 400, "invalid_request")
    assert Message.objects.count() == 0
    assert Room.objects.count() == (1 if needs_room else 0)


def test_oversized_request_body_is_too_large(alice: Any, bob: Any) -> None:
    """Over Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) the contract wants 413 too_large."""
    room = open_direct(alice, bob)
    response = send(alice, room, "x" * 3_000_000)
    assert_error(response, 413, "too_large")
    assert Message.objects.count() == 0


def test_openapi_document_is_public(db: Any) -> None:
    response = Client().get(API + "/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path in (
        "/api/v1/auth/token",
        "/api/v1/rooms",
        "/api/v1/rooms/{room_id}/messages",
        "/api/v1/sync",
    ):
        assert path in paths, sorted(paths)


def test_openapi_document_is_built_once_per_process(db: Any, monkeypatch: Any) -> None:
    """Anyone may ask for it, so asking costs no more than a copy: ninja's builder runs once,
    and every answer carries the same document."""
    import ninja.main

    from linkup.web.api import api

    api.documents.clear()
    built = []
    real = ninja.main.get_schema

    def counting(**kwargs: Any) -> Any:
        built.append(kwargs["path_prefix"])
        return real(**kwargs)

    monkeypatch.setattr(ninja.main, "get_schema", counting)
    answers = [Client().get(API + "/openapi.json") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len(built) == 1
    assert answers[0].json() == answers[1].json() == answers[2].json()
    assert "/api/v1/rooms" in answers[2].json()["paths"]


def test_created_responses_survive_warnings_as_errors(alice: Any, bob: Any) -> None:
    """Project policy is warnings-as-errors (pyproject filterwarnings = "error").

    django-ninja 1.7 deprecates returning `(status, body)` tuples with a DeprecationWarning on
    every call; views that did so would answer 500 under that policy. They return `Status`.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        registered = Api().post("/auth/register", {"username": "zed", "password": PASSWORD})
        created = Api(alice).post("/rooms", {"kind": "direct", "members": [bob.pk]})
    assert registered.status_code == 201, registered.content
    assert created.status_code == 201, created.content


def test_storage_failure_is_503_with_retry_after(alice: Any, bob: Any, monkeypatch: Any) -> None:
    from django.db import OperationalError

    from linkup.actions import messages

    room = Api(alice).post("/rooms", {"kind": "direct", "members": [bob.pk]}).json()

    def down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(messages, "_commit_together", down)  # the batch's write
    response = Api(alice).post(
        f"/rooms/{room['id']}/messages", {"client_id": str(uuid.uuid4()), "body": "x"}
    )
    assert_error(response, 503, "unavailable")
    assert response["Retry-After"] == "2"
    assert Message.objects.count() == 0


def test_message_info_over_rest(alice: Any, bob: Any, carol: Any) -> None:
    room = (
        Api(alice)
        .post("/rooms", {"kind": "group", "name": "g", "members": [bob.pk, carol.pk]})
        .json()
    )
    sent = (
        Api(alice)
        .post(f"/rooms/{room['id']}/messages", {"client_id": str(uuid.uuid4()), "body": "hello"})
        .json()
    )
    Api(bob).post(f"/rooms/{room['id']}/receipts", {"kind": "read", "seq": sent["seq"]})
    response = Api(alice).get(f"/rooms/{room['id']}/messages/{sent['seq']}/info")
    assert response.status_code == 200, response.content
    info = response.json()
    assert info["status"] == "sent" and info["message"]["id"] == sent["id"]
    by_name = {m["user"]["username"]: m for m in info["members"]}
    assert set(by_name) == {"bob", "carol"}
    assert TIME_RE.match(by_name["bob"]["read_at"]) and by_name["carol"]["read_at"] is None
    assert_error(Api(bob).get(f"/rooms/{room['id']}/messages/{sent['seq']}/info"), 403, "forbidden")
    outsider = make_user("dave")
    assert_error(
        Api(outsider).get(f"/rooms/{room['id']}/messages/{sent['seq']}/info"), 404, "not_found"
    )
    rooms = Api(alice).get("/rooms").json()["rooms"]
    assert rooms[0]["first_seq"] == 1 and rooms[0]["watermark"] == {
        "delivered_seq": 0,
        "read_seq": 0,
    }


# -- presence in room answers, privacy, the operator's error list ------------------------------


def _presence_of(room: dict[str, Any], user: Any) -> tuple[str, Any]:
    member = next(m for m in room["members"] if m["id"] == user.pk)
    return member["status"], member["last_seen"]


def test_room_answers_carry_members_presence_and_hidden_last_seen_both_ways(
    alice: Any, bob: Any
) -> None:
    from linkup.models import UserPresence

    seen = timezone.now() - dt.timedelta(minutes=5)
    UserPresence.objects.create(user=bob, last_seen=seen)
    UserPresence.objects.create(user=alice, last_seen=seen)
    as_alice, as_bob = Api(alice), Api(bob)
    created = as_alice.post("/rooms", {"kind": "direct", "members": [bob.pk]})
    assert created.status_code == 201
    room_id = created.json()["id"]
    expected = ("offline", seen.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    assert _presence_of(created.json(), bob) == expected
    assert _presence_of(as_alice.get(f"/rooms/{room_id}").json(), bob) == expected
    assert _presence_of(as_alice.get("/rooms").json()["rooms"][0], bob) == expected

    # Bob hides his last seen: Alice no longer sees his, and he no longer sees hers.
    response = as_bob.client.patch(
        API + "/me", {"hide_last_seen": True}, content_type="application/json", **as_bob.headers
    )
    assert response.status_code == 200
    assert response.json() == me_dict(bob, hide_last_seen=True)
    assert as_bob.get("/me").json()["hide_last_seen"] is True
    assert _presence_of(as_alice.get("/rooms").json()["rooms"][0], bob) == ("offline", None)
    assert _presence_of(as_bob.get("/rooms").json()["rooms"][0], alice) == ("offline", None)
    # Showing it again restores both.
    as_bob.client.patch(
        API + "/me", {"hide_last_seen": False}, content_type="application/json", **as_bob.headers
    )
    assert _presence_of(as_alice.get("/rooms").json()["rooms"][0], bob) == expected


def test_patch_me_refuses_bad_input(alice: Any) -> None:
    caller = Api(alice)
    for body in (
        {"hide_last_seen": "yes"},
        {"hide_last_seen": 1},
        {"hide_last_seen": None},
        {},
        {"group_adds": "friends"},
        {"group_adds": None},
        {"email": "not an address"},
        {"email": 5},
    ):
        response = caller.client.patch(
            API + "/me", body, content_type="application/json", **caller.headers
        )
        assert_error(response, 400, "invalid_request")


def test_messaging_errors_are_listed_and_resolved_in_the_admin(alice: Any) -> None:
    from linkup.models import MessagingError

    error = MessagingError.objects.create(
        category="delivery",
        message="frame handling failed",
        context={"room_id": 3},
        occurred_at=timezone.now(),
    )
    staff = User.objects.create_superuser("operator", "op@example.com", "pw-operator-1")
    client = Client()
    client.force_login(staff)
    listing = client.get("/admin/linkup/messagingerror/")
    assert listing.status_code == 200
    assert "frame handling failed" in listing.content.decode()
    detail = client.get(f"/admin/linkup/messagingerror/{error.pk}/change/")
    assert detail.status_code == 200 and "room_id" in detail.content.decode()
    client.force_login(alice)  # not staff: no admin
    assert client.get("/admin/linkup/messagingerror/").status_code == 302
