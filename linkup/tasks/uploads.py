"""The task worker's share of attachments: an image's thumbnail (decoded off the event loop,
in the worker), and the end of an upload nobody sent (UPLOAD_UNSENT_TTL_S after it came).

Both are enqueued by the upload's own transaction (`after_upload`), so a committed upload
always has them and a rolled-back one never does."""

from __future__ import annotations

import datetime as dt
import io
import logging

from django.db import transaction
from django.utils import timezone

try:  # Django 6 has the Tasks API built in; Django 5.2 takes the django-tasks backport.
    from django.tasks import task  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the Django version
    from django_tasks import task  # type: ignore[no-redef,unused-ignore]

from linkup.core import media
from linkup.core.conf import setting
from linkup.core.errors import InvalidInput
from linkup.core.log import log_event
from linkup.models import Upload
from linkup.store import files

THUMB_SUFFIX = ".thumb.jpg"


def after_upload(upload: Upload) -> None:
    """Enqueue what follows an upload (in its transaction): its thumbnail if it is an image,
    and its expiry should no message carry it."""
    if upload.kind == Upload.Kind.IMAGE:
        make_thumbnail.enqueue(str(upload.id))
    ttl = dt.timedelta(seconds=float(setting("UPLOAD_UNSENT_TTL_S")))
    expire_unsent.using(run_after=upload.created_at + ttl).enqueue(str(upload.id))


@task()
def make_thumbnail(upload_id: str) -> str | None:
    """Store a JPEG of the image no larger than THUMBNAIL_PX a side; return its name."""
    upload = Upload.objects.filter(pk=upload_id).first()
    if upload is None or upload.thumbnail:
        return None
    with files.open_file(upload.file) as original:
        data = original.read()
    try:
        thumb = media.thumbnail(
            data, int(setting("THUMBNAIL_PX")), int(setting("IMAGE_MAX_PIXELS"))
        )
    except InvalidInput as exc:  # checked on upload: only a changed setting gets here
        log_event(logging.WARNING, "storage", "no thumbnail", exc, upload=upload_id)
        return None
    name = files.name_for(upload.id, THUMB_SUFFIX)
    files.save(name, io.BytesIO(thumb))
    with transaction.atomic():
        kept = Upload.objects.filter(pk=upload.pk).update(thumbnail=name)
    if not kept:  # deleted meanwhile (its message deleted for everyone, say)
        files.delete([name])
        return None
    return name


@task()
def expire_unsent(upload_id: str) -> bool:
    """Delete an upload that no message carries UPLOAD_UNSENT_TTL_S after it came (its file
    too); True if it went."""
    ttl = dt.timedelta(seconds=float(setting("UPLOAD_UNSENT_TTL_S")))
    with transaction.atomic():
        upload = Upload.objects.select_for_update().filter(pk=upload_id).first()
        if upload is None or upload.message_id is not None:
            return False
        due = upload.created_at + ttl
        if due > timezone.now():  # early (another clock, a longer TTL since): again then
            expire_unsent.using(run_after=due).enqueue(upload_id)
            return False
        names = [name for name in (upload.file, upload.thumbnail) if name]
        upload.delete()
        transaction.on_commit(lambda: files.delete(names))
    return True
