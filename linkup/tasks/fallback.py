"""The fallback chain for notifications no live socket or visit delivered, with time injected.

`run_for_user` is the body of the `deliver_fallback` task (linkup.tasks). For one user it:

1. expires what has been pending for NOTIFY_EXPIRE_DAYS;
2. if the user has been offline for NOTIFY_OFFLINE_DELAY_S, takes the pending notifications
   at least that old (younger ones wait for the next run, so a burst makes one digest) and,
   for each transport the user can be reached by (email if they have a verified address, Web Push
   if they subscribed and VAPID keys are set), claims a batch of them for that transport,
   re-reads them just before sending (a notification read, or seen in the app, meanwhile is
   suppressed), sends one email digest or one push for the batch, and records the outcome;
3. returns when it should run next: a retry's backoff, a younger notification's turn, the
   breaker's cool-down, or the oldest one's expiry; None when nothing is pending.

A notification is sent at most once per transport: its delivery row is unique per
(notification, transport) and moves pending -> sending (claimed by one batch) -> sent. A
failed attempt goes back to pending with exponential backoff and jitter, and to failed after
NOTIFY_MAX_ATTEMPTS (logged and recorded for the operator). A worker that dies between the
claim and the outcome leaves the batch `sending`; after NOTIFY_SENDING_LEASE_S it is tried
again (that window is the one way a transport can see a notification twice).

Each transport has a circuit breaker (CircuitBreaker rows, shared by every worker): open
after BREAKER_FAILURES consecutive failures, when batches are held without counting an
attempt; after BREAKER_COOLDOWN_S one batch is let through (half-open), and its outcome
closes or reopens it.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from linkup.core.conf import setting
from linkup.core.log import log_event
from linkup.core.serialization import dumps_text
from linkup.models import (
    CircuitBreaker,
    FallbackSchedule,
    Notification,
    NotificationDelivery,
    PushSubscription,
    UserPresence,
)
from linkup.store import redis
from linkup.store.records import record_error
from linkup.store.views import display_names
from linkup.tasks.mail import is_verified, language_of

Channel = NotificationDelivery.Channel
Status = NotificationDelivery.Status
User = get_user_model()


class TransportError(Exception):
    """A transport refused or could not take a batch; `retry` False means it never will."""

    def __init__(self, detail: str, *, retry: bool = True) -> None:
        super().__init__(detail)
        self.retry = retry


def _pending(user_id: int) -> Any:
    return Notification.objects.filter(
        recipient_id=user_id,
        read_at__isnull=True,
        delivered_at__isnull=True,
        failed_at__isnull=True,
        expired_at__isnull=True,
    )


def backoff_s(attempt: int, rng: random.Random | None = None) -> float:
    """Delay before attempt `attempt + 1`: base * 2^(attempt-1), capped, with "equal jitter"
    (half fixed, half random) so that workers retrying together spread out."""
    base = float(setting("NOTIFY_RETRY_BASE_S"))
    cap = float(setting("NOTIFY_RETRY_MAX_S"))
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay / 2 + (rng or random).random() * delay / 2


# -- circuit breaker ------------------------------------------------------------------------


def _breaker(transport: str, now: dt.datetime) -> CircuitBreaker:
    breaker, _ = CircuitBreaker.objects.select_for_update().get_or_create(
        transport=transport, defaults={"updated_at": now}
    )
    return breaker


def breaker_allows(transport: str, now: dt.datetime) -> tuple[bool, dt.datetime | None]:
    """Whether a batch may go by `transport` now; when refused, when to ask again."""
    cooldown = dt.timedelta(seconds=float(setting("BREAKER_COOLDOWN_S")))
    with transaction.atomic():
        breaker = _breaker(transport, now)
        if breaker.state == CircuitBreaker.State.CLOSED:
            return True, None
        # Open past its cool-down, or half-open with a trial that never reported (its worker
        # died): let one batch through.
        since = breaker.opened_at if breaker.state == CircuitBreaker.State.OPEN else None
        since = since or breaker.updated_at
        if now >= since + cooldown:
            breaker.state = CircuitBreaker.State.HALF_OPEN
            breaker.updated_at = now
            breaker.save(update_fields=["state", "updated_at"])
            log_event(logging.INFO, "delivery", "circuit breaker half-open", transport=transport)
            return True, None
        return False, since + cooldown


def breaker_success(transport: str, now: dt.datetime) -> None:
    with transaction.atomic():
        breaker = _breaker(transport, now)
        if breaker.state == CircuitBreaker.State.CLOSED and breaker.failures == 0:
            return
        was = breaker.state
        breaker.state, breaker.failures, breaker.updated_at = CircuitBreaker.State.CLOSED, 0, now
        breaker.save(update_fields=["state", "failures", "updated_at"])
    if was != CircuitBreaker.State.CLOSED:
        log_event(logging.WARNING, "delivery", "circuit breaker closed", transport=transport)


def breaker_failure(transport: str, error: str, now: dt.datetime) -> None:
    threshold = int(setting("BREAKER_FAILURES"))
    with transaction.atomic():
        breaker = _breaker(transport, now)
        breaker.failures += 1
        breaker.last_error = error[:1000]
        breaker.updated_at = now
        opens = breaker.state == CircuitBreaker.State.HALF_OPEN or (
            breaker.state == CircuitBreaker.State.CLOSED and breaker.failures >= threshold
        )
        if opens:
            breaker.state, breaker.opened_at = CircuitBreaker.State.OPEN, now
        breaker.save()
    if opens:
        record_error(
            "delivery",
            "circuit breaker opened",
            None,
            transport=transport,
            failures=breaker.failures,
            error=error[:200],
        )


# -- transports ------------------------------------------------------------------------------


def titles(notifications: list[Notification]) -> list[str]:
    """Each notification's title in the active language, made again from who and where (the
    name as it is now); the stored (English) title where something to make it is missing."""
    actors = [(n.data or {}).get("sender") or (n.data or {}).get("by") or {} for n in notifications]
    names = display_names({a["id"] for a in actors if a.get("id") is not None})
    out = []
    for n, actor in zip(notifications, actors, strict=True):
        name = names.get(actor.get("id") or 0) or actor.get("username")
        group = (n.data or {}).get("room_name")
        values = {"name": name, "group": group}
        if name and n.kind == Notification.Kind.MESSAGE:
            out.append(str(name))
        elif name and group and n.kind == Notification.Kind.MENTION:
            out.append(_("%(name)s mentioned you in %(group)s") % values)
        elif name and group and n.kind == Notification.Kind.ADDED:
            out.append(_("%(name)s added you to %(group)s") % values)
        elif name and group and n.kind == Notification.Kind.INVITED:
            out.append(_("%(name)s invited you to %(group)s") % values)
        else:
            out.append(n.title)
    return out


def send_email_digest(user: Any, notifications: list[Notification]) -> None:
    """One email for the whole batch, through Django's email backend, in the person's
    language."""
    count = len(notifications)
    with translation.override(language_of(user.pk)):
        named = titles(notifications)
        many = ngettext(
            "%(count)s new notification on Linkup", "%(count)s new notifications on Linkup", count
        )
        subject = (named[0] if count == 1 else many % {"count": count})[:150]
        shown = display_names([user.pk]).get(user.pk) or user.get_username()
        lines = [_("Hello %(name)s, while you were away:") % {"name": shown}, ""]
        for n, title in zip(notifications, named, strict=True):
            lines.append(f"* {title}" + (f": {n.body}" if n.body else ""))
        lines += ["", _("Open Linkup to reply. Mute a room to stop its notifications.")]
    message = EmailMessage(
        subject=subject,
        body="\n".join(lines),
        from_email=setting("NOTIFY_EMAIL_FROM"),
        to=[user.email],
        headers={"X-Linkup-Notifications": ",".join(str(n.pk) for n in notifications)},
    )
    try:
        sent = message.send(fail_silently=False)
    except Exception as exc:  # SMTP refused, connection refused, timeouts
        raise TransportError(f"{type(exc).__name__}: {exc}") from exc
    if sent != 1:
        raise TransportError("the email backend sent nothing")


def push_enabled() -> bool:
    return bool(setting("VAPID_PRIVATE_KEY") and setting("VAPID_PUBLIC_KEY"))


def send_push(user: Any, notifications: list[Notification]) -> None:
    """One Web Push per subscription for the whole batch (pywebpush, VAPID)."""
    try:  # deferred: pywebpush is optional (the `push` extra); without it push is off
        from pywebpush import WebPushException, webpush
    except ImportError as exc:
        raise TransportError("pywebpush is not installed", retry=False) from exc
    newest = notifications[-1]
    with translation.override(language_of(user.pk)):
        title = titles([newest])[0]
        if len(notifications) > 1:
            title = _("%(count)s new") % {"count": len(notifications)}
    payload = dumps_text(
        {
            "title": title,
            "body": newest.body,
            "count": len(notifications),
            "ids": [n.pk for n in notifications],
            "data": newest.data,
        }
    )
    subscriptions = list(PushSubscription.objects.filter(user=user))
    if not subscriptions:
        raise TransportError("no push subscription", retry=False)
    delivered = 0
    failure: str | None = None
    for sub in subscriptions:
        try:
            webpush(
                subscription_info=sub.as_info(),
                data=payload,
                vapid_private_key=setting("VAPID_PRIVATE_KEY"),
                vapid_claims={"sub": setting("VAPID_SUBJECT")},
                timeout=float(setting("PUSH_TIMEOUT_S")),
                ttl=86400,
            )
            delivered += 1
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            if status is not None and 400 <= status < 500 and status != 429:
                # Gone (404, 410) or refused (a bad subscription): that subscription's fault,
                # not the transport's. Forget it; it counts against no breaker.
                sub.delete()
                continue
            failure = f"push service answered {status}: {exc.message}"
        except (ValueError, TypeError) as exc:  # keys that cannot encrypt: a bad subscription
            log_event(
                logging.WARNING, "delivery", "push subscription dropped", exc, user_id=user.pk
            )
            sub.delete()
            continue
        except Exception as exc:  # connection refused, timeouts
            failure = f"{type(exc).__name__}: {exc}"
    if delivered:
        return
    if failure is None:
        raise TransportError("every push subscription is gone", retry=False)
    raise TransportError(failure)


Transport = Callable[[Any, list[Notification]], None]
TRANSPORTS: dict[str, Transport] = {Channel.EMAIL: send_email_digest, Channel.PUSH: send_push}


def channels_for(user: Any) -> list[str]:
    """The transports that can reach `user`."""
    found: list[str] = []
    if user.email and is_verified(user):  # an address nobody proved they read gets nothing
        found.append(Channel.EMAIL)
    if push_enabled() and PushSubscription.objects.filter(user=user).exists():
        found.append(Channel.PUSH)
    return found


# -- the run ---------------------------------------------------------------------------------


def expire(user_id: int, now: dt.datetime) -> int:
    """Expire the user's notifications pending for NOTIFY_EXPIRE_DAYS."""
    cutoff = now - dt.timedelta(days=float(setting("NOTIFY_EXPIRE_DAYS")))
    with transaction.atomic():
        ids = list(_pending(user_id).filter(created_at__lte=cutoff).values_list("pk", flat=True))
        if not ids:
            return 0
        Notification.objects.filter(pk__in=ids).update(expired_at=now)
        NotificationDelivery.objects.filter(
            notification_id__in=ids, status__in=[Status.PENDING, Status.SENDING]
        ).update(status=Status.EXPIRED, updated_at=now)
    log_event(logging.INFO, "delivery", "notifications expired", user_id=user_id, count=len(ids))
    return len(ids)


