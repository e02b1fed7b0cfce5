"""The fallback chain with injected time: digests, read-before-send, retries, the breaker,
expiry, Web Push against a real local push service, and the task worker itself."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from hypothesis import given
from hypothesis import strategies as st

from linkup.actions import notifications
from linkup.actions.messages import Send, do_send_batch
from linkup.actions.presence import record_away
from linkup.actions.rooms import do_create_room
from linkup.models import (
    Account,
    CircuitBreaker,
    FallbackSchedule,
    MessagingError,
    Notification,
    NotificationDelivery,
    PushSubscription,
    UserPresence,
)
from linkup.realtime.presence_store import RedisPresence
from linkup.store import redis as shared_redis
from linkup.tasks import deliver_fallback, fallback
from tests.live import free_port

pytestmark = pytest.mark.django_db(transaction=True)

DELAY = dt.timedelta(seconds=120)


def set_presence(user: Any, online: bool, last_seen: dt.datetime | None = None) -> None:
    """What a server records of a user: the database's flag (written on presence
    transitions) and, with Redis, the shared presence set the worker reads first."""
    UserPresence.objects.update_or_create(
        user=user, defaults={"online": online, "last_seen": last_seen}
    )
    client = shared_redis.sync_client(timeout_s=2)
    if client is not None:
        key = shared_redis.keys().presence_present
        if online:
            client.sadd(key, user.pk)
        else:
            client.srem(key, user.pk)
        client.close()


def mailed(user: Any) -> Any:
    """Give the user an email address they verified (digests go to no other)."""
    user.email = f"{user.username}@example.test"
    user.save(update_fields=["email"])
    Account.objects.update_or_create(user_id=user.pk, defaults={"verified_email": user.email})
    return user


@pytest.fixture
def pair(alice: Any, bob: Any) -> tuple[Any, Any, int]:
    """alice writes to bob, who has an email address and has never been online."""
    room, _ = do_create_room(alice, "direct", [bob.pk])
    return alice, mailed(bob), int(room["id"])


def send(sender: Any, room: int, body: str) -> Any:
    ((outcome, error, _),) = do_send_batch([Send(sender, room, str(uuid.uuid4()), body)])
    assert error is None
    return outcome[0]


def states(user: Any) -> list[str]:
    return [n.state for n in Notification.objects.filter(recipient=user).order_by("pk")]


def emailed_ids(message: Any) -> list[int]:
    return [int(i) for i in message.extra_headers["X-Linkup-Notifications"].split(",")]


@pytest.fixture
def smtp_down(settings: Any) -> Iterator[None]:
    """A real SMTP backend pointed at a port where nothing listens: connection refused."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    yield


