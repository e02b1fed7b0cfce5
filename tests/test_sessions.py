"""A credential that ends closes the sockets opened with it, and only those (issue 16):
signing out, logging out, revoking a token, changing the password, deactivating the user;
tickets die with what minted them; bearer tokens expire when unused."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from linkup.actions import credentials
from linkup.models import ApiToken, SocketTicket
from tests.conftest import token_for
from tests.test_api import Api
from tests.wsutil import connect, db, recv_type, send

pytestmark = pytest.mark.django_db(transaction=True)

CLOSED = {"type": "websocket.close", "code": 4401}


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def cookie(client: Client) -> list[tuple[bytes, bytes]]:
    return [
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
    ]


def ticket(api: Api) -> str:
    response = api.post("/auth/ws-ticket")
    assert response.status_code == 200, response.content
    return str(response.json()["ticket"])


async def closes(comm: Any) -> bool:
    return bool(await comm.receive_output(timeout=2) == CLOSED)


async def still_open(comm: Any) -> bool:
    await send(comm, {"type": "ping"})
    return (await recv_type(comm, "pong"))["type"] == "pong"


async def test_signing_out_closes_the_sockets_of_that_session_and_kills_its_tickets(
    alice: Any,
) -> None:
    one, two = await db(signed_in)(alice), await db(signed_in)(alice)
    by_cookie = await connect(headers=cookie(one))
    by_ticket = await connect(path=f"/ws/chat/?ticket={await db(ticket)(Api(client=one))}")
    spare = await db(ticket)(Api(client=one))  # minted, not yet used
    other_session = await connect(headers=cookie(two))
    by_token = await connect(await db(token_for)(alice))
    notifications = await connect(headers=cookie(one), path="/ws/notifications/")

    response = await db(lambda: one.post(reverse("linkup-sign-out")))()
    assert response.status_code == 302
    for comm in (by_cookie, by_ticket, notifications):
        assert await closes(comm)
    for comm in (other_session, by_token):
        assert await still_open(comm)
    refused = await connect(path=f"/ws/chat/?ticket={spare}", expect_hello=False)
    assert refused.connected_result == (False, 4401)  # type: ignore[attr-defined]
    for comm in (other_session, by_token):
        await comm.disconnect()


async def test_logging_out_over_rest_with_the_cookie_closes_that_session_s_sockets(
    alice: Any,
) -> None:
    client = await db(signed_in)(alice)
    comm = await connect(headers=cookie(client))
    response = await db(lambda: Api(client=client).post("/auth/logout"))()
    assert response.status_code == 200
    assert await closes(comm)


async def test_revoking_a_token_closes_sockets_opened_with_tickets_it_minted(alice: Any) -> None:
    token = await db(token_for)(alice)
    api = Api(token=token)
    by_ticket = await connect(path=f"/ws/chat/?ticket={await db(ticket)(api)}")
    spare = await db(ticket)(api)
    kept = await connect(await db(token_for)(alice))
    response = await db(lambda: api.post("/auth/logout"))()
    assert response.status_code == 200
    assert await closes(by_ticket)
    assert await still_open(kept)
    assert not await db(SocketTicket.objects.filter(used_at__isnull=True).exists)()
    refused = await connect(path=f"/ws/chat/?ticket={spare}", expect_hello=False)
    assert refused.connected_result == (False, 4401)  # type: ignore[attr-defined]
    await kept.disconnect()


@pytest.mark.parametrize("change", ["password", "deactivated"])
async def test_a_new_password_or_a_deactivation_ends_every_credential(
    alice: Any, bob: Any, change: str
) -> None:
    client = await db(signed_in)(alice)
    sockets = [
        await connect(await db(token_for)(alice)),
        await connect(headers=cookie(client)),
        await connect(path=f"/ws/chat/?ticket={await db(lambda: ticket(Api(alice)))()}"),
    ]
    bystander = await connect(await db(token_for)(bob))

    def apply() -> None:
        alice.refresh_from_db()
        if change == "password":
            alice.set_password("a-new-password-" + "x" * 8)
        else:
            alice.is_active = False
        alice.save()

    await db(apply)()
    for comm in sockets:
        assert await closes(comm)
    assert await still_open(bystander)
    assert not await db(ApiToken.objects.filter(user=alice).exists)()
    await bystander.disconnect()


async def test_saving_the_user_for_anything_else_ends_nothing(alice: Any) -> None:
    """A login updates last_login, and a password hash upgrade re-saves the same password:
    neither is a new password."""
    comm = await connect(await db(token_for)(alice))

    def resave() -> None:
        alice.refresh_from_db()
        alice.last_login = timezone.now()
        alice.save(update_fields=["last_login"])
        alice.check_password("pw-" + "x" * 8)  # the conftest password
        alice.set_password("pw-" + "x" * 8)
        alice._password = None  # what check_password's upgrade does before saving
        alice.save(update_fields=["password"])

    await db(resave)()
    assert await comm.receive_nothing(timeout=0.3)
    assert await still_open(comm)
    await comm.disconnect()


def test_an_unused_token_expires_and_a_used_one_is_touched_at_most_hourly(
    alice: Any, settings: Any
) -> None:
    settings.LINKUP = {**settings.LINKUP, "TOKEN_IDLE_EXPIRY_S": 100, "TOKEN_TOUCH_S": 10}
    start = timezone.now()
    raw = credentials.do_issue_token(alice, now=start)
    token = ApiToken.objects.get(user=alice)

    def used_at() -> dt.datetime | None:
        token.refresh_from_db()
        return token.last_used_at

    at = start + dt.timedelta(seconds=50)
    assert credentials.authenticate_tokens([raw], now=at)[raw][0].pk == alice.pk
    assert used_at() == at
    later = at + dt.timedelta(seconds=5)  # within TOKEN_TOUCH_S: no write
    assert raw in credentials.authenticate_tokens([raw], now=later)
    assert used_at() == at
    # 99 s after its last recorded use it still works; 101 s after, it is gone.
    assert raw in credentials.authenticate_tokens([raw], now=at + dt.timedelta(seconds=99))
    gone = used_at() + dt.timedelta(seconds=101)  # type: ignore[operator]
    assert credentials.authenticate_tokens([raw], now=gone) == {}
    assert not ApiToken.objects.filter(pk=token.pk).exists()


def browser(user: Any, agent: str) -> Client:
    client = Client(HTTP_USER_AGENT=agent)
    response = client.post(
        reverse("linkup-sign-in"), {"username": user.username, "password": "pw-xxxxxxxx"}
    )
    assert response.status_code == 302, response.content
    return client


async def test_a_person_lists_their_sessions_and_ends_any_of_them(alice: Any, bob: Any) -> None:
    laptop = await db(browser)(alice, "Firefox on the laptop")
    phone = await db(browser)(alice, "Safari on the phone")
    issued = await db(
        lambda: Client(HTTP_USER_AGENT="linkup-cli/1").post(
            "/api/v1/auth/token",
            {"username": "alice", "password": "pw-xxxxxxxx"},
            content_type="application/json",
        )
    )()
    token = issued.json()["token"]
    on_phone = await connect(headers=cookie(phone))
    by_token = await connect(token)
    on_laptop = await connect(headers=cookie(laptop))

    listed = (await db(lambda: Api(client=laptop).get("/sessions"))()).json()["sessions"]
    assert [s["user_agent"] for s in listed] == [
        "linkup-cli/1",
        "Safari on the phone",
        "Firefox on the laptop",
    ]
    assert [s["current"] for s in listed] == [False, False, True]
    assert [s["kind"] for s in listed] == ["token", "web", "web"]
    phone_id, token_id = listed[1]["id"], listed[0]["id"]
    # Bob can neither see nor end them: the same 404 as for a session that never was.
    assert all(
        s["user_agent"] == ""
        for s in (await db(lambda: Api(bob).get("/sessions"))()).json()["sessions"]
    )
    for stranger in (phone_id, "web-999999", "token-x", "nonsense", "web-" + "9" * 40):
        gone = await db(lambda s=stranger: Api(bob).delete(f"/sessions/{s}"))()
        assert gone.status_code == 404, gone.content

    ended = await db(lambda: Api(client=laptop).delete(f"/sessions/{phone_id}"))()
    assert ended.status_code == 200
    assert await closes(on_phone)
    assert (await db(lambda: Api(client=phone).get("/me"))()).status_code == 401
    ended = await db(lambda: Api(client=laptop).delete(f"/sessions/{token_id}"))()
    assert ended.status_code == 200
    assert await closes(by_token)
    assert (await db(lambda: Api(token=token).get("/me"))()).status_code == 401
    assert await still_open(on_laptop)
    left = (await db(lambda: Api(client=laptop).get("/sessions"))()).json()["sessions"]
    assert [s["user_agent"] for s in left] == ["Firefox on the laptop"]
    await on_laptop.disconnect()


def test_the_sessions_page_lists_and_ends_sessions_and_signing_out_here_leaves(
    alice: Any,
) -> None:
    here, there = browser(alice, "Here/1"), browser(alice, "There/2")
    page = here.get(reverse("linkup-sessions"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Here/1" in html and "There/2" in html and "(this one)" in html
    assert page["Content-Security-Policy"].startswith("default-src 'none'")
    there_id = next(
        s["id"] for s in credentials.sessions_of(alice.pk) if s["user_agent"] == "There/2"
    )
    assert here.post(reverse("linkup-sessions"), {"end": there_id}).status_code == 302
    assert there.get(reverse("linkup-chat")).status_code == 302  # sent to sign in
    assert "There/2" not in here.get(reverse("linkup-sessions")).content.decode()
    here_id = credentials.sessions_of(alice.pk)[0]["id"]
    left = here.post(reverse("linkup-sessions"), {"end": here_id})
    assert left.status_code == 302 and left["Location"] == reverse("linkup-sign-in")
    assert here.get(reverse("linkup-chat")).status_code == 302
    assert credentials.sessions_of(alice.pk) == []
    # Signed out, the page sends you to sign in.
    assert Client().get(reverse("linkup-sessions")).status_code == 302


def test_a_new_password_forgets_every_web_session(alice: Any) -> None:
    browser(alice, "A/1"), browser(alice, "B/2")
    assert len(credentials.sessions_of(alice.pk)) == 2
    alice.set_password("a-brand-new-secret-9")
    alice.save()
    assert credentials.sessions_of(alice.pk) == []
