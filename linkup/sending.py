"""Group commit for sends: every send of a process that is waiting goes in one transaction.

Sends queue on the event loop. While one batch is on the database thread, new sends wait;
when it is done, the next batch takes all of them (up to SEND_BATCH_MAX). A lone send runs
at once, so there is no added latency at low load; under load, one thread hop, one
transaction and one commit serve many sends instead of one each.

Each send in a batch is `actions.do_send_message` inside the batch's transaction, so in a
savepoint of its own: one refused send (not a member, say) rolls back alone, and its events
are dropped with it. Rooms are locked in ascending id order (the batch is sorted by room, a
stable sort, so sends to one room keep their order), so two processes' batches cannot
deadlock. The batch commits once; only then is any send acknowledged.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.db.models import Min
from django.utils import timezone

from linkup import actions, notifications, queries, receipts
from linkup.conf import setting
from linkup.edges import perform, record_failure
from linkup.errors import LinkupError, NotFound, ServerError
from linkup.events import Event, collecting_events, publish, room_group, send_event_on_commit
from linkup.log import log_event
from linkup.looplocal import LoopLocal
from linkup.models import MarkerMove, Membership, Message, Room
from linkup.serialization import SerializationError


@dataclass(frozen=True)
class Send:
    sender: Any
    room_id: int
    client_id: str
    body: str


Outcome = tuple[tuple[dict[str, Any], bool] | None, LinkupError | None, list[Event]]


def do_send_batch(sends: list[Send], focused: dict[int, set[int]] | None = None) -> list[Outcome]:
    """Commit every send that can be committed, in one transaction; one outcome per send.

    An outcome is ((message, created), None, events) or (None, error, []). Events are the
    ones each send queued; they fill in when the batch commits.

    The batch is written set-wise (`_commit_together`: a fixed number of queries per batch,
    not per send). Should that fail on a constraint or a payload, its savepoint rolls back
    and the sends go again one by one, each in a savepoint of its own, so the one at fault
    fails alone.

    The new messages' notifications are written in the same transaction (`focused`: who
    is looking at each room, and so needs none)."""
    with transaction.atomic():
        # The set-wise write needs the new messages' ids back from its multi-row INSERT
        # (PostgreSQL; SQLite from 3.35).
        if connections[router.db_for_write(Message)].features.can_return_rows_from_bulk_insert:
            try:
                with transaction.atomic():
                    outcomes = _commit_together(sends)
                _notify(outcomes, focused)
                return outcomes
            except (IntegrityError, SerializationError) as exc:
                # Visible, so that a systematic failure does not hide behind the slow path.
                log_event(logging.WARNING, "database", "batch written one send at a time", exc)
        outcomes = _commit_one_by_one(sends)
        _notify(outcomes, focused)
        return outcomes


def _notify(outcomes: list[Outcome], focused: dict[int, set[int]] | None) -> None:
    """Notifications for the batch's new messages, in a savepoint: should writing them fail,
    that is logged and recorded, and the messages still commit."""
    created = sorted(
        (result[0] for result, _, _ in outcomes if result is not None and result[1]),
        key=lambda m: (m["room"], m["seq"]),
    )
    if not created:
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


def _commit_one_by_one(sends: list[Send]) -> list[Outcome]:
    outcomes: list[Outcome] = [(None, ServerError(), []) for _ in sends]
    for i in _in_room_order(sends):
        send = sends[i]
        try:
            with collecting_events() as events:
                result = actions.do_send_message(
                    send.sender, send.room_id, send.client_id, send.body
                )
            outcomes[i] = (result, None, events)
        except LinkupError as exc:
            outcomes[i] = (None, exc, [])
        except (IntegrityError, SerializationError) as exc:
            # Its savepoint rolled back; the others stand. Recorded for the operator.
            args = (send.sender, send.room_id, send.client_id, send.body)
            record_failure(actions.do_send_message, args, {}, exc)
            outcomes[i] = (None, ServerError(), [])
    return outcomes


def _commit_together(sends: list[Send]) -> list[Outcome]:
    """The batch in a fixed number of queries: lock its rooms (in id order), read the
    senders' memberships and the earlier sends of these client_ids, insert every new
    message at once, then move the rooms' last_seq and the senders' markers.

    The same result as `actions.do_send_message` one send at a time, in the batch's order
    within each room, except that a room's watermark moves (and is announced) once per
    batch rather than once per send."""
    outcomes: list[Outcome] = [(None, ServerError(), []) for _ in sends]
    room_ids = sorted({s.room_id for s in sends})
    sender_ids = {s.sender.pk for s in sends}
    rooms = {
        r.pk: r for r in Room.objects.select_for_update().filter(pk__in=room_ids).order_by("pk")
    }
    memberships = {
        (m.room_id, m.user_id): m
        for m in Membership.objects.filter(room_id__in=room_ids, user_id__in=sender_ids)
    }
    earlier = {
        (m.room_id, m.sender_id, m.client_id): m
        for m in Message.objects.select_related("sender").filter(
            room_id__in=room_ids,
            sender_id__in=sender_ids,
            client_id__in={s.client_id for s in sends},
        )
    }
    now = timezone.now()
    fresh: list[tuple[int, Message]] = []
    repeats: list[tuple[int, Message]] = []  # a client_id sent twice within the batch
    in_batch: dict[tuple[int, int, str], Message] = {}
    for i in _in_room_order(sends):
        send = sends[i]
        room = rooms.get(send.room_id)
        if room is None or (send.room_id, send.sender.pk) not in memberships:
            outcomes[i] = (None, NotFound("room not found"), [])
            continue
        key = (send.room_id, send.sender.pk, send.client_id)
        if key in earlier:
            outcomes[i] = ((queries.message_dict(earlier[key]), False), None, [])
            continue
        if key in in_batch:
            repeats.append((i, in_batch[key]))
            continue
        room.last_seq += 1
        message = Message(
            room_id=room.pk,
            seq=room.last_seq,
            sender=send.sender,
            body=send.body,
            client_id=send.client_id,
            created_at=now,
        )
        in_batch[key] = message
        fresh.append((i, message))
    if not fresh:
        for i, message in repeats:
            outcomes[i] = ((queries.message_dict(message), False), None, [])
        return outcomes
    Message.objects.bulk_create([message for _, message in fresh])
    # Sending moves the sender's own markers to their newest message (read implies delivered).
    newest: dict[tuple[int, int], int] = {}
    for _, message in fresh:
        newest[(message.room_id, message.sender_id)] = message.seq
    held_minimum: set[int] = set()
    moves: list[MarkerMove] = []
    marker_updates: dict[int, dict[str, Any]] = {}
    for (room_id, user_id), seq in newest.items():
        membership = memberships[(room_id, user_id)]
        if receipts.may_hold_minimum(membership, rooms[room_id]):
            held_minimum.add(room_id)
        marker_updates[membership.pk] = {"delivered_seq": seq, "read_seq": seq}
        moves += [
            MarkerMove(room_id=room_id, user_id=user_id, kind=kind.value, seq=seq, at=now)
            for kind in (MarkerMove.Kind.DELIVERED, MarkerMove.Kind.READ)
        ]
    _update_each(Membership, marker_updates)
    MarkerMove.objects.bulk_create(moves)
    # The rooms whose lowest markers a sender may have held: their new minima, in one query.
    risen: set[int] = set()
    for room_id, lowest_delivered, lowest_read in (
        Membership.objects.filter(room_id__in=held_minimum)
        .values("room_id")
        .annotate(d=Min("delivered_seq"), r=Min("read_seq"))
        .values_list("room_id", "d", "r")
    ):
        room = rooms[room_id]
        delivered = max(room.delivered_watermark, lowest_delivered)
        read = max(room.read_watermark, lowest_read)
        if (delivered, read) != (room.delivered_watermark, room.read_watermark):
            room.delivered_watermark, room.read_watermark = delivered, read
            risen.add(room_id)
    touched = sorted({message.room_id for _, message in fresh})
    _update_each(
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
    last_of_room = {message.room_id: i for i, message in fresh}
    for i, message in fresh:
        with collecting_events() as events:
            data = queries.message_dict(message)
            group = room_group(message.room_id)
            send_event_on_commit(group, {"type": "chat.message", "message": data})
            if last_of_room[message.room_id] == i and message.room_id in risen:
                send_event_on_commit(group, receipts.watermark_event(rooms[message.room_id]))
        outcomes[i] = ((data, True), None, events)
    for i, message in repeats:
        outcomes[i] = ((queries.message_dict(message), False), None, [])
    return outcomes


def _update_each(model: Any, values: dict[int, dict[str, Any]]) -> None:
    """UPDATE rows of `model` by primary key, each to its own values, in one statement:
    `UPDATE t SET c = v.column2 ... FROM (VALUES (pk, ...), ...) AS v WHERE t.pk = v.column1`
    (PostgreSQL, and SQLite from 3.33). The ORM's Case/When equivalent cost a tenth of
    the server's time under load, building expressions."""
    if not values:
        return
    connection = connections[router.db_for_write(model)]
    if len(values) == 1 or not _updates_from_values(connection):
        for pk, fields in values.items():
            model.objects.filter(pk=pk).update(**fields)
        return
    meta = model._meta
    names = list(next(iter(values.values())))
    columns = [meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    table, key_column = quote(meta.db_table), quote(meta.pk.column)
    row = "(" + ", ".join(["%s"] * (len(names) + 1)) + ")"
    params: list[Any] = []
    for key, fields in values.items():
        params.append(key)
        params += [
            column.get_db_prep_value(fields[name], connection)
            for name, column in zip(names, columns, strict=True)
        ]
    assignments = ", ".join(
        f"{quote(column.column)} = v.column{i + 2}" for i, column in enumerate(columns)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} "
            f"FROM (VALUES {', '.join([row] * len(values))}) AS v "
            f"WHERE {table}.{key_column} = v.column1",
            params,
        )


