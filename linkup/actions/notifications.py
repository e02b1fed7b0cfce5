"""Notifications: what creates them, how they read, and how they are marked read or delivered.

They are written in the transaction of the change they are about (a message, being added to
a group), so a committed message never lacks its notification and a rolled-back one never
has one; their fallback task (`linkup.tasks.schedule_fallback`) is enqueued in that same
transaction. Live delivery is a doorbell to the user's `/ws/notifications/` sockets after
the commit; the fallback chain (linkup.tasks.fallback) takes what no path delivered.

Who gets one: the other member of a direct room, for each new message; a group member
whose `@username` a message names (the first NOTIFY_MENTIONS_MAX named); a user added or
invited to a group. Never the author, never for a room the recipient muted, never for a
room one of the recipient's sockets is showing (its `focus`), and never more than
NOTIFY_PER_SENDER_MAX from one sender to one recipient within NOTIFY_PER_SENDER_WINDOW_S
(the messages beyond still arrive and count as unread; they are not announced).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.db import connections, router, transaction
from django.db.models import Count, Q
from django.utils import timezone

from linkup.actions.events import notify_group, send_event_on_commit, user_group
from linkup.core.conf import setting
from linkup.core.errors import InvalidInput, NotFound
from linkup.core.serialization import format_time
from linkup.core.shapes import MessageDict, NotificationDict
from linkup.models import Membership, Notification, PushSubscription, Room
from linkup.store import queries
from linkup.store.access import access_membership
from linkup.store.views import display_names
from linkup.tasks import schedule_fallback

# "@name": a Django username is letters, digits and @.+-_ (at most 150); a trailing dot or
# dash is read as punctuation unless the whole name exists.
_MENTION = re.compile(r"(?<![\w@.+-])@([\w.@+-]{1,150})")


def mentioned_usernames(body: str) -> set[str]:
    """The usernames `body` may mention, with and without trailing punctuation."""
    names: set[str] = set()
    for match in _MENTION.finditer(body):
        name = match.group(1)
        names.add(name)
        stripped = name.rstrip(".-+@")
        if stripped:
            names.add(stripped)
    return names


def mentions_in_order(body: str) -> list[str]:
    """The names `body` may mention, in the order they appear (each with and without its
    trailing punctuation), without repeats."""
    names: dict[str, None] = {}
    for match in _MENTION.finditer(body):
        name = match.group(1)
        names[name] = None
        stripped = name.rstrip(".-+@")
        if stripped:
            names[stripped] = None
    return list(names)


def preview(body: str) -> str:
    limit = int(setting("NOTIFY_PREVIEW_CHARS"))
    flat = " ".join(body.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def files_line(attachments: list[dict[str, Any]]) -> str:
    """What a notification says of a message of files without a caption."""
    if not attachments:
        return ""
    if len(attachments) > 1:
        return f"{len(attachments)} files"
    kind, name = attachments[0]["kind"], attachments[0]["name"]
    return {"image": "Photo", "audio": "Audio", "video": "Video"}.get(kind, name)


def notification_dict(n: Notification) -> NotificationDict:
    """The contract's notification object."""
    return {
        "id": n.pk,
        "kind": n.kind,
        "title": n.title,
        "body": n.body,
        "data": n.data,
        "created_at": format_time(n.created_at),
        "read": n.read_at is not None,
    }


# -- creation (inside the writer's transaction) ------------------------------------------