def _present_in_redis(user_id: int) -> bool | None:
    """Whether the shared presence store (Redis, with several processes) has the user
    online or in their grace period; None without Redis, or when it cannot be asked."""
    client = redis.sync_client(timeout_s=2)
    if client is None:
        return None
    try:
        return bool(client.sismember(redis.keys().presence_present, user_id))
    except redis.REDIS_DOWN as exc:
        log_event(logging.WARNING, "connection", "presence not readable", exc, user_id=user_id)
        return None
    finally:
        client.close()


def _all_hidden_in_redis(user_id: int, now: float) -> bool | None:
    """Whether the shared presence store has every live chat socket of the user in a hidden
    tab; None without Redis, with no live socket, or when it cannot be asked."""
    client = redis.sync_client(timeout_s=2)
    if client is None:
        return None
    try:
        with client.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(redis.keys().presence_conns(user_id), f"({now}", "+inf")
            pipe.hkeys(redis.keys().hidden(user_id))
            live, hidden = pipe.execute()
        return redis.hidden_of(live, hidden)
    except redis.REDIS_DOWN as exc:
        log_event(logging.WARNING, "connection", "presence not readable", exc, user_id=user_id)
        return None
    finally:
        client.close()


def _offline_since(user_id: int, now: dt.datetime) -> dt.datetime | None:
    """When the user went offline, or went away (every tab of theirs hidden); None while
    they are online with a tab in sight. A user never seen online has been offline forever.
    With Redis its presence set is the truth (a flag left on by a process that died is
    not); the database's flag otherwise."""
    row = (
        UserPresence.objects.filter(user_id=user_id)
        .values_list("online", "last_seen", "hidden_since")
        .first()
    )
    online, last_seen, hidden_since = row if row is not None else (False, None, None)
    present = _present_in_redis(user_id)
    if present is not None:
        online = present
    if online:
        # Away: every tab hidden since a time after the user last went offline (an older
        # one is stale), unless the shared store knows of a tab in sight.
        fresh = hidden_since is not None and (last_seen is None or hidden_since > last_seen)
        if fresh and _all_hidden_in_redis(user_id, now.timestamp()) is not False:
            return hidden_since
        return None
    return last_seen or dt.datetime.min.replace(tzinfo=dt.UTC)