def _updates_from_values(connection: Any) -> bool:
    """Whether the database takes UPDATE ... FROM: PostgreSQL, SQLite from 3.33 (Django 5.2
    supports SQLite from 3.31)."""
    if connection.vendor == "postgresql":
        return True
    if connection.vendor == "sqlite":
        import sqlite3

        return sqlite3.sqlite_version_info >= (3, 33)
    return False


class SendQueue:
    """The sends of one event loop waiting for the database thread."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Send, asyncio.Future[tuple[Any, list[Event]]]]] = []
        self.running = False
        self.task: asyncio.Task[None] | None = None
        self.batch_sizes: list[int] = []  # the last batches, for tests and the curious
        self.publishing: set[asyncio.Task[None]] = set()

    async def submit(self, send: Send) -> tuple[tuple[dict[str, Any], bool], list[Event]]:
        """Commit one send (with whatever else is waiting); return its result and events."""
        future: asyncio.Future[tuple[Any, list[Event]]] = asyncio.get_running_loop().create_future()
        self.waiting.append((send, future))
        if not self.running:
            self.running = True
            # Held here: the loop keeps only a weak reference to a task.
            self.task = asyncio.get_running_loop().create_task(self.drain())
        return await future

    async def drain(self) -> None:
        try:
            while self.waiting:
                limit = int(setting("SEND_BATCH_MAX"))
                batch, self.waiting = self.waiting[:limit], self.waiting[limit:]
                self.batch_sizes = [*self.batch_sizes[-99:], len(batch)]
                focused = await _focused(sorted({send.room_id for send, _ in batch}))
                try:
                    outcomes, extra = await perform(
                        do_send_batch, [send for send, _ in batch], focused
                    )
                except LinkupError as exc:  # the whole batch: storage down, or a bug
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(copy.copy(exc))
                    continue
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(ServerError())
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), (result, error, events) in zip(batch, outcomes, strict=True):
                    if future.done():  # its socket went meanwhile: committed all the same
                        continue
                    if error is not None:
                        future.set_exception(error)
                    else:
                        future.set_result((result, events))
                if extra:  # notification doorbells: after the acks, not before them
                    self.publishing.add(
                        task := asyncio.get_running_loop().create_task(publish(extra))
                    )
                    task.add_done_callback(self.publishing.discard)
        finally:
            self.running = False
            loop = asyncio.get_running_loop()
            if self.waiting and not loop.is_closed():  # arrived as this one stopped
                self.running = True
                self.task = loop.create_task(self.drain())


FOCUS_WAIT_S = 0.25


async def _focused(room_ids: list[int]) -> dict[int, set[int]]:
    """Who is looking at these rooms; on a presence-store failure nobody (they get a
    notification they may not need, rather than miss one)."""
    from linkup.liveness import liveness

    try:
        # Bounded: a hung Redis must not hold up the process's sends.
        async with asyncio.timeout(FOCUS_WAIT_S):
            return await liveness().focused(room_ids)
    except Exception as exc:
        log_event(logging.WARNING, "connection", "focus look-up failed", exc)
        return {}


# The SendQueue of the running event loop (one per server process): send_queue().
send_queue = LoopLocal(SendQueue)


async def submit_send(
    sender: Any, room_id: int, client_id: str, body: str
) -> tuple[tuple[dict[str, Any], bool], list[Event]]:
    """Commit a send through the group commit; ((message, created), events) or a LinkupError."""
    return await send_queue().submit(Send(sender, room_id, client_id, body))
