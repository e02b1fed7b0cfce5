"""A person's data as a zip (the task worker's: an account of years is no request's work).

`linkup-export.json` holds their profile, settings, rooms (with names and members), every
message of those rooms they can see (sent and received, with times, as the message objects
they get), their receipts (markers and their history), notifications and blocks; `files/`
holds the files they sent. Written to a temporary file a message at a time, then stored
through the storage (the local disk or S3) under `exports/`; deleted EXPORT_KEEP_S later.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import tempfile
import zipfile
from collections.abc import Iterator
from typing import IO, Any

from django.db import transaction
from django.utils import timezone

try:  # Django 6 has the Tasks API built in; Django 5.2 takes the django-tasks backport.
    from django.tasks import task  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the Django version
    from django_tasks import task  # type: ignore[no-redef,unused-ignore]

from linkup.core.conf import setting
from linkup.core.log import log_event
from linkup.core.serialization import format_time
from linkup.core.shapes import MessageDict
from linkup.models import (
    Account,
    Block,
    DataExport,
    MarkerMove,
    Membership,
    Message,
    Notification,
    Upload,
    UserPresence,
)
from linkup.store import files, views

PAGE = 500  # messages read at a time


def _time(value: dt.datetime | None) -> str | None:
    return format_time(value) if value else None


def _profile(user: Any) -> dict[str, Any]:
    account = Account.objects.filter(user=user).first()
    presence = UserPresence.objects.filter(user=user).first()
    return {
        "id": user.pk,
        "username": user.get_username(),
        "email": user.email,
        "date_joined": _time(getattr(user, "date_joined", None)),
        "last_login": _time(getattr(user, "last_login", None)),
        "display_name": account.display_name if account else "",
        "about": account.about if account else "",
        "theme": account.theme if account else "",
        "language": account.language if account else "",
        "group_adds": account.group_adds if account else "",
        "verified_email": account.verified_email if account else "",
        "hide_last_seen": bool(presence and presence.hide_last_seen),
        "last_seen": _time(presence.last_seen) if presence else None,
    }


def _rooms(user: Any) -> list[dict[str, Any]]:
    mine = Membership.objects.filter(user=user).select_related("room").order_by("room_id")
    found = []
    for membership in mine:
        room = membership.room
        members = Membership.objects.filter(room=room).select_related("user").order_by("pk")
        found.append(
            {
                "id": room.pk,
                "kind": room.kind,
                "name": room.name,
                "created_at": _time(room.created_at),
                "role": membership.role,
                "joined_at": _time(membership.joined_at),
                "muted": membership.muted,
                "delivered_seq": membership.delivered_seq,
                "read_seq": membership.read_seq,
                "members": [
                    {"id": m.user_id, "username": m.user.get_username(), "role": m.role}
                    for m in members
                ],
            }
        )
    return found


def _messages(user: Any, room_ids: list[int]) -> Iterator[MessageDict]:
    """The messages of their rooms as they see them, room by room, in seq order."""
    for room_id in room_ids:
        after = 0
        while True:
            rows = list(
                Message.objects.filter(room_id=room_id, seq__gt=after)
                .select_related("sender")
                .order_by("seq")[:PAGE]
            )
            if not rows:
                break
            yield from views.views(rows, user.pk)
            after = rows[-1].seq


def _write_json(out: IO[str], user: Any, room_list: list[dict[str, Any]]) -> None:
    """The JSON document, written piece by piece (the messages one at a time)."""
    head = {
        "format": "linkup-export/1",
        "exported_at": format_time(timezone.now()),
        "profile": _profile(user),
        "rooms": room_list,
    }
    out.write(json.dumps(head, ensure_ascii=False)[:-1])  # open: the rest follows
    out.write(', "messages": [')
    for i, message in enumerate(_messages(user, [r["id"] for r in room_list])):
        out.write(("," if i else "") + json.dumps(message, ensure_ascii=False))
    out.write("]")
    receipts = [
        {"room": m.room_id, "kind": m.kind, "seq": m.seq, "at": _time(m.at)}
        for m in MarkerMove.objects.filter(user=user).order_by("pk")
    ]
    notifications = [
        {
            "id": n.pk,
            "kind": n.kind,
            "title": n.title,
            "body": n.body,
            "room": n.room_id,
            "seq": n.seq,
            "created_at": _time(n.created_at),
            "read_at": _time(n.read_at),
        }
        for n in Notification.objects.filter(recipient=user).order_by("pk")
    ]
    blocked = [
        {"user": b.blocked_id, "created_at": _time(b.created_at)}
        for b in Block.objects.filter(blocker=user).order_by("pk")
    ]
    sent_files = [
        {
            "id": str(u.pk),
            "name": u.name,
            "size": u.size,
            "content_type": u.content_type,
            "room": u.message.room_id if u.message else None,
            "seq": u.message.seq if u.message else None,
            "path": f"files/{u.pk}/{u.name}",
        }
        for u in Upload.objects.filter(uploader=user)
        .select_related("message")
        .order_by("created_at")
    ]
    for name, value in (
        ("receipts", receipts),
        ("notifications", notifications),
        ("blocks", blocked),
        ("uploads", sent_files),
    ):
        out.write(f', "{name}": ' + json.dumps(value, ensure_ascii=False))
    out.write("}")


def build_archive(user: Any, target: IO[bytes]) -> None:
    """Write the zip of `user`'s data to `target` (a seekable binary file)."""
    room_list = _rooms(user)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with (
            archive.open("linkup-export.json", "w", force_zip64=True) as raw,
            io.TextIOWrapper(raw, encoding="utf-8") as text,
        ):
            _write_json(text, user, room_list)
        for upload in Upload.objects.filter(uploader=user).order_by("created_at"):
            try:
                with (
                    files.open_file(upload.file) as source,
                    archive.open(f"files/{upload.pk}/{upload.name}", "w", force_zip64=True) as sink,
                ):
                    while chunk := source.read(1024 * 1024):
                        sink.write(chunk)
            except Exception as exc:  # a file lost from the storage: the rest still goes
                log_event(
                    logging.WARNING, "storage", "export left out a file", exc, upload=str(upload.pk)
                )


@task()
def build_export(export_id: str) -> str:
    """Build one export; return its state."""
    export = DataExport.objects.select_related("user").filter(pk=export_id).first()
    if export is None or export.state != DataExport.State.PENDING:
        return "gone"
    name = f"exports/{export.pk}.zip"
    try:
        with tempfile.TemporaryFile() as spool:
            build_archive(export.user, spool)
            size = spool.tell()
            spool.seek(0)
            files.save(name, spool)
    except Exception as exc:
        log_event(logging.ERROR, "storage", "export failed", exc, export=export_id)
        DataExport.objects.filter(pk=export.pk).update(
            state=DataExport.State.FAILED, finished_at=timezone.now(), error=str(exc)[:500]
        )
        return DataExport.State.FAILED
    with transaction.atomic():
        kept = DataExport.objects.filter(pk=export.pk).update(
            state=DataExport.State.READY, finished_at=timezone.now(), file=name, size=size
        )
    if not kept:  # the account went meanwhile
        files.delete([name])
        return "gone"
    keep = dt.timedelta(seconds=float(setting("EXPORT_KEEP_S")))
    expire_export.using(run_after=timezone.now() + keep).enqueue(str(export.pk))
    return DataExport.State.READY


@task()
def expire_export(export_id: str) -> bool:
    """Delete an export's file and row once its time is up."""
    export = DataExport.objects.filter(pk=export_id).first()
    if export is None:
        return False
    if export.file:
        files.delete([export.file])
    export.delete()
    return True
