"""Email addresses are verified by a link before any digest is sent to them (issue 16, item 7)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from linkup.tasks import fallback
from linkup.tasks.mail import read_verification_token, verification_token
from tests.test_api import Api, assert_error, me_dict

pytestmark = pytest.mark.django_db(transaction=True)

LINK = re.compile(r"(http://testserver/verify-email/\?token=\S+)")


def run_worker() -> None:
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)


def link_in(message: Any) -> str:
    found = LINK.search(message.body)
    assert found, message.body
    return found.group(1)


def token_of(link: str) -> str:
    return unquote(link.split("token=", 1)[1])


def test_registration_emails_a_link_that_verifies_the_address() -> None:
    response = Client().post(
        "/api/v1/auth/register",
        {"username": "dora", "password": "long enough 123", "email": "dora@example.test"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    from django.contrib.auth import get_user_model

    dora = get_user_model().objects.get(username="dora")
    assert fallback.channels_for(dora) == []  # no digest to an unproven address
    run_worker()
    (message,) = mail.outbox
    assert message.to == ["dora@example.test"]
    link = link_in(message)
    as_dora = Api(dora)
    assert as_dora.get("/me").json()["email_verified"] is False

    browser = Client()
    page = browser.get(link.removeprefix("http://testserver"))
    assert page.status_code == 200
    assert b"Confirm your email address" in page.content
    assert as_dora.get("/me").json()["email_verified"] is False  # a GET changes nothing
    done = browser.post("/verify-email/", {"token": token_of(link)})
    assert done.status_code == 200 and b"Address confirmed" in done.content
    assert as_dora.get("/me").json() == me_dict(
        dora, email="dora@example.test", email_verified=True
    )
    dora.refresh_from_db()
    assert fallback.channels_for(dora) == ["email"]


def test_a_new_address_needs_its_own_link(alice: Any) -> None:
    caller = Api(alice)

    def patch(body: dict[str, Any]) -> Any:
        return caller.client.patch(
            "/api/v1/me", body, content_type="application/json", **caller.headers
        )

    assert patch({"email": "alice@example.test"}).json()["email_verified"] is False
    run_worker()
    first = token_of(link_in(mail.outbox[-1]))
    ok = Client().post("/api/v1/auth/verify-email", {"token": first}, "application/json")
    assert ok.status_code == 200 and ok.json() == {"ok": True}
    assert caller.get("/me").json()["email_verified"] is True

    # Another address: unverified again; the old link does not verify it.
    assert patch({"email": "new@example.test"}).json()["email_verified"] is False
    stale = Client().post("/api/v1/auth/verify-email", {"token": first}, "application/json")
    assert_error(stale, 400, "invalid_request")
    run_worker()
    assert mail.outbox[-1].to == ["new@example.test"]
    second = token_of(link_in(mail.outbox[-1]))
    assert second != first
    page = Client().post("/verify-email/", {"token": second})
    assert page.status_code == 200
    assert caller.get("/me").json()["email_verified"] is True


def test_forged_expired_and_missing_links_are_refused(alice: Any, settings: Any) -> None:
    alice.email = "alice@example.test"
    alice.save()
    good = verification_token(alice.pk, alice.email)
    for token in ("", "nonsense", good[:-2] + "xx", verification_token(alice.pk + 1, alice.email)):
        response = Client().post("/api/v1/auth/verify-email", {"token": token}, "application/json")
        assert_error(response, 400, "invalid_request")
    page = Client().post("/verify-email/", {"token": "nonsense"})
    assert page.status_code == 400 and b"does not work" in page.content
    settings.LINKUP = {**settings.LINKUP, "EMAIL_VERIFY_MAX_AGE_S": -1}
    expired = Client().post("/api/v1/auth/verify-email", {"token": good}, "application/json")
    assert_error(expired, 400, "invalid_request")
    assert Api(alice).get("/me").json()["email_verified"] is False


def test_asking_again_is_rate_limited(alice: Any) -> None:
    alice.email = "alice@example.test"
    alice.save()
    caller = Api(alice)
    for _ in range(3):
        response = caller.post("/me/verify-email")
        assert response.status_code == 202 and response.json() == {"sent": True}
    assert_error(caller.post("/me/verify-email"), 429, "rate_limited")
    run_worker()
    assert len(mail.outbox) == 3


@hsettings(max_examples=200, deadline=None)
@given(
    user_id=st.integers(min_value=1, max_value=2**31),
    email=st.emails(),
    position=st.integers(min_value=0),
    replacement=st.characters(min_codepoint=33, max_codepoint=126),
)
def test_a_token_names_its_user_and_address_and_resists_tampering(
    user_id: int, email: str, position: int, replacement: str
) -> None:
    token = verification_token(user_id, email)
    assert read_verification_token(token) == (user_id, email.lower())
    index = position % len(token)
    if token[index] != replacement:
        tampered = token[:index] + replacement + token[index + 1 :]
        assert read_verification_token(tampered) is None