def _claim(
    channel: str, notification_ids: list[int], now: dt.datetime
) -> tuple[str, list[NotificationDelivery]]:
    """Claim up to NOTIFY_BATCH_MAX due deliveries of these notifications for one batch."""
    lease = dt.timedelta(seconds=float(setting("NOTIFY_SENDING_LEASE_S")))
    batch = uuid.uuid4().hex
    with transaction.atomic():
        NotificationDelivery.objects.bulk_create(
            [
                NotificationDelivery(notification_id=n, channel=channel, updated_at=now)
                for n in notification_ids
            ],
            ignore_conflicts=True,
        )
        due = (
            NotificationDelivery.objects.filter(
                channel=channel, notification_id__in=notification_ids
            )
            .filter(
                Q(status=Status.PENDING, next_attempt_at__isnull=True)
                | Q(status=Status.PENDING, next_attempt_at__lte=now)
                | Q(status=Status.SENDING, updated_at__lte=now - lease)
            )
            .select_for_update()
            .order_by("notification_id")
            .values_list("pk", flat=True)[: int(setting("NOTIFY_BATCH_MAX"))]
        )
        ids = list(due)
        NotificationDelivery.objects.filter(pk__in=ids).update(
            status=Status.SENDING, batch=batch, attempts=F("attempts") + 1, updated_at=now
        )
    return batch, list(
        NotificationDelivery.objects.filter(batch=batch).select_related("notification")
    )


