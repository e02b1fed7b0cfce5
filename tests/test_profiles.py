"""Profiles (issue 20): a display name, an about line and a picture, set by their owner,
shown to others in member lists, people search, `GET /users/{id}` and notifications, and
pushed live to everyone who shares a room (`user.updated`).

Hostile input is refused whole: text with control or reordering characters, or too long,
changes nothing (a Hypothesis property over arbitrary text); a picture is drawn afresh (a
256 px WebP square, no EXIF, nothing but pixels), a non-image or a decompression bomb is
refused, and the picture it replaces leaves the storage."""

from __future__ import annotations

import io
import unicodedata
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from linkup.actions.profiles import ABOUT_MAX, DISPLAY_NAME_MAX
from linkup.actions.rooms import do_create_room
from linkup.models import Account, Notification
from tests.conftest import make_user, token_for
from tests.test_api import API, Api, assert_error
from tests.test_uploads import fetch, image, photo_with_gps, storage, stored_files  # noqa: F401
from tests.wsutil import connect, db, drain, recv_type
from tests.wsutil import send as send_frame

pytestmark = pytest.mark.django_db(transaction=True)


def person(prefix: str) -> Any:
    return make_user(f"{prefix}{uuid.uuid4().hex[:8]}")


def set_avatar(api: Api, data: bytes, name: str = "me.png") -> Any:
    part = io.BytesIO(data)
    part.name = name
    return api.client.post(API + "/me/avatar", {"file": part}, **api.headers)


def test_a_profile_shows_in_member_lists_search_and_its_own_page() -> None:
    ana, ben = person("ana"), person("ben")
    do_create_room(ana, "group", [ben.pk], "team")
    answer = Api(ana).patch("/me", {"display_name": "  Ana Pérez ", "about": "Hola 👋"})
    assert answer.status_code == 200, answer.content
    assert answer.json()["display_name"] == "Ana Pérez" and answer.json()["about"] == "Hola 👋"

    seen = Api(ben).get(f"/users/{ana.pk}").json()
    assert seen["display_name"] == "Ana Pérez" and seen["about"] == "Hola 👋"
    assert seen["username"] == ana.username and seen["avatar"] is None
    assert seen["status"] in ("online", "offline")  # they share a room: presence is shown

    room = Api(ben).get("/rooms").json()["rooms"][0]
    shown = {m["id"]: m["display_name"] for m in room["members"]}
    assert shown == {ana.pk: "Ana Pérez", ben.pk: ""}

    found = Api(ben).get("/users", q="Pérez").json()["users"]
    assert [p["id"] for p in found] == [ana.pk]
    assert found[0]["display_name"] == "Ana Pérez"

    assert_error(Api(ben).get("/users/999999"), 404, "not_found")
    assert_error(Api(ben).get("/users/0"), 400, "invalid_request")
    assert_error(Api(ben).get("/users/0/avatar"), 404, "not_found")  # as any missing picture
    assert Api().get(f"/users/{ana.pk}").status_code == 401


def test_a_direct_message_and_a_mention_notify_by_the_display_name() -> None:
    ana, ben = person("ana"), person("ben")
    Api(ana).patch("/me", {"display_name": "Ana"})
    direct = do_create_room(ana, "direct", [ben.pk])[0]["id"]
    group = do_create_room(ana, "group", [ben.pk], "team")[0]["id"]
    for room, body in ((direct, "hi"), (group, f"@{ben.username} look")):
        sent = Api(ana).post(
            f"/rooms/{room}/messages", {"body": body, "client_id": str(uuid.uuid4())}
        )
        assert sent.status_code in (200, 201), sent.content
    titles = sorted(Notification.objects.filter(recipient=ben).values_list("title", flat=True))
    assert titles == ["Ana", "Ana added you to team", "Ana mentioned you in team"]


SAFE = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp")), max_size=80
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.one_of(SAFE, st.text(max_size=80)), field=st.sampled_from(["display_name", "about"]))
def test_any_text_is_kept_as_given_or_refused_leaving_the_profile_as_it_was(
    profiled: tuple[Any, Api], text: str, field: str
) -> None:
    _, api = profiled
    before = api.get("/me").json()
    answer = api.patch("/me", {field: text})
    kept = unicodedata.normalize("NFC", text).strip()
    limit = DISPLAY_NAME_MAX if field == "display_name" else ABOUT_MAX
    bad = any(
        unicodedata.category(c) in ("Cc", "Co", "Cs", "Cn", "Zl", "Zp")
        or (unicodedata.category(c) == "Cf" and c != "\u200d")
        for c in kept
    )
    if bad or len(kept) > limit:
        assert_error(answer, 400, "invalid_request")
        assert api.get("/me").json() == before
    else:
        assert answer.status_code == 200, answer.content
        assert api.get("/me").json()[field] == kept
        api.patch("/me", {field: before[field]})


@pytest.fixture
def profiled(db: Any) -> tuple[Any, Api]:
    user = person("p")
    return user, Api(user)


def test_reordering_and_invisible_characters_are_refused() -> None:
    api = Api(person("eve"))
    for hostile in ("admin\u202egnp.exe", "a\u200bb", "line\nbreak", "x\x00", "bell\x07"):
        assert_error(api.patch("/me", {"display_name": hostile}), 400, "invalid_request")
    assert api.patch("/me", {"display_name": "👩\u200d💻 Eve"}).status_code == 200  # a ZWJ emoji
    assert_error(api.patch("/me", {"display_name": "x" * 65}), 400, "invalid_request")
    assert_error(api.patch("/me", {"display_name": 5}), 400, "invalid_request")


