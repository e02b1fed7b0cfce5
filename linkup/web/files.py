"""Files over HTTP: taking an upload's multipart body, and answering for an attachment.

An answer is one of three, by what the storage offers: a redirect to a short-lived signed
URL of the storage itself (S3), a hand-over to nginx (`X-Accel-Redirect`, when
ATTACHMENT_X_ACCEL_PREFIX is set), or the file streamed by Linkup with single-range
support. Every answer says `nosniff`, forbids the file to run anything (a sandboxing CSP),
and is `Content-Disposition: attachment` unless the type is a raster image, audio or video."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import IO, Any, TypeVar

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase

from linkup.actions import profiles, uploads
from linkup.core import media
from linkup.core.conf import setting
from linkup.core.errors import InvalidInput, LengthRequired, NotFound, RangeNotSatisfiable
from linkup.core.serialization import dumps
from linkup.store import files

R = TypeVar("R", bound=HttpResponseBase)
CHUNK = 64 * 1024
# A multipart body is its file plus the framing around it (boundaries, part headers).
MULTIPART_SLACK = 16 * 1024


def announced_length(request: HttpRequest) -> int:
    """The body's length as the client states it; refuse an upload too big by it at once."""
    raw = request.META.get("CONTENT_LENGTH")
    try:
        length = int(raw) if raw else -1
    except ValueError:
        length = -1
    if length < 0:
        raise LengthRequired()
    uploads.check_size(length - MULTIPART_SLACK)
    return length


def _file_part(request: HttpRequest) -> Any:
    """The multipart body's `file` part (Django spools a big one to a temporary file, so
    memory stays flat). Runs on a request thread, never the loop."""
    try:
        part = request.FILES.get("file")
    except (MultiPartParserError, RequestDataTooBig, ValueError) as exc:
        raise InvalidInput(f"the body is not a usable multipart upload: {exc}") from None
    if part is None or part.file is None:
        raise InvalidInput('a multipart body with a "file" part is required')
    return part


def take_upload(request: HttpRequest, user: Any) -> dict[str, Any]:
    """Store the body's file as an upload to attach to a message."""
    part = _file_part(request)
    try:
        hint = _number(request.POST.get("duration_s"))
        return uploads.do_upload(user, part.file, part.size or 0, part.name, duration_hint=hint)
    finally:
        part.close()


def take_avatar(request: HttpRequest, user: Any) -> dict[str, Any]:
    """Make the body's file the user's picture."""
    part = _file_part(request)
    try:
        return profiles.do_set_avatar(user, part.file, part.size or 0)
    finally:
        part.close()


def _number(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw else None
    except ValueError:
        raise InvalidInput("duration_s must be a number of seconds") from None
    if value is not None and value != value:  # NaN
        raise InvalidInput("duration_s must be a number of seconds")
    return value


def _headers(response: R, fetch: uploads.Fetch) -> R:
    response["Content-Disposition"] = files.content_disposition(fetch.name, fetch.inline)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    # An attachment never changes under its id; only its room's members may see it.
    lasting = "private, max-age=86400"
    response["Cache-Control"] = lasting if fetch.lasting else "private, no-store"
    return response


def _content_type(fetch: uploads.Fetch) -> str:
    if fetch.content_type == "text/plain":
        return "text/plain; charset=utf-8"
    return fetch.content_type


async def serve(request: HttpRequest, fetch: uploads.Fetch) -> HttpResponseBase:
    """Answer for an attachment the caller may see (checked before this)."""
    signed = await asyncio.to_thread(
        files.signed_url,
        fetch.file,
        filename=fetch.name,
        content_type=fetch.content_type,
        inline=fetch.inline,
    )
    if signed is not None:
        redirect = HttpResponseRedirect(signed)
        redirect["Cache-Control"] = "private, no-store"  # the signature expires
        return redirect
    prefix = setting("ATTACHMENT_X_ACCEL_PREFIX")
    if prefix:
        handed = HttpResponse(content_type=_content_type(fetch))
        handed["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + fetch.file
        return _headers(handed, fetch)
    try:
        stream = await asyncio.to_thread(files.open_file, fetch.file)
    except FileNotFoundError:
        raise NotFound("file not found")
    size = fetch.size if fetch.size is not None else await asyncio.to_thread(_size, stream)
    wanted = media.byte_range(request.headers.get("Range"), size)
    if wanted is False:
        stream.close()
        refused = HttpResponse(
            dumps(RangeNotSatisfiable().as_body()), status=416, content_type="application/json"
        )
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    first, last = wanted if wanted else (0, size - 1)
    response = StreamingHttpResponse(
        _FileChunks(stream, first, last - first + 1),
        status=206 if wanted else 200,
        content_type=_content_type(fetch),
    )
    response["Content-Length"] = str(max(0, last - first + 1))
    response["Accept-Ranges"] = "bytes"
    if wanted:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    return _headers(response, fetch)


def _size(stream: IO[bytes]) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


class _FileChunks:
    """The file's bytes [first, first + length), read off the event loop; closed when the
    response is (Django calls `close` even if the body was never read)."""

    def __init__(self, stream: IO[bytes], first: int, length: int) -> None:
        self.stream, self.first, self.length = stream, first, length

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        try:
            if self.first:
                await asyncio.to_thread(self.stream.seek, self.first)
            left = self.length
            while left > 0:
                data = await asyncio.to_thread(self.stream.read, min(CHUNK, left))
                if not data:
                    break
                left -= len(data)
                yield data
        finally:
            self.close()

    def close(self) -> None:
        self.stream.close()
