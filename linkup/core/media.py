"""Files people attach, as pure functions over their bytes: what a file is (from its content,
never its name), the name it is shown by, what is kept of an image (no EXIF, GPS included),
its thumbnail and placeholder, an audio file's length, and the byte ranges a client asks for.

No storage, no database: linkup.actions.uploads stores what these decide."""

from __future__ import annotations

import base64
import io
import os
import re
import unicodedata
import warnings
from dataclasses import dataclass
from typing import IO, Literal

import filetype
from PIL import Image, ImageOps, UnidentifiedImageError

from linkup.core.errors import InvalidInput

SNIFF_BYTES = 8192  # what signatures need (an office file's first entries included)
NAME_MAX = 255
RASTER = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
# Served inline (the browser shows them in the page): raster images, audio and video. Any
# other type downloads (`Content-Disposition: attachment`); SVG and HTML are never inline.
INLINE_PREFIXES = ("audio/", "video/")
PLACEHOLDER_PX = 16


@dataclass(frozen=True)
class Sniffed:
    content_type: str
    kind: str  # "image", "audio", "video" or "file"


def sniff(head: bytes) -> Sniffed | None:
    """What the first bytes of a file say it is; None when nothing is recognised (not even
    text). Plain text is UTF-8 without a signature and without NUL or other C0 controls
    besides tab, line feed, carriage return and form feed."""
    found = filetype.guess(head) if head else None
    if found is not None:
        mime = str(found.mime)
        if mime.startswith("image/"):
            return Sniffed(mime, "image" if mime in RASTER else "file")
        if mime.startswith("audio/"):
            return Sniffed(mime, "audio")
        if mime == "video/webm" and _webm_audio_only(head):
            return Sniffed("audio/webm", "audio")  # a voice note as browsers record one
        if mime.startswith("video/"):
            return Sniffed(mime, "video")
        return Sniffed(mime, "file")
    if head and _is_text(head):
        return Sniffed("text/plain", "file")
    return None


# Matroska codec ids (the Tracks element comes first in what browsers record).
_WEBM_VIDEO = (b"V_VP8", b"V_VP9", b"V_AV1", b"V_MPEG4", b"V_MPEGH")
_WEBM_AUDIO = (b"A_OPUS", b"A_VORBIS")


def _webm_audio_only(head: bytes) -> bool:
    """Whether a WebM file's tracks, as its first bytes list them, are audio only."""
    return any(c in head for c in _WEBM_AUDIO) and not any(c in head for c in _WEBM_VIDEO)


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sniffing window is still text.
        if exc.start < len(head) - 3:
            return False
        text = head[: exc.start].decode("utf-8")
    return not any(ord(c) < 32 and c not in "\t\n\r\f" for c in text)


def clean_name(name: str | None, fallback: str = "file") -> str:
    """A file name fit to show and to offer for download: its last path part only, no
    control or format characters (no right-to-left override), no leading dots, at most 255
    characters (the extension kept). Never used as a path."""
    raw = (name or "").replace("\\", "/").split("/")[-1]
    raw = unicodedata.normalize("NFC", raw)
    kept = "".join(
        " " if c.isspace() else c for c in raw if unicodedata.category(c) not in ("Cc", "Cf")
    )
    kept = re.sub(r"\s+", " ", kept).strip().lstrip(".").strip()
    if not kept:
        return fallback
    if len(kept) > NAME_MAX:
        stem, ext = os.path.splitext(kept)
        ext = ext[:16]
        kept = stem[: NAME_MAX - len(ext)] + ext
    return kept


def served_inline(content_type: str) -> bool:
    """Whether a file of this type is shown in the page rather than downloaded."""
    return content_type in RASTER or content_type.startswith(INLINE_PREFIXES)


# -- images --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    data: bytes  # the image as stored: re-encoded, no metadata, turned upright
    width: int
    height: int
    placeholder: str  # a tiny image as a data: URL