def smtp_up(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


# -- the digest -------------------------------------------------------------------------------


def test_the_digest_and_the_push_speak_the_persons_language(
    pair: tuple[Any, Any, int], carol: Any
) -> None:
    """Chosen Spanish: the digest and the push title are in it, naming people as they chose
    to be named now; a mention's title is made again from who and which group."""
    from linkup.actions.accounts import do_update_settings
    from linkup.actions.profiles import do_update_profile

    alice, bob, room = pair
    do_update_settings(bob, language="es")
    do_update_profile(alice, display_name="Alicia")
    group, _ = do_create_room(alice, "group", [bob.pk, carol.pk], "Paseos")
    send(alice, room, "hola")
    send(alice, int(group["id"]), f"@{bob.username} ¿vienes?")
    fallback.run_for_user(bob.pk, timezone.now() + DELAY * 2)
    (digest,) = mail.outbox
    assert digest.subject == "3 notificaciones nuevas en Linkup", digest.subject
    assert digest.body.startswith(f"Hola, {bob.username}. Mientras no estabas:")
    assert "* Alicia: hola" in digest.body
    assert "* Alicia te mencionó en Paseos:" in digest.body
    assert "* Alicia te añadió a Paseos" in digest.body
    assert "Abre Linkup para responder." in digest.body
    with translation.override("en"):  # the site's language stays as it was
        assert fallback.titles(list(Notification.objects.filter(recipient=bob).order_by("pk"))) == [
            "Alicia added you to Paseos",
            "Alicia",
            "Alicia mentioned you in Paseos",
        ]


def test_an_offline_user_gets_one_digest_per_batch(pair: tuple[Any, Any, int]) -> None:
    alice, bob, room = pair
    for body in ("one", "two", "three"):
        send(alice, room, body)
    t0 = timezone.now()
    # Too young: the batch waits until the first is DELAY old.
    due = fallback.run_for_user(bob.pk, t0 + dt.timedelta(seconds=30))
    assert mail.outbox == [] and due is not None and t0 + DELAY - dt.timedelta(seconds=2) < due
    assert fallback.run_for_user(bob.pk, t0 + DELAY + dt.timedelta(seconds=1)) is None
    (digest,) = mail.outbox
    assert digest.to == ["bob@example.test"] and digest.subject == "3 new notifications on Linkup"
    assert "alice: one" in digest.body and "alice: three" in digest.body
    assert sorted(emailed_ids(digest)) == [n.pk for n in Notification.objects.order_by("pk")]
    assert set(Notification.objects.values_list("delivered_via", flat=True)) == {"email"}
    # Nothing is sent twice; a later message makes its own digest.
    assert fallback.run_for_user(bob.pk, t0 + DELAY * 2) is None and len(mail.outbox) == 1
    send(alice, room, "four")
    fallback.run_for_user(bob.pk, timezone.now() + DELAY)
    assert len(mail.outbox) == 2 and mail.outbox[1].subject == "alice"


def test_online_users_get_no_email_until_offline_for_the_delay(pair: tuple[Any, Any, int]) -> None:
    alice, bob, room = pair
    set_presence(bob, True)
    send(alice, room, "hi")
    t0 = timezone.now() + DELAY * 3
    assert fallback.run_for_user(bob.pk, t0) == t0 + DELAY  # looks again later
    assert mail.outbox == []
    set_presence(bob, False, t0)
    assert fallback.run_for_user(bob.pk, t0 + dt.timedelta(seconds=10)) == t0 + DELAY
    assert fallback.run_for_user(bob.pk, t0 + DELAY) is None
    assert len(mail.outbox) == 1


def test_an_online_user_with_every_tab_hidden_is_away_and_gets_the_digest(
    pair: tuple[Any, Any, int],
) -> None:
    """The app open in a tab out of sight is not seeing: after the delay the digest goes,
    as for a user offline; a tab back in sight stops it; a record of being away from
    before the user last went offline is stale."""
    alice, bob, room = pair
    t0 = timezone.now()
    set_presence(bob, True, last_seen=t0 - DELAY)
    record_away(bob.pk, True, t0.timestamp())  # every tab hidden, from t0
    record_away(bob.pk, True, (t0 + DELAY).timestamp())  # still: the first time holds
    send(alice, room, "are you there?")
    sent_at = timezone.now()
    assert fallback.run_for_user(bob.pk, sent_at + dt.timedelta(seconds=5)) is not None
    assert mail.outbox == []
    record_away(bob.pk, False, t0.timestamp())  # a tab back in sight: in the app again
    assert fallback.run_for_user(bob.pk, sent_at + DELAY * 2) == sent_at + DELAY * 3
    assert mail.outbox == []
    record_away(bob.pk, True, (sent_at + DELAY * 2).timestamp())
    assert fallback.run_for_user(bob.pk, sent_at + DELAY * 3 + dt.timedelta(seconds=1)) is None
    (digest,) = mail.outbox
    assert digest.subject == "alice" and "are you there?" in digest.body
    # Away before going offline, then back online with a tab in sight: the record is stale.
    UserPresence.objects.filter(user=bob).update(
        hidden_since=sent_at, last_seen=sent_at + dt.timedelta(seconds=1)
    )
    send(alice, room, "again")
    later = timezone.now() + DELAY * 2
    assert fallback.run_for_user(bob.pk, later) == later + DELAY
    assert len(mail.outbox) == 1


def test_what_was_seen_or_read_is_not_emailed(pair: tuple[Any, Any, int]) -> None:
    alice, bob, room = pair
    for body in ("live", "stored", "read", "left"):
        send(alice, room, body)
    live, stored, read, left = Notification.objects.order_by("pk")
    notifications.mark_delivered([live.pk], "live")
    notifications.mark_delivered([stored.pk], "stored")
    notifications.do_mark_read(bob, [read.pk])
    fallback.run_for_user(bob.pk, timezone.now() + DELAY)
    (digest,) = mail.outbox
    assert emailed_ids(digest) == [left.pk] and digest.subject == "alice"


def test_read_state_is_checked_again_just_before_sending(
    pair: tuple[Any, Any, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob, room = pair
    send(alice, room, "read meanwhile")
    send(alice, room, "still unread")
    first, second = Notification.objects.order_by("pk")
    claim = fallback._claim

    def claim_then_read(*args: Any) -> Any:
        claimed = claim(*args)
        notifications.do_mark_read(bob, [first.pk])  # another tab reads it now
        return claimed

    monkeypatch.setattr(fallback, "_claim", claim_then_read)
    fallback.run_for_user(bob.pk, timezone.now() + DELAY)
    (digest,) = mail.outbox
    assert emailed_ids(digest) == [second.pk]
    statuses = dict(NotificationDelivery.objects.values_list("notification_id", "status"))
    assert statuses == {first.pk: "suppressed", second.pk: "sent"}


# -- retries, give-up, breaker ------------------------------------------------------------------


def test_failures_retry_with_backoff_then_give_up(
    pair: tuple[Any, Any, int], smtp_down: None, settings: Any
) -> None:
    settings.LINKUP = {**settings.LINKUP, "NOTIFY_MAX_ATTEMPTS": 3, "BREAKER_FAILURES": 100}
    alice, bob, room = pair
    send(alice, room, "doomed")
    now = timezone.now() + DELAY
    base = 30.0
    for attempt in (1, 2):
        due = fallback.run_for_user(bob.pk, now)
        delivery = NotificationDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("pending", attempt)
        assert "ConnectionRefusedError" in delivery.last_error
        wait = (delivery.next_attempt_at - now).total_seconds()
        full = base * 2 ** (attempt - 1)
        assert full / 2 <= wait <= full and due == delivery.next_attempt_at
        # Not due yet: no attempt.
        assert fallback.run_for_user(bob.pk, now + dt.timedelta(seconds=wait / 4)) == due
        assert NotificationDelivery.objects.get().attempts == attempt
        now = due
    assert fallback.run_for_user(bob.pk, now) is None
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert states(bob) == ["failed"]
    error = MessagingError.objects.get(message="email delivery failed for good")
    assert error.category == "delivery" and error.context["attempts"] == 3
    assert error.context["user_id"] == bob.pk and "body" not in error.context


def test_breaker_opens_holds_half_opens_and_closes(
    pair: tuple[Any, Any, int], smtp_down: None, settings: Any
) -> None:
    settings.LINKUP = {
        **settings.LINKUP,
        "BREAKER_FAILURES": 2,
        "BREAKER_COOLDOWN_S": 60.0,
        "NOTIFY_RETRY_BASE_S": 1.0,
        "NOTIFY_RETRY_MAX_S": 1.0,
    }
    alice, bob, room = pair
    send(alice, room, "x")
    now = timezone.now() + DELAY
    fallback.run_for_user(bob.pk, now)
    assert CircuitBreaker.objects.get(transport="email").state == "closed"
    now += dt.timedelta(seconds=2)
    fallback.run_for_user(bob.pk, now)
    breaker = CircuitBreaker.objects.get(transport="email")
    assert (breaker.state, breaker.failures) == ("open", 2)
    assert MessagingError.objects.filter(message="circuit breaker opened").count() == 1
    # Open: batches are held without an attempt, until the cool-down ends.
    held = fallback.run_for_user(bob.pk, now + dt.timedelta(seconds=30))
    assert held == now + dt.timedelta(seconds=60)
    assert NotificationDelivery.objects.get().attempts == 2
    # Half-open: one trial; it fails, so the breaker opens again at once.
    fallback.run_for_user(bob.pk, held)
    assert CircuitBreaker.objects.get(transport="email").state == "open"
    assert NotificationDelivery.objects.get().attempts == 3
    # The transport is back: the next trial succeeds and closes it.
    smtp_up(settings)
    again = held + dt.timedelta(seconds=61)
    assert fallback.run_for_user(bob.pk, again) is None
    breaker = CircuitBreaker.objects.get(transport="email")
    assert (breaker.state, breaker.failures) == ("closed", 0)
    assert len(mail.outbox) == 1 and states(bob) == ["delivered"]


def test_backoff_is_exponential_capped_and_jittered() -> None:
    import random

    rng = random.Random(7)
    for attempt in range(1, 20):
        full = min(3600.0, 30.0 * 2 ** (attempt - 1))
        assert full / 2 <= fallback.backoff_s(attempt, rng) <= full
    spread = {round(fallback.backoff_s(3, rng), 3) for _ in range(50)}
    assert len(spread) > 40  # jittered: workers retrying together spread out


# -- expiry -------------------------------------------------------------------------------------


def test_unreachable_notifications_wait_in_store_then_expire(alice: Any, bob: Any) -> None:
    room, _ = do_create_room(alice, "direct", [bob.pk])  # bob has no email
    send(alice, room["id"], "stored only")
    (n,) = Notification.objects.all()
    due = fallback.run_for_user(bob.pk, n.created_at + DELAY)
    assert due == n.created_at + dt.timedelta(days=7)
    assert fallback.run_for_user(bob.pk, due) is None
    assert states(bob) == ["expired"]


def test_pending_deliveries_expire_after_seven_days(
    pair: tuple[Any, Any, int], smtp_down: None, settings: Any
) -> None:
    settings.LINKUP = {**settings.LINKUP, "BREAKER_FAILURES": 1, "BREAKER_COOLDOWN_S": 10**7}
    alice, bob, room = pair
    send(alice, room, "held by an open breaker")
    (n,) = Notification.objects.all()
    fallback.run_for_user(bob.pk, n.created_at + DELAY)
    assert CircuitBreaker.objects.get().state == "open"
    due = fallback.run_for_user(bob.pk, n.created_at + DELAY * 2)
    assert due == n.created_at + dt.timedelta(days=7)  # the expiry comes before the cool-down
    assert fallback.run_for_user(bob.pk, due) is None
    assert states(bob) == ["expired"]
    assert NotificationDelivery.objects.get().status == "expired"


# -- Web Push, against a real push service on loopback -------------------------------------------


class PushService:
    """A push service endpoint: records what pywebpush POSTs, answers `status`."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 201
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                service.received.append(
                    {
                        "status": service.status,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": self.rfile.read(length),
                    }
                )
                self.send_response(service.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/push/sub1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def push(settings: Any) -> Iterator[PushService]:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    vapid = ec.generate_private_key(ec.SECP256R1())
    settings.LINKUP = {
        **settings.LINKUP,
        "VAPID_PRIVATE_KEY": b64(vapid.private_numbers().private_value.to_bytes(32, "big")),
        "VAPID_PUBLIC_KEY": b64(
            vapid.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        ),
        "PUSH_ALLOW_HTTP": True,
    }
    service = PushService()
    yield service
    service.close()


class Browser:
    """A browser's side of a push subscription: its key pair and auth secret, so that what
    the push service received can be decrypted as the browser would (RFC 8291)."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = uuid.uuid4().bytes

    def subscribe(self, user: Any, service: PushService) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        public = self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        notifications.do_subscribe_push(user, service.endpoint, b64(public), b64(self.auth))

    def read(self, body: bytes) -> dict[str, Any]:
        import http_ece

        plain = http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth)
        return dict(json.loads(plain))


def subscribe(user: Any, service: PushService) -> Browser:
    browser = Browser()
    browser.subscribe(user, service)
    return browser


def test_web_push_goes_once_per_batch_with_vapid(alice: Any, bob: Any, push: PushService) -> None:
    room, _ = do_create_room(alice, "direct", [bob.pk])  # push only, no email
    browser = subscribe(bob, push)
    # Bodies long enough that random ciphertext cannot hold them by chance ("p1" could).
    send(alice, room["id"], "the first secret line")
    send(alice, room["id"], "the second secret line")
    assert fallback.run_for_user(bob.pk, timezone.now() + DELAY) is None
    (request,) = push.received
    assert request["path"] == "/push/sub1"
    assert request["headers"]["content-encoding"] == "aes128gcm"
    assert request["headers"]["authorization"].startswith("vapid t=")  # signed VAPID JWT
    assert len(request["body"]) > 16  # encrypted: the payload is not in clear
    assert b"secret line" not in request["body"]
    payload = browser.read(request["body"])  # what the service worker would show
    ids = sorted(Notification.objects.values_list("pk", flat=True))
    assert payload["ids"] == ids and payload["count"] == 2
    assert payload["body"] == "the second secret line"
    assert payload["title"] == "2 new" and payload["data"]["room"] == room["id"]
    assert set(Notification.objects.values_list("delivered_via", flat=True)) == {"push"}


def test_web_push_forgets_gone_subscriptions_and_retries_errors(
    alice: Any, bob: Any, push: PushService
) -> None:
    room, _ = do_create_room(alice, "direct", [bob.pk])
    subscribe(bob, push)
    send(alice, room["id"], "x")
    push.status = 500
    now = timezone.now() + DELAY
    due = fallback.run_for_user(bob.pk, now)
    assert due is not None and NotificationDelivery.objects.get().status == "pending"
    push.status = 410  # the browser unsubscribed
    # Forgotten, not retried: its only transport gave up (it stays in the stored list).
    assert fallback.run_for_user(bob.pk, due) is None
    assert not PushSubscription.objects.exists()
    assert NotificationDelivery.objects.get().status == "failed" and states(bob) == ["failed"]
    assert len(push.received) == 2


def test_both_fallbacks_go_when_both_reach_the_user(pair: tuple[Any, Any, int], push: Any) -> None:
    alice, bob, room = pair
    subscribe(bob, push)
    send(alice, room, "both")
    fallback.run_for_user(bob.pk, timezone.now() + DELAY)
    assert len(mail.outbox) == 1 and len(push.received) == 1
    assert sorted(NotificationDelivery.objects.values_list("channel", "status")) == [
        ("email", "sent"),
        ("push", "sent"),
    ]


# -- the task queue -------------------------------------------------------------------------------


def test_a_burst_enqueues_one_task_and_the_worker_runs_it(
    pair: tuple[Any, Any, int], settings: Any
) -> None:
    from django_tasks_db.models import DBTaskResult

    settings.LINKUP = {**settings.LINKUP, "NOTIFY_OFFLINE_DELAY_S": 0.0}
    alice, bob, room = pair
    for i in range(5):
        send(alice, room, f"burst {i}")
    (task,) = DBTaskResult.objects.all()
    assert task.task_path == "linkup.tasks.schedule.deliver_fallback"
    # Rows enqueued before the task moved name it by its old path, which still runs.
    assert import_string("linkup.tasks.deliver_fallback") is deliver_fallback
    DBTaskResult.objects.filter(pk=task.pk).update(task_path="linkup.tasks.deliver_fallback")
    assert task.args_kwargs == {"args": [bob.pk], "kwargs": {}}
    assert FallbackSchedule.objects.get().user_id == bob.pk
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    (digest,) = mail.outbox
    assert len(emailed_ids(digest)) == 5
    task.refresh_from_db()
    assert task.status == "SUCCESSFUL"
    assert not FallbackSchedule.objects.exists()


# -- the property: every notification ends, and no path delivers one twice --------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.integers(0, 1)),
        st.tuples(st.just("read"), st.integers(0, 30)),
        st.tuples(st.just("seen"), st.integers(0, 30)),
        st.tuples(st.just("online"), st.integers(0, 1), st.booleans()),
        st.tuples(st.just("advance"), st.integers(1, 400)),
        st.tuples(st.just("run"), st.integers(0, 1)),
        st.tuples(st.just("smtp"), st.booleans()),
        st.tuples(st.just("push"), st.sampled_from([201, 500, 503])),
    ),
    max_size=25,
)