def _send_batch(user: Any, channel: str, notification_ids: list[int], now: dt.datetime) -> bool:
    """Claim, re-check, send and record one batch; whether it sent or settled anything."""
    batch, claimed = _claim(channel, notification_ids, now)
    if not claimed:
        return False
    # Just before sending: what was read, or seen in the app, since the claim goes no further.
    fresh = {
        n.pk: n
        for n in Notification.objects.filter(pk__in=[d.notification_id for d in claimed])
        .filter(read_at__isnull=True, expired_at__isnull=True)
        .exclude(delivered_via__in=[Notification.Via.LIVE, Notification.Via.STORED])
    }
    stale = [d.pk for d in claimed if d.notification_id not in fresh]
    if stale:
        NotificationDelivery.objects.filter(pk__in=stale).update(
            status=Status.SUPPRESSED, updated_at=now
        )
    going = [d for d in claimed if d.notification_id in fresh]
    if not going:
        return True
    notifications = [fresh[d.notification_id] for d in going]
    context = {"user_id": user.pk, "transport": channel, "batch": batch, "count": len(going)}
    try:
        TRANSPORTS[channel](user, notifications)
    except TransportError as exc:
        _record_failure(channel, batch, going, str(exc), exc.retry, now, context)
        return True
    with transaction.atomic():
        NotificationDelivery.objects.filter(pk__in=[d.pk for d in going], batch=batch).update(
            status=Status.SENT, updated_at=now, last_error=""
        )
        Notification.objects.filter(
            pk__in=[n.pk for n in notifications], delivered_at__isnull=True
        ).update(delivered_at=now, delivered_via=channel)
    breaker_success(channel, now)
    log_event(logging.INFO, "delivery", "notifications sent", **context)
    return True


