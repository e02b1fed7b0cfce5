"""Presence in the database: last seen, the privacy choice, and announcing transitions to the
users who share a room with the one who came or went. (Who is connected right now lives in
the presence store: linkup.realtime.presence_store.)"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from linkup.actions.events import send_event_on_commit, user_group
from linkup.core.conf import setting
from linkup.core.serialization import format_time
from linkup.models import Membership, Room, UserPresence


def contacts_of(user_id: int) -> list[int]:
    """Users told when `user_id` comes and goes: those who share a room of at most
    PRESENCE_FANOUT_MAX_MEMBERS members with them (direct rooms always).

    In larger rooms presence is read (room answers and user look-ups carry it), not pushed:
    otherwise each member coming online sends a frame to every other member's sockets, and
    a room of 1,000 members reconnecting after a deploy makes a million frames."""
    cap = int(setting("PRESENCE_FANOUT_MAX_MEMBERS"))
    mine = Membership.objects.filter(user_id=user_id).values("room_id")
    rooms = (
        Room.objects.filter(pk__in=mine)
        .annotate(size=Count("memberships"))
        .filter(Q(size__lte=cap) | Q(kind=Room.Kind.DIRECT))
        .values("pk")
    )
    return sorted(
        set(
            Membership.objects.filter(room_id__in=rooms)
            .exclude(user_id=user_id)
            .values_list("user_id", flat=True)
        )
    )


def hiding(user_ids: list[int]) -> set[int]:
    """Those of `user_ids` who hide their last seen (and so see no one's)."""
    return set(
        UserPresence.objects.filter(user_id__in=user_ids, hide_last_seen=True).values_list(
            "user_id", flat=True
        )
    )


def visible_last_seen(viewer: int, user: int, last_seen: str | None, hidden: set[int]) -> Any:
    """Last seen as `viewer` may see it: hidden if either of them hides it (reciprocal)."""
    return None if viewer in hidden or user in hidden else last_seen


def do_announce_presence(user_id: int, status: str, at: float) -> None:
    """Record a presence transition and tell every contact (last seen set on going offline)."""
    with transaction.atomic():
        last_seen: str | None = None
        if status == "offline":
            when = dt.datetime.fromtimestamp(at, tz=dt.UTC)
            UserPresence.objects.update_or_create(
                user_id=user_id, defaults={"last_seen": when, "online": False}
            )
            last_seen = format_time(when)
        else:
            UserPresence.objects.update_or_create(user_id=user_id, defaults={"online": True})
        contacts = contacts_of(user_id)
        hidden = hiding([user_id, *contacts])
        for contact in contacts:
            send_event_on_commit(
                user_group(contact),
                {
                    "type": "chat.presence",
                    "user": user_id,
                    "status": status,
                    "last_seen": visible_last_seen(contact, user_id, last_seen, hidden),
                },
            )


def presence_views(viewer: int, user_ids: list[int], online: set[int]) -> dict[int, dict[str, Any]]:
    """{user: {"status", "last_seen"}} as `viewer` may see them."""
    stored = {p.user_id: p.last_seen for p in UserPresence.objects.filter(user_id__in=user_ids)}
    hidden = hiding([viewer, *user_ids])
    views = {}
    for user in user_ids:
        if user in online:
            views[user] = {"status": "online", "last_seen": None}
            continue
        seen = stored.get(user)
        views[user] = {
            "status": "offline",
            "last_seen": visible_last_seen(
                viewer, user, format_time(seen) if seen else None, hidden
            ),
        }
    return views


def do_forget_stale_presence() -> int:
    """Mark everyone the database shows online as offline, seen now (a single-process
    server starting: whoever was online went with the process before it); return how many."""
    return UserPresence.objects.filter(online=True).update(online=False, last_seen=timezone.now())


def do_set_privacy(user: Any, hide_last_seen: bool) -> dict[str, Any]:
    UserPresence.objects.update_or_create(
        user_id=user.pk, defaults={"hide_last_seen": hide_last_seen}
    )
    return {"hide_last_seen": hide_last_seen}


def privacy_of(user: Any) -> dict[str, Any]:
    return {"hide_last_seen": bool(hiding([user.pk]))}
