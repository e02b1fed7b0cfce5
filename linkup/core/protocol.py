"""Parse and validate client frames: pure functions, no I/O, safe for any input."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

import emoji

from linkup.core import serialization
from linkup.core.errors import InvalidInput, TooLarge, UnknownType

PROTOCOL_VERSION = 1  # sent in `hello`
MAX_ID = 2**63 - 1
MAX_NOTIFICATION_IDS = 500  # in one `notification.read` frame
ALLOWED_CONTROLS = frozenset("\n\t")


@dataclass(frozen=True)
class SendFrame:
    room: int
    client_id: str
    body: str
    reply_to: int | None = None
    attachments: tuple[str, ...] = ()  # upload ids, in the order the message shows them


@dataclass(frozen=True)
class EditFrame:
    room: int
    seq: int
    body: str
    client_id: str


@dataclass(frozen=True)
class DeleteFrame:
    room: int
    seq: int
    scope: Literal["everyone", "me"]
    client_id: str | None


@dataclass(frozen=True)
class ReactionFrame:
    room: int
    seq: int
    emoji: str
    state: Literal["add", "remove"]
    client_id: str | None


@dataclass(frozen=True)
class ReceiptFrame:
    room: int
    kind: Literal["delivered", "read"]
    seq: int


@dataclass(frozen=True)
class TypingFrame:
    room: int
    state: Literal["start", "stop"]


@dataclass(frozen=True)
class FocusFrame:
    room: int | None
    visible: bool | None = None  # whether the tab is in sight (absent: not said)


@dataclass(frozen=True)
class SyncFrame:
    cursors: dict[int, int]
    changes: dict[int, int] | None = None


@dataclass(frozen=True)
class PingFrame:
    pass


@dataclass(frozen=True)
class BlockFrame:
    user_id: int
    blocked: bool


Frame = (
    SendFrame
    | EditFrame
    | DeleteFrame
    | ReactionFrame
    | ReceiptFrame
    | TypingFrame
    | FocusFrame
    | SyncFrame
    | PingFrame
    | BlockFrame
)


# Characters that show nothing: Unicode's Default_Ignorable_Code_Point ranges
# (DerivedCoreProperties.txt: soft hyphen, zero-width space and joiners, bidi controls,
# the Hangul fillers, variation selectors, BOM, tags) and the blank braille pattern. With
# white space and format characters (Cf), a body made only of them is blank.
INVISIBLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x2800, 0x2800), (0x3164, 0x3164), (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip


def invisible(char: str) -> bool:
    """Whether `char` shows nothing on its own (white space, format, default-ignorable)."""
    if char.isspace() or unicodedata.category(char) == "Cf":
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in INVISIBLE_RANGES)


def check_message_body(value: Any, max_chars: int) -> str:
    """Return the trimmed body, or raise InvalidInput saying what is wrong with it."""
    if not isinstance(value, str):
        raise InvalidInput("body must be a string")
    body = value.strip()
    if not body or all(invisible(char) for char in body):
        raise InvalidInput("body is blank")
    if len(body) > max_chars:
        raise InvalidInput(f"body is longer than {max_chars} characters")
    for char in body:
        category = unicodedata.category(char)
        # Cc: control characters (PostgreSQL refuses U+0000 outright); Cs: lone surrogates,
        # which have no UTF-8 form.
        if (category == "Cc" and char not in ALLOWED_CONTROLS) or category == "Cs":
            raise InvalidInput("body contains a control character")
    return body


def check_client_id(value: Any, max_chars: int) -> str:
    """Return a valid client_id (printable, no spaces, 1..max_chars) or raise InvalidInput."""
    if not isinstance(value, str) or not value:
        raise InvalidInput("client_id must be a non-empty string (a UUID)")
    if len(value) > max_chars:
        raise InvalidInput(f"client_id is longer than {max_chars} characters")
    if not value.isprintable() or any(c.isspace() for c in value):
        raise InvalidInput("client_id must be printable with no spaces")
    return value


def check_id(value: Any, name: str) -> int:
    """Return a positive integer id, refusing bools, floats and strings."""
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise InvalidInput(f"{name} must be a positive integer id")
    return value


def check_seq(value: Any, name: str = "seq") -> int:
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise InvalidInput(f"{name} must be a non-negative integer")
    return value


MAX_EMOJI_CHARS = 32  # code points: the longest emoji ZWJ sequences are ten or so


def check_emoji(value: Any, allowed: list[str] | None = None) -> str:
    """Return a reaction's emoji as sent (no normalisation) if it is one emoji (a single
    grapheme cluster: a ZWJ sequence, a flag, a keycap, a skin tone), or one of `allowed`
    when the site configured a set; else raise InvalidInput."""
    if not isinstance(value, str) or not value:
        raise InvalidInput("emoji must be a non-empty string")
    if allowed is not None:
        if value not in allowed:
            raise InvalidInput("that reaction is not one this site allows")
        return value
    if len(value) > MAX_EMOJI_CHARS or not emoji.is_emoji(value):
        raise InvalidInput("emoji must be exactly one emoji")
    return value


MAX_UPLOAD_ID_CHARS = 64


def check_attachments(value: Any, max_files: int) -> tuple[str, ...]:
    """Return the upload ids a send names (at most `max_files`, each once)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > max_files:
        raise InvalidInput(f"attachments is a list of at most {max_files} upload ids")
    for item in value:
        if not isinstance(item, str) or not 0 < len(item) <= MAX_UPLOAD_ID_CHARS:
            raise InvalidInput("attachments are upload ids")
    if len(set(value)) != len(value):
        raise InvalidInput("an upload is attached once")
    return tuple(value)


