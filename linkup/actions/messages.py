"""Messages: the send rule, applied to a batch of sends in one transaction, and purges.

Sends queue on the event loop (linkup.realtime.sending); each batch comes here. Every send in
a batch is checked and written by one rule (`do_send_batch`; a lone send is a batch of one):
its sender must be a member of the room, a repeated (sender, client_id) returns the original
message and notifies nobody, a new message takes the room's next seq and moves the sender's
own markers to it. Rooms are locked in ascending id order (the batch is sorted by room, a
stable sort, so sends to one room keep their order), so two processes' batches cannot
deadlock. The batch commits once; only then is any send acknowledged, and only then do its
doorbells ring.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any, cast

from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.db.models import Max
from django.utils import timezone

from linkup.actions import blocks, notifications, receipts, rooms, uploads
from linkup.actions.events import Event, collecting_events, room_group, send_event_on_commit
from linkup.core.errors import Forbidden, InvalidInput, LinkupError, NotFound, ServerError
from linkup.core.log import log_event
from linkup.core.serialization import SerializationError, format_time
from linkup.core.shapes import MessageDict
from linkup.models import (
    DeletedForMe,
    MarkerMove,
    Membership,
    Message,
    MessageChange,
    Room,
    Upload,
)
from linkup.store import queries, searchindex, sendsql, views
from linkup.store.records import record_failure


@dataclass(frozen=True)
class Send:
    sender: Any
    room_id: int
    client_id: str
    body: str
    reply_to: int | None = None  # the seq of the message it replies to, in the same room
    attachments: tuple[str, ...] = ()  # upload ids of the sender's, not sent yet


# ((message, created), None, events) for a committed or repeated send; (None, error, []).
# A send's own events are its part of the batch's (which the queue publishes); they let the
# batch be compared send by send with smaller batches (tests/test_sending.py).
Outcome = tuple[tuple[MessageDict, bool] | None, LinkupError | None, list[Event]]


def do_send_message(
    sender: Any,
    room_id: int,
    client_id: str,
    body: str,
    *,
    reply_to: int | None = None,
    attachments: tuple[str, ...] = (),
    now: dt.datetime | None = None,
) -> tuple[MessageDict, bool]:
    """Commit one message; return (message, created): a batch of one (`do_send_batch`)."""
    send = Send(sender, room_id, client_id, body, reply_to, attachments)
    ((result, error, _events),) = do_send_batch([send], now=now)
    if error is not None:
        raise error
    assert result is not None
    return result


def do_send_batch(
    sends: list[Send],
    focused: dict[int, set[int]] | None = None,
    *,
    now: dt.datetime | None = None,
    index_later: bool = False,
) -> list[Outcome]:
    """Commit every send that can be committed, in one transaction; one outcome per send.

    This is the one implementation of the send rule (membership, idempotency by
    (sender, client_id), the room's next seq, the sender's markers, the watermarks); a lone
    send is a batch of one. An outcome is ((message, created), None, events) or
    (None, error, []). Events are the ones each send queued; they fill in when the batch
    commits.

    The batch is written set-wise (`_commit_together`: a fixed number of queries per batch,
    not per send). Should that fail on a constraint or a payload, its savepoint rolls back
    and the sends go again one by one, each a batch of one in a savepoint of its own, so the
    one at fault fails alone.

    The new messages' notifications are written in the same transaction (`focused`: who
    is looking at each room, and so needs none). `now` (tests inject it) defaults to the
    time the batch holds its rooms' locks, so a later seq never has an earlier time.

    SQLite's search index takes the new messages every FLUSH_EVERY of them: here, or, with
    `index_later`, when the caller runs `searchindex.flush_due` (the send queue does, once
    the batch's doorbells are rung: an index merge can take tens of milliseconds)."""
    direct: set[int] = set()  # the batch's direct rooms
    with transaction.atomic():
        try:
            with transaction.atomic():
                outcomes = _commit_together(sends, now, direct)
        except (IntegrityError, SerializationError) as exc:
            if len(sends) == 1:
                _record(sends[0], exc)
                return [(None, ServerError(), [])]
            # Visible, so that a systematic failure does not hide behind the slow path.
            log_event(logging.WARNING, "database", "batch written one send at a time", exc)
            outcomes = _commit_one_by_one(sends, now, direct)
        _notify(outcomes, focused, direct)
    created = sum(1 for result, _, _ in outcomes if result is not None and result[1])
    searchindex.sent(connections[router.db_for_write(Message)], created, at_once=not index_later)
    return outcomes


def index_due() -> int:
    """Index the messages sent with `index_later` if enough wait; return how many."""
    return searchindex.flush_due(connections[router.db_for_write(Message)])


def _record(send: Send, exc: BaseException) -> None:
    """Record a send that failed on a constraint or its payload (a bug), for the operator."""
    args = (send.sender, send.room_id, send.client_id, send.body)
    kwargs = {"reply_to": send.reply_to, "attachments": send.attachments}
    record_failure(do_send_message, args, kwargs, exc)


def _notify(outcomes: list[Outcome], focused: dict[int, set[int]] | None, direct: set[int]) -> None:
    """Notifications for the batch's new messages, in a savepoint: should writing them fail,
    that is logged and recorded, and the messages still commit. Only a direct message or an
    @mention notifies: a batch with neither skips all of it."""
    created = sorted(
        (result[0] for result, _, _ in outcomes if result is not None and result[1]),
        key=lambda m: (m["room"], m["seq"]),
    )
    if not any(m["room"] in direct or "@" in m["body"] for m in created):
        return
    try:
        with transaction.atomic():
            notifications.for_new_messages(created, focused)
    except (DatabaseError, SerializationError) as exc:
        # Its savepoint rolled back; the messages stand (should the database be gone, the
        # batch's commit fails on its own and the sends are answered `unavailable`).
        record_failure(notifications.for_new_messages, (), {}, exc)


def _in_room_order(sends: list[Send]) -> list[int]:
    """Indexes of `sends` by ascending room id (rooms are locked in that order, so batches of
    two processes cannot deadlock); stable, so each room's sends keep their arrival order."""
    return sorted(range(len(sends)), key=lambda i: sends[i].room_id)


def _commit_one_by_one(
    sends: list[Send], now: dt.datetime | None, direct: set[int]
) -> list[Outcome]:
    """Each send a batch of one, in a savepoint of its own (rooms still in id order)."""
    outcomes: list[Outcome] = [(None, ServerError(), []) for _ in sends]
    for i in _in_room_order(sends):
        send = sends[i]
        try:
            with transaction.atomic():
                (outcomes[i],) = _commit_together([send], now, direct)
        except (IntegrityError, SerializationError) as exc:
            _record(send, exc)  # its savepoint rolled back; the others stand
    return outcomes


def _commit_together(
    sends: list[Send], now: dt.datetime | None, direct: set[int] | None = None
) -> list[Outcome]:
    """The batch in a fixed number of statements (linkup.store.sendsql: SQL built once per
    shape, plain rows): lock its rooms (in id order), read the senders' memberships and the
    earlier sends of these client_ids, insert every new message at once, then move the
    rooms' last_seq and the senders' markers. The ids of the batch's direct rooms are
    added to `direct`.

    The same result as the same sends in batches of one, in the batch's order within each
    room, except that a room's watermark moves (and is announced) once per batch rather
    than once per send (tests/test_sending.py holds batches of every split to that)."""
    outcomes: list[Outcome] = [(None, ServerError(), []) for _ in sends]
    room_ids = sorted({s.room_id for s in sends})
    sender_ids = sorted({s.sender.pk for s in sends})
    rooms = sendsql.lock_rooms(room_ids)
    now = now or timezone.now()  # under the rooms' locks: seq order is time order
    if direct is not None:
        direct.update(r for r, room in rooms.items() if room.kind == Room.Kind.DIRECT)
    memberships = sendsql.memberships(room_ids, sender_ids)
    # Direct rooms with a block between their two people: a query only for a batch with
    # sends in direct rooms.
    refused = blocks.refusals(
        (s.room_id, s.sender.pk, rooms[s.room_id].direct_key)
        for s in sends
        if s.room_id in rooms and rooms[s.room_id].kind == Room.Kind.DIRECT
    )
    earlier: dict[tuple[int, int, str], MessageDict] = {}
    found = sendsql.earlier_ids(room_ids, sender_ids, sorted({s.client_id for s in sends}))
    if found:  # repeats of earlier sends: rare, so the ORM builds them
        for m in Message.objects.select_related("sender").filter(pk__in=found):
            sender_id = cast(int, m.sender_id)  # one of the batch's senders: a live account
            earlier[(m.room_id, sender_id, m.client_id)] = queries.message_dict(m, sender_id)
    # The originals the batch's replies quote: one query, only for a batch with replies.
    quoted = views.originals((s.room_id, s.reply_to) for s in sends if s.reply_to is not None)
    # The uploads the batch attaches, locked: one query, only for a batch with files.
    uploads = _uploads([i for s in sends for i in s.attachments])
    attached: dict[int, list[Upload]] = {}  # index of a fresh send -> its uploads
    at = format_time(now)
    fresh: list[tuple[int, MessageDict]] = []
    repeats: list[tuple[int, MessageDict]] = []  # a client_id sent twice within the batch
    in_batch: dict[tuple[int, int, str], MessageDict] = {}
    for i in _in_room_order(sends):
        send = sends[i]
        room = rooms.get(send.room_id)
        if room is None or (send.room_id, send.sender.pk) not in memberships:
            outcomes[i] = (None, NotFound("room not found"), [])
            continue
        key = (send.room_id, send.sender.pk, send.client_id)
        if key in earlier:
            outcomes[i] = ((earlier[key], False), None, [])
            continue
        if key in in_batch:
            repeats.append((i, in_batch[key]))
            continue
        if (send.room_id, send.sender.pk) in refused:
            outcomes[i] = (None, Forbidden(refused[(send.room_id, send.sender.pk)]), [])
            continue
        reply = None
        if send.reply_to is not None:
            reply = quoted.get((send.room_id, send.reply_to))
            if reply is None:
                outcomes[i] = (None, InvalidInput("reply_to is not a message of this room"), [])
                continue
        files = [uploads.get(upload_id) for upload_id in send.attachments]
        if any(u is None or u.uploader_id != send.sender.pk for u in files):
            outcomes[i] = (None, InvalidInput("attachments name an upload that is not yours"), [])
            continue
        for upload in files:
            assert upload is not None
            uploads.pop(str(upload.pk))  # one message each, even within a batch
        if files:
            attached[i] = [u for u in files if u is not None]
        room.last_seq += 1
        message = views.new_message(
            0,  # set once inserted
            room.pk,
            room.last_seq,
            views.sender_dict(send.sender),
            send.body,
            send.client_id,
            at,
            reply,
        )
        if i in attached:
            message["attachments"] = [views.attachment_dict(u) for u in attached[i]]
        in_batch[key] = message
        fresh.append((i, message))
    if fresh:
        rows = [
            (
                m["room"],
                m["seq"],
                sends[i].sender.pk,
                m["body"],
                m["client_id"],
                None if m["reply_to"] is None else m["reply_to"]["seq"],
                len(m["attachments"]),
            )
            for i, m in fresh
        ]
        for (_, message), pk in zip(fresh, sendsql.insert_messages(rows, now), strict=True):
            message["id"] = pk
        if attached:
            _attach(fresh, attached)
    risen = _move_markers(fresh, rooms, memberships, now) if fresh else set()
    last_of_room = {message["room"]: i for i, message in fresh}
    for i, message in fresh:
        with collecting_events() as events:
            group = room_group(message["room"])
            send_event_on_commit(group, {"type": "chat.message", "message": message})
            if last_of_room[message["room"]] == i and message["room"] in risen:
                send_event_on_commit(group, receipts.watermark_event(rooms[message["room"]]))
        outcomes[i] = ((message, True), None, events)
    for i, message in repeats:
        outcomes[i] = ((message, False), None, [])
    return outcomes


def _uploads(ids: list[str]) -> dict[str, Upload]:
    """{id: upload} of these upload ids that no message carries yet, locked until the batch
    commits (two sends naming one upload: the second waits, then finds it taken)."""
    keys = []
    for upload_id in ids:
        try:
            keys.append(uuid.UUID(upload_id))
        except ValueError:
            continue  # not an upload id: the send that names it is refused
    if not keys:
        return {}
    found = Upload.objects.select_for_update().filter(pk__in=keys, message__isnull=True)
    return {str(u.pk): u for u in found.order_by("pk")}


def _attach(fresh: list[tuple[int, MessageDict]], attached: dict[int, list[Upload]]) -> None:
    """The new messages carry their uploads: each upload points at its message, in order."""
    changed = []
    for i, message in fresh:
        for position, upload in enumerate(attached.get(i, ())):
            upload.message_id = message["id"]
            upload.position = position
            changed.append(upload)
    Upload.objects.bulk_update(changed, ["message", "position"])


def _move_markers(
    fresh: list[tuple[int, MessageDict]],
    rooms: dict[int, sendsql.RoomRow],
    memberships: dict[tuple[int, int], sendsql.MemberRow],
    now: dt.datetime,
) -> set[int]:
    """Sending moves the sender's own markers to their newest message (read implies
    delivered); the rooms take their new last_seq, and their watermarks where a sender held
    the lowest marker. Return the rooms whose watermarks rose."""
    newest: dict[tuple[int, int], int] = {}
    for _, message in fresh:
        # A fresh message's sender is the live account that sent it.
        newest[(message["room"], cast(int, message["sender"]["id"]))] = message["seq"]
    held_minimum: list[int] = []
    moves: list[tuple[int, int, str, int]] = []
    marker_updates: dict[int, dict[str, Any]] = {}
    for (room_id, user_id), seq in newest.items():
        membership = memberships[(room_id, user_id)]
        if receipts.may_hold_minimum(membership, rooms[room_id]):
            held_minimum.append(room_id)
        marker_updates[membership.pk] = {"delivered_seq": seq, "read_seq": seq}
        moves += [(room_id, user_id, kind.value, seq) for kind in MOVE_KINDS]
    sendsql.update_each(Membership, marker_updates)
    sendsql.insert_marker_moves(moves, now)
    # The rooms whose lowest markers a sender may have held: their new minima, in one query.
    risen: set[int] = set()
    for room_id, lowest_delivered, lowest_read in sendsql.lowest_markers(sorted(set(held_minimum))):
        room = rooms[room_id]
        delivered = max(room.delivered_watermark, lowest_delivered)
        read = max(room.read_watermark, lowest_read)
        if (delivered, read) != (room.delivered_watermark, room.read_watermark):
            room.delivered_watermark, room.read_watermark = delivered, read
            risen.add(room_id)
    touched = sorted({message["room"] for _, message in fresh})
    sendsql.update_each(
        Room,
        {
            r: {
                "last_seq": rooms[r].last_seq,
                "last_activity_at": now,
                "delivered_watermark": rooms[r].delivered_watermark,
                "read_watermark": rooms[r].read_watermark,
            }
            for r in touched
        },
    )
    return risen


MOVE_KINDS = (MarkerMove.Kind.DELIVERED, MarkerMove.Kind.READ)


def do_purge_history(cutoff: dt.datetime) -> dict[str, int]:
    """Delete messages created before `cutoff`, and marker moves logged before it.

    Per room, everything up to the highest seq sent before the cutoff goes (so what stays is
    a contiguous run of seqs), and `first_seq` moves past it: clients read a purge, not a
    loss; each member's sockets get `room.updated` with the new `first_seq`, so clients
    drop what they hold below it. Return counts of rooms and messages purged."""
    counts = {"rooms": 0, "messages": 0}
    ends = (
        Message.objects.filter(created_at__lt=cutoff)
        .values("room_id")
        .annotate(end=Max("seq"))
        .values_list("room_id", "end")
    )
    for room_id, end in list(ends):
        with transaction.atomic():
            room = Room.objects.select_for_update().get(pk=room_id)
            # Their files go once the rows have (uploads cascade with their messages).
            carried = Upload.objects.filter(message__room_id=room_id, message__seq__lte=end)
            uploads.delete_files_on_commit(uploads.files_of(carried))
            deleted = (
                Message.objects.filter(room_id=room_id, seq__lte=end)
                .delete()[1]
                .get(Message._meta.label, 0)
            )
            # Their changes and deletions for oneself go with them (edits and reactions
            # cascade): a change log replay passes over what is no longer stored.
            MessageChange.objects.filter(room_id=room_id, seq__lte=end).delete()
            DeletedForMe.objects.filter(room_id=room_id, seq__lte=end).delete()
            if end + 1 > room.first_seq:
                Room.objects.filter(pk=room_id).update(first_seq=end + 1)
                # Members' clients drop what they hold below first_seq: purged, not stale.
                members = Membership.objects.filter(room_id=room_id).values_list(
                    "user_id", flat=True
                )
                rooms.notify_room_updated(room_id, list(members))
        counts["rooms"] += 1
        counts["messages"] += deleted
    MarkerMove.objects.filter(at__lt=cutoff).delete()
    return counts
