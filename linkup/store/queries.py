"""Read paths: views of rooms and messages for one user, history pages and catch-up."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, F, OuterRef, Q, Window
from django.db.models.functions import RowNumber

from linkup.core.conf import setting
from linkup.core.errors import NotFound
from linkup.core.serialization import dumps, format_time
from linkup.core.shapes import MessageDict, PersonDict
from linkup.models import DeletedForMe, Membership, Message, MessageChange, Room
from linkup.store import sendsql, views
from linkup.store.views import person_dict, user_dict

__all__ = ["user_dict"]  # here for the many callers; linkup.store.views builds it

User = get_user_model()


def message_dict(message: Message, viewer: int) -> MessageDict:
    """The contract's message object as `viewer` sees it."""
    return views.views([message], viewer)[0]


def _last_messages(room_ids: list[int], viewer: int | None) -> dict[int, views.MessageState]:
    """{room: the state of its last message} (rooms with none are left out). For one
    `viewer`, whether they deleted it for themselves is read with the messages."""
    found = Message.objects.filter(room_id__in=room_ids, seq=F("room__last_seq"))
    if viewer is None:
        rows = list(found.select_related("sender"))
        return {state.base["room"]: state for state in views.states(rows)}
    mine = DeletedForMe.objects.filter(
        user_id=viewer, room_id=OuterRef("room_id"), seq=OuterRef("seq")
    )
    rows = list(found.annotate(hidden_for_viewer=Exists(mine)).select_related("sender"))
    hidden = {(m.room_id, m.seq): {viewer} for m in rows if m.hidden_for_viewer}  # type: ignore[attr-defined]
    return {state.base["room"]: state for state in views.states(rows, viewer, hidden)}


def _room_dicts(viewer_memberships: list[Membership]) -> list[dict[str, Any]]:
    """Build room views for memberships (each its member's view of its room), in a fixed
    number of queries in all."""
    room_ids = sorted({m.room_id for m in viewer_memberships})
    members: dict[int, list[dict[str, Any]]] = {rid: [] for rid in room_ids}
    for m in (
        Membership.objects.filter(room_id__in=room_ids)
        .select_related("user__linkup_account")
        .order_by("room_id", "joined_at", "pk")
    ):
        members[m.room_id].append({**person_dict(m.user), "role": m.role})
    viewers = {m.user_id for m in viewer_memberships}
    last_messages = _last_messages(room_ids, next(iter(viewers)) if len(viewers) == 1 else None)
    out = []
    for m in viewer_memberships:
        room = m.room
        last = last_messages.get(room.pk)
        out.append(
            {
                "id": room.pk,
                "kind": room.kind,
                "name": room.name,
                "description": room.description,
                "members": members[room.pk],
                "last_message": None if last is None else last.viewed_by(m.user_id),
                "last_seq": room.last_seq,
                "first_seq": room.first_seq,
                "last_change": room.last_change,
                "watermark": watermark(room),
                "unread_count": max(room.last_seq - m.read_seq, 0),
                "read_seq": m.read_seq,
                "delivered_seq": m.delivered_seq,
                "role": m.role,
                "muted": m.muted,
                "created_at": format_time(room.created_at),
                "last_activity_at": format_time(room.last_activity_at),
            }
        )
    return out


def watermark(room: Room) -> dict[str, int]:
    """The room's lowest markers: what every member has delivered and read."""
    return {"delivered_seq": room.delivered_watermark, "read_seq": room.read_watermark}


def list_rooms(user: Any) -> list[dict[str, Any]]:
    """The caller's rooms, most recent activity first."""
    memberships = list(
        Membership.objects.filter(user=user)
        .select_related("room")
        .order_by("-room__last_activity_at", "-room_id")
    )
    return _room_dicts(memberships)


def room_view(user: Any, room_id: int) -> dict[str, Any]:
    membership = (
        Membership.objects.filter(user=user, room_id=room_id).select_related("room").first()
    )
    if membership is None:
        raise NotFound("room not found")
    return _room_dicts([membership])[0]


