"""A person's data export (issue 19): asked for over REST, built by the task worker, fetched
by its owner alone; the staff command writes the same archive."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from linkup.actions import blocks
from linkup.actions.messages import do_send_message
from linkup.actions.receipts import do_move_marker
from linkup.actions.rooms import do_create_room
from linkup.models import DataExport
from tests.test_api import Api, assert_error
from tests.test_uploads import fetch

pytestmark = pytest.mark.django_db(transaction=True)


def cid() -> str:
    return str(uuid.uuid4())


def run_worker() -> None:
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)


@pytest.fixture
def history(alice: Any, bob: Any, carol: Any) -> dict[str, Any]:
    direct = int(do_create_room(alice, "direct", [bob.pk])[0]["id"])
    group = int(do_create_room(bob, "group", [alice.pk, carol.pk], "Trip ✈")[0]["id"])
    elsewhere = int(do_create_room(bob, "group", [carol.pk], "not alice's")[0]["id"])
    do_send_message(alice, direct, cid(), "hi bob")
    do_send_message(bob, direct, cid(), "hi alice")
    do_send_message(carol, group, cid(), "@alice are you coming?")
    do_send_message(bob, elsewhere, cid(), "a secret from alice")
    do_move_marker(alice, group, "read", 1)
    blocks.do_block(alice, carol.pk)
    return {"direct": direct, "group": group, "elsewhere": elsewhere}


def archive_of(data: bytes) -> tuple[dict[str, Any], list[str]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        return json.loads(archive.read("linkup-export.json")), names


def test_an_export_is_asked_built_and_fetched_by_its_owner_alone(
    alice: Any, bob: Any, history: dict[str, Any]
) -> None:
    api = Api(alice)
    asked = api.post("/me/export")
    assert asked.status_code == 202, asked.content
    export = asked.json()["export"]
    assert (export["state"] == "pending" and "url" not in export) or export.get("url") is None
    assert api.post("/me/export").json()["export"]["id"] == export["id"]  # one at a time
    run_worker()
    ready = api.get(f"/me/export/{export['id']}").json()["export"]
    assert ready["state"] == "ready" and ready["size"] > 0
    assert_error(Api(bob).get(f"/me/export/{export['id']}"), 404, "not_found")
    assert_error(Api(bob).get(ready["url"].removeprefix("/api/v1")), 404, "not_found")
    assert_error(Api().get(ready["url"].removeprefix("/api/v1")), 401, "unauthorized")
    status, headers, body = fetch(api, ready["url"].removeprefix("/api/v1"))
    assert status == 200
    assert headers["content-disposition"].startswith("attachment")
    assert headers["x-content-type-options"] == "nosniff"
    data, names = archive_of(body)
    assert names == ["linkup-export.json"]
    assert data["profile"]["username"] == alice.username
    assert {r["name"] for r in data["rooms"]} == {"", "Trip ✈"}
    bodies = {m["body"] for m in data["messages"]}
    assert bodies == {"hi bob", "hi alice", "@alice are you coming?"}  # sent and received
    assert "a secret from alice" not in json.dumps(data)  # not her room
    assert {"room": history["group"], "kind": "read", "seq": 1} in [
        {k: r[k] for k in ("room", "kind", "seq")} for r in data["receipts"]
    ]
    assert [n["kind"] for n in data["notifications"]]  # the direct message, the mention
    assert [b["user"] for b in data["blocks"]]
    assert_error(api.get(f"/me/export/{uuid.uuid4()}"), 404, "not_found")
    assert_error(api.get("/me/export/not-a-uuid"), 404, "not_found")


def test_files_sent_go_in_the_archive(alice: Any, bob: Any, tmp_path: Path) -> None:
    from linkup.actions.uploads import do_upload

    room = int(do_create_room(alice, "direct", [bob.pk])[0]["id"])
    upload = do_upload(alice, io.BytesIO(b"%PDF-1.7\nnotes"), 14, "notes.pdf")
    do_send_message(alice, room, cid(), "", attachments=(upload["id"],))
    out = tmp_path / "alice.zip"
    call_command("linkup_export", alice.username, "--out", str(out), stdout=io.StringIO())
    data, names = archive_of(out.read_bytes())
    (sent,) = data["uploads"]
    assert sent["name"] == "notes.pdf" and sent["path"] in names
    with zipfile.ZipFile(out) as archive:
        assert archive.read(sent["path"]) == b"%PDF-1.7\nnotes"


def test_exports_are_rate_limited_and_go_with_the_account(alice: Any, settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "EXPORT_BURST": 1, "EXPORT_RATE_PER_S": 0.0001}
    api = Api(alice)
    assert api.post("/me/export").status_code == 202
    assert_error(api.post("/me/export"), 429, "rate_limited")
    run_worker()
    assert DataExport.objects.filter(user=alice, state="ready").exists()
    alice.delete()
    assert not DataExport.objects.exists()
