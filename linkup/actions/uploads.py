"""Uploads and attachments: a file is uploaded first (checked, cleaned and stored here), then
named by a send (linkup.actions.messages attaches it to the message in the send's
transaction); only members of the message's room may fetch it afterwards.

What a file is comes from its content (linkup.core.media.sniff), never from its name or the
client's Content-Type. An image is decoded and encoded afresh, so what is stored carries no
EXIF (GPS included) and no passenger (an HTML page behind a PNG header is refused; a
polyglot loses what is not pixels); its thumbnail is made by the task worker. The file is
stored before its row is written, and deleted again if the row cannot be: a row never
names a file that is not there, and a file with no row is an orphan that
`manage.py linkup_attachments --orphans` reports and removes."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from linkup.core import media
from linkup.core.conf import setting
from linkup.core.errors import InvalidInput, NotFound, TooLarge
from linkup.models import Account, Membership, Upload
from linkup.store import files
from linkup.tasks import uploads as upload_tasks


def check_size(size: int | None) -> None:
    """Refuse by the size a client announces, before anything is read or stored."""
    limit = int(setting("UPLOAD_MAX_BYTES"))
    if size is not None and size > limit:
        raise TooLarge(f"a file may be at most {limit:,} bytes")


MAX_DURATION_S = 24 * 3600.0


def do_upload(
    user: Any,
    stream: IO[bytes],
    size: int,
    name: str | None,
    *,
    duration_hint: float | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Check, clean and store one file for `user`; return the contract's upload object.
    `duration_hint`: the length the client measured (a voice note it recorded), taken for
    audio or video whose headers do not say (WebM from a browser's recorder)."""
    if size <= 0:
        raise InvalidInput("the file is empty")
    check_size(size)
    _check_quota(user, size)
    stream.seek(0)
    sniffed = media.sniff(stream.read(media.SNIFF_BYTES))
    stream.seek(0)
    if sniffed is None or sniffed.content_type not in setting("UPLOAD_TYPES"):
        what = "this type of file" if sniffed is None else sniffed.content_type
        raise InvalidInput(f"{what} is not accepted")
    fields: dict[str, Any] = {}
    content: IO[bytes] = stream
    if sniffed.kind == "image":
        picture = media.picture(
            stream,
            sniffed.content_type,
            int(setting("IMAGE_MAX_PIXELS")),
            int(setting("ANIMATION_MAX_FRAMES")),
            int(setting("ANIMATION_MAX_PIXELS")),
        )
        content = io.BytesIO(picture.data)
        size = len(picture.data)
        fields = {"width": picture.width, "height": picture.height}
        fields["placeholder"] = picture.placeholder
    elif sniffed.kind in ("audio", "video"):
        fields["duration_s"] = media.duration_s(stream)
        stream.seek(0)
        if fields["duration_s"] is None and duration_hint is not None:
            fields["duration_s"] = round(min(max(0.0, duration_hint), MAX_DURATION_S), 3)
    upload_id = uuid.uuid4()
    stored = files.name_for(upload_id)
    files.save(stored, content)
    try:
        with transaction.atomic():
            upload = Upload.objects.create(
                id=upload_id,
                uploader=user,
                created_at=now or timezone.now(),
                name=media.clean_name(name),
                size=size,
                content_type=sniffed.content_type,
                kind=sniffed.kind,
                file=stored,
                **fields,
            )
            upload_tasks.after_upload(upload)
    except BaseException:
        files.delete([stored])
        raise
    return upload_object(upload)


def _check_quota(user: Any, size: int) -> None:
    quota = int(setting("UPLOAD_QUOTA_BYTES"))
    used = Upload.objects.filter(uploader=user).aggregate(total=Sum("size"))["total"] or 0
    if used + size > quota:
        raise TooLarge(f"your files would pass your storage quota of {quota:,} bytes")


def upload_object(upload: Upload) -> dict[str, Any]:
    """The contract's answer to an upload: what it is, before any message carries it."""
    return {
        "id": str(upload.id),
        "name": upload.name,
        "size": upload.size,
        "content_type": upload.content_type,
        "kind": upload.kind,
    }