def room_views_for_users(room_id: int, user_ids: list[int]) -> list[dict[str, Any]]:
    """Each listed member's own view of one room: [{"viewer": id, "room": view}]."""
    memberships = list(
        Membership.objects.filter(room_id=room_id, user_id__in=user_ids).select_related("room")
    )
    views_ = _room_dicts(memberships)
    return [{"viewer": m.user_id, "room": v} for m, v in zip(memberships, views_, strict=True)]


Cursors = tuple[int, int]  # a room's (last_seq, last_change)


def rooms_and_seqs_of(user_ids: list[int]) -> dict[int, dict[int, Cursors]]:
    """{user_id: {room_id: (last_seq, last_change)}} for every room each user is in, in one
    query (users in no room are left out)."""
    found: dict[int, dict[int, Cursors]] = {}
    for user_id, room_id, last_seq, last_change in sendsql.memberships_of(user_ids, True):
        found.setdefault(user_id, {})[room_id] = (last_seq, last_change)
    return found


def room_ids_of(user_ids: list[int]) -> dict[int, set[int]]:
    """{user_id: the rooms they are in}, one query (users in no room are left out)."""
    found: dict[int, set[int]] = {}
    for user_id, room_id in sendsql.memberships_of(user_ids, False):
        found.setdefault(user_id, set()).add(room_id)
    return found


def last_seqs(room_ids: list[int]) -> dict[int, Cursors]:
    """{room_id: (last_seq, last_change)}."""
    return {
        pk: (seq, change)
        for pk, seq, change in Room.objects.filter(pk__in=room_ids).values_list(
            "pk", "last_seq", "last_change"
        )
    }


def messages_after(
    room_id: int, after_seq: int, limit: int, viewer: int | None = None
) -> list[views.MessageState]:
    """Up to `limit` messages with seq > after_seq, ascending (see views.states for
    `viewer`)."""
    rows = (
        Message.objects.filter(room_id=room_id, seq__gt=after_seq)
        .select_related("sender")
        .order_by("seq")[:limit]
    )
    return views.states(list(rows), viewer)


def changes_after(
    room_id: int, after_change: int, limit: int, viewer: int | None = None
) -> tuple[list[tuple[int, str, views.MessageState]], bool]:
    """Up to `limit` changes of the room after `after_change`, ascending: (change, kind,
    the message's state now), and whether more follow. A change whose message is no longer
    stored (purged) is passed over, like a purged seq."""
    log = list(
        MessageChange.objects.filter(room_id=room_id, change__gt=after_change)
        .order_by("change")
        .values_list("change", "kind", "seq")[: limit + 1]
    )
    has_more = len(log) > limit
    log = log[:limit]
    if not log:
        return [], has_more
    rows = Message.objects.filter(room_id=room_id, seq__in={seq for _, _, seq in log})
    by_seq = {
        state.base["seq"]: state
        for state in views.states(list(rows.select_related("sender")), viewer)
    }
    return [(change, kind, by_seq[seq]) for change, kind, seq in log if seq in by_seq], has_more


def clamp_limit(limit: int | None) -> int:
    if limit is None:
        return int(setting("HISTORY_DEFAULT_LIMIT"))
    return max(1, min(int(limit), int(setting("HISTORY_MAX_LIMIT"))))


