"""Defences from the red-team probe (issue 16): password guessing throttled on every login
path (item 2), the API docs page off by default, HTTPS deployments' secure cookies and HSTS
from one setting, and the demo's console emails not held in a pipe's buffer (item 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import make_user

ROOT = Path(__file__).resolve().parent.parent


def test_the_api_docs_page_is_off_by_default_and_the_document_stays(db: Any) -> None:
    client = Client()
    response = client.get("/api/v1/docs")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert client.get("/api/v1/openapi.json").status_code == 200


def _settings_under(env: dict[str, str]) -> dict[str, Any]:
    code = (
        "import json, linkup_server.settings as s; print(json.dumps({k: getattr(s, k, None) "
        "for k in ('SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_PROXY_SSL_HEADER', "
        "'SECURE_HSTS_SECONDS', 'CSRF_TRUSTED_ORIGINS')}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LINKUP_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("https", [False, True])
def test_one_setting_turns_on_secure_cookies_hsts_and_the_proxy_header(https: bool) -> None:
    found = _settings_under({"LINKUP_HTTPS": "1"} if https else {})
    if https:
        assert found["SESSION_COOKIE_SECURE"] and found["CSRF_COOKIE_SECURE"]
        assert found["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
        assert found["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    else:
        assert not found["SESSION_COOKIE_SECURE"] and not found["SECURE_HSTS_SECONDS"]
        assert found["SECURE_PROXY_SSL_HEADER"] is None
    # CSRF trusts the request's own origin and what is named: never derived variants.
    assert found["CSRF_TRUSTED_ORIGINS"] == []


def test_the_demo_worker_writes_its_output_unbuffered(monkeypatch: pytest.MonkeyPatch) -> None:
    from linkup_server import cli

    seen: dict[str, Any] = {}

    def fake_popen(command: list[str], **kwargs: Any) -> Any:
        seen.update(kwargs)
        return None

    monkeypatch.setattr(cli.subprocess, "Popen", fake_popen)
    cli.start_worker()
    assert seen["env"]["PYTHONUNBUFFERED"] == "1"


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("quinn", "password", "too common"),
        ("quinn-the-eskimo", "quinn-the-eskimo", "too similar"),
        ("quinn", "8675309123", "entirely numeric"),
        ("quinn", "short", "too short"),
    ],
)
def test_registration_refuses_weak_passwords_saying_why(
    db: Any, username: str, password: str, reason: str
) -> None:
    from tests.test_api import Api

    response = Api().post("/auth/register", {"username": username, "password": password})
    assert response.status_code == 400
    assert reason in response.json()["error"]["detail"]
    page = Client().post(
        "/sign-up/", {"username": username, "password": password, "password2": password}
    )
    assert page.status_code == 400 and reason in page.content.decode()


# -- password guessing (item 2) ---------------------------------------------------------------


@given(
    rate=st.floats(0.01, 100),
    burst=st.integers(1, 50),
    steps=st.lists(st.tuples(st.floats(0, 10), st.booleans()), min_size=1, max_size=40),
)
@settings(max_examples=200, deadline=None)
def test_a_refunded_charge_leaves_the_bucket_as_if_never_asked(
    rate: float, burst: int, steps: list[tuple[float, bool]]
) -> None:
    """A login charged up front and refunded (a right password) is invisible to every later
    answer: the bucket that saw it answers exactly as the one that did not."""
    from linkup.realtime.ratelimit import take

    now, plain, refunded = 0.0, None, None
    for gap, right_password in steps:
        now += gap
        plain, wait_plain = take(plain, now, rate, burst)
        refunded, wait = take(refunded, now, rate, burst)
        assert wait == wait_plain
        if right_password and wait == 0:
            refunded, back = take(refunded, now, rate, burst, cost=-1)
            assert back == 0 and refunded.tokens <= burst
            plain, _ = take(plain, now, rate, burst, cost=-1)
        assert refunded == plain


def _token(username: str, password: str, address: str = "10.0.0.1") -> Any:
    return Client(REMOTE_ADDR=address).post(
        "/api/v1/auth/token",
        {"username": username, "password": password},
        content_type="application/json",
    )


@pytest.fixture
def guessing(transactional_db: Any, settings: Any) -> Any:
    """Small buckets, and a victim (the password is checked on a thread of its own, so the
    account is committed). An account's guess drips back in two seconds (a test waits for
    one); an address's in a minute: none does while a test runs, however loaded the
    machine (at half a second, eight slow requests let one more through)."""
    settings.LINKUP = {
        **settings.LINKUP,
        "LOGIN_ACCOUNT_BURST": 5,
        "LOGIN_ACCOUNT_REFILL_S": 2.0,
        "LOGIN_ADDRESS_BURST": 8,
        "LOGIN_ADDRESS_REFILL_S": 60.0,
        # This process's buckets: the Django test client runs each request on a loop of its
        # own, and a Redis client made for each could time out connecting under load and
        # split the count (the Redis bucket is take(), tests/test_limits.py).
        "LIMITS_SHARED": False,
    }
    return make_user("victim", "the-right-one-42")


def test_wrong_passwords_for_one_account_are_throttled_from_any_address(guessing: Any) -> None:
    for attempt in range(5):  # from five addresses: the account's bucket counts them all
        assert _token("victim", f"guess-{attempt}", f"10.0.1.{attempt}").status_code == 401
    refused = _token("victim", "guess-5", "10.0.2.1")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert int(refused["Retry-After"]) >= 1
    # The right password is refused too while throttled (else a guess would be an oracle)...
    assert _token("victim", "the-right-one-42", "10.0.3.1").status_code == 429
    # ... and a refusal costs nothing: once a token has dripped back, she signs in.
    time.sleep(2.1)
    assert _token("victim", "the-right-one-42", "10.0.3.1").status_code == 200
    # Other accounts never noticed.
    make_user("bystander", "another-good-one-7")
    assert _token("bystander", "another-good-one-7", "10.0.2.1").status_code == 200


def test_one_address_spraying_many_accounts_is_throttled_alone(guessing: Any) -> None:
    for n in range(8):
        assert _token(f"nobody{n}", "123456", "10.9.9.9").status_code == 401
    assert _token("nobody8", "123456", "10.9.9.9").status_code == 429
    assert _token("victim", "the-right-one-42", "10.9.9.9").status_code == 429
    assert _token("victim", "the-right-one-42", "10.8.8.8").status_code == 200


def test_an_ipv6_client_is_counted_by_its_slash_64(guessing: Any) -> None:
    for n in range(8):
        assert _token(f"nobody{n}", "x", f"2001:db8:1:2::{n + 1:x}").status_code == 401
    assert _token("victim", "the-right-one-42", "2001:db8:1:2:ffff::1").status_code == 429
    assert _token("victim", "the-right-one-42", "2001:db8:1:3::1").status_code == 200


def test_right_passwords_never_run_a_bucket_dry(guessing: Any) -> None:
    """The busy, honest client: many sign-ins from one address, many to one account."""
    for _ in range(30):
        assert _token("victim", "the-right-one-42").status_code == 200
    for n in range(12):
        make_user(f"honest{n}", "honest-password-1")
        assert _token(f"honest{n}", "honest-password-1").status_code == 200


def test_the_sign_in_page_and_the_admin_login_share_the_throttle(guessing: Any) -> None:
    guessing.is_staff = True
    guessing.save()
    page, admin_page = Client(REMOTE_ADDR="10.0.0.7"), Client(REMOTE_ADDR="10.0.0.8")
    for n in range(2):  # four failures, two on each path, then a fifth: the burst
        assert (
            page.post("/sign-in/", {"username": "victim", "password": f"g{n}"}).status_code == 401
        )
        wrong = admin_page.post("/admin/login/", {"username": "victim", "password": f"a{n}"})
        assert wrong.status_code == 200  # the admin's form again
    assert page.post("/sign-in/", {"username": "victim", "password": "g3"}).status_code == 401
    refused = page.post("/sign-in/", {"username": "victim", "password": "the-right-one-42"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "Too many failed sign-ins" in refused.content.decode()
    refused = admin_page.post(
        "/admin/login/", {"username": "victim", "password": "the-right-one-42"}
    )
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    time.sleep(2.1)
    signed_in = admin_page.post(
        "/admin/login/", {"username": "victim", "password": "the-right-one-42"}
    )
    assert signed_in.status_code == 302
