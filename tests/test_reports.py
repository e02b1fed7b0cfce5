"""Reports and moderation (issue 19): `POST /api/v1/reports`, the context kept as it was, and
the moderation queue in the Django admin for staff holding `linkup.moderate` alone."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from linkup.actions.changes import do_edit_message
from linkup.actions.messages import do_send_message
from linkup.actions.rooms import do_create_room
from linkup.models import Message, Notification, Report
from tests.conftest import make_user
from tests.test_api import Api, assert_error

pytestmark = pytest.mark.django_db(transaction=True)


def cid() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def chat(alice: Any, bob: Any) -> tuple[int, list[dict[str, Any]]]:
    room = int(do_create_room(alice, "group", [bob.pk], "g")[0]["id"])
    sent = [
        dict(do_send_message(alice if i % 2 else bob, room, cid(), f"line {i}")[0])
        for i in range(1, 13)
    ]
    return room, sent


@pytest.fixture
def moderator(db: Any) -> Any:
    user = make_user("mod" + uuid.uuid4().hex[:6])
    user.is_staff = True
    user.save()
    user.user_permissions.add(Permission.objects.get(codename="moderate"))
    return user


def report_message(user: Any, room: int, seq: int, reason: str = "abusive") -> Any:
    return Api(user).post("/reports", {"room": room, "seq": seq, "reason": reason})


def test_a_reported_message_keeps_its_context_as_it_was(
    alice: Any, bob: Any, chat: tuple[int, list[dict[str, Any]]]
) -> None:
    room, sent = chat
    target = sent[7]  # seq 8, bob's
    told = Notification.objects.filter(recipient=bob).count()  # being added to the group
    answer = report_message(alice, room, target["seq"], "  threatens me  ")
    assert answer.status_code == 201, answer.content
    report = Report.objects.get(pk=answer.json()["report"]["id"])
    assert report.reporter == alice and report.reported_user == bob
    assert report.reason == "threatens me"
    assert [c["seq"] for c in report.context] == list(range(3, 13))
    assert [c["seq"] for c in report.context if c["reported"]] == [target["seq"]]
    do_edit_message(bob, room, target["seq"], "nothing to see", cid())
    report.refresh_from_db()
    reported = next(c for c in report.context if c["reported"])
    assert reported["body"] == target["body"]  # what alice saw
    # bob is told nothing, by any path.
    assert Notification.objects.filter(recipient=bob).count() == told


def test_a_user_can_be_reported_and_bad_reports_are_clear_errors(
    alice: Any, bob: Any, carol: Any, chat: tuple[int, list[dict[str, Any]]]
) -> None:
    room, sent = chat
    api = Api(alice)
    made = api.post("/reports", {"user_id": bob.pk, "reason": "spam"})
    assert made.status_code == 201 and Report.objects.get(seq=None).reported_user == bob
    assert_error(api.post("/reports", {"user_id": bob.pk}), 400, "invalid_request")
    assert_error(api.post("/reports", {"user_id": bob.pk, "reason": " "}), 400, "invalid_request")
    long = api.post("/reports", {"user_id": bob.pk, "reason": "x" * 1001})
    assert "1000" in assert_error(long, 400, "invalid_request")["error"]["detail"]
    assert_error(api.post("/reports", {"reason": "what?"}), 400, "invalid_request")
    assert_error(api.post("/reports", {"room": room, "reason": "x"}), 400, "invalid_request")
    assert_error(api.post("/reports", {"user_id": alice.pk, "reason": "x"}), 400, "invalid_request")
    assert_error(api.post("/reports", {"user_id": 10**9, "reason": "x"}), 400, "invalid_request")
    mine = next(m for m in sent if m["sender"]["id"] == alice.pk)
    assert_error(report_message(alice, room, mine["seq"]), 400, "invalid_request")
    assert_error(report_message(alice, room, 999), 404, "not_found")
    assert_error(report_message(carol, room, sent[0]["seq"]), 404, "not_found")  # not hers
    assert_error(Api().post("/reports", {"user_id": bob.pk, "reason": "x"}), 401, "unauthorized")
    assert Report.objects.count() == 1  # nothing half-made


def test_reports_are_rate_limited(alice: Any, bob: Any, settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "REPORT_BURST": 2, "REPORT_RATE_PER_S": 0.0001}
    api = Api(alice)
    for _ in range(2):
        assert api.post("/reports", {"user_id": bob.pk, "reason": "spam"}).status_code == 201
    refused = assert_error(
        api.post("/reports", {"user_id": bob.pk, "reason": "spam"}), 429, "rate_limited"
    )
    assert "reports" in refused["error"]["detail"]


def test_the_queue_is_for_moderators_and_shows_the_context_escaped(
    alice: Any, bob: Any, moderator: Any, chat: tuple[int, list[dict[str, Any]]]
) -> None:
    room, _ = chat
    hostile, _ = do_send_message(bob, room, cid(), "<script>alert(1)</script>")
    report_message(alice, room, hostile["seq"])
    report = Report.objects.get()
    client = Client()
    client.force_login(moderator)
    listing = client.get("/admin/linkup/report/?state__exact=open")
    assert listing.status_code == 200
    page = client.get(f"/admin/linkup/report/{report.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    # The permission allows this and nothing else of Linkup's.
    assert client.get("/admin/linkup/message/").status_code == 403
    assert client.get("/admin/linkup/room/").status_code == 403
    assert client.get("/admin/auth/user/").status_code == 403
    plain = make_user("staff" + uuid.uuid4().hex[:6])
    plain.is_staff = True
    plain.save()
    other = Client()
    other.force_login(plain)
    assert other.get("/admin/linkup/report/").status_code == 403


def test_the_moderators_actions(
    alice: Any, bob: Any, carol: Any, moderator: Any, chat: tuple[int, list[dict[str, Any]]]
) -> None:
    room, sent = chat
    bobs = [m for m in sent if m["sender"]["id"] == bob.pk]
    report_message(alice, room, bobs[0]["seq"])
    report_message(alice, room, bobs[1]["seq"])
    Api(carol).post("/reports", {"user_id": alice.pk, "reason": "rude"})
    first, second, third = Report.objects.order_by("pk")
    bob_api = Api(bob)  # a fresh token of bob's
    client = Client()
    client.force_login(moderator)
    url = "/admin/linkup/report/"

    def act(action: str, report: Report) -> None:
        answer = client.post(url, {"action": action, "_selected_action": [report.pk]})
        assert answer.status_code == 302, answer.content

    act("dismiss_reports", third)
    act("delete_reported", first)
    act("deactivate_reported", second)
    states = {r.pk: (r.state, r.action, r.resolved_by_id) for r in Report.objects.all()}
    assert states[third.pk] == ("dismissed", "dismissed", moderator.pk)
    assert states[first.pk] == ("actioned", "deleted the message", moderator.pk)
    assert states[second.pk] == ("actioned", "deactivated the user", moderator.pk)
    deleted = Message.objects.get(room_id=room, seq=bobs[0]["seq"])
    assert deleted.deleted_at is not None and deleted.body == ""
    bob.refresh_from_db()
    assert not bob.is_active
    assert_error(bob_api.get("/rooms"), 401, "unauthorized")  # his token ended
    alice.refresh_from_db()
    assert alice.is_active  # the dismissed report changed nothing
