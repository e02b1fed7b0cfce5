"""Messages that change after they are sent: edits, deletes and reactions, through the
room's change log.

An edit, a delete for everyone and a reaction added or removed each take the room's next
change number (`Room.last_change + 1`) under the room's row lock, in the same transaction
as the change itself, and log it (`MessageChange`: what changed, never a copy). After the
commit the room's doorbell rings with the message as it is now, so live delivery of
changes is gap-free and ordered per socket exactly as messages are (the hub's change line,
linkup.realtime.hub), and a client that was offline replays the log by its change cursor
(`sync` with `changes`, `GET /rooms/{id}/changes`). A change that changes nothing (the same
reaction again, removing an absent one, an edit sent again, a message deleted twice) takes
no number and rings nothing.

A delete for me takes no change number: it is the deleter's alone (`DeletedForMe`), shown
to their own sockets and listed in their sync entries.

Locks: the room row first (`access_membership(..., lock_room=True)`), as sends and receipts
take it, then the message's rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from linkup.actions import blocks, uploads
from linkup.actions.events import room_group, send_event_on_commit, user_group
from linkup.core.conf import setting
from linkup.core.errors import Forbidden, InvalidInput, NotFound
from linkup.core.serialization import format_time
from linkup.core.shapes import MessageDict
from linkup.models import (
    DeletedForMe,
    Membership,
    Message,
    MessageChange,
    MessageEdit,
    Notification,
    Reaction,
    Room,
    Upload,
)
from linkup.store import queries, views
from linkup.store.access import access_membership

MODERATORS = (Membership.Role.OWNER, Membership.Role.ADMIN)


def _message(room_id: int, seq: int) -> Message:
    message = Message.objects.select_related("sender").filter(room_id=room_id, seq=seq).first()
    if message is None:
        raise NotFound("message not found")
    return message


def _within(window_s: float, since: dt.datetime, now: dt.datetime) -> bool:
    return (now - since).total_seconds() <= window_s


def _minutes(seconds: float) -> str:
    if seconds % 86400 == 0:
        days = int(seconds // 86400)
        return f"{days} day" + ("s" if days != 1 else "")
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute" + ("s" if minutes != 1 else "")


def _log(room: Room, message: Message, kind: str, now: dt.datetime, fields: list[str]) -> None:
    """Give the change the room's next number, save the message's changed `fields` with it,
    log it, and ring the room's doorbell on commit with the message as it is now."""
    room.last_change += 1
    Room.objects.filter(pk=room.pk).update(last_change=room.last_change)
    MessageChange.objects.create(
        room_id=room.pk, change=room.last_change, seq=message.seq, kind=kind, at=now
    )
    message.change = room.last_change
    message.save(update_fields=[*fields, "change"])
    (state,) = views.states([message])
    send_event_on_commit(room_group(room.pk), state.change_event(room.pk, room.last_change, kind))


def _seen_by(message: Message, viewer: int) -> MessageDict:
    (state,) = views.states([message], viewer)
    return state.viewed_by(viewer)


def do_edit_message(
    user: Any,
    room_id: int,
    seq: int,
    body: str,
    client_id: str,
    *,
    now: dt.datetime | None = None,
) -> MessageDict:
    """Replace the text of one of the caller's messages, within EDIT_WINDOW_S of sending it;
    the text it replaces is kept (`edit_history`). The same `client_id` again changes
    nothing and answers the message as it is. Return the message as the caller sees it."""
    with transaction.atomic():
        room = access_membership(user, room_id, lock_room=True).room
        blocks.check_direct_room(room, user.pk)
        message = _message(room_id, seq)
        if message.sender_id != user.pk:
            raise Forbidden("only its sender can edit a message")
        if message.deleted_at is not None:
            raise Forbidden("the message was deleted")
        if MessageEdit.objects.filter(message=message, client_id=client_id).exists():
            return _seen_by(message, user.pk)  # this edit, again
        now = now or timezone.now()
        window = float(setting("EDIT_WINDOW_S"))
        if not _within(window, message.created_at, now):
            raise Forbidden(f"a message can be edited for {_minutes(window)} after it is sent")
        MessageEdit.objects.create(
            message=message, body=message.body, client_id=client_id, edited_at=now
        )
        if body == message.body:  # recorded (the client_id is spent), but nothing changed
            return _seen_by(message, user.pk)
        message.body, message.edited_at = body, now
        _log(room, message, MessageChange.Kind.EDIT, now, ["body", "edited_at"])
        return _seen_by(message, user.pk)


def do_delete_message(
    user: Any, room_id: int, seq: int, scope: str, *, now: dt.datetime | None = None
) -> MessageDict:
    """Delete a message for everyone (its sender within DELETE_WINDOW_S; the room's owner
    and admins any time): its body, edit history, reactions and what notifications say of
    it are erased, a tombstone stays. Or for the caller only (`scope="me"`), whoever sent
    it. Deleting again changes nothing. Return the tombstone the caller sees."""
    if scope not in ("everyone", "me"):
        raise InvalidInput('scope must be "everyone" or "me"')
    now = now or timezone.now()
    with transaction.atomic():
        membership = access_membership(user, room_id, lock_room=True)
        room = membership.room
        message = _message(room_id, seq)
        if scope == "me":
            _, created = DeletedForMe.objects.get_or_create(
                user_id=user.pk, room_id=room_id, seq=seq, defaults={"at": now}
            )
            tombstone = _seen_by(message, user.pk)
            if created:
                send_event_on_commit(
                    user_group(user.pk),
                    {"type": "chat.hidden", "room": room_id, "message": tombstone},
                )
            return tombstone
        if message.deleted_at is not None:
            return _seen_by(message, user.pk)
        if membership.role not in MODERATORS:
            if message.sender_id != user.pk:
                raise Forbidden("only its sender or the room's admins can delete a message")
            window = float(setting("DELETE_WINDOW_S"))
            if not _within(window, message.created_at, now):
                raise Forbidden(
                    f"a message can be deleted for everyone for {_minutes(window)} after it is sent"
                )
        _erase(room, message, now)
        return _seen_by(message, user.pk)


