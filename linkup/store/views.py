"""Message objects as each member sees them.

A message object is the same for every member of its room but for two things: `me` in its
`reactions` (whether *this* member reacted with that emoji), and a message the member
deleted for themselves (a tombstone with `deleted: "me"` for them alone). A `MessageState`
holds the object as everyone else sees it (`base`) and those few differences (`mine`: who
reacted with what; `hidden`: who deleted it for themselves), so a frame for all of a room's
sockets is encoded once, plus once per member who differs (linkup.realtime.hub).

Reading states costs a fixed number of queries per page of messages, and none beyond the
message rows for messages never changed, replying to nothing and carrying no file (the send
path's own messages, and most of history): reactions exist only on a message whose `change`
is past 0, attachments only on one whose `attachment_count` is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q
from django.urls import reverse

from linkup.core.serialization import format_time
from linkup.core.shapes import (
    ChatChangeEvent,
    MessageDict,
    PersonDict,
    ProfileFields,
    ReactionDict,
    ReplyDict,
    SenderDict,
    UserDict,
)
from linkup.models import Account, DeletedForMe, Message, Reaction, Upload

PREVIEW_CHARS = 100  # a reply's preview of its original: the first code points


def user_dict(user: Any) -> UserDict:
    return {"id": user.pk, "username": user.get_username()}


def avatar_url(user_id: int, stored: str) -> str | None:
    """Where a picture is fetched from (its digest in the URL: a new one is a new URL)."""
    if not stored:
        return None
    digest = stored.rsplit("-", 1)[-1].split(".", 1)[0]
    return f"{reverse('linkup-api:user_avatar', args=[user_id])}?v={digest}"


def public_fields(user_id: int, account: Account | None) -> ProfileFields:
    """What anyone who sees the person sees besides their id and username."""
    if account is None:
        return {"display_name": "", "avatar": None}
    return {
        "display_name": account.display_name,
        "avatar": avatar_url(user_id, account.avatar),
    }


def account_of(user: Any) -> Account | None:
    """The user's Account where it was read with them (select_related), or one query."""
    try:
        found: Account = user.linkup_account
        return found
    except ObjectDoesNotExist:
        return None


def person_dict(user: Any) -> PersonDict:
    """{id, username, display_name, avatar} of a user read with `linkup_account` related."""
    return {
        "id": user.pk,
        "username": user.get_username(),
        **public_fields(user.pk, account_of(user)),
    }


def display_names(user_ids: Iterable[int]) -> dict[int, str]:
    """{user: the name they are shown by} (their username where they set none)."""
    wanted = set(user_ids)
    rows = (
        get_user_model()
        .objects.filter(pk__in=wanted)
        .values_list("pk", "username", "linkup_account__display_name")
    )
    return {pk: (shown or username) for pk, username, shown in rows}


DELETED_USER = "Deleted user"


def sender_dict(user: Any) -> SenderDict:
    """A message's sender as others see it: "Deleted user" once the account is gone."""
    if user is None:
        return {"id": None, "username": DELETED_USER}
    return {"id": user.pk, "username": user.get_username()}


@dataclass(slots=True)
class MessageState:
    base: MessageDict  # as a member sees it who neither reacted nor deleted it for themselves
    mine: dict[int, list[str]] = field(default_factory=dict)  # user id -> their emoji
    hidden: set[int] = field(default_factory=set)  # who deleted it for themselves

    def viewed_by(self, viewer: int) -> MessageDict:
        """The message object as `viewer` sees it."""
        if viewer in self.hidden:
            return tombstone(self.base, "me")
        emoji = self.mine.get(viewer)
        if not emoji:
            return self.base
        mine = set(emoji)
        reactions: list[ReactionDict] = [
            {**r, "me": r["emoji"] in mine} for r in self.base["reactions"]
        ]
        return {**self.base, "reactions": reactions}

    def differs_for(self) -> set[int]:
        """The users who see this message otherwise than `base`."""
        return set(self.mine) | self.hidden

    def change_event(self, room: int, change: int, kind: str) -> ChatChangeEvent:
        """The `chat.change` event of a change that left the message in this state
        (`from_event` reads it back on every process's hub)."""
        return {
            "type": "chat.change",
            "room": room,
            "change": change,
            "kind": kind,
            "message": self.base,
            "mine": [[user, emoji] for user, emoji in sorted(self.mine.items())],
            "hidden": sorted(self.hidden),
        }

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> MessageState:
        return cls(
            event["message"],
            {int(user): list(emoji) for user, emoji in event.get("mine", ())},
            {int(user) for user in event.get("hidden", ())},
        )


def tombstone(message: MessageDict, scope: str) -> MessageDict:
    """What is left of a deleted message: seq, sender and time."""
    return {
        **message,
        "body": "",
        "reply_to": None,
        "reactions": [],
        "edited_at": None,
        "deleted": scope,
        "attachments": [],
    }


def new_message(
    pk: int,
    room: int,
    seq: int,
    sender: SenderDict,
    body: str,
    client_id: str,
    created_at: str,
    reply_to: ReplyDict | None = None,
) -> MessageDict:
    """A message object as it is when sent: no reactions, never edited."""
    return {
        "id": pk,
        "room": room,
        "seq": seq,
        "sender": sender,
        "body": body,
        "client_id": client_id,
        "created_at": created_at,
        "reply_to": reply_to,
        "reactions": [],
        "edited_at": None,
        "deleted": None,
        "attachments": [],
        "change": 0,
    }


