"""The shapes that cross modules: the contract's objects, and the channel-layer events that
carry them from an action's commit to the sockets.

TypedDicts, not classes: these are JSON objects on the wire and plain dicts in the channel
layer (which must carry them through Redis), and mypy holds every builder and handler to
the same keys. A room view (linkup.store.queries) stays a plain dict: its keys follow the
contract's room object, which grows with features.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class UserDict(TypedDict):
    id: int
    username: str


class SenderDict(TypedDict):
    """A message's sender: a user, or `{"id": None, "username": "Deleted user"}` once their
    account is deleted."""

    id: int | None
    username: str


class ReplyDict(TypedDict):
    """What a reply shows of its original (`preview` is "" once the original is deleted)."""

    seq: int
    sender: SenderDict
    preview: str
    deleted: bool  # Linkup's addition: the original was deleted (not: it had no text)


class ReactionDict(TypedDict):
    emoji: str
    count: int
    me: bool  # whether the member the object is for reacted so


class MessageDict(TypedDict):
    """The contract's message object, the same in REST bodies and frames (but for
    `reactions[].me` and `deleted: "me"`, which are the viewer's: linkup.store.views)."""

    id: int
    room: int
    seq: int
    sender: SenderDict
    body: str
    client_id: str
    created_at: str  # ISO 8601 (linkup.core.serialization.format_time)
    reply_to: ReplyDict | None
    reactions: list[ReactionDict]
    edited_at: str | None
    deleted: str | None  # None, "everyone" or "me"
    attachments: list[dict[str, Any]]
    change: int  # the room change number of its latest change (0: none)


class ReceiptFrame(TypedDict):
    """A `receipt` frame as the server sends it: someone's marker moved."""

    type: Literal["receipt"]
    room: int
    user: int
    kind: str  # "delivered" | "read"
    seq: int
    at: str


class NotificationDict(TypedDict):
    """The contract's notification object."""

    id: int
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: str
    read: bool


# -- channel-layer events, as actions queue them. The hub (linkup.realtime.hub) turns the
# chat.* ones into frames; others go to the socket's handler of that name
# ("room.updated" -> room_updated), or to a notifications consumer's (notify.*).


class ChatMessageEvent(TypedDict):
    type: Literal["chat.message"]
    message: MessageDict


class ChatChangeEvent(TypedDict):
    """A change to a message (edit, delete for everyone, reaction), with the message as it
    is after it: `message` as most members see it, `mine` the reactors' emoji and `hidden`
    who deleted it for themselves (linkup.store.views.MessageState)."""

    type: Literal["chat.change"]
    room: int
    change: int
    kind: str  # "edit" | "delete" | "reaction"
    message: MessageDict
    mine: list[list[Any]]  # [[user id, [emoji, ...]], ...]
    hidden: list[int]


class ChatHiddenEvent(TypedDict):
    """A message one user deleted for themselves: to that user's sockets only."""

    type: Literal["chat.hidden"]
    room: int
    message: MessageDict  # the tombstone, deleted: "me"


class ChatReceiptEvent(TypedDict):
    type: Literal["chat.receipt"]
    receipt: ReceiptFrame


class ChatWatermarkEvent(TypedDict):
    type: Literal["chat.watermark"]
    room: int
    delivered_seq: int
    read_seq: int


class ChatPresenceEvent(TypedDict):
    type: Literal["chat.presence"]
    user: int
    status: str  # "online" | "offline"
    last_seen: str | None  # None while online, or where either side hides it


class ChatTypingEvent(TypedDict):
    type: Literal["chat.typing"]
    room: int
    user: int
    state: str  # "start" | "stop"


class RoomUpdatedEvent(TypedDict):
    type: Literal["room.updated"]
    room: dict[str, Any]  # the recipient's own view of the room


class RoomRemovedEvent(TypedDict):
    type: Literal["room.removed"]
    room: int


class ProfileFields(TypedDict):
    display_name: str  # "" shows the username
    avatar: str | None  # the picture's URL


class PersonDict(TypedDict):
    """A person as anyone who sees them sees them (linkup.store.views.person_dict)."""

    id: int
    username: str
    display_name: str  # "" shows the username
    avatar: str | None  # the picture's URL


class UserUpdatedEvent(TypedDict):
    """Someone who shares a room with the socket's user (or the user) changed their profile."""

    type: Literal["user.updated"]
    user: PersonDict


class ChatBlocksEvent(TypedDict):
    """A block made or lifted between the socket's user and `user` (`mine`: by them)."""

    type: Literal["chat.blocks"]
    user: UserDict | dict[str, int]  # the blocked person, or only the id of who blocked
    blocked: bool
    mine: bool


class AuthRevokedEvent(TypedDict, total=False):
    """A credential ended: one token, one web session (its digest), or all of the user's."""

    type: Literal["auth.revoked"]
    token_id: int
    session: str
    all: bool


class NotifyNewEvent(TypedDict):
    type: Literal["notify.new"]
    notification: NotificationDict


class NotifyReadEvent(TypedDict):
    type: Literal["notify.read"]
    ids: list[int]


EventPayload = (
    ChatMessageEvent
    | ChatChangeEvent
    | ChatHiddenEvent
    | ChatReceiptEvent
    | ChatWatermarkEvent
    | ChatPresenceEvent
    | ChatTypingEvent
    | RoomUpdatedEvent
    | RoomRemovedEvent
    | UserUpdatedEvent
    | ChatBlocksEvent
    | AuthRevokedEvent
    | NotifyNewEvent
    | NotifyReadEvent
)
