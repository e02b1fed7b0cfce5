"""Request and response shapes of the REST API (they feed the OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, StrictBool, StrictInt, StrictStr


class Strict(Schema):
    model_config = ConfigDict(extra="ignore")


class UserOut(Schema):
    id: int
    username: str


class SenderOut(Schema):
    id: int | None  # null once the sender's account is deleted ("Deleted user")
    username: str


class PersonOut(UserOut):
    display_name: str = ""  # the name they are shown by; "" shows the username
    avatar: str | None = None  # their picture's URL (a 256 px WebP square); null: none
    status: Literal["online", "offline"] | None = None
    last_seen: str | None = None


class ProfileOut(PersonOut):
    about: str = ""


class MemberOut(PersonOut):
    role: str


GroupAdds = Literal["everyone", "contacts", "nobody"]
Theme = Literal["", "light", "dark"]


class MeOut(UserOut):
    hide_last_seen: bool
    group_adds: GroupAdds  # who may add me to groups; the others invite me
    email: str
    email_verified: bool  # only a verified address is sent notifications
    theme: Theme  # the web client's colours: "" the device's choice
    language: str  # the pages' language; "" follows the browser's
    display_name: str
    about: str
    avatar: str | None


class PrivacyIn(Strict):
    """`PATCH /me`: any of these; what is left out stays as it is."""

    hide_last_seen: StrictBool | None = None  # "yes" or 1 is a mistake to report, not a True
    group_adds: GroupAdds | None = None
    email: StrictStr | None = Field(default=None, max_length=254)  # "" removes it
    theme: Theme | None = None
    language: StrictStr | None = Field(default=None, max_length=16)  # "" follows the browser
    display_name: StrictStr | None = Field(default=None, max_length=1000)  # checked: 64
    about: StrictStr | None = Field(default=None, max_length=1000)  # checked: 140


class VerifyEmailIn(Strict):
    token: StrictStr = Field(max_length=1000)


class VerifyEmailOut(Schema):
    sent: bool  # false: no address, or it is verified already


class ReplyOut(Schema):
    seq: int
    sender: SenderOut
    preview: str  # the original's first 100 code points; "" once it was deleted
    deleted: bool = False  # the original was deleted (an empty preview may be files alone)


class ReactionOut(Schema):
    emoji: str
    count: int
    me: bool  # the caller reacted so


class MessageOut(Schema):
    id: int
    room: int
    seq: int
    sender: SenderOut
    body: str
    client_id: str
    created_at: str
    reply_to: ReplyOut | None = None
    reactions: list[ReactionOut] = Field(default_factory=list)
    edited_at: str | None = None
    deleted: Literal["everyone", "me"] | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    change: int = 0  # the room change number of its latest change


class ChangeOut(Schema):
    change: int
    kind: Literal["edit", "delete", "reaction"]
    message: MessageOut


class ChangesOut(Schema):
    changes: list[ChangeOut]
    has_more: bool


class VersionOut(Schema):
    body: str
    at: str  # when this text became the message's (its sending, or the edit that wrote it)


class EditHistoryOut(Schema):
    message: MessageOut
    versions: list[VersionOut]  # oldest first; the last is the current text


class ReactorsOut(Schema):
    emoji: str
    users: list[UserOut]


class WhoReactedOut(Schema):
    reactions: list[ReactorsOut]


class MarkersOut(Schema):
    delivered_seq: int
    read_seq: int


class RoomOut(Schema):
    id: int
    kind: Literal["direct", "group"]
    name: str
    description: str = ""  # a group's, set by its owner or admins
    members: list[MemberOut]
    last_message: MessageOut | None
    last_seq: int
    first_seq: int
    last_change: int = 0  # the room's latest change number (edits, deletes, reactions)
    watermark: MarkersOut
    unread_count: int
    read_seq: int
    delivered_seq: int
    role: str
    muted: bool = False  # the caller muted it: no notifications from it
    created_at: str
    last_activity_at: str


class RoomCreatedOut(RoomOut):
    # Those asked who did not allow the caller to add them: invited, they join by accepting.
    invited: list[int] = Field(default_factory=list)


class InvitedRoomOut(Schema):
    id: int
    name: str
    members: int


class InvitationOut(Schema):
    id: int
    room: InvitedRoomOut
    by: UserOut
    created_at: str


class InvitationsOut(Schema):
    invitations: list[InvitationOut]


class RoomsOut(Schema):
    rooms: list[RoomOut]


class UsersOut(Schema):
    users: list[PersonOut]


class HistoryOut(Schema):
    messages: list[MessageOut]
    has_more: bool


class SearchHitOut(Schema):
    room: int
    seq: int
    message: MessageOut
    # Plain text around the match (never markup), and the [start, end) code-point ranges
    # of it that matched.
    snippet: str
    highlights: list[list[int]] = Field(default_factory=list)


class SearchOut(Schema):
    results: list[SearchHitOut]
    next: str | None  # opaque: pass it as `before` for the next page; null at the end


class CredentialsIn(Strict):
    username: StrictStr = Field(max_length=150)
    password: StrictStr = Field(max_length=4096)


class RegisterIn(CredentialsIn):
    email: StrictStr | None = Field(default=None, max_length=254)


class TokenOut(Schema):
    token: str
    user: UserOut


class RegisteredOut(Schema):
    user: UserOut


class TicketOut(Schema):
    ticket: str
    expires_at: str


class OkOut(Schema):
    ok: bool


class UploadOut(Schema):
    id: str
    name: str
    size: int
    content_type: str
    kind: Literal["image", "audio", "video", "file"]


class UploadAnswerOut(Schema):
    upload: UploadOut


class SessionOut(Schema):
    id: str
    kind: Literal["token", "web"]
    created_at: str
    last_used_at: str | None
    user_agent: str
    current: bool


class SessionsOut(Schema):
    sessions: list[SessionOut]


class RoomIn(Strict):
    kind: Literal["direct", "group"]
    members: list[StrictInt] = Field(default_factory=list, max_length=1000)
    name: StrictStr | None = Field(default=None, max_length=1000)


class MembersIn(Strict):
    user_ids: list[StrictInt] = Field(min_length=1, max_length=1000)


class RoomPatchIn(Strict):
    """`PATCH /rooms/{id}`: a group's name or description (owner or admins)."""

    name: StrictStr | None = Field(default=None, max_length=1000)
    description: StrictStr | None = Field(default=None, max_length=2000)


