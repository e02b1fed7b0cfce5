"""Receipt markers: moves (monotonic, clamped, read implies delivered), their log, the room's
watermarks, the sender's status of a message, and "message info".

Every function that writes runs inside a transaction that holds the room row lock (taken by
`access_membership(..., lock_room=True)`), always before any membership row: one lock order
for sends, receipts and membership changes, so PostgreSQL never deadlocks them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from linkup.actions import notifications
from linkup.actions.events import room_group, send_event_on_commit, user_group
from linkup.core.conf import setting
from linkup.core.errors import Forbidden, InvalidInput, NotFound
from linkup.core.serialization import format_time
from linkup.core.shapes import ChatWatermarkEvent, ReceiptFrame
from linkup.models import MarkerMove, Membership, Message, Room
from linkup.store import queries
from linkup.store.access import access_membership


class Markers(Protocol):
    """A member's markers (a Membership, or the send batch's plain row)."""

    delivered_seq: int
    read_seq: int


class Watermarks(Protocol):
    """A room's watermarks (a Room, or the send batch's plain row)."""

    pk: int
    delivered_watermark: int
    read_watermark: int


def message_status(seq: int, delivered_watermark: int, read_watermark: int) -> str:
    """Status of an acknowledged message for its sender, from the room's watermarks."""
    if seq <= read_watermark:
        return "read"
    if seq <= delivered_watermark:
        return "delivered"
    return "sent"


def next_markers(delivered: int, read: int, kind: str, seq: int) -> tuple[int, int]:
    """Markers after a receipt (seq already clamped): they only grow; read implies delivered."""
    if kind == "read":
        read = max(read, seq)
        return max(delivered, read), read
    return max(delivered, seq), read


def move_markers(
    membership: Membership, delivered: int, read: int, at: dt.datetime
) -> tuple[bool, bool]:
    """Store new markers for a membership (caller holds the room lock); log the moves.

    Return (moved, held_minimum): whether anything moved, and whether this member may have
    held the room's lowest marker (then the caller advances the watermarks, after queueing
    its own event, so clients see the receipt or message before the watermark it caused)."""
    room = membership.room
    moves = []
    if delivered > membership.delivered_seq:
        moves.append((MarkerMove.Kind.DELIVERED.value, delivered))
    if read > membership.read_seq:
        moves.append((MarkerMove.Kind.READ.value, read))
    if not moves:
        return False, False
    held_minimum = may_hold_minimum(membership, room)
    Membership.objects.filter(pk=membership.pk).update(delivered_seq=delivered, read_seq=read)
    membership.delivered_seq, membership.read_seq = delivered, read
    MarkerMove.objects.bulk_create(
        [
            MarkerMove(room_id=room.pk, user_id=membership.user_id, kind=kind, seq=seq, at=at)
            for kind, seq in moves
        ]
    )
    return True, held_minimum


def may_hold_minimum(membership: Markers, room: Watermarks) -> bool:
    """Whether this member's markers (before a move) may be the room's lowest: only then can
    moving them raise the watermarks."""
    return (
        membership.delivered_seq <= room.delivered_watermark
        or membership.read_seq <= room.read_watermark
    )


def advance_watermarks(room: Room) -> None:
    """Recompute the room's lowest markers (caller holds the room lock); emit if they rose."""
    lowest = Membership.objects.filter(room_id=room.pk).aggregate(
        delivered=Min("delivered_seq"), read=Min("read_seq")
    )
    if lowest["delivered"] is None:
        return  # no members left
    delivered = max(room.delivered_watermark, lowest["delivered"])
    read = max(room.read_watermark, lowest["read"])
    if (delivered, read) == (room.delivered_watermark, room.read_watermark):
        return
    Room.objects.filter(pk=room.pk).update(delivered_watermark=delivered, read_watermark=read)
    room.delivered_watermark, room.read_watermark = delivered, read
    send_event_on_commit(room_group(room.pk), watermark_event(room))


def watermark_event(room: Watermarks) -> ChatWatermarkEvent:
    """The event announcing a room's watermarks (its members' lowest markers)."""
    return {
        "type": "chat.watermark",
        "room": room.pk,
        "delivered_seq": room.delivered_watermark,
        "read_seq": room.read_watermark,
    }


def do_move_marker(
    user: Any, room_id: int, kind: str, seq: int, *, now: dt.datetime | None = None
) -> ReceiptFrame | None:
    """Move a receipt marker up (clamped to last_seq; read implies delivered).

    Return the accepted receipt, or None when it moved nothing (a lower or equal marker)."""
    if kind not in ("delivered", "read"):
        raise InvalidInput('kind must be "delivered" or "read"')
    at = now or timezone.now()
    with transaction.atomic():
        membership = access_membership(user, room_id, lock_room=True)
        room = membership.room
        seq = min(seq, room.last_seq)
        delivered, read = next_markers(membership.delivered_seq, membership.read_seq, kind, seq)
        members = Membership.objects.filter(room_id=room_id).count()
        read_before = membership.read_seq
        moved, held_minimum = move_markers(membership, delivered, read, at)
        if not moved:
            return None
        receipt: ReceiptFrame = {
            "type": "receipt",
            "room": room_id,
            "user": user.pk,
            "kind": kind,
            "seq": seq,
            "at": format_time(at),
        }
        # Small rooms: every member sees everyone's receipts. Large rooms: only the owner's
        # own sockets (other tabs); everyone's ticks there follow the watermark frames.
        group = (
            room_group(room_id)
            if members <= setting("RECEIPT_FANOUT_MAX_MEMBERS")
            else user_group(user.pk)
        )
        send_event_on_commit(group, {"type": "chat.receipt", "receipt": receipt})
        if read > read_before:
            # Reading the room reads its notifications up to there (on every device).
            notifications.read_through(user.pk, room_id, read, at)
        if held_minimum:
            advance_watermarks(room)
    return receipt


def message_info(user: Any, room_id: int, seq: int) -> dict[str, Any]:
    """Who has the caller's message delivered and who read it, with times (sender only)."""
    membership = access_membership(user, room_id)
    room = membership.room
    message = Message.objects.select_related("sender").filter(room_id=room_id, seq=seq).first()
    if message is None:
        raise NotFound("message not found")
    if message.sender_id != user.pk:
        raise Forbidden("only the sender sees a message's info")
    # Members when it was sent, the sender aside: later joiners never waited for it.
    members = list(
        Membership.objects.filter(room_id=room_id, joined_at__lte=message.created_at)
        .exclude(user_id=user.pk)
        .select_related("user")
        .order_by("user__username")
    )
    first_reached = {
        (row["user_id"], row["kind"]): row["first"]
        for row in MarkerMove.objects.filter(
            room_id=room_id, seq__gte=seq, user_id__in=[m.user_id for m in members]
        )
        .values("user_id", "kind")
        .annotate(first=Min("at"))
    }

    def reached(member: Membership, kind: str, marker: int) -> str | None:
        at = first_reached.get((member.user_id, kind))
        return format_time(at) if at is not None and marker >= seq else None

    return {
        "message": queries.message_dict(message, user.pk),
        "status": message_status(seq, room.delivered_watermark, room.read_watermark),
        "members": [
            {
                "user": queries.user_dict(m.user),
                "delivered_at": reached(m, "delivered", m.delivered_seq),
                "read_at": reached(m, "read", m.read_seq),
            }
            for m in members
        ],
    }
