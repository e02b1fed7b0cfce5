"""Where attachments' files live: the storage of Django's `STORAGES` that the `STORAGE`
setting names (the local disk by default, S3-compatible object storage through
django-storages in a deployment of several processes). Linkup names every file itself
(`linkup/<2 hex>/<upload id>[.thumb]`), so a client's file name is never a path.

A storage that cannot be reached is `Unavailable` (503 with a retry), whatever its backend
raises (OSError from the disk, botocore's errors from S3)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import IO, Any
from urllib.parse import urlsplit

from django.core.files.base import File
from django.core.files.storage import Storage, storages

from linkup.core.conf import setting
from linkup.core.errors import Unavailable
from linkup.core.log import log_event

PREFIX = "linkup"
RETRY_AFTER_S = 5.0


def storage() -> Storage:
    return storages[setting("STORAGE")]


def name_for(upload_id: uuid.UUID, suffix: str = "") -> str:
    return f"{PREFIX}/{upload_id.hex[:2]}/{upload_id.hex}{suffix}"


def _unavailable(what: str, exc: BaseException) -> Unavailable:
    log_event(logging.ERROR, "storage", f"storage {what} failed", exc)
    return Unavailable(retry_after_s=RETRY_AFTER_S)


def save(name: str, content: IO[bytes]) -> None:
    """Store `content` under exactly `name` (Linkup's names are unique: a storage that
    would rename it is refused rather than trusted)."""
    try:
        saved = storage().save(name, File(content, name=name))
    except Exception as exc:  # the disk or S3: whatever it raises, it is not there
        delete([name])  # a disk that filled up mid-write leaves a part of it
        raise _unavailable("write", exc)
    if saved != name:
        delete([saved])
        raise Unavailable("storage renamed the file", retry_after_s=RETRY_AFTER_S)


def open_file(name: str) -> IO[bytes]:
    try:
        return storage().open(name, "rb")
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise _unavailable("read", exc)


def delete(names: Iterable[str]) -> int:
    """Delete these files; a failure is logged and left to `linkup_attachments --orphans`.
    Return how many went."""
    gone = 0
    for name in names:
        if not name:
            continue
        try:
            storage().delete(name)
            gone += 1
        except Exception as exc:
            log_event(logging.WARNING, "storage", "file not deleted", exc, name=name)
    return gone


def signed_url(name: str, *, filename: str, content_type: str, inline: bool) -> str | None:
    """A short-lived URL of the storage itself for this file, answering with these headers
    (S3 signs them into the URL), or None where the storage has none (the local disk)."""
    store: Any = storage()
    if not getattr(store, "querystring_auth", False):
        return None
    disposition = content_disposition(filename, inline)
    parameters = {"ResponseContentDisposition": disposition, "ResponseContentType": content_type}
    try:
        ttl = int(setting("ATTACHMENT_URL_TTL_S"))
        return str(store.url(name, parameters=parameters, expire=ttl))
    except Exception as exc:
        raise _unavailable("signing", exc)


def redirect_origin() -> str | None:
    """The origin (scheme://host[:port]) members are redirected to for files, when the
    storage signs URLs (S3); None when Linkup serves them itself. Signing is local: no
    request is made."""
    return _origin_of(storage())


@lru_cache(maxsize=8)
def _origin_of(store: Any) -> str | None:
    """Per storage object (Django builds a new one when STORAGES changes): every page asks
    for its policy, and the first signing builds the S3 client."""
    if not getattr(store, "querystring_auth", False):
        return None
    try:
        url = urlsplit(str(store.url(f"{PREFIX}/origin")))
    except Exception:  # a storage that cannot even sign: pages then allow only 'self'
        return None
    return f"{url.scheme}://{url.netloc}" if url.scheme and url.netloc else None


def content_disposition(filename: str, inline: bool) -> str:
    """`inline` or `attachment`, with the name in both forms (RFC 6266): an ASCII fallback
    and the UTF-8 original."""
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    return (
        f'{"inline" if inline else "attachment"}; filename="{ascii_name}"; '
        f"filename*=UTF-8''{quote(filename, safe='')}"
    )


def modified_before(name: str, cutoff: Any) -> bool:
    """Whether a stored file was last written before `cutoff` (True where the storage
    cannot say: then only the listing decides)."""
    try:
        return bool(storage().get_modified_time(name) < cutoff)
    except (NotImplementedError, FileNotFoundError):
        return True
    except Exception as exc:
        raise _unavailable("stat", exc)


def stored_names() -> Iterator[str]:
    """Every file under Linkup's prefix in the storage (for the orphans report)."""
    store = storage()
    try:
        folders, _ = store.listdir(PREFIX)
    except FileNotFoundError:
        return
    for folder in folders:
        _, files = store.listdir(f"{PREFIX}/{folder}")
        for name in files:
            yield f"{PREFIX}/{folder}/{name}"
