"""Attachments on S3-compatible object storage (issue 18): django-storages' S3 backend
against moto's standalone S3 server on loopback, started by this module.

In-process, the whole lifecycle on S3 (store, serve by a signed redirect, thumbnail, delete,
orphans); then two server processes of one deployment sharing the bucket: a file uploaded
through one is fetched through the other. Runs in the PostgreSQL + Redis pass."""

from __future__ import annotations

import datetime as dt
import io
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from django.utils import timezone
from PIL import Image

from linkup.actions.changes import do_delete_message
from linkup.actions.rooms import do_create_room
from linkup.actions.uploads import orphans
from linkup.models import Upload
from linkup.store import files
from tests.conftest import S3_CREDENTIALS, S3_REGION, new_bucket, s3_storage
from tests.live import api, live_server, new_user
from tests.test_api import Api, assert_error
from tests.test_uploads import image, photo_with_gps, run_worker, send, uploaded
from tests.test_uploads_live import upload_over_http

pytestmark = [pytest.mark.scaleout, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def bucket(s3_endpoint: str, settings: Any) -> str:
    """The default storage is a fresh bucket, through django-storages as deployed."""
    name = new_bucket(s3_endpoint)
    settings.STORAGES = {**settings.STORAGES, "default": s3_storage(s3_endpoint, name)}
    return name


def follow(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET a signed storage URL as a browser would after the redirect."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return response.status, headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {}, exc.read()


def test_on_s3_a_member_is_redirected_to_a_signed_url_others_get_404(
    bucket: str, alice: Any, bob: Any, carol: Any
) -> None:
    room, _ = do_create_room(alice, "direct", [bob.pk])
    pic = uploaded(Api(alice), photo_with_gps(), "IMG_0001.jpg")
    doc = uploaded(Api(alice), b"minutes of the meeting\n", "minutes.txt")
    message = send(Api(alice), room["id"], [pic["id"], doc["id"]]).json()
    assert [a["id"] for a in message["attachments"]] == [pic["id"], doc["id"]]
    for attachment, inline in zip(message["attachments"], (True, False), strict=True):
        path = attachment["url"].removeprefix("/api/v1")
        answer = Api(bob).get(path)
        assert answer.status_code == 302, answer.content
        assert answer["Cache-Control"] == "private, no-store"
        status, headers, data = follow(answer["Location"])
        assert status == 200 and len(data) == attachment["size"]
        disposition = headers["content-disposition"]
        assert disposition.startswith("inline" if inline else "attachment"), disposition
        assert headers["content-type"] == attachment["content_type"]
        assert_error(Api(carol).get(path), 404, "not_found")
    # The photo in the bucket has no EXIF: the same cleaning as on disk.
    row = Upload.objects.get(pk=pic["id"])
    with files.open_file(row.file) as stored:
        assert not Image.open(io.BytesIO(stored.read())).getexif()
    # The URL is signed for ATTACHMENT_URL_TTL_S (S3 checks the signature and the expiry).
    signed = Api(bob).get(message["attachments"][0]["url"].removeprefix("/api/v1"))["Location"]
    assert "X-Amz-Signature=" in signed and "X-Amz-Expires=300" in signed, signed
    assert row.file in signed


def test_pages_allow_images_and_media_from_the_bucket(bucket: str, s3_endpoint: str) -> None:
    from linkup.web.views import content_security_policy

    policy = content_security_policy()
    assert f"img-src 'self' {s3_endpoint} data:" in policy
    assert f"media-src 'self' {s3_endpoint}" in policy


def test_on_s3_thumbnails_deletes_and_orphans(bucket: str, alice: Any, bob: Any) -> None:
    room, _ = do_create_room(alice, "direct", [bob.pk])
    pic = uploaded(Api(alice), image("PNG", (800, 400)), "wide.png")
    message = send(Api(alice), room["id"], [pic["id"]]).json()
    run_worker()
    row = Upload.objects.get(pk=pic["id"])
    assert row.thumbnail
    stored = sorted(files.stored_names())
    assert stored == sorted([row.file, row.thumbnail])
    thumb = Api(bob).get(f"/attachments/{pic['id']}/thumbnail")
    status, _, data = follow(thumb["Location"])
    assert status == 200 and Image.open(io.BytesIO(data)).size == (320, 160)
    stray = files.name_for(uuid.uuid4())
    files.save(stray, io.BytesIO(b"left behind"))
    later = timezone.now() + dt.timedelta(hours=2)  # orphans younger than an hour are left
    assert orphans()["files_without_rows"] == []
    assert orphans(now=later)["files_without_rows"] == [stray]
    do_delete_message(alice, room["id"], message["seq"], "everyone")
    assert sorted(files.stored_names()) == [stray]
    orphans(delete=True, now=later)
    assert list(files.stored_names()) == []


@pytest.mark.live
def test_two_processes_share_the_bucket(s3_endpoint: str) -> None:
    env = {
        **S3_CREDENTIALS,
        "LINKUP_S3_BUCKET": new_bucket(s3_endpoint),
        "LINKUP_S3_ENDPOINT_URL": s3_endpoint,
        "LINKUP_S3_REGION": S3_REGION,
    }
    with live_server(env) as first, live_server(env, share=first) as second:
        alice, bob = new_user(first["base"], "alice"), new_user(first["base"], "bob")
        status, room = api(
            first["base"],
            "POST",
            "/rooms",
            {"kind": "direct", "members": [bob["id"]]},
            alice["token"],
        )
        assert status == 201, room
        data = b"%PDF-1.7\n" + bytes(range(256)) * 2000
        upload = upload_over_http(first["base"], alice["token"], data, "plan.pdf")
        sent = {"client_id": str(uuid.uuid4()), "body": "", "attachments": [upload["id"]]}
        status, message = api(
            first["base"], "POST", f"/rooms/{room['id']}/messages", sent, alice["token"]
        )
        assert status == 201, message
        # Through the other process: it checks membership, then redirects to the bucket.
        path = message["attachments"][0]["url"].removeprefix("/api/v1")
        request = urllib.request.Request(second["base"] + "/api/v1" + path)
        request.add_header("Authorization", f"Bearer {bob['token']}")

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as answer:
            opener.open(request, timeout=30)
        assert answer.value.code == 302
        location = answer.value.headers["Location"]
        answer.value.close()
        status, _, fetched = follow(location)
        assert status == 200 and fetched == data