def test_a_picture_is_drawn_afresh_replaced_and_removed(storage: str) -> None:  # noqa: F811
    ana, ben = person("ana"), person("ben")
    do_create_room(ana, "direct", [ben.pk])
    api = Api(ana)
    answer = set_avatar(api, photo_with_gps())
    assert answer.status_code == 200, answer.content
    first = answer.json()["avatar"]
    assert first.startswith(f"{API}/users/{ana.pk}/avatar?v=")

    status, headers, body = fetch(Api(ben), first.removeprefix(API))
    assert status == 200 and headers["content-type"] == "image/webp"
    picture = Image.open(io.BytesIO(body))
    assert picture.format == "WEBP" and picture.size == (256, 256)
    assert not picture.getexif() and "exif" not in picture.info and "xmp" not in picture.info
    assert len([name for name in stored_files() if "/avatars/" in name]) == 1

    again = set_avatar(api, photo_with_gps())  # the same picture twice: the same URL
    assert again.status_code == 200 and again.json()["avatar"] == first, again.content
    second = set_avatar(api, image("PNG", (900, 300))).json()["avatar"]
    assert second != first  # a new picture is a new URL
    assert len([name for name in stored_files() if "/avatars/" in name]) == 1  # the old one went
    room = Api(ben).get("/rooms").json()["rooms"][0]
    assert {m["id"]: m["avatar"] for m in room["members"]}[ana.pk] == second

    removed = api.delete("/me/avatar")
    assert removed.status_code == 200 and removed.json()["avatar"] is None
    assert [name for name in stored_files() if "/avatars/" in name] == []
    assert_error(Api(ben).get(f"/users/{ana.pk}/avatar"), 404, "not_found")


def test_a_picture_that_is_not_an_image_or_too_big_is_refused_and_nothing_is_stored(
    storage: str,  # noqa: F811
    settings: Any,
) -> None:
    api = Api(person("ana"))
    for bad in (b"%PDF-1.4 not a picture", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b""):
        assert_error(set_avatar(api, bad), 400, "invalid_request")
    settings.LINKUP = {**settings.LINKUP, "AVATAR_MAX_BYTES": 100}
    assert_error(set_avatar(api, image("PNG", (100, 100))), 413, "too_large")
    settings.LINKUP = {**settings.LINKUP, "AVATAR_MAX_BYTES": 10**6, "IMAGE_MAX_PIXELS": 1000}
    assert_error(set_avatar(api, image("PNG", (100, 100))), 400, "invalid_request")  # a "bomb"
    assert [name for name in stored_files() if "/avatars/" in name] == []
    assert api.get("/me").json()["avatar"] is None


def test_a_block_hides_the_picture_and_about_either_way(storage: str) -> None:  # noqa: F811
    ana, ben = person("ana"), person("ben")
    api = Api(ana)
    url = set_avatar(api, image()).json()["avatar"]
    api.patch("/me", {"about": "secret"})
    shown = Api(ben).client.get(url, **Api(ben).headers)
    assert shown.status_code in (200, 302)
    shown.close()
    assert Api(ana).post("/blocks", {"user_id": ben.pk}).status_code in (200, 201)
    assert_error(Api(ben).client.get(url, **Api(ben).headers), 404, "not_found")
    seen = Api(ben).get(f"/users/{ana.pk}").json()
    assert seen["avatar"] is None and seen["about"] == ""
    assert Api(ana).get(f"/users/{ana.pk}").json()["about"] == "secret"  # not from oneself
    assert_error(Api().client.get(url), 404, "not_found")  # nobody signed in


async def test_a_change_reaches_the_tabs_of_everyone_sharing_a_room() -> None:
    ana, ben, cid = await db(person)("ana"), await db(person)("ben"), await db(person)("cid")
    await db(do_create_room)(ana, "group", [ben.pk], "team")
    sockets = {who.pk: await connect(await db(token_for)(who)) for who in (ana, ben, cid)}
    try:
        for sock in sockets.values():
            await drain(sock)
        answer = await db(lambda: Api(ana).patch("/me", {"display_name": "Ana"}))()
        assert answer.status_code == 200
        for who in (ana.pk, ben.pk):
            frame = await recv_type(sockets[who], "user.updated")
            assert frame["user"] == {
                "id": ana.pk,
                "username": ana.username,
                "display_name": "Ana",
                "avatar": None,
            }
        assert [f for f in await drain(sockets[cid.pk]) if f["type"] == "user.updated"] == []
        await send_frame(sockets[ben.pk], {"type": "ping"})
    finally:
        for sock in sockets.values():
            await sock.disconnect()


def test_the_page_language_and_profile_forms_of_the_account_page(client: Any) -> None:
    user = person("lu")
    client.force_login(user)
    page = "/account/"
    done = client.post(page, {"action": "profile", "display_name": "Lu", "about": "hi"})
    assert done.status_code == 302
    assert Account.objects.get(user=user).display_name == "Lu"
    bad = client.post(page, {"action": "profile", "display_name": "a\u202eb", "about": ""})
    assert bad.status_code == 200 and b"account-error" in bad.content
    assert Account.objects.get(user=user).display_name == "Lu"

    chosen = client.post(page, {"action": "language", "language": "es"})
    assert chosen.status_code == 302 and chosen.cookies["django_language"].value == "es"
    spanish = client.get(page, HTTP_ACCEPT_LANGUAGE="en")  # the choice wins over the browser
    assert b'lang="es"' in spanish.content
    assert_error_free = client.post(page, {"action": "language", "language": "xx"})
    assert b"account-error" in assert_error_free.content
    cleared = client.post(page, {"action": "language", "language": ""})
    assert cleared.cookies["django_language"].value == ""
    english = client.get(page, HTTP_ACCEPT_LANGUAGE="en")
    assert b'lang="en"' in english.content