def history(
    user: Any,
    room_id: int,
    *,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """A page of history in ascending seq; has_more says more exist in the paging direction."""
    if not Membership.objects.filter(user=user, room_id=room_id).exists():
        raise NotFound("room not found")
    n = clamp_limit(limit)
    qs = Message.objects.filter(room_id=room_id).select_related("sender")
    if after_seq is not None:
        rows = list(qs.filter(seq__gt=after_seq).order_by("seq")[: n + 1])
        has_more = len(rows) > n
        rows = rows[:n]
    else:
        if before_seq is not None:
            qs = qs.filter(seq__lt=before_seq)
        rows = list(qs.order_by("-seq")[: n + 1])
        has_more = len(rows) > n
        rows = rows[:n][::-1]
    return {"messages": views.views(rows, user.pk), "has_more": has_more}


def _pages_after(
    cursors: dict[int, int], viewer: int, hidden: views.Hidden
) -> dict[int, tuple[list[MessageDict], bool]]:
    """For each room, the messages after its cursor as `viewer` sees them (`hidden`: the
    viewer's deletions for themselves): at most SYNC_MAX_MESSAGES and SYNC_MAX_BYTES, with
    has_more. One query per SYNC_ROOMS_PER_QUERY rooms, however many (and views.states's
    few for all of them)."""
    max_messages = int(setting("SYNC_MAX_MESSAGES"))
    max_bytes = int(setting("SYNC_MAX_BYTES"))
    rows: dict[int, list[Message]] = {room_id: [] for room_id in cursors}
    room_ids = sorted(cursors)
    chunk = int(setting("SYNC_ROOMS_PER_QUERY"))
    for start in range(0, len(room_ids), chunk):
        after = Q()
        for room_id in room_ids[start : start + chunk]:
            after |= Q(room_id=room_id, seq__gt=cursors[room_id])
        # Number each room's messages after its cursor and keep the first max + 1 of each
        # (the extra one says has_more): one query for all these rooms.
        numbered = (
            Message.objects.filter(after)
            .annotate(
                position=Window(RowNumber(), partition_by=[F("room_id")], order_by=F("seq").asc())
            )
            .filter(position__lte=max_messages + 1)
            .select_related("sender")
            .order_by("room_id", "seq")
        )
        for row in numbered:
            rows[row.room_id].append(row)
    kept = [m for messages in rows.values() for m in messages[:max_messages]]
    seen = {(v["room"], v["seq"]): v for v in views.views(kept, viewer, hidden)}
    pages: dict[int, tuple[list[MessageDict], bool]] = {}
    for room_id, messages in rows.items():
        page: list[MessageDict] = []
        size = 0
        has_more = len(messages) > max_messages
        for message in messages[:max_messages]:
            data = seen[(room_id, message.seq)]
            size += len(dumps(data))
            if page and size > max_bytes:
                has_more = True
                break
            page.append(data)
        pages[room_id] = (page, has_more)
    return pages


def _changes_after(
    cursors: dict[int, int], viewer: int, hidden: views.Hidden
) -> dict[int, tuple[list[dict[str, Any]], bool]]:
    """For each room, its changes after its change cursor (at most SYNC_MAX_CHANGES, with
    has_more), each `{"change", "kind", "message"}` with the message as `viewer` sees it
    now. Two queries for all rooms, and views.states's few."""
    limit = int(setting("SYNC_MAX_CHANGES"))
    after = Q()
    for room_id, change in cursors.items():
        after |= Q(room_id=room_id, change__gt=change)
    log = list(
        MessageChange.objects.filter(after)
        .annotate(
            position=Window(RowNumber(), partition_by=[F("room_id")], order_by=F("change").asc())
        )
        .filter(position__lte=limit + 1)
        .order_by("room_id", "change")
        .values_list("room_id", "change", "kind", "seq")
    )
    per_room: dict[int, list[tuple[int, str, int]]] = {room_id: [] for room_id in cursors}
    for room_id, change, kind, seq in log:
        per_room[room_id].append((change, kind, seq))
    wanted = Q()
    for room_id, entries in per_room.items():
        if entries:
            wanted |= Q(room_id=room_id, seq__in={seq for _, _, seq in entries[:limit]})
    seen: dict[tuple[int, int], MessageDict] = {}
    if log:
        rows = list(Message.objects.filter(wanted).select_related("sender"))
        seen = {(v["room"], v["seq"]): v for v in views.views(rows, viewer, hidden)}
    out: dict[int, tuple[list[dict[str, Any]], bool]] = {}
    for room_id, entries in per_room.items():
        page = [
            {"change": change, "kind": kind, "message": seen[(room_id, seq)]}
            for change, kind, seq in entries[:limit]
            if (room_id, seq) in seen  # a purged message's change is passed over
        ]
        out[room_id] = (page, len(entries) > limit)
    return out


def deleted_for_me(user_id: int, room_ids: list[int]) -> dict[int, list[int]]:
    """{room: every seq `user_id` deleted for themselves there, highest first}, in one
    query (a person's own deletions: few)."""
    found: dict[int, list[int]] = {room_id: [] for room_id in room_ids}
    if not room_ids:
        return found
    rows = (
        DeletedForMe.objects.filter(user_id=user_id, room_id__in=room_ids)
        .order_by("room_id", "-seq")
        .values_list("room_id", "seq")
    )
    for room_id, seq in rows:
        found[room_id].append(seq)
    return found


def build_sync(
    user: Any, cursors: dict[int, int], changes: dict[int, int] | None = None
) -> dict[str, Any]:
    """The body of `sync.result` and `GET /sync`, in a bounded number of queries.
    `changes`: change cursors; each of those rooms' entries lists its changes after it."""
    rooms = {m.room_id: m.room for m in Membership.objects.filter(user=user).select_related("room")}
    room_ids = sorted(rooms)
    markers: dict[int, dict[str, dict[str, int]]] = {rid: {} for rid in room_ids}
    for room_id, user_id, delivered, read in Membership.objects.filter(
        room_id__in=room_ids
    ).values_list("room_id", "user_id", "delivered_seq", "read_seq"):
        markers[room_id][str(user_id)] = {"delivered_seq": delivered, "read_seq": read}
    wanted = {
        room_id: after
        for room_id, after in cursors.items()
        if room_id in rooms and after < rooms[room_id].last_seq
    }
    hidden = deleted_for_me(user.pk, room_ids)
    mine = {(room_id, seq): {user.pk} for room_id, seqs in hidden.items() for seq in seqs}
    pages = _pages_after(wanted, user.pk, mine) if wanted else {}
    asked = {r: c for r, c in (changes or {}).items() if r in rooms}
    behind = {r: c for r, c in asked.items() if c < rooms[r].last_change}
    changed = _changes_after(behind, user.pk, mine) if behind else {}
    cap = int(setting("DELETED_FOR_ME_MAX"))
    entries = []
    for room_id in room_ids:
        room = rooms[room_id]
        if room_id in cursors:
            messages, has_more = pages.get(room_id, ([], False))
        else:
            messages, has_more = [], room.last_seq > 0
        entry = {
            "room": room_id,
            "last_seq": room.last_seq,
            "first_seq": room.first_seq,
            "last_change": room.last_change,
            "messages": messages,
            "has_more": has_more,
            "markers": markers[room_id],
            "watermark": watermark(room),
            "deleted_for_me": hidden[room_id][:cap],
        }
        if room_id in asked:
            entry["changes"], entry["changes_has_more"] = changed.get(room_id, ([], False))
        entries.append(entry)
    return {"room_ids": room_ids, "rooms": entries}


def search_users(
    query: str, *, exclude: Any = None, limit: int = 20, min_chars: int = 1
) -> list[PersonDict]:
    """Active users whose username or display name contains `query` (at least `min_chars`
    characters long: a shorter one finds nobody)."""
    query = query.strip()
    if len(query) < min_chars:
        return []
    named = Q(username__icontains=query) | Q(linkup_account__display_name__icontains=query)
    qs = User.objects.filter(named, is_active=True).select_related("linkup_account")
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return [person_dict(u) for u in qs.order_by("username")[:limit]]


def sharing_a_room(viewer_id: int, user_ids: list[int]) -> set[int]:
    """Those of `user_ids` who share a room with `viewer_id`."""
    theirs = Membership.objects.filter(user_id=viewer_id).values("room_id")
    return set(
        Membership.objects.filter(room_id__in=theirs, user_id__in=user_ids).values_list(
            "user_id", flat=True
        )
    )
