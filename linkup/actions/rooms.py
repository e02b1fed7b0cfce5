"""Rooms: create a direct room or a group, add and remove members, each announced to the
members it concerns (`check_*` validate; `do_*` write in one transaction and queue their
events with `send_event_on_commit`; the event loop calls them through
`linkup.realtime.edges.perform`).

Consent: a person chooses who may add them to groups (Account.group_adds: everyone, people
who share a room with them, nobody; GROUP_ADDS_DEFAULT where unset). Whoever may not add
them invites them instead: they join by accepting, so a stranger cannot make them a member,
a presence contact or a recipient of the group's messages. A group holds at most
GROUP_MAX_MEMBERS members."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from linkup.actions import blocks, notifications, receipts
from linkup.actions.events import send_event_on_commit, user_group
from linkup.core.conf import setting
from linkup.core.errors import Forbidden, InvalidInput, NotFound
from linkup.core.serialization import format_time
from linkup.models import Account, Block, Invitation, Membership, Room
from linkup.store import queries
from linkup.store.access import access_membership

User = get_user_model()


def check_room_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("a group needs a name")
    name = value.strip()
    if len(name) > 200 or not name.isprintable():
        raise InvalidInput("a room name is 1-200 printable characters")
    return name


def check_user_ids(user_ids: Iterable[Any]) -> list[Any]:
    """Return the active users with these ids, or raise InvalidInput naming the unknown ones."""
    ids = list(dict.fromkeys(user_ids))
    if len(ids) > 1000:
        raise InvalidInput("at most 1000 members at a time")
    for value in ids:
        if type(value) is not int or value <= 0:
            raise InvalidInput("member ids must be positive integers")
    users = list(User.objects.filter(pk__in=ids, is_active=True))
    missing = set(ids) - {u.pk for u in users}
    if missing:
        raise InvalidInput(f"unknown users: {sorted(missing)}")
    return users


def check_group_size(members: int) -> None:
    cap = int(setting("GROUP_MAX_MEMBERS"))
    if members > cap:
        raise InvalidInput(f"a group has at most {cap} members")


def group_adds_of(user_ids: list[int]) -> dict[int, str]:
    """Who may add each of these users to groups (their choice, or the site's default)."""
    default = str(setting("GROUP_ADDS_DEFAULT"))
    chosen = dict(
        Account.objects.filter(user_id__in=user_ids)
        .exclude(group_adds="")
        .values_list("user_id", "group_adds")
    )
    return {user_id: chosen.get(user_id, default) for user_id in user_ids}


def split_by_consent(actor: Any, users: list[Any]) -> tuple[list[Any], list[Any], list[int]]:
    """(those `actor` may add to a group, those `actor` must invite, the ids of those with a
    block between them and `actor`: told "invited", sent nothing)."""
    # Whoever blocked `actor` (or was blocked by them) is neither added nor sent an
    # invitation; the answer lists them among the invited, so the block is not revealed.
    hidden = blocks.hidden_pairs_of([actor.pk]).get(actor.pk, set())
    policy = group_adds_of([u.pk for u in users])
    asks_contacts = [u.pk for u in users if policy[u.pk] == Account.GroupAdds.CONTACTS]
    known = queries.sharing_a_room(actor.pk, asks_contacts) if asks_contacts else set()
    added, invited, silent = [], [], []
    for user in users:
        rule = policy[user.pk]
        if user.pk in hidden:
            silent.append(user.pk)
        elif rule == Account.GroupAdds.EVERYONE or (
            rule == Account.GroupAdds.CONTACTS and user.pk in known
        ):
            added.append(user)
        else:
            invited.append(user)
    return added, invited, silent


def _invite(room: Room, actor: Any, users: list[Any], now: dt.datetime) -> list[int]:
    """Invite these users to the group (those already invited stay as they were); return
    the ids of everyone now invited by this call or before."""
    if not users:
        return []
    ids = [u.pk for u in users]
    already = set(
        Invitation.objects.filter(room=room, user_id__in=ids).values_list("user_id", flat=True)
    )
    fresh = [u.pk for u in users if u.pk not in already]
    Invitation.objects.bulk_create(
        [Invitation(room=room, user_id=pk, invited_by=actor, created_at=now) for pk in fresh]
    )
    notifications.for_invited(room, actor, fresh, now)
    return sorted(ids)


def notify_room_updated(room_id: int, user_ids: Iterable[int]) -> None:
    """Send each member their own view of the room (markers and unread count are per user)."""
    for view in queries.room_views_for_users(room_id, list(user_ids)):
        send_event_on_commit(
            user_group(view["viewer"]), {"type": "room.updated", "room": view["room"]}
        )


def _insert_room(
    creator: Any,
    kind: str,
    now: dt.datetime,
    roles: Sequence[tuple[Any, str]],
    *,
    name: str = "",
    direct_key: str | None = None,
) -> Room:
    """Insert a room and its memberships, and announce it to every member (in a transaction)."""
    room = Room.objects.create(
        kind=kind,
        name=name,
        created_by=creator,
        created_at=now,
        last_activity_at=now,
        direct_key=direct_key,
    )
    Membership.objects.bulk_create(
        [Membership(room=room, user=user, role=role, joined_at=now) for user, role in roles]
    )
    notify_room_updated(room.pk, [user.pk for user, _ in roles])
    if kind == Room.Kind.GROUP:
        notifications.for_added_members(room, creator, [user.pk for user, _ in roles], now)
    return room


def do_create_room(
    creator: Any,
    kind: str,
    member_ids: list[Any],
    name: Any = None,
    *,
    now: dt.datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """Create a room (or return the existing direct room); return (room view, created)."""
    now = now or timezone.now()
    if kind == Room.Kind.DIRECT:
        if len(member_ids) != 1:
            raise InvalidInput("a direct room has exactly one other member")
        (other,) = check_user_ids(member_ids)
        if other.pk == creator.pk:
            raise InvalidInput("a direct room needs another user")
        low, high = sorted((creator.pk, other.pk))
        key = f"{low}:{high}"
        existing = Room.objects.filter(direct_key=key).first()
        if blocks.blocked_pairs([(low, high)]):
            # The blocker may still open the chat they have (to read it, or unblock).
            mine = Block.objects.filter(blocker=creator, blocked=other).exists()
            if existing is None or not mine:
                raise Forbidden(
                    "you blocked this person: unblock them first" if mine else blocks.NOT_HERE
                )
        if existing is not None:
            return queries.room_view(creator, existing.pk), False
        try:
            with transaction.atomic():
                room = _insert_room(
                    creator,
                    kind,
                    now,
                    [(creator, Membership.Role.MEMBER), (other, Membership.Role.MEMBER)],
                    direct_key=key,
                )
        except IntegrityError:
            # Created concurrently by the other user: theirs stands.
            room = Room.objects.get(direct_key=key)
            return queries.room_view(creator, room.pk), False
        return queries.room_view(creator, room.pk), True
    if kind == Room.Kind.GROUP:
        checked_name = check_room_name(name)
        wanted = [u for u in check_user_ids(member_ids) if u.pk != creator.pk]
        check_group_size(1 + len(wanted))
        members, asked, silent = split_by_consent(creator, wanted)
        roles = [(creator, Membership.Role.OWNER)] + [(u, Membership.Role.MEMBER) for u in members]
        with transaction.atomic():
            room = _insert_room(creator, kind, now, roles, name=checked_name)
            invited = sorted(_invite(room, creator, asked, now) + silent)
        return {**queries.room_view(creator, room.pk), "invited": invited}, True
    raise InvalidInput('kind must be "direct" or "group"')


def do_add_members(
    actor: Any, room_id: int, user_ids: list[Any], *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Add users to a group (owner or admins only); new members' markers start at last_seq.
    Those who did not allow `actor` to add them are invited instead (the answer's
    "invited")."""
    now = now or timezone.now()
    with transaction.atomic():
        membership = access_membership(actor, room_id, lock_room=True)
        room = membership.room
        if room.kind != Room.Kind.GROUP:
            raise Forbidden("members of a direct room cannot change")
        if membership.role not in (Membership.Role.OWNER, Membership.Role.ADMIN):
            raise Forbidden("only the owner or an admin adds members")
        users = check_user_ids(user_ids)
        present = set(
            Membership.objects.filter(room=room, user__in=users).values_list("user_id", flat=True)
        )
        wanted = [u for u in users if u.pk not in present]
        check_group_size(Membership.objects.filter(room=room).count() + len(wanted))
        new, asked, silent = split_by_consent(actor, wanted)
        invited = sorted(_invite(room, actor, asked, now) + silent)
        Membership.objects.bulk_create(
            [
                Membership(
                    room=room,
                    user=u,
                    joined_at=now,
                    delivered_seq=room.last_seq,
                    read_seq=room.last_seq,
                )
                for u in new
            ]
        )
        if new:
            everyone = Membership.objects.filter(room=room).values_list("user_id", flat=True)
            notify_room_updated(room.pk, list(everyone))
            notifications.for_added_members(room, actor, [u.pk for u in new], now)
    return {**queries.room_view(actor, room_id), "invited": invited}


# -- invitations ---------------------------------------------------------------------------------


def invitations_of(user: Any) -> list[dict[str, Any]]:
    """The user's pending invitations, newest first."""
    rows = (
        Invitation.objects.filter(user=user)
        .select_related("room", "invited_by")
        .order_by("-created_at", "-pk")
    )
    sizes = dict(
        Membership.objects.filter(room_id__in=[r.room_id for r in rows])
        .values("room_id")
        .annotate(n=Count("pk"))
        .values_list("room_id", "n")
    )
    return [
        {
            "id": inv.pk,
            "room": {
                "id": inv.room_id,
                "name": inv.room.name,
                "members": sizes.get(inv.room_id, 0),
            },
            "by": queries.user_dict(inv.invited_by),
            "created_at": format_time(inv.created_at),
        }
        for inv in rows
    ]


def do_accept_invitation(
    user: Any, invitation_id: int, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Join the group the user was invited to; the invitation is used up."""
    now = now or timezone.now()
    with transaction.atomic():
        invitation = Invitation.objects.filter(pk=invitation_id, user=user).first()
        if invitation is None:
            raise NotFound("invitation not found")
        room = Room.objects.select_for_update().get(pk=invitation.room_id)
        invitation.delete()
        notifications.read_invitations(user.pk, room.pk, now)
        if not Membership.objects.filter(room=room, user=user).exists():
            if Membership.objects.filter(room=room).count() >= int(setting("GROUP_MAX_MEMBERS")):
                raise Forbidden("the group is full")
            Membership.objects.create(
                room=room,
                user=user,
                joined_at=now,
                delivered_seq=room.last_seq,
                read_seq=room.last_seq,
            )
            everyone = Membership.objects.filter(room=room).values_list("user_id", flat=True)
            notify_room_updated(room.pk, list(everyone))
    return queries.room_view(user, room.pk)


def do_decline_invitation(user: Any, invitation_id: int) -> None:
    with transaction.atomic():
        invitation = Invitation.objects.filter(pk=invitation_id, user=user).first()
        if invitation is None:
            raise NotFound("invitation not found")
        invitation.delete()
        notifications.read_invitations(user.pk, invitation.room_id, timezone.now())


def do_set_group_adds(user: Any, value: Any) -> str:
    if value not in Account.GroupAdds.values:
        raise InvalidInput('group_adds is "everyone", "contacts" or "nobody"')
    Account.objects.update_or_create(user_id=user.pk, defaults={"group_adds": value})
    return str(value)


def check_description(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput("a description is text")
    text = value.strip()
    if len(text) > 500 or any(not (c.isprintable() or c == "\n") for c in text):
        raise InvalidInput("a description is at most 500 printable characters")
    return text


def _managing(actor: Any, room_id: int, what: str) -> Membership:
    """The actor's membership of a group they manage (owner or admin), the room locked."""
    membership = access_membership(actor, room_id, lock_room=True)
    if membership.room.kind != Room.Kind.GROUP:
        raise Forbidden(f"a direct room has no {what}")
    if membership.role not in (Membership.Role.OWNER, Membership.Role.ADMIN):
        raise Forbidden(f"only the owner or an admin changes the group's {what}")
    return membership


def do_update_room(
    actor: Any, room_id: int, *, name: Any = None, description: Any = None
) -> dict[str, Any]:
    """Rename a group or change its description (owner or admins); the room as the actor
    sees it. Every member's tabs get `room.updated`."""
    with transaction.atomic():
        # Who may comes first: an outsider learns nothing, whatever the body.
        room = _managing(actor, room_id, "name and description").room
        if name is None and description is None:
            raise InvalidInput("give name or description")
        fields = []
        if name is not None:
            room.name = check_room_name(name)
            fields.append("name")
        if description is not None:
            room.description = check_description(description)
            fields.append("description")
        room.save(update_fields=fields)
        members = list(Membership.objects.filter(room=room).values_list("user_id", flat=True))
        notify_room_updated(room.pk, members)
    return queries.room_view(actor, room.pk)


def do_set_role(actor: Any, room_id: int, user_id: int, role: Any) -> dict[str, Any]:
    """Make a member an admin, or an admin a member again: the owner or an admin promotes;
    only the owner demotes. The owner's own role does not change here (the owner leaving
    passes it on). Returns the room as the actor sees it."""
    with transaction.atomic():
        mine = _managing(actor, room_id, "admins")
        if role not in (Membership.Role.ADMIN, Membership.Role.MEMBER):
            raise InvalidInput('role is "admin" or "member"')
        target = Membership.objects.filter(room=mine.room, user_id=user_id).first()
        if target is None:
            raise NotFound("no such member")
        if target.role == Membership.Role.OWNER:
            raise Forbidden("the owner's role does not change")
        demoting = role == Membership.Role.MEMBER and target.role == Membership.Role.ADMIN
        if demoting and mine.role != Membership.Role.OWNER:
            raise Forbidden("only the owner makes an admin a member again")
        if target.role != role:
            target.role = role
            target.save(update_fields=["role"])
            members = list(
                Membership.objects.filter(room=mine.room).values_list("user_id", flat=True)
            )
            notify_room_updated(mine.room.pk, members)
    return queries.room_view(actor, mine.room.pk)


def do_remove_member(actor: Any, room_id: int, user_id: int) -> None:
    """Remove a member from a group: the owner or admins remove anyone, anyone leaves."""
    with transaction.atomic():
        membership = access_membership(actor, room_id, lock_room=True)
        room = membership.room
        if room.kind != Room.Kind.GROUP:
            raise Forbidden("members of a direct room cannot change")
        if user_id != actor.pk and membership.role not in (
            Membership.Role.OWNER,
            Membership.Role.ADMIN,
        ):
            raise Forbidden("only the owner or an admin removes other members")
        target = Membership.objects.filter(room=room, user_id=user_id).first()
        if target is None:
            raise NotFound("no such member")
        if target.role == Membership.Role.OWNER and user_id != actor.pk:
            raise Forbidden("the owner can only leave, not be removed")
        target.delete()
        # The one who left may have held the lowest marker.
        receipts.advance_watermarks(room)
        if target.role == Membership.Role.OWNER:
            # The group keeps an owner: the longest-standing remaining member.
            heir = Membership.objects.filter(room=room).order_by("joined_at", "pk").first()
            if heir is not None:
                heir.role = Membership.Role.OWNER
                heir.save(update_fields=["role"])
        send_event_on_commit(user_group(user_id), {"type": "room.removed", "room": room.pk})
        remaining = Membership.objects.filter(room=room).values_list("user_id", flat=True)
        notify_room_updated(room.pk, list(remaining))