def _open(source: IO[bytes] | bytes, max_pixels: int) -> Image.Image:
    """Open an image, refusing a decompression bomb before its pixels are decoded."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(stream)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InvalidInput("the image has too many pixels") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise InvalidInput("the file is not a readable image") from None
    if image.width * image.height > max_pixels:
        raise InvalidInput(f"the image has more than {max_pixels:,} pixels")
    return image


def picture(
    source: IO[bytes] | bytes,
    content_type: str,
    max_pixels: int,
    max_frames: int = 500,
    max_animation_pixels: int = 200_000_000,
) -> Picture:
    """Decode an image fully (a truncated or forged one is refused), drop every piece of
    metadata (EXIF with GPS, XMP, comments, text chunks) by encoding its pixels afresh,
    upright as its EXIF orientation said, in its own format; with its size and placeholder."""
    fmt = RASTER.get(content_type)
    if fmt is None:
        raise InvalidInput("not an image type Linkup re-encodes")
    image = _open(source, max_pixels)
    if image.format != fmt:
        raise InvalidInput("the file's content does not match its image type")
    animated = bool(getattr(image, "is_animated", False))
    if animated:
        # Counted from the frames' headers, before one is decoded: re-encoding composes
        # every frame on the whole canvas.
        try:
            frames = int(getattr(image, "n_frames", 1))
        except (OSError, SyntaxError, ValueError, EOFError):
            raise InvalidInput("the file is not a readable image") from None
        if frames > max_frames or frames * image.width * image.height > max_animation_pixels:
            raise InvalidInput(f"the animation has too many frames ({frames:,})")
        image.seek(0)
    icc = image.info.get("icc_profile")  # colours, not metadata about anyone: kept
    try:
        image.load()
        if not animated:
            image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise InvalidInput("the file is not a readable image") from None
    out = io.BytesIO()
    try:
        extra = {"icc_profile": icc} if icc and fmt != "GIF" else {}
        if animated:
            image.save(out, fmt, save_all=True, **extra)
        elif fmt == "JPEG":
            rgb = image if image.mode in ("RGB", "L", "CMYK") else image.convert("RGB")
            rgb.save(out, "JPEG", quality=90, optimize=True, **extra)
        elif fmt == "WEBP":
            image.save(out, "WEBP", quality=90, **extra)
        else:
            image.save(out, fmt, **extra)
    except (OSError, ValueError):
        raise InvalidInput("the image could not be re-encoded") from None
    return Picture(out.getvalue(), image.width, image.height, placeholder(image))


def placeholder(image: Image.Image) -> str:
    """A tiny copy of an image (at most 16 px a side, WebP) as a data: URL: a client draws
    it blurred, at the image's size, until the image itself has loaded."""
    small = image.convert("RGB")
    small.thumbnail((PLACEHOLDER_PX, PLACEHOLDER_PX))
    out = io.BytesIO()
    small.save(out, "WEBP", quality=40)
    return "data:image/webp;base64," + base64.b64encode(out.getvalue()).decode()


def thumbnail(source: IO[bytes] | bytes, box: int, max_pixels: int) -> bytes:
    """A JPEG no larger than `box` a side (the first frame of an animation)."""
    image = _open(source, max_pixels)
    try:
        image.draft("RGB", (box, box))  # JPEG decodes at a fraction of its size: cheaper
        image = ImageOps.exif_transpose(image.convert("RGB"))
        image.thumbnail((box, box))
    except (OSError, SyntaxError, ValueError):
        raise InvalidInput("the file is not a readable image") from None
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80, optimize=True)
    return out.getvalue()


def avatar(source: IO[bytes] | bytes, side: int, max_pixels: int) -> bytes:
    """A person's picture: the middle square of an image (its first frame), upright, `side`
    pixels a side, as WebP with its transparency; nothing of the original but its pixels."""
    image = _open(source, max_pixels)
    try:
        image.draft("RGB", (side, side))
        image = ImageOps.exif_transpose(image)
        image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "PA", "P") else "RGB")
        image = ImageOps.fit(image, (side, side), Image.Resampling.LANCZOS)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise InvalidInput("the file is not a readable image") from None
    out = io.BytesIO()
    image.save(out, "WEBP", quality=85)
    return out.getvalue()


# -- audio and video -----------------------------------------------------------------------


def duration_s(source: IO[bytes]) -> float | None:
    """The playing time of an audio or video file, or None where its format does not say
    (mutagen reads MP3, Ogg, MP4/M4A, FLAC and WAV headers; a WebM voice note has none)."""
    import mutagen  # loaded on the first audio file: the send path never needs it

    try:
        found = mutagen.File(source)
    except Exception:  # mutagen raises its own errors and plain ones on broken headers
        return None
    length = getattr(getattr(found, "info", None), "length", None)
    if not length or length != length or length < 0:  # absent, NaN, or nonsense
        return None
    return round(float(length), 3)


# -- byte ranges ---------------------------------------------------------------------------

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | Literal[False] | None:
    """The one byte range an HTTP `Range` header asks of a file of `size` bytes, as
    (first, last) inclusive; None to send the whole file (no header, several ranges, or a
    form this does not serve: the header may be ignored); False when it cannot be satisfied
    (416)."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        n = int(last)
        if n == 0:
            return False
        return (max(0, size - n), size - 1) if size else False
    start = int(first)
    if start >= size:
        return False
    end = size - 1 if not last else min(int(last), size - 1)
    if end < start:
        return None  # syntactically invalid: ignored (RFC 9110 14.1.1)
    return (start, end)
