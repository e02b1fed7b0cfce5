"""Presence in the database: last seen, the privacy choice, and announcing transitions to the
users who share a room with the one who came or went. (Who is connected right now lives in
the presence store: linkup.realtime.presence_store.)"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from linkup.actions import blocks
from linkup.actions.events import send_event_on_commit, user_group
from linkup.core.conf import setting
from linkup.core.serialization import format_time
from linkup.models import Room, UserPresence
from linkup.store import sendsql


def contacts_of(user_ids: list[int]) -> dict[int, list[int]]:
    """For each of `user_ids`, the users told when they come and go: those who share a room
    of at most PRESENCE_FANOUT_MAX_MEMBERS members with them (direct rooms always).

    In larger rooms presence is read (room answers and user look-ups carry it), not pushed:
    otherwise each member coming online sends a frame to every other member's sockets, and
    a room of 1,000 members reconnecting after a deploy makes a million frames."""
    cap = int(setting("PRESENCE_FANOUT_MAX_MEMBERS"))
    members: dict[int, set[int]] = {}
    # Every user's first socket asks: a statement written as SQL (linkup.store.sendsql).
    for room_id, member in sendsql.small_room_members(list(user_ids), Room.Kind.DIRECT.value, cap):
        members.setdefault(room_id, set()).add(member)
    wanted = set(user_ids)
    found: dict[int, set[int]] = {user: set() for user in user_ids}
    for together in members.values():
        for user in together & wanted:
            found[user] |= together
    return {user: sorted(others - {user}) for user, others in found.items()}


def hiding(user_ids: list[int]) -> set[int]:
    """Those of `user_ids` who hide their last seen (and so see no one's)."""
    return sendsql.hiding_last_seen(list(user_ids))


def visible_last_seen(viewer: int, user: int, last_seen: str | None, hidden: set[int]) -> Any:
    """Last seen as `viewer` may see it: hidden if either of them hides it (reciprocal)."""
    return None if viewer in hidden or user in hidden else last_seen


def do_announce_presences(transitions: list[tuple[int, str, float]]) -> None:
    """Record presence transitions (user, "online" | "offline", at), in order, and tell each
    user's contacts (last seen set on going offline): one transaction for many users, as
    sockets come and go in bursts."""
    if not transitions:
        return
    with transaction.atomic():
        final: dict[int, tuple[bool, dt.datetime | None]] = {}  # user -> (online, last seen)
        for user_id, status, at in transitions:
            if status == "offline":
                final[user_id] = (False, dt.datetime.fromtimestamp(at, tz=dt.UTC))
            else:
                final[user_id] = (True, final.get(user_id, (True, None))[1])
        seen = [UserPresence(user_id=u, online=o, last_seen=w) for u, (o, w) in final.items() if w]
        unseen = [UserPresence(user_id=u, online=o) for u, (o, w) in final.items() if not w]
        for rows, fields in ((seen, ["online", "last_seen"]), (unseen, ["online"])):
            if rows:
                UserPresence.objects.bulk_create(
                    rows, update_conflicts=True, unique_fields=["user"], update_fields=fields
                )
        contacts = contacts_of(sorted(final))
        # Nothing of a person's comings and goings reaches someone they blocked or who
        # blocked them.
        apart = blocks.hidden_pairs_of(sorted(final))
        for user_id, others in apart.items():
            contacts[user_id] = [c for c in contacts[user_id] if c not in others]
        hidden = hiding(sorted({*final, *(c for cs in contacts.values() for c in cs)}))
        for user_id, status, at in transitions:
            last_seen = (
                format_time(dt.datetime.fromtimestamp(at, tz=dt.UTC))
                if status == "offline"
                else None
            )
            for contact in contacts[user_id]:
                send_event_on_commit(
                    user_group(contact),
                    {
                        "type": "chat.presence",
                        "user": user_id,
                        "status": status,
                        "last_seen": visible_last_seen(contact, user_id, last_seen, hidden),
                    },
                )


def record_away(user_id: int, away: bool, at: float) -> None:
    """Since when every tab of the user is hidden (`hidden_since`), or that one is in sight
    (null). A time from before the user last went offline is stale: overwritten, and ignored
    by the readers (linkup.tasks.fallback)."""
    rows = UserPresence.objects.filter(user_id=user_id)
    if not away:
        rows.exclude(hidden_since=None).update(hidden_since=None)
        return
    since_last_online = Q(last_seen__isnull=True) | Q(hidden_since__gt=F("last_seen"))
    fresh = Q(hidden_since__isnull=False) & since_last_online
    rows.exclude(fresh).update(hidden_since=dt.datetime.fromtimestamp(at, tz=dt.UTC))


def presence_views(viewer: int, user_ids: list[int], online: set[int]) -> dict[int, dict[str, Any]]:
    """{user: {"status", "last_seen"}} as `viewer` may see them."""
    stored = {p.user_id: p.last_seen for p in UserPresence.objects.filter(user_id__in=user_ids)}
    hidden = hiding([viewer, *user_ids])
    apart = blocks.hidden_pairs_of([viewer]).get(viewer, set())
    views = {}
    for user in user_ids:
        if user in apart:  # as if offline with last seen hidden: nothing tells of a block
            views[user] = {"status": "offline", "last_seen": None}
            continue
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
