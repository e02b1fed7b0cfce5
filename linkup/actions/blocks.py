"""Blocking: a person stops another from reaching them.

Once A blocks B, neither can open a direct room with the other or send, edit or react in
the one they have (`forbidden`, nothing stored); neither sees the other's presence, last
seen or typing; B cannot add A to a group (B is told A was invited; nothing is sent to A).
Groups they share carry on as before: both still see the group's messages. B is never
told of the block beyond those refusals, which say no more than "you cannot send here".
Unblocking restores everything.

A block is between two people whichever of them made it: `hidden_pairs_of` answers the
sockets and presence, `blocked_pairs` the send path, one query each for many users.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from linkup.actions.events import send_event_on_commit, user_group
from linkup.core.errors import Forbidden, InvalidInput
from linkup.core.serialization import format_time
from linkup.models import Block, Room
from linkup.store import sendsql
from linkup.store.views import user_dict

User = get_user_model()

# What the person blocked is told when they try (the same as for any room they may not
# write in: nothing says who blocked whom).
NOT_HERE = "you cannot send messages in this chat"


def _target(user: Any, user_id: Any) -> Any:
    if type(user_id) is not int or user_id <= 0:
        raise InvalidInput("user_id must be a positive integer")
    if user_id == user.pk:
        raise InvalidInput("you cannot block yourself")
    target = User.objects.filter(pk=user_id).first()
    if target is None:
        raise InvalidInput(f"unknown user: {user_id}")
    return target


def _announce(blocker: Any, blocked: Any, state: bool) -> None:
    """Tell both people's sockets, after commit: the blocker's (each shows it: the frame
    `block.updated`) and the other's (which only stop or restart relaying typing; they say
    nothing to their client)."""
    send_event_on_commit(
        user_group(blocker.pk),
        {"type": "chat.blocks", "user": user_dict(blocked), "blocked": state, "mine": True},
    )
    send_event_on_commit(
        user_group(blocked.pk),
        {"type": "chat.blocks", "user": {"id": blocker.pk}, "blocked": state, "mine": False},
    )


def do_block(
    user: Any, user_id: Any, *, now: dt.datetime | None = None
) -> tuple[dict[str, Any], bool]:
    """Block `user_id`; return (the block, created). Blocking again changes nothing."""
    target = _target(user, user_id)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            block, created = Block.objects.get_or_create(
                blocker=user, blocked=target, defaults={"created_at": now}
            )
            if created:
                _announce(user, target, True)
    except IntegrityError:  # blocked concurrently by another request of theirs
        block, created = Block.objects.get(blocker=user, blocked=target), False
    return {"user": user_dict(target), "created_at": format_time(block.created_at)}, created


def do_unblock(user: Any, user_id: Any) -> bool:
    """Unblock `user_id`; return whether there was a block (none is not an error)."""
    if type(user_id) is not int or user_id <= 0:
        raise InvalidInput("user_id must be a positive integer")
    with transaction.atomic():
        block = Block.objects.filter(blocker=user, blocked_id=user_id).select_related("blocked")
        found = block.first()
        if found is None:
            return False
        found.delete()
        _announce(user, found.blocked, False)
    return True


def list_blocks(user: Any) -> list[dict[str, Any]]:
    """The people `user` blocked, most recent first."""
    return [
        {"user": user_dict(b.blocked), "created_at": format_time(b.created_at)}
        for b in Block.objects.filter(blocker=user)
        .select_related("blocked")
        .order_by("-created_at", "-pk")
    ]


def block_sets_of(user_ids: Iterable[int]) -> dict[int, tuple[set[int], set[int]]]:
    """{user: (the people they blocked, the people who blocked them)}, one query (users
    with neither left out)."""
    ids = list(user_ids)
    found: dict[int, tuple[set[int], set[int]]] = {}
    if not ids:
        return found
    wanted = set(ids)
    for blocker, blocked in sendsql.block_pairs_of(ids):  # every handshake asks
        if blocker in wanted:
            found.setdefault(blocker, (set(), set()))[0].add(blocked)
        if blocked in wanted:
            found.setdefault(blocked, (set(), set()))[1].add(blocker)
    return found


def hidden_pairs_of(user_ids: Iterable[int]) -> dict[int, set[int]]:
    """{user: the people they blocked or who blocked them} (users with none left out)."""
    return {user: mine | theirs for user, (mine, theirs) in block_sets_of(user_ids).items()}


def blocked_pairs(pairs: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """Those of the (a, b) pairs with a block between them, either way: one query."""
    pairs = list(pairs)
    wanted = {tuple(sorted(p)) for p in pairs}
    if not wanted:
        return set()
    people = {u for pair in wanted for u in pair}
    rows = Block.objects.filter(blocker_id__in=people, blocked_id__in=people).values_list(
        "blocker_id", "blocked_id"
    )
    between = {tuple(sorted(row)) for row in rows}
    return {(a, b) for a, b in pairs if tuple(sorted((a, b))) in between & wanted}


def direct_pair(direct_key: str | None) -> tuple[int, int] | None:
    """The two people of a direct room, from its key ("<low id>:<high id>")."""
    if not direct_key:
        return None
    low, _, high = direct_key.partition(":")
    return int(low), int(high)


def check_direct_room(room: Room, user_id: int) -> None:
    """Forbidden if `room` is a direct room with a block between its two people."""
    pair = direct_pair(room.direct_key) if room.kind == Room.Kind.DIRECT else None
    if pair is not None and blocked_pairs([pair]):
        raise Forbidden(_refusal(user_id, pair))


def _refusal(user_id: int, pair: tuple[int, int]) -> str:
    other = pair[1] if pair[0] == user_id else pair[0]
    if Block.objects.filter(blocker_id=user_id, blocked_id=other).exists():
        return "you blocked this person: unblock them to send"
    return NOT_HERE


def refusals(sends: Iterable[tuple[int, int, str | None]]) -> dict[tuple[int, int], str]:
    """For (room, sender, direct_key) of sends in direct rooms: {(room, sender): what the
    refusal says} for those with a block between the two (one query, two if any)."""
    asked = {}
    for room_id, sender, key in sends:
        pair = direct_pair(key)
        if pair is not None:
            asked[(room_id, sender)] = pair
    blocked = blocked_pairs(asked.values())
    return {where: _refusal(where[1], pair) for where, pair in asked.items() if pair in blocked}