@given(ops=OPS)
def test_every_notification_ends_and_no_path_delivers_it_twice(
    ops: list[tuple[Any, ...]], alice: Any, bob: Any, carol: Any, settings: Any, push: PushService
) -> None:
    settings.LINKUP = {
        **settings.LINKUP,
        "NOTIFY_MAX_ATTEMPTS": 3,
        "NOTIFY_RETRY_BASE_S": 10.0,
        "BREAKER_FAILURES": 2,
        "BREAKER_COOLDOWN_S": 60.0,
    }
    smtp_up(settings)
    for model in (Notification, FallbackSchedule, CircuitBreaker, UserPresence):
        model.objects.all().delete()
    mail.outbox.clear()
    push.received.clear()
    push.status = 201
    browser = subscribe(carol, push)
    recipients = [mailed(bob), carol]  # bob by email, carol by Web Push
    rooms = {}
    for user in recipients:
        room, _ = do_create_room(alice, "direct", [user.pk])
        rooms[user.pk] = room["id"]
    port = free_port()
    now = timezone.now()
    read_before: dict[int, int] = {}  # notification -> emails sent when it was read
    read_pushes: dict[int, int] = {}  # notification -> pushes received when it was read
    for op in ops:
        kind = op[0]
        if kind == "create":
            user = recipients[op[1]]
            m = {"room": rooms[user.pk], "seq": 1, "id": 1, "body": "b"}
            m["sender"] = {"id": alice.pk, "username": "alice"}
            notifications.for_new_messages([m], now=now)
        elif kind in ("read", "seen"):
            ids = list(Notification.objects.order_by("pk").values_list("pk", "recipient_id"))
            if ids:
                pk, owner = ids[op[1] % len(ids)]
                if kind == "read":
                    notifications.do_mark_read(type(alice).objects.get(pk=owner), [pk], now)
                    read_before.setdefault(pk, len(mail.outbox))
                    read_pushes.setdefault(pk, len(push.received))
                else:
                    notifications.mark_delivered([pk], "live", now)
        elif kind == "online":
            set_presence(recipients[op[1]], op[2], now)
        elif kind == "advance":
            now += dt.timedelta(seconds=op[1])
        elif kind == "run":
            fallback.run_for_user(recipients[op[1]].pk, now)
        elif kind == "push":
            push.status = op[1]
        elif kind == "smtp":
            if op[1]:
                smtp_up(settings)
            else:
                settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
                settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    # Then time passes with the worker doing its job: everyone goes offline, and each user's
    # run is repeated at the moment it asks for, until nothing is pending.
    for user in recipients:
        set_presence(user, False, now)
    for user in recipients:
        at = now
        for _ in range(60):
            due = fallback.run_for_user(user.pk, at)
            if due is None:
                break
            at = max(due, at + dt.timedelta(seconds=1))
        else:
            raise AssertionError("the fallback runs never settled")
    assert all(n.state != "pending" for n in Notification.objects.all())
    emailed = [i for message in mail.outbox for i in emailed_ids(message)]
    assert len(emailed) == len(set(emailed)), "a notification was emailed twice"
    for pk, sent_before in read_before.items():
        later = [i for message in mail.outbox[sent_before:] for i in emailed_ids(message)]
        assert pk not in later, "emailed after it was read"
    pushed = [
        i
        for request in push.received
        for i in browser.read(request["body"])["ids"]
        if request["status"] == 201
    ]
    assert len(pushed) == len(set(pushed)), "a notification was pushed twice"
    for pk, sent_before in read_pushes.items():
        later = [
            i
            for request in push.received[sent_before:]
            if request["status"] == 201
            for i in browser.read(request["body"])["ids"]
        ]
        assert pk not in later, "pushed after it was read"
    carol_ids = set(Notification.objects.filter(recipient=carol).values_list("pk", flat=True))
    assert not carol_ids & set(emailed) and set(pushed) <= carol_ids
    assert all(d.attempts <= 3 for d in NotificationDelivery.objects.all())
    assert all(json.dumps(n.data) for n in Notification.objects.all())


