"""The web client's pages (sign in, sign up, sign out, chat), their Content-Security-Policy,
and the Origin rule of cookie-authenticated sockets."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from linkup.realtime.auth import authenticate_socket, origin_allowed
from tests.conftest import make_user

User = get_user_model()
PASSWORD = "pw-" + "x" * 8

pytestmark = [pytest.mark.django_db(transaction=True)]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; "
    "connect-src 'self'; manifest-src 'self'; worker-src 'self'; form-action 'self'; "
    "base-uri 'none'; "
    "frame-ancestors 'none'"
)


def signed_in(username: str = "alice") -> tuple[Client, Any]:
    user = make_user(username, PASSWORD)
    client = Client()
    response = client.post("/sign-in/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response
    return client, user


def test_chat_page_sends_strangers_to_sign_in() -> None:
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/sign-in/?next=/"


def test_sign_in_page_has_the_strict_policy_and_a_labelled_form() -> None:
    response = Client().get("/sign-in/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == CSP
    assert response["X-Content-Type-Options"] == "nosniff"
    html = response.content.decode()
    for field in ("username", "password"):
        assert f'<label for="{field}">' in html and f'id="{field}"' in html
    assert "csrfmiddlewaretoken" in html


def test_wrong_password_is_refused_with_a_message() -> None:
    make_user("alice", PASSWORD)
    response = Client().post("/sign-in/", {"username": "alice", "password": "nope"})
    assert response.status_code == 401
    assert "Wrong username or password." in response.content.decode()
    assert "_auth_user_id" not in response.wsgi_request.session


def test_sign_in_then_the_chat_page_carries_the_user_and_no_inline_script() -> None:
    client, user = signed_in()
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == CSP
    html = response.content.decode()
    config = json.loads(
        re.search(r'<script id="linkup-config" type="application/json">(.*?)</script>', html)[1]
    )
    assert config.pop("catalog") == {}  # English: the words are the code's own
    assert config == {
        "user": {
            "id": user.pk,
            "username": "alice",
            "display_name": "",
            "avatar": None,
            "about": "",
        },
        "api": "/api/v1",
        "socket": "/ws/chat/",
        "notifications_socket": "/ws/notifications/",
        "push_key": None,
        "service_worker": "/sw.js",
        "service_worker_scope": "/",
        "legacy_worker_scope": "/static/linkup/",
        "push_wait_s": 15.0,
        "heartbeat_s": 30,
        "reconnect_first_s": 2.0,
        "reconnect_attempts": 5,
        "poll_s": 3.0,
        "edit_window_s": 900.0,
        "delete_window_s": 172800.0,
        "upload_max_bytes": 25 * 1024 * 1024,
        "attachments_max": 10,
        "sign_in": "/sign-in/",
        "language": "en",
    }
    # Every other script is an external module (the policy would refuse inline code).
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert [attrs for attrs, body in scripts if 'type="application/json"' not in attrs] == [
        ' type="module" src="/static/linkup/chat.js"'
    ]
    assert "csrftoken" in response.cookies


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/x", "http:/\\evil"])
def test_sign_in_never_redirects_off_site(target: str) -> None:
    make_user("alice", PASSWORD)
    response = Client().post(
        "/sign-in/", {"username": "alice", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_sign_in_follows_a_local_next() -> None:
    make_user("alice", PASSWORD)
    response = Client().post(
        "/sign-in/", {"username": "alice", "password": PASSWORD, "next": "/admin/"}
    )
    assert response["Location"] == "/admin/"


def test_sign_up_creates_the_account_and_signs_in() -> None:
    client = Client()
    response = client.post(
        "/sign-up/",
        {"username": "dora", "password": "long enough pw", "password2": "long enough pw"},
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert User.objects.filter(username="dora").exists()
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"username": "dora", "password": "long enough pw", "password2": "other"}, "differ"),
        (
            {"username": "alice", "password": "long enough pw", "password2": "long enough pw"},
            "taken",
        ),
        (
            {"username": "bad name!", "password": "long enough pw", "password2": "long enough pw"},
            "",
        ),
    ],
)
def test_sign_up_refusals_write_nothing(form: dict[str, str], message: str) -> None:
    make_user("alice", PASSWORD)
    response = Client().post("/sign-up/", form)
    assert response.status_code == 400
    assert 'class="form-error"' in response.content.decode()
    assert message in response.content.decode()
    assert User.objects.count() == 1


def test_sign_up_closed_by_setting(settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "REGISTRATION_OPEN": False}
    response = Client().post(
        "/sign-up/",
        {"username": "dora", "password": "long enough pw", "password2": "long enough pw"},
    )
    assert response.status_code == 403
    assert not User.objects.filter(username="dora").exists()


def test_sign_out_needs_a_post_with_the_csrf_token() -> None:
    client, _ = signed_in()
    assert client.get("/sign-out/").status_code == 200
    assert client.get("/").status_code == 200  # a GET signs nobody out
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    assert strict.post("/sign-out/").status_code == 403
    assert client.post("/sign-out/")["Location"] == "/sign-in/"
    assert client.get("/").status_code == 302


# -- the Origin of cookie-authenticated sockets ------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("http://localhost:8123", "localhost:8123", True),
        ("https://127.0.0.1:8443", "127.0.0.1:8443", False),  # served over ws://, not wss://
        ("http://127.0.0.1", "127.0.0.1", True),  # served on port 80, the default
        ("http://127.0.0.1:80", "127.0.0.1", True),  # the same origin, its port spelt out
        ("http://127.0.0.1", "127.0.0.1:8000", False),  # a page on port 80, us on 8000
        ("https://127.0.0.1:8000", "127.0.0.1:8000", False),  # served over http: not https
        ("http://localhost", "127.0.0.1:8000", False),  # another host name
        ("http://[::1]", "127.0.0.1:8000", False),
        ("http://127.0.0.1:8000", "127.0.0.1:9000", False),  # another port is another origin
        ("http://127.0.0.1:8000.evil.example", "127.0.0.1:8000", False),
        ("http://evil.example:8000", "evil.example:8000", False),  # host not allowed
        ("null", "127.0.0.1:8000", False),
        ("", "127.0.0.1:8000", False),
        ("ws://127.0.0.1:8000", "127.0.0.1:8000", False),
        ("http://127.0.0.1:8000", None, False),
    ],
)
def test_origin_rule(origin: str, host: str | None, allowed: bool) -> None:
    assert origin_allowed(origin, host) is allowed


def test_an_https_server_s_own_origin_is_https_only() -> None:
    assert origin_allowed("https://127.0.0.1:8443", "127.0.0.1:8443", "wss")
    assert origin_allowed("https://127.0.0.1", "127.0.0.1:443", "wss")
    assert not origin_allowed("http://127.0.0.1:8443", "127.0.0.1:8443", "wss")


def test_configured_origins_are_matched_exactly(settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "ALLOWED_ORIGINS": ["https://chat.example.com"]}
    assert origin_allowed("https://chat.example.com", "internal:8000")
    assert origin_allowed("https://chat.example.com:443/", "internal:8000")
    for near in ("http://chat.example.com", "https://chat.example.com:8443", "https://example.com"):
        assert not origin_allowed(near, "internal:8000")


@given(origin=st.text(max_size=60), host=st.one_of(st.none(), st.text(max_size=40)))
def test_origin_rule_admits_only_listed_or_same_origin(origin: str, host: str | None) -> None:
    """Whatever the two headers hold, an Origin passes only if it is listed, or it is
    exactly this server (scheme + the Host header) under an allowed host name."""
    from linkup.core.conf import allowed_origins, normal_origin

    if origin_allowed(origin, host):
        same = host is not None and normal_origin(origin) == normal_origin(f"http://{host}")
        assert normal_origin(origin) in allowed_origins() or same


async def test_cookie_socket_from_our_own_origin_with_a_port_is_accepted() -> None:
    from asgiref.sync import sync_to_async

    client, user = await sync_to_async(signed_in)()
    session = client.cookies["sessionid"].value
    headers = [
        (b"cookie", f"sessionid={session}".encode()),
        (b"origin", b"http://127.0.0.1:8123"),
        (b"host", b"127.0.0.1:8123"),
    ]
    auth = await authenticate_socket({"type": "websocket", "headers": headers})
    assert auth.refusal is None and auth.user.pk == user.pk and auth.session
    headers[1] = (b"origin", b"http://127.0.0.1:8123.evil.example")
    auth = await authenticate_socket({"type": "websocket", "headers": headers})
    assert auth.refusal == 4403 and not auth.user.is_authenticated