def for_new_messages(
    messages: list[MessageDict],
    focused: dict[int, set[int]] | None = None,
    now: dt.datetime | None = None,
) -> list[Notification]:
    """Create the notifications of newly committed messages (message dicts, in seq order).

    `focused` maps a room id to the users with a socket showing that room: they are looking
    at it, so it notifies them of nothing. One query finds the recipients of the whole batch."""
    if not messages:
        return []
    focused = focused or {}
    room_ids = {m["room"] for m in messages}
    names: set[str] = set()
    for m in messages:
        if "@" in m["body"]:
            names |= mentioned_usernames(m["body"])
    wanted = Q(room__kind=Room.Kind.DIRECT)
    if names:
        wanted |= Q(room__kind=Room.Kind.GROUP, user__username__in=names)
    rows = Membership.objects.filter(wanted, room_id__in=room_ids, muted=False).values_list(
        "room_id", "user_id", "user__username", "room__kind", "room__name"
    )
    direct: dict[int, list[int]] = {}
    by_name: dict[int, dict[str, int]] = {}
    room_names: dict[int, str] = {}
    for room_id, user_id, username, kind, name in rows:
        room_names[room_id] = name
        if kind == Room.Kind.DIRECT:
            direct.setdefault(room_id, []).append(user_id)
        else:
            by_name.setdefault(room_id, {})[username] = user_id
    at = now or timezone.now()
    created: list[Notification] = []
    senders = {m["sender"]["id"] for m in messages if m["room"] in direct or m["room"] in by_name}
    known = {sender for sender in senders if sender is not None}
    shown = display_names(known) if known else {}
    for m in messages:
        room_id, sender = m["room"], m["sender"]
        looking = focused.get(room_id, set())
        data = {
            "room": room_id,
            "seq": m["seq"],
            "message": m["id"],
            "sender": {"id": sender["id"], "username": sender["username"]},
        }
        if room_id in by_name:
            data["room_name"] = room_names[room_id]  # a title in any language names it
        who = shown.get(sender["id"] or 0) or sender["username"]
        if room_id in direct:
            recipients = [u for u in direct[room_id] if u != sender["id"]]
            kind, title = Notification.Kind.MESSAGE, who
        elif room_id in by_name:
            members = by_name[room_id]
            named: dict[int, None] = {}
            cap = int(setting("NOTIFY_MENTIONS_MAX"))
            for name in mentions_in_order(m["body"]):
                member = members.get(name)
                if member is not None and member != sender["id"]:
                    named[member] = None
                    if len(named) >= cap:
                        break
            recipients = list(named)
            kind = Notification.Kind.MENTION
            title = f"{who} mentioned you in {room_names[room_id]}"
        else:
            continue
        for user_id in recipients:
            if user_id in looking:
                continue
            created.append(
                Notification(
                    recipient_id=user_id,
                    kind=kind,
                    title=title[:200],
                    body=preview(m["body"] or files_line(m["attachments"])),
                    data=data,
                    room_id=room_id,
                    seq=m["seq"],
                    actor_id=sender["id"],
                    created_at=at,
                )
            )
    return _store(created, at)


def for_added_members(room: Room, actor: Any, user_ids: Iterable[int], now: dt.datetime) -> None:
    """Tell the users `actor` just added to the group `room`."""
    _about_group(Notification.Kind.ADDED, "added", room, actor, user_ids, now)


def for_invited(room: Room, actor: Any, user_ids: Iterable[int], now: dt.datetime) -> None:
    """Tell the users `actor` just invited to the group `room` (they join by accepting)."""
    _about_group(Notification.Kind.INVITED, "invited", room, actor, user_ids, now)


def _about_group(
    kind: str, verb: str, room: Room, actor: Any, user_ids: Iterable[int], now: dt.datetime
) -> None:
    name = display_names([actor.pk]).get(actor.pk) or actor.get_username()
    created = [
        Notification(
            recipient_id=user_id,
            kind=kind,
            title=f"{name} {verb} you to {room.name}"[:200],
            body="",
            data={
                "room": room.pk,
                "room_name": room.name,  # an invitee cannot read the room to name it
                "by": {"id": actor.pk, "username": actor.get_username()},
            },
            # Reading the room reads it; an invitee is no member and cannot.
            room_id=room.pk if kind == Notification.Kind.ADDED else None,
            seq=None,
            actor_id=actor.pk,
            created_at=now,
        )
        for user_id in user_ids
        if user_id != actor.pk
    ]
    _store(created, now)