def test_generated_vapid_keys_sign_pushes(alice: Any, bob: Any, settings: Any) -> None:
    """`manage.py linkup_vapid_keys` prints keys the push path accepts as they are."""
    import io

    out = io.StringIO()
    call_command("linkup_vapid_keys", stdout=out)
    keys = dict(line.split("=", 1) for line in out.getvalue().split())
    service = PushService()
    try:
        settings.LINKUP = {
            **settings.LINKUP,
            "VAPID_PUBLIC_KEY": keys["LINKUP_VAPID_PUBLIC_KEY"],
            "VAPID_PRIVATE_KEY": keys["LINKUP_VAPID_PRIVATE_KEY"],
            "PUSH_ALLOW_HTTP": True,
        }
        room, _ = do_create_room(alice, "direct", [bob.pk])
        browser = subscribe(bob, service)
        send(alice, room["id"], "signed")
        fallback.run_for_user(bob.pk, timezone.now() + DELAY)
        (request,) = service.received
        assert browser.read(request["body"])["body"] == "signed"
        token = request["headers"]["authorization"].split("t=")[1].split(",")[0]
        assert keys["LINKUP_VAPID_PUBLIC_KEY"] in request["headers"]["authorization"]
        assert token.count(".") == 2  # a JWT
    finally:
        service.close()


@pytest.mark.skipif(shared_redis.address() is None, reason="needs the Redis channel layer")
def test_the_worker_reads_presence_where_the_server_writes_it(alice: Any) -> None:
    """The server's presence store and the worker's look-up name the key through one place:
    whoever the store shows online is not emailed, and is again once gone."""

    async def as_the_server(*steps: tuple[str, str, float]) -> None:
        client = shared_redis.async_client(2, 1, 2)
        store = RedisPresence(client, shared_redis.prefix(), grace_s=1)
        for step, conn, at in steps:
            if step == "sweep":
                await store.sweep(at)
            else:
                await getattr(store, step)(alice.pk, conn, at)
        await client.aclose()
        await client.connection_pool.disconnect()  # a pool of its own: closed by its owner

    asyncio.run(as_the_server(("connect", "worker-test", 1000.0)))
    assert fallback._present_in_redis(alice.pk) is True
    assert fallback._offline_since(alice.pk, timezone.now()) is None
    # Gone, and past the grace period.
    asyncio.run(as_the_server(("disconnect", "worker-test", 1001.0), ("sweep", "", 1003.0)))
    assert fallback._present_in_redis(alice.pk) is False
    assert fallback._offline_since(alice.pk, timezone.now()) is not None