def check_send_body(value: Any, max_chars: int, attachments: tuple[str, ...]) -> str:
    """A send's body: as any message's, but it may be empty (a caption left out) when the
    send carries files."""
    if attachments and isinstance(value, str) and not value.strip():
        return ""
    return check_message_body(value, max_chars)


def check_reply_to(value: Any) -> int | None:
    if value is None:
        return None
    return check_id(value, "reply_to")


def check_cursors(value: Any, name: str = "cursors") -> dict[int, int]:
    """Return {room_id: seq} from a JSON object of "<room_id>": seq."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} must be an object of room id to number")
    if len(value) > 10_000:
        raise InvalidInput("too many cursors")
    cursors: dict[int, int] = {}
    for key, seq in value.items():
        if not isinstance(key, str) or not key.isascii() or not key.isdigit() or len(key) > 19:
            raise InvalidInput("cursor keys must be room ids")
        if key != str(int(key)):
            # "01" and "1" would name one room twice; only the canonical form is accepted.
            raise InvalidInput("cursor keys must be room ids without leading zeros")
        cursors[check_id(int(key), "cursor room")] = check_seq(seq, "cursor seq")
    return cursors


def check_ids(value: Any) -> list[int]:
    """Return sorted distinct notification ids from a JSON list of 1-MAX_NOTIFICATION_IDS."""
    if not isinstance(value, list) or not value or len(value) > MAX_NOTIFICATION_IDS:
        raise InvalidInput(f"ids is a list of 1-{MAX_NOTIFICATION_IDS} notification ids")
    for item in value:
        if type(item) is not int or not 0 < item <= MAX_ID:
            raise InvalidInput("notification ids are positive integers")
    return sorted(set(value))


def client_ref(raw: Any) -> str | None:
    """Return the frame's client_id when it has a usable one, to echo in an error frame."""
    if isinstance(raw, dict):
        ref = raw.get("client_id")
        if isinstance(ref, str) and 0 < len(ref) <= 64:
            return ref
    return None


def _parse_send(
    raw: dict[str, Any], max_body: int, max_client_id: int, max_files: int
) -> SendFrame:
    attachments = check_attachments(raw.get("attachments"), max_files)
    return SendFrame(
        room=check_id(raw.get("room"), "room"),
        client_id=check_client_id(raw.get("client_id"), max_client_id),
        body=check_send_body(raw.get("body", "" if attachments else None), max_body, attachments),
        reply_to=check_reply_to(raw.get("reply_to")),
        attachments=attachments,
    )


def _parse_edit(raw: dict[str, Any], max_body: int, max_client_id: int) -> EditFrame:
    return EditFrame(
        room=check_id(raw.get("room"), "room"),
        seq=check_id(raw.get("seq"), "seq"),
        body=check_message_body(raw.get("body"), max_body),
        client_id=check_client_id(raw.get("client_id"), max_client_id),
    )


def _optional_client_id(raw: dict[str, Any], max_client_id: int) -> str | None:
    value = raw.get("client_id")
    return None if value is None else check_client_id(value, max_client_id)


def _parse_delete(raw: dict[str, Any], max_client_id: int) -> DeleteFrame:
    scope = raw.get("scope")
    if scope not in ("everyone", "me"):
        raise InvalidInput('scope must be "everyone" or "me"')
    return DeleteFrame(
        room=check_id(raw.get("room"), "room"),
        seq=check_id(raw.get("seq"), "seq"),
        scope=scope,
        client_id=_optional_client_id(raw, max_client_id),
    )