def _erase(room: Room, message: Message, now: dt.datetime) -> None:
    """Delete for everyone (the room locked): the body, edit history, reactions and what
    notifications say of it go; a tombstone stays."""
    MessageEdit.objects.filter(message=message).delete()
    Reaction.objects.filter(message=message).delete()
    # What notifications said of it: the stored list, and digests and pushes not sent yet.
    Notification.objects.filter(room_id=room.pk, seq=message.seq).update(body="")
    # Its files: the rows now, the stored files once this commits.
    carried = list(Upload.objects.select_for_update().filter(message=message))
    uploads.delete_files_on_commit(uploads.files_of(carried))
    Upload.objects.filter(message=message).delete()
    message.body, message.edited_at, message.deleted_at = "", None, now
    message.attachment_count = 0
    fields = ["body", "edited_at", "deleted_at", "attachment_count"]
    _log(room, message, MessageChange.Kind.DELETE, now, fields)


def do_moderate_delete(room_id: int, seq: int, *, now: dt.datetime | None = None) -> bool:
    """Delete a message for everyone as the site's staff (the admin): no membership or
    window applies. Return whether it was deleted now (False: it was already)."""
    with transaction.atomic():
        room = Room.objects.select_for_update().filter(pk=room_id).first()
        if room is None:
            raise NotFound("room not found")
        message = _message(room_id, seq)
        if message.deleted_at is not None:
            return False
        _erase(room, message, now or timezone.now())
        return True


def do_react(
    user: Any,
    room_id: int,
    seq: int,
    emoji: str,
    state: str,
    *,
    now: dt.datetime | None = None,
) -> MessageDict:
    """Add or remove the caller's `emoji` on a message (one of each per person): adding it
    again, or removing one that is not there, changes nothing. `emoji` is checked by the
    edge (linkup.core.protocol.check_emoji). Return the message as the caller sees it."""
    if state not in ("add", "remove"):
        raise InvalidInput('state must be "add" or "remove"')
    now = now or timezone.now()
    with transaction.atomic():
        room = access_membership(user, room_id, lock_room=True).room
        if state == "add":  # taking one's reaction back is never refused
            blocks.check_direct_room(room, user.pk)
        message = _message(room_id, seq)
        if message.deleted_at is not None:
            raise Forbidden("the message was deleted")
        mine = Reaction.objects.filter(message=message, user_id=user.pk, emoji=emoji)
        if state == "remove":
            if not mine.delete()[0]:
                return _seen_by(message, user.pk)
        else:
            if mine.exists():
                return _seen_by(message, user.pk)
            kinds = Reaction.objects.filter(message=message).values("emoji").distinct()
            cap = int(setting("REACTIONS_PER_MESSAGE_MAX"))
            if not kinds.filter(emoji=emoji).exists() and kinds.count() >= cap:
                raise Forbidden(f"a message takes at most {cap} different reactions")
            Reaction.objects.create(message=message, user_id=user.pk, emoji=emoji, created_at=now)
        _log(room, message, MessageChange.Kind.REACTION, now, [])
        return _seen_by(message, user.pk)


# -- reading -----------------------------------------------------------------------------------


def edit_history(user: Any, room_id: int, seq: int) -> dict[str, Any]:
    """A message's earlier texts, oldest first, then its current one (for its sender and the
    room's owner and admins; others get `forbidden`)."""
    membership = access_membership(user, room_id)
    message = _message(room_id, seq)
    if message.sender_id != user.pk and membership.role not in MODERATORS:
        raise Forbidden("only its sender or the room's admins see a message's edits")
    edits = list(MessageEdit.objects.filter(message=message).order_by("edited_at", "pk"))
    versions = []
    since = message.created_at
    # Each edit kept the text it replaced; the text after it is the next edit's, or the
    # message's own. An edit that changed nothing (its text is the same after) is no version.
    after = [e.body for e in edits[1:]] + [message.body]
    for edit, following in zip(edits, after, strict=True):
        if edit.body == following:
            continue
        versions.append({"body": edit.body, "at": format_time(since)})
        since = edit.edited_at
    if message.deleted_at is None:
        versions.append({"body": message.body, "at": format_time(since)})
    return {"message": _seen_by(message, user.pk), "versions": versions}


def reactors(user: Any, room_id: int, seq: int) -> dict[str, Any]:
    """Who reacted to a message with what, in the order they did."""
    access_membership(user, room_id)
    message = _message(room_id, seq)
    found: dict[str, list[dict[str, Any]]] = {}
    for emoji, user_id, username in (
        Reaction.objects.filter(message=message)
        .order_by("created_at", "pk")
        .values_list("emoji", "user_id", "user__username")
    ):
        found.setdefault(emoji, []).append({"id": user_id, "username": username})
    return {"reactions": [{"emoji": e, "users": users} for e, users in found.items()]}


def changes_page(
    user: Any, room_id: int, after_change: int, limit: int | None = None
) -> dict[str, Any]:
    """A page of the room's change log after `after_change`, each change with the message as
    the caller sees it now."""
    access_membership(user, room_id)
    found, has_more = queries.changes_after(
        room_id, after_change, queries.clamp_limit(limit), user.pk
    )
    return {
        "changes": [
            {"change": change, "kind": kind, "message": state.viewed_by(user.pk)}
            for change, kind, state in found
        ],
        "has_more": has_more,
    }
