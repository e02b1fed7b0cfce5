"""Account deletion: a person leaves, and what was theirs goes with them.

Whoever deletes the account (the person, `DELETE /api/v1/me`; staff, in the admin or with
`manage.py linkup_delete_account`; a site's own code, `user.delete()`), the same happens,
because it runs just before the user row is deleted (a `pre_delete` receiver,
linkup/actions/sessions.py):

- their reactions are taken back and the messages carrying their files are deleted for
  everyone, through each room's change log, so every member's client learns of it by the
  usual cursors; with `ACCOUNT_DELETE_ERASES_MESSAGES` every message of theirs is;
- they leave every group (ownership passes to the longest-standing member, as when an
  owner leaves); a room with nobody left in it (a direct room whose other person is gone
  too, a group they were the last of) is removed; the others are told of each room's new
  member list;
- their unsent uploads, their files and their data exports are deleted (after the commit);
- then the row goes, and with it, by the database's cascades, their tokens, sessions,
  tickets, push subscriptions, notifications, presence, receipts' history, blocks,
  invitations, "deleted for me" marks and settings. Their messages stay in others' rooms
  (`Message.sender` becomes null), shown as from `{"id": null, "username": "Deleted user"}`;
  reports they made or that name them stay for the moderators, without them.

Their sockets close at once: deleting the row ends every session (linkup/actions/sessions.py).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from linkup.actions import changes, receipts, rooms, uploads
from linkup.core.conf import setting
from linkup.core.errors import LinkupError
from linkup.models import DataExport, Membership, Message, Reaction, Room, Upload


def do_delete_account(user: Any) -> None:
    """Delete the account and everything of theirs (the edge checked who asks: the person
    with their password again, or staff)."""
    user.delete()  # the pre_delete receiver runs `before_user_deleted`


def before_user_deleted(user: Any) -> None:
    """Everything that must be done while the row still exists (see the module's doc)."""
    with transaction.atomic():
        for room_id, seq, emoji in Reaction.objects.filter(user=user).values_list(
            "message__room_id", "message__seq", "emoji"
        ):
            try:
                changes.do_react(user, room_id, seq, emoji, "remove")
            except LinkupError:  # not a member any more: nobody sees it
                pass
        theirs = Message.objects.filter(sender=user, deleted_at__isnull=True)
        if not setting("ACCOUNT_DELETE_ERASES_MESSAGES"):
            theirs = theirs.filter(attachment_count__gt=0)  # their files go
        for room_id, seq in theirs.values_list("room_id", "seq"):
            changes.do_moderate_delete(room_id, seq)
        uploads.delete_files_on_commit(
            [e.file for e in DataExport.objects.filter(user=user) if e.file]
        )
        left = list(Upload.objects.filter(uploader=user))  # unsent ones, by now
        uploads.delete_files_on_commit(uploads.files_of(left))
        Upload.objects.filter(pk__in=[u.pk for u in left]).delete()
        for membership in list(Membership.objects.filter(user=user).select_related("room")):
            room = membership.room
            if room.kind == Room.Kind.GROUP:
                rooms.do_remove_member(user, room.pk, user.pk)  # told to the others
            else:
                room = Room.objects.select_for_update().get(pk=room.pk)
                membership.delete()
                # Theirs may have been the lowest marker: the other's ticks move on.
                receipts.advance_watermarks(room)
            others = list(Membership.objects.filter(room=room).values_list("user_id", flat=True))
            if not others:  # nobody can reach it any more
                _remove_room(room)
            elif room.kind == Room.Kind.DIRECT:
                rooms.notify_room_updated(room.pk, others)


def _remove_room(room: Room) -> None:
    names = uploads.files_of(Upload.objects.filter(message__room=room))
    uploads.delete_files_on_commit(names)
    room.delete()