def _parse_reaction(
    raw: dict[str, Any], max_client_id: int, allowed: list[str] | None
) -> ReactionFrame:
    state = raw.get("state")
    if state not in ("add", "remove"):
        raise InvalidInput('state must be "add" or "remove"')
    return ReactionFrame(
        room=check_id(raw.get("room"), "room"),
        seq=check_id(raw.get("seq"), "seq"),
        emoji=check_emoji(raw.get("emoji"), allowed),
        state=state,
        client_id=_optional_client_id(raw, max_client_id),
    )


def _parse_sync(raw: dict[str, Any]) -> SyncFrame:
    changes = raw.get("changes")
    return SyncFrame(
        cursors=check_cursors(raw.get("cursors", {})),
        changes=None if changes is None else check_cursors(changes, "changes"),
    )


def _parse_receipt(raw: dict[str, Any]) -> ReceiptFrame:
    kind = raw.get("kind")
    if kind not in ("delivered", "read"):
        raise InvalidInput('kind must be "delivered" or "read"')
    return ReceiptFrame(
        room=check_id(raw.get("room"), "room"), kind=kind, seq=check_seq(raw.get("seq"))
    )


def _parse_typing(raw: dict[str, Any]) -> TypingFrame:
    state = raw.get("state")
    if state not in ("start", "stop"):
        raise InvalidInput('state must be "start" or "stop"')
    return TypingFrame(room=check_id(raw.get("room"), "room"), state=state)


def _parse_focus(raw: dict[str, Any]) -> FocusFrame:
    if "room" not in raw:
        raise InvalidInput("focus needs a room (an id, or null)")
    room = raw["room"]
    visible = raw.get("visible")
    if visible is not None and not isinstance(visible, bool):
        raise InvalidInput("visible must be true or false")
    return FocusFrame(room=None if room is None else check_id(room, "room"), visible=visible)


def _parse_block(raw: dict[str, Any]) -> BlockFrame:
    blocked = raw.get("blocked", True)
    if not isinstance(blocked, bool):
        raise InvalidInput("blocked must be true or false")
    return BlockFrame(user_id=check_id(raw.get("user_id"), "user_id"), blocked=blocked)


def _decode(data: str | bytes | None, max_bytes: int) -> dict[str, Any]:
    """A frame's JSON object, or InvalidInput / TooLarge."""
    if data is None:
        raise InvalidInput("frames are JSON text")
    if isinstance(data, bytes):
        raise InvalidInput("binary frames are not accepted; send JSON text")
    if len(data) > max_bytes or len(data.encode("utf-8", "surrogatepass")) > max_bytes:
        raise TooLarge(f"frame is larger than {max_bytes} bytes")
    try:
        raw = serialization.loads(data)
    except ValueError:
        raise InvalidInput("frame is not valid JSON") from None
    if not isinstance(raw, dict):
        raise InvalidInput("frame must be a JSON object")
    return raw


@dataclass(frozen=True)
class NotificationReadFrame:
    ids: list[int]


def parse_notification_frame(
    data: str | bytes | None, *, max_bytes: int = 64 * 1024
) -> PingFrame | NotificationReadFrame:
    """Parse a frame of the notifications socket: `ping` or `notification.read`."""
    raw = _decode(data, max_bytes)
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise InvalidInput("frame needs a string type")
    if kind == "ping":
        return PingFrame()
    if kind == "notification.read":
        return NotificationReadFrame(ids=check_ids(raw.get("ids")))
    raise UnknownType(f"unknown frame type {kind[:40]!r}")


def parse_frame(
    data: str | bytes | None,
    *,
    max_bytes: int = 64 * 1024,
    max_body: int = 4000,
    max_client_id: int = 64,
    emoji_allowed: list[str] | None = None,
    max_files: int = 10,
) -> Frame:
    """Parse one client frame; raise a LinkupError (InvalidInput, UnknownType, TooLarge) only."""
    raw = _decode(data, max_bytes)
    ref = client_ref(raw)
    kind = raw.get("type")
    try:
        if not isinstance(kind, str):
            raise InvalidInput("frame needs a string type")
        if kind == "message.send":
            return _parse_send(raw, max_body, max_client_id, max_files)
        if kind == "message.edit":
            return _parse_edit(raw, max_body, max_client_id)
        if kind == "message.delete":
            return _parse_delete(raw, max_client_id)
        if kind == "reaction":
            return _parse_reaction(raw, max_client_id, emoji_allowed)
        if kind == "receipt":
            return _parse_receipt(raw)
        if kind == "typing":
            return _parse_typing(raw)
        if kind == "focus":
            return _parse_focus(raw)
        if kind == "sync":
            return _parse_sync(raw)
        if kind == "ping":
            return PingFrame()
        if kind == "block":
            return _parse_block(raw)
        raise UnknownType(f"unknown frame type {kind[:40]!r}")
    except (InvalidInput, TooLarge) as exc:
        exc.ref = ref
        raise