def reply_dict(sender: SenderDict, seq: int, body: str, deleted: bool) -> ReplyDict:
    preview = "" if deleted else body[:PREVIEW_CHARS]
    # `deleted` tells an empty preview of a deleted original from one of files alone.
    return {"seq": seq, "sender": sender, "preview": preview, "deleted": deleted}


def originals(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], ReplyDict]:
    """{(room, seq): reply object} of the messages these (room, seq) pairs name, in one
    query (a pair whose message is not stored, purged say, is left out)."""
    wanted: dict[int, set[int]] = {}
    for room, seq in pairs:
        wanted.setdefault(room, set()).add(seq)
    if not wanted:
        return {}
    where = Q()
    for room, seqs in wanted.items():
        where |= Q(room_id=room, seq__in=sorted(seqs))
    found: dict[tuple[int, int], ReplyDict] = {}
    rows = Message.objects.filter(where).values_list(
        "room_id", "seq", "sender_id", "sender__username", "body", "deleted_at"
    )
    for room, seq, sender_id, username, body, deleted_at in rows:
        sender: SenderDict = {"id": sender_id, "username": username or DELETED_USER}
        found[(room, seq)] = reply_dict(sender, seq, body, deleted_at is not None)
    return found


def attachment_dict(upload: Upload) -> dict[str, Any]:
    """An attachment as a message carries it: `url` (and `thumbnail_url` once the worker
    made one) are paths of this server that answer the room's members only."""
    url = reverse("linkup-api:attachment", kwargs={"upload_id": str(upload.id)})
    out: dict[str, Any] = {
        "id": str(upload.id),
        "name": upload.name,
        "size": upload.size,
        "content_type": upload.content_type,
        "kind": upload.kind,
        "url": url,
    }
    if upload.kind == Upload.Kind.IMAGE:
        # The image itself until the task worker has made the thumbnail (moments after).
        out["thumbnail_url"] = url + "/thumbnail"
    for key in ("width", "height", "duration_s"):
        value = getattr(upload, key)
        if value is not None:
            out[key] = value
    if upload.placeholder:
        out["placeholder"] = upload.placeholder
    return out


def attachments_of(message_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """{message id: its attachments in order}, in one query (none for an empty list)."""
    if not message_ids:
        return {}
    found: dict[int, list[dict[str, Any]]] = {}
    for upload in Upload.objects.filter(message_id__in=message_ids).order_by("position"):
        assert upload.message_id is not None
        found.setdefault(upload.message_id, []).append(attachment_dict(upload))
    return found


Hidden = dict[tuple[int, int], set[int]]  # (room, seq) -> who deleted it for themselves


def states(
    rows: list[Message], viewer: int | None = None, hidden: Hidden | None = None
) -> list[MessageState]:
    """The states of these messages (their senders selected), in their order. With a
    `viewer`, only what that viewer sees differently is read (their own reactions and
    deletions for themselves); with None, everyone's (for a frame to all members).
    `hidden`: the deletions for oneself of these messages, where the caller read them."""
    replies = originals((m.room_id, m.reply_to_seq) for m in rows if m.reply_to_seq is not None)
    changed = [m.pk for m in rows if m.change > 0 and m.deleted_at is None]
    counts: dict[int, dict[str, int]] = {}
    mine: dict[int, dict[int, list[str]]] = {}
    if changed:
        reactions = Reaction.objects.filter(message_id__in=changed).order_by("created_at", "pk")
        for message_id, user_id, emoji in reactions.values_list("message_id", "user_id", "emoji"):
            per_emoji = counts.setdefault(message_id, {})
            per_emoji[emoji] = per_emoji.get(emoji, 0) + 1
            mine.setdefault(message_id, {}).setdefault(user_id, []).append(emoji)
    if hidden is None:
        hidden = _hidden(rows, viewer)
    files = attachments_of([m.pk for m in rows if m.attachment_count and m.deleted_at is None])
    out = []
    for m in rows:
        base = new_message(
            m.pk,
            m.room_id,
            m.seq,
            sender_dict(m.sender),
            m.body,
            m.client_id,
            format_time(m.created_at),
            None if m.reply_to_seq is None else replies.get((m.room_id, m.reply_to_seq)),
        )
        base["change"] = m.change
        if m.deleted_at is not None:
            base = tombstone(base, "everyone")
            out.append(MessageState(base, {}, hidden.get((m.room_id, m.seq), set())))
            continue
        if m.edited_at is not None:
            base["edited_at"] = format_time(m.edited_at)
        if m.attachment_count:
            base["attachments"] = files.get(m.pk, [])
        base["reactions"] = [
            {"emoji": emoji, "count": count, "me": False}
            for emoji, count in counts.get(m.pk, {}).items()
        ]
        out.append(MessageState(base, mine.get(m.pk, {}), hidden.get((m.room_id, m.seq), set())))
    return out


def _hidden(rows: list[Message], viewer: int | None) -> Hidden:
    """{(room, seq): users who deleted it for themselves} of these messages."""
    if not rows:
        return {}
    where = Q()
    by_room: dict[int, list[int]] = {}
    for m in rows:
        by_room.setdefault(m.room_id, []).append(m.seq)
    for room, seqs in by_room.items():
        where |= Q(room_id=room, seq__in=seqs)
    found = DeletedForMe.objects.filter(where)
    if viewer is not None:
        found = found.filter(user_id=viewer)
    hidden: Hidden = {}
    for room, seq, user in found.values_list("room_id", "seq", "user_id"):
        hidden.setdefault((room, seq), set()).add(user)
    return hidden


def views(rows: list[Message], viewer: int, hidden: Hidden | None = None) -> list[MessageDict]:
    """These messages as `viewer` sees them."""
    return [state.viewed_by(viewer) for state in states(rows, viewer, hidden)]