def within_sender_limit(created: list[Notification], now: dt.datetime) -> list[Notification]:
    """Those of `created` that keep each (sender, recipient) pair within
    NOTIFY_PER_SENDER_MAX notifications in the last NOTIFY_PER_SENDER_WINDOW_S (the earliest
    of them first): one query for the batch."""
    cap = int(setting("NOTIFY_PER_SENDER_MAX"))
    since = now - dt.timedelta(seconds=float(setting("NOTIFY_PER_SENDER_WINDOW_S")))
    pairs = {(n.actor_id, n.recipient_id) for n in created if n.actor_id is not None}
    if not pairs:
        return created
    recent = (
        Notification.objects.filter(
            recipient_id__in={r for _, r in pairs},
            actor_id__in={a for a, _ in pairs},
            created_at__gt=since,
        )
        .values("actor_id", "recipient_id")
        .annotate(n=Count("pk"))
        .values_list("actor_id", "recipient_id", "n")
    )
    used = {(a, r): n for a, r, n in recent}
    kept = []
    for n in created:
        if n.actor_id is not None:
            pair = (n.actor_id, n.recipient_id)
            if used.get(pair, 0) >= cap:
                continue
            used[pair] = used.get(pair, 0) + 1
        kept.append(n)
    return kept


def _store(created: list[Notification], now: dt.datetime) -> list[Notification]:
    """Insert the notifications (within the per-sender limit), ring their recipients'
    doorbells on commit, and make sure a fallback task will look at each recipient."""
    created = within_sender_limit(created, now) if created else created
    if created:
        with transaction.atomic():  # the caller's transaction (a savepoint), or one of its own
            _insert(created, now)
    return created


def _insert(created: list[Notification], now: dt.datetime) -> None:
    if connections[router.db_for_write(Notification)].features.can_return_rows_from_bulk_insert:
        Notification.objects.bulk_create(created)
    else:  # SQLite before 3.35 returns no ids from a multi-row INSERT
        for n in created:
            n.save(force_insert=True)
    for n in created:
        send_event_on_commit(
            notify_group(n.recipient_id),
            {"type": "notify.new", "notification": notification_dict(n)},
        )
    delay = dt.timedelta(seconds=float(setting("NOTIFY_OFFLINE_DELAY_S")))
    schedule_fallback(sorted({n.recipient_id for n in created}), now + delay)


# -- reading --------------------------------------------------------------------------------