def _record_failure(
    channel: str,
    batch: str,
    going: list[NotificationDelivery],
    error: str,
    retry: bool,
    now: dt.datetime,
    context: dict[str, Any],
) -> None:
    if retry:
        breaker_failure(channel, error, now)
    limit = int(setting("NOTIFY_MAX_ATTEMPTS"))
    given_up = [d for d in going if not retry or d.attempts >= limit]
    again = [d for d in going if d not in given_up]
    with transaction.atomic():
        for d in again:  # only rows still this batch's (a late worker changes nothing)
            NotificationDelivery.objects.filter(pk=d.pk, batch=batch).update(
                status=Status.PENDING,
                next_attempt_at=now + dt.timedelta(seconds=backoff_s(d.attempts)),
                last_error=error[:1000],
                updated_at=now,
            )
        if given_up:
            NotificationDelivery.objects.filter(
                pk__in=[d.pk for d in given_up], batch=batch
            ).update(status=Status.FAILED, last_error=error[:1000], updated_at=now)
    # Every failed attempt is logged and recorded for the operator; the breaker bounds how
    # many an outage makes (BREAKER_FAILURES, then one a cool-down).
    record_error(
        "delivery",
        f"{channel} delivery failed for good"
        if given_up
        else f"{channel} delivery failed; will retry",
        None,
        **context,
        attempts=max(d.attempts for d in going),
        error=error[:200],
    )


def _settle_failed(user_id: int, channels: list[str], now: dt.datetime) -> None:
    """A pending notification whose every transport gave up has failed."""
    for n in _pending(user_id).prefetch_related("deliveries"):
        statuses = {d.channel: d.status for d in n.deliveries.all()}
        if channels and all(statuses.get(c) == Status.FAILED for c in channels):
            Notification.objects.filter(pk=n.pk, failed_at__isnull=True).update(failed_at=now)


def run_for_user(
    user_id: int, now: dt.datetime | None = None, *, max_batches: int = 20
) -> dt.datetime | None:
    """One fallback run for the user (see the module docstring); when to run next."""
    now = now or timezone.now()
    FallbackSchedule.objects.filter(user_id=user_id, due_at__lte=now).delete()
    expire(user_id, now)
    pending = list(_pending(user_id).order_by("pk").values_list("pk", "created_at"))
    if not pending:
        return None
    expire_after = dt.timedelta(days=float(setting("NOTIFY_EXPIRE_DAYS")))
    delay = dt.timedelta(seconds=float(setting("NOTIFY_OFFLINE_DELAY_S")))
    upcoming = [min(created for _, created in pending) + expire_after]
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return None
    channels = channels_for(user)
    if not channels:  # stored only: shown on the next visit, or it expires
        return min(upcoming)
    since = _offline_since(user_id, now)
    if since is None:  # in the app: it shows it; look again once they may have gone
        return min([*upcoming, now + delay])
    if since + delay > now:
        return min([*upcoming, since + delay])
    ripe = [pk for pk, created in pending if created + delay <= now]
    upcoming += [created + delay for _, created in pending if created + delay > now]
    open_channels = []
    for channel in channels if ripe else []:  # nothing ripe: leave the breaker's trial alone
        allowed, retry_at = breaker_allows(channel, now)
        if not allowed:  # held, without counting an attempt, until the cool-down ends
            assert retry_at is not None
            upcoming.append(retry_at)
            continue
        open_channels.append(channel)
        for _attempt in range(max_batches):
            if not _send_batch(user, channel, ripe, now):
                break
    _settle_failed(user_id, channels, now)
    still = set(_pending(user_id).values_list("pk", flat=True))
    if not still:
        return None
    lease = dt.timedelta(seconds=float(setting("NOTIFY_SENDING_LEASE_S")))
    tried: set[int] = set()
    for notification_id, status, next_at, updated in NotificationDelivery.objects.filter(
        notification_id__in=still, channel__in=open_channels
    ).values_list("notification_id", "status", "next_attempt_at", "updated_at"):
        tried.add(notification_id)
        if status == Status.SENDING:
            upcoming.append(updated + lease)
        elif status == Status.PENDING:
            upcoming.append(next_at or now)
    if open_channels and (still - tried) & set(ripe):  # more than max_batches were due
        upcoming.append(now)
    return max(now, min(upcoming))