class RoleIn(Strict):
    role: Literal["admin", "member"]


class SendIn(Strict):
    client_id: StrictStr = Field(max_length=1000)
    body: StrictStr = Field(default="", max_length=100_000)  # "" only with attachments
    reply_to: StrictInt | None = Field(default=None, ge=1, le=2**63 - 1)
    attachments: list[StrictStr] = Field(default_factory=list, max_length=100)


class EditIn(Strict):
    client_id: StrictStr = Field(max_length=1000)
    body: StrictStr = Field(max_length=100_000)


class ReceiptIn(Strict):
    kind: Literal["delivered", "read"]
    seq: StrictInt = Field(ge=0, le=2**63 - 1)


class ReceiptOut(Schema):
    accepted: bool
    receipt: dict[str, object] | None


class SyncRoomOut(Schema):
    room: int
    last_seq: int
    first_seq: int
    last_change: int = 0
    messages: list[MessageOut]
    has_more: bool
    markers: dict[str, MarkersOut]
    watermark: MarkersOut
    # Seqs of this room the caller deleted for themselves, highest first (at most 1,000).
    deleted_for_me: list[int] = Field(default_factory=list)
    # Only for the rooms whose change cursor was given: the changes after it (at most 100).
    changes: list[ChangeOut] | None = None
    changes_has_more: bool | None = None


class MemberReceiptOut(Schema):
    user: UserOut
    delivered_at: str | None
    read_at: str | None


class MessageInfoOut(Schema):
    message: MessageOut
    status: Literal["sent", "delivered", "read"]
    members: list[MemberReceiptOut]


class SyncOut(Schema):
    room_ids: list[int]
    rooms: list[SyncRoomOut]


class ErrorDetail(Schema):
    code: str
    detail: str


class ErrorOut(Schema):
    error: ErrorDetail


class NotificationOut(Schema):
    id: int
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: str
    read: bool


class NotificationsOut(Schema):
    notifications: list[NotificationOut]
    unread_count: int
    has_more: bool


class NotificationsReadOut(Schema):
    ids: list[int]  # the notifications this call marked read (unread before it)
    unread_count: int


class MuteIn(Strict):
    muted: StrictBool


class MuteOut(Schema):
    room: int
    muted: bool


class PushKeysIn(Strict):
    p256dh: StrictStr = Field(min_length=1, max_length=200)
    auth: StrictStr = Field(min_length=1, max_length=100)


class PushSubscriptionIn(Strict):
    endpoint: StrictStr = Field(min_length=8, max_length=1000)
    keys: PushKeysIn


class PushKeyOut(Schema):
    public_key: str | None  # VAPID application server key; null: Web Push is off


class BlockIn(Strict):
    user_id: StrictInt


class BlockOut(Schema):
    user: UserOut
    created_at: str


class BlockAnswerOut(Schema):
    block: BlockOut


class BlocksOut(Schema):
    blocks: list[BlockOut]


class ReportIn(Strict):
    reason: StrictStr = Field(max_length=10_000)
    user_id: StrictInt | None = None
    room: StrictInt | None = None
    seq: StrictInt | None = None


class ReportOut(Schema):
    id: int
    created_at: str


class ReportAnswerOut(Schema):
    report: ReportOut


class DeleteAccountIn(Strict):
    password: StrictStr = Field(max_length=4096)


class ExportOut(Schema):
    id: str
    state: Literal["pending", "ready", "failed"]
    created_at: str
    url: str | None = None  # when ready: the zip, for its owner alone
    size: int | None = None


class ExportAnswerOut(Schema):
    export: ExportOut