def unread_count(user: Any) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def list_for(
    user: Any,
    *,
    unread: bool = False,
    before_id: int | None = None,
    limit: int = 50,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The user's notifications, newest first. Showing them delivers them ("stored")."""
    rows = Notification.objects.filter(recipient=user)
    if unread:
        rows = rows.filter(read_at__isnull=True)
    if before_id is not None:
        rows = rows.filter(pk__lt=before_id)
    page = list(rows.order_by("-pk")[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    mark_delivered(
        [n.pk for n in page if n.delivered_at is None and n.read_at is None],
        Notification.Via.STORED,
        now,
    )
    return {
        "notifications": [notification_dict(n) for n in page],
        "unread_count": unread_count(user),
        "has_more": has_more,
    }


def backlog_for(user: Any) -> dict[str, Any]:
    """What a new notifications socket is sent after `hello`: the unread count, and the
    unread notifications not delivered yet, oldest first."""
    rows = Notification.objects.filter(
        recipient=user, read_at__isnull=True, delivered_at__isnull=True
    ).order_by("pk")[: int(setting("NOTIFY_BATCH_MAX"))]
    return {
        "notifications": [notification_dict(n) for n in rows],
        "unread_count": unread_count(user),
    }


# -- state changes ----------------------------------------------------------------------------


def mark_delivered(ids: list[int], via: str, now: dt.datetime | None = None) -> int:
    """Record the first delivery of these notifications (later ones change nothing)."""
    if not ids:
        return 0
    return Notification.objects.filter(
        pk__in=ids, delivered_at__isnull=True, read_at__isnull=True
    ).update(delivered_at=now or timezone.now(), delivered_via=via)


def _announce_read(user_id: int, ids: list[int]) -> None:
    if ids:
        send_event_on_commit(notify_group(user_id), {"type": "notify.read", "ids": ids})


def do_mark_read(user: Any, ids: list[int], now: dt.datetime | None = None) -> list[int]:
    """Mark the user's notifications `ids` read; return the ids that were unread. Another
    user's notification, or one that does not exist, reads as not found only when no id is
    the caller's (so one stale id in a list does not fail the rest)."""
    with transaction.atomic():
        mine = list(
            Notification.objects.filter(pk__in=ids, recipient=user)
            .select_for_update()
            .values_list("pk", "read_at")
        )
        if not mine:
            raise NotFound("notification not found")
        fresh = sorted(pk for pk, read_at in mine if read_at is None)
        if fresh:
            Notification.objects.filter(pk__in=fresh).update(read_at=now or timezone.now())
        _announce_read(user.pk, fresh)
    return fresh


def do_mark_all_read(user: Any, now: dt.datetime | None = None) -> list[int]:
    with transaction.atomic():
        fresh = sorted(
            Notification.objects.filter(recipient=user, read_at__isnull=True)
            .select_for_update()
            .values_list("pk", flat=True)
        )
        if fresh:
            Notification.objects.filter(pk__in=fresh).update(read_at=now or timezone.now())
        _announce_read(user.pk, fresh)
    return fresh


def read_through(user_id: int, room_id: int, seq: int, now: dt.datetime) -> None:
    """The user read the room up to `seq`: its message notifications up to there are read
    (inside the receipt's transaction)."""
    fresh = sorted(
        Notification.objects.filter(
            recipient_id=user_id, room_id=room_id, seq__lte=seq, read_at__isnull=True
        ).values_list("pk", flat=True)
    )
    if fresh:
        Notification.objects.filter(pk__in=fresh).update(read_at=now)
        _announce_read(user_id, fresh)


def read_invitations(user_id: int, room_id: int, now: dt.datetime) -> None:
    """The user answered their invitation to the group: its notifications are read (inside
    the answer's transaction)."""
    fresh = sorted(
        Notification.objects.filter(
            recipient_id=user_id,
            kind=Notification.Kind.INVITED,
            data__room=room_id,
            read_at__isnull=True,
        ).values_list("pk", flat=True)
    )
    if fresh:
        Notification.objects.filter(pk__in=fresh).update(read_at=now)
        _announce_read(user_id, fresh)


def do_set_muted(user: Any, room_id: int, muted: bool) -> dict[str, Any]:
    with transaction.atomic():
        membership = access_membership(user, room_id)
        if membership.muted != muted:
            Membership.objects.filter(pk=membership.pk).update(muted=muted)
            # The user's other tabs show the new state.
            send_event_on_commit(
                user_group(user.pk),
                {"type": "room.updated", "room": queries.room_view(user, room_id)},
            )
    return {"room": room_id, "muted": muted}


MAX_PUSH_SUBSCRIPTIONS = 10  # per user; subscribing one more forgets the oldest


def _b64url(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInput("push keys are base64url") from None


def check_push_endpoint(endpoint: str) -> str:
    """An https URL of a public host: the worker POSTs to it, so never to this machine or a
    private network (PUSH_ALLOW_HTTP, for a local test service, lifts both rules)."""
    if setting("PUSH_ALLOW_HTTP"):
        if not endpoint.startswith(("https://", "http://")):
            raise InvalidInput("endpoint must be an http(s) URL")
        return endpoint
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidInput("endpoint must be an https URL")
    host = parts.hostname.lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise InvalidInput("endpoint must be a public push service")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return endpoint
    if not address.is_global:
        raise InvalidInput("endpoint must be a public push service")
    return endpoint


def do_subscribe_push(user: Any, endpoint: str, p256dh: str, auth: str) -> bool:
    """Store a browser's push subscription for `user`; whether it is new. An endpoint is one
    browser's: subscribing it again (another user logged in there) moves it. The keys must
    be what a browser makes (an uncompressed P-256 point, a 16-byte secret), so a bad one
    is refused here rather than failing every push later."""
    check_push_endpoint(endpoint)
    point, secret = _b64url(p256dh), _b64url(auth)
    if len(point) != 65 or point[0] != 4 or len(secret) != 16:
        raise InvalidInput("keys must be a P-256 public key (p256dh) and a 16-byte secret (auth)")
    with transaction.atomic():
        _, created = PushSubscription.objects.update_or_create(
            endpoint=endpoint,
            defaults={"user": user, "p256dh": p256dh, "auth": auth, "created_at": timezone.now()},
        )
        extra = list(
            PushSubscription.objects.filter(user=user)
            .order_by("-created_at", "-pk")
            .values_list("pk", flat=True)[MAX_PUSH_SUBSCRIPTIONS:]
        )
        if extra:
            PushSubscription.objects.filter(pk__in=extra).delete()
    return created


def do_unsubscribe_push(user: Any, endpoint: str) -> None:
    PushSubscription.objects.filter(user=user, endpoint=endpoint).delete()
