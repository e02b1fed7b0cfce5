"""`access_*`: fetch what the caller asked for and check they may see it, in one step."""

from __future__ import annotations

from typing import Any

from linkup.core.errors import NotFound
from linkup.models import Membership, Room


def access_membership(user: Any, room_id: int, *, lock_room: bool = False) -> Membership:
    """Return the caller's membership of the room; NotFound alike for missing and foreign rooms."""
    room = None
    if lock_room:
        # Lock the room row first: sends, joins and leaves of one room queue behind it, so
        # neither the membership read below nor last_seq can change until this commits.
        room = Room.objects.select_for_update().filter(pk=room_id).first()
        if room is None:
            raise NotFound("room not found")
    membership = (
        Membership.objects.filter(room_id=room_id, user=user).first()
        if lock_room
        else Membership.objects.select_related("room").filter(room_id=room_id, user=user).first()
    )
    if membership is None:
        raise NotFound("room not found")
    if room is not None:
        membership.room = room
    return membership
