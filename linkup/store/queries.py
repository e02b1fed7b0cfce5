"""Read paths: views of rooms and messages for one user, history pages and catch-up."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber

from linkup.core.conf import setting
from linkup.core.errors import NotFound
from linkup.core.serialization import dumps, format_time
from linkup.core.shapes import MessageDict, UserDict
from linkup.models import Membership, Message, Room

User = get_user_model()


def user_dict(user: Any) -> UserDict:
    return {"id": user.pk, "username": user.get_username()}


def message_dict(message: Message) -> MessageDict:
    """The contract's message object (same in REST bodies and frames)."""
    return {
        "id": message.pk,
        "room": message.room_id,
        "seq": message.seq,
        "sender": user_dict(message.sender),
        "body": message.body,
        "client_id": message.client_id,
        "created_at": format_time(message.created_at),
    }


def _room_dicts(viewer_memberships: list[Membership]) -> list[dict[str, Any]]:
    """Build room views for a list of one viewer's memberships, in three queries in all."""
    room_ids = [m.room_id for m in viewer_memberships]
    members: dict[int, list[dict[str, Any]]] = {rid: [] for rid in room_ids}
    for m in (
        Membership.objects.filter(room_id__in=room_ids)
        .select_related("user")
        .order_by("room_id", "joined_at", "pk")
    ):
        members[m.room_id].append({**user_dict(m.user), "role": m.role})
    last_messages = {
        msg.room_id: message_dict(msg)
        for msg in Message.objects.filter(
            room_id__in=room_ids, seq=F("room__last_seq")
        ).select_related("sender")
    }
    views = []
    for m in viewer_memberships:
        room = m.room
        views.append(
            {
                "id": room.pk,
                "kind": room.kind,
                "name": room.name,
                "members": members[room.pk],
                "last_message": last_messages.get(room.pk),
                "last_seq": room.last_seq,
                "first_seq": room.first_seq,
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
    return views


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
    if not memberships:
        return []
    views = _room_dicts(memberships[:1])
    base = views[0]
    out = []
    for m in memberships:
        view = dict(base)
        view.update(
            unread_count=max(m.room.last_seq - m.read_seq, 0),
            read_seq=m.read_seq,
            delivered_seq=m.delivered_seq,
            role=m.role,
        )
        out.append({"viewer": m.user_id, "room": view})
    return out


def rooms_and_seqs_of(user_ids: list[int]) -> dict[int, dict[int, int]]:
    """{user_id: {room_id: last_seq}} for every room each user is in, in one query (users in
    no room are left out)."""
    found: dict[int, dict[int, int]] = {}
    for user_id, room_id, last_seq in Membership.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "room_id", "room__last_seq"
    ):
        found.setdefault(user_id, {})[room_id] = last_seq
    return found


def last_seqs(room_ids: list[int]) -> dict[int, int]:
    return dict(Room.objects.filter(pk__in=room_ids).values_list("pk", "last_seq"))


def messages_after(room_id: int, after_seq: int, limit: int) -> list[MessageDict]:
    """Up to `limit` messages with seq > after_seq, ascending."""
    rows = (
        Message.objects.filter(room_id=room_id, seq__gt=after_seq)
        .select_related("sender")
        .order_by("seq")[:limit]
    )
    return [message_dict(m) for m in rows]


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
    return {"messages": [message_dict(m) for m in rows], "has_more": has_more}


def _pages_after(cursors: dict[int, int]) -> dict[int, tuple[list[MessageDict], bool]]:
    """For each room, the messages after its cursor: at most SYNC_MAX_MESSAGES and
    SYNC_MAX_BYTES, with has_more. One query per SYNC_ROOMS_PER_QUERY rooms, however many."""
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
    pages: dict[int, tuple[list[MessageDict], bool]] = {}
    for room_id, messages in rows.items():
        page: list[MessageDict] = []
        size = 0
        has_more = len(messages) > max_messages
        for message in messages[:max_messages]:
            data = message_dict(message)
            size += len(dumps(data))
            if page and size > max_bytes:
                has_more = True
                break
            page.append(data)
        pages[room_id] = (page, has_more)
    return pages


def build_sync(user: Any, cursors: dict[int, int]) -> dict[str, Any]:
    """The body of `sync.result` and `GET /sync`, in a bounded number of queries."""
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
    pages = _pages_after(wanted) if wanted else {}
    entries = []
    for room_id in room_ids:
        room = rooms[room_id]
        if room_id in cursors:
            messages, has_more = pages.get(room_id, ([], False))
        else:
            messages, has_more = [], room.last_seq > 0
        entries.append(
            {
                "room": room_id,
                "last_seq": room.last_seq,
                "first_seq": room.first_seq,
                "messages": messages,
                "has_more": has_more,
                "markers": markers[room_id],
                "watermark": watermark(room),
            }
        )
    return {"room_ids": room_ids, "rooms": entries}


def search_users(
    query: str, *, exclude: Any = None, limit: int = 20, min_chars: int = 1
) -> list[UserDict]:
    """Active users whose username contains `query` (at least `min_chars` characters long:
    a shorter one finds nobody)."""
    query = query.strip()
    if len(query) < min_chars:
        return []
    qs = User.objects.filter(is_active=True, username__icontains=query)
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return [user_dict(u) for u in qs.order_by("username")[:limit]]


def sharing_a_room(viewer_id: int, user_ids: list[int]) -> set[int]:
    """Those of `user_ids` who share a room with `viewer_id`."""
    theirs = Membership.objects.filter(user_id=viewer_id).values("room_id")
    return set(
        Membership.objects.filter(room_id__in=theirs, user_id__in=user_ids).values_list(
            "user_id", flat=True
        )
    )