# -- fetching ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetch:
    """What serving one attachment needs: its file in the storage and how to answer."""

    file: str
    name: str
    content_type: str
    size: int | None  # None for a thumbnail (its size is the storage's to tell)
    inline: bool
    lasting: bool = True  # False: what stands in for a thumbnail not made yet (not cached)


def attachment_for(user: Any, upload_id: str, thumbnail: bool = False) -> Fetch:
    """An attachment `user` may fetch: one carried by a message of a room they are a member
    of, or their own upload. Anything else, a missing one included, is the same NotFound."""
    try:
        key = uuid.UUID(str(upload_id))
    except ValueError:
        raise NotFound("file not found")
    upload = Upload.objects.select_related("message").filter(pk=key).first()
    if upload is None or not _may_see(user, upload):
        raise NotFound("file not found")
    if thumbnail:
        if upload.kind != Upload.Kind.IMAGE:
            raise NotFound("file not found")
        if upload.thumbnail:
            return Fetch(upload.thumbnail, _thumb_name(upload.name), "image/jpeg", None, True)
        # Not made yet (the worker is a moment behind the send): the image itself, for now.
        return Fetch(upload.file, upload.name, upload.content_type, upload.size, True, False)
    inline = media.served_inline(upload.content_type)
    return Fetch(upload.file, upload.name, upload.content_type, upload.size, inline)


def _may_see(user: Any, upload: Upload) -> bool:
    message = upload.message
    if message is None:
        return bool(upload.uploader_id == user.pk)
    if message.deleted_at is not None:
        return False
    return Membership.objects.filter(room_id=message.room_id, user=user).exists()


def _thumb_name(name: str) -> str:
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{stem} (thumbnail).jpg"


# -- lifecycle -----------------------------------------------------------------------------


def files_of(uploads: Iterable[Upload]) -> list[str]:
    """Every stored file of these uploads (originals and thumbnails)."""
    return [name for u in uploads for name in (u.file, u.thumbnail) if name]


def delete_files_on_commit(names: list[str]) -> None:
    """Delete these files once the transaction that dropped their rows commits (a rollback
    keeps them, with their rows)."""
    if names:
        transaction.on_commit(lambda: files.delete(names))


ORPHAN_GRACE = dt.timedelta(hours=1)


def orphans(*, delete: bool = False, now: dt.datetime | None = None) -> dict[str, list[str]]:
    """Stored files no upload row names (a crash between storing and recording, a failed
    delete), and rows whose file is missing. With `delete`, the orphan files go (rows are
    reported only: their messages still name them).

    The storage is listed before the rows are read, and a file younger than an hour is
    never an orphan: an upload stores its file a moment before its row commits (and a
    listing of a big bucket takes a while), so a file being uploaded is left alone."""
    stored = set(files.stored_names())
    known: set[str] = set()
    for file, thumb in Upload.objects.values_list("file", "thumbnail").iterator():
        known.update(name for name in (file, thumb) if name)
    # Profile pictures (linkup.actions.profiles) live under the same prefix.
    known.update(Account.objects.exclude(avatar="").values_list("avatar", flat=True))
    cutoff = (now or timezone.now()) - ORPHAN_GRACE
    lost = sorted(name for name in stored - known if files.modified_before(name, cutoff))
    if delete:
        files.delete(lost)
    missing = sorted(name for name in known - stored)
    return {"files_without_rows": lost, "rows_without_files": missing}


def expire_unsent(now: dt.datetime | None = None) -> int:
    """Delete every upload no message carries UPLOAD_UNSENT_TTL_S after it came (the task
    each upload enqueues does it one by one; this sweeps what a failed task left)."""
    ttl = dt.timedelta(seconds=float(setting("UPLOAD_UNSENT_TTL_S")))
    gone = 0
    stale = Upload.objects.filter(
        message__isnull=True, created_at__lte=(now or timezone.now()) - ttl
    )
    for upload_id in stale.values_list("pk", flat=True):
        gone += bool(upload_tasks.expire_unsent.call(str(upload_id)))
    return gone
