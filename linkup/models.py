"""Linkup's data: rooms, memberships with receipt markers, messages, credentials, errors."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q


class Room(models.Model):
    class Kind(models.TextChoices):
        DIRECT = "direct"
        GROUP = "group"

    kind = models.CharField(max_length=6, choices=Kind.choices)
    # Empty for direct rooms: clients name those after the other member.
    name = models.CharField(max_length=200, blank=True, default="")
    # A group's description (what it is for), set by its owner or admins.
    description = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    # Highest seq assigned in this room. Sends lock the row and take last_seq + 1, so
    # seqs are gap-free and in commit order.
    last_seq = models.BigIntegerField(default=0)
    # Lowest seq still stored: messages below it were purged by retention (not lost).
    first_seq = models.BigIntegerField(default=1)
    # Highest change number assigned in this room: every edit, delete for everyone and
    # reaction added or removed takes last_change + 1 under the room's lock, like a seq.
    last_change = models.BigIntegerField(default=0)
    # Lowest delivered and read markers over the members ("watermarks"): a message with
    # seq <= delivered_watermark is delivered to everyone, <= read_watermark read by everyone.
    # They only grow; they move under the room lock, so concurrent receipts cannot miss a move.
    delivered_watermark = models.BigIntegerField(default=0)
    read_watermark = models.BigIntegerField(default=0)
    # Time of the last message (or creation): the room list's "last activity" order.
    last_activity_at = models.DateTimeField()
    # "<low user id>:<high user id>" for direct rooms; the unique constraint below makes a
    # direct room unique per pair of users even under concurrent creation.
    direct_key = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["direct_key"],
                condition=Q(direct_key__isnull=False),
                name="linkup_room_direct_pair_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} room {self.pk} {self.name}".rstrip()


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"

    # No index of their own: the unique (room, user) and the index (user, room) begin with
    # them (a redundant index is one more page to write, and to keep in memory).
    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="linkup_memberships",
        db_index=False,
    )
    role = models.CharField(max_length=6, choices=Role.choices, default=Role.MEMBER)
    # Receipt markers: "delivered up to seq N", "read up to seq N". They only grow, are
    # clamped to the room's last_seq, and read_seq <= delivered_seq always holds.
    delivered_seq = models.BigIntegerField(default=0)
    read_seq = models.BigIntegerField(default=0)
    joined_at = models.DateTimeField()
    # A muted room creates no notifications for this member (its messages still arrive).
    muted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="linkup_membership_unique"),
            models.CheckConstraint(
                condition=Q(read_seq__lte=models.F("delivered_seq")),
                name="linkup_membership_read_le_delivered",
            ),
        ]
        # "My rooms" (sockets, room list, sync) reads memberships by user.
        indexes = [models.Index(fields=["user", "room"], name="linkup_membership_user")]

    def __str__(self) -> str:
        return f"user {self.user_id} in room {self.room_id} ({self.role})"


class Message(models.Model):
    # Indexed by the unique (room, seq) and (room, sender, client_id), which begin with it: an
    # index of its own would be one more page written by every send.
    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    seq = models.BigIntegerField()
    # Null once the sender's account is deleted: the message stays, from "Deleted user".
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="linkup_messages",
    )
    body = models.TextField()
    # Chosen by the client (a UUID string); makes sends idempotent per room and sender.
    client_id = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    # The seq of the message this one replies to, in the same room.
    reply_to_seq = models.BigIntegerField(null=True, blank=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    # Deleted for everyone: the body, edits and reactions are gone; the row stays (a
    # tombstone with seq, sender and time) so seqs never gap.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The room change number of its latest change (0: never changed).
    change = models.BigIntegerField(default=0)
    # How many files it carries (Upload rows): readers look for them only where this is
    # past 0, so a text message costs no query more.
    attachment_count = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            # Also the index for history and catch-up: WHERE room = ? AND seq > ? ORDER BY seq.
            models.UniqueConstraint(fields=["room", "seq"], name="linkup_message_room_seq"),
            # Also the index for the duplicate look-up made under the room lock.
            models.UniqueConstraint(
                fields=["room", "sender", "client_id"], name="linkup_message_idempotency"
            ),
        ]

    def __str__(self) -> str:
        return f"message {self.room_id}#{self.seq}"


class MessageChange(models.Model):
    """One entry of a room's change log: message `seq` was edited, deleted or reacted to.

    It holds what changed, never a copy: a change replays as the message as it is now, so
    replaying a room's changes in order always ends at the database's view (an edit made
    before a delete replays as the tombstone, never the erased body)."""

    class Kind(models.TextChoices):
        EDIT = "edit"
        DELETE = "delete"
        REACTION = "reaction"

    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, related_name="+", db_index=False
    )  # indexed by the unique (room, change)
    change = models.BigIntegerField()
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    at = models.DateTimeField()

    class Meta:
        constraints = [
            # Also the index for replays: WHERE room = ? AND change > ? ORDER BY change.
            models.UniqueConstraint(fields=["room", "change"], name="linkup_change_room_change"),
        ]

    def __str__(self) -> str:
        return f"change {self.room_id}/{self.change}: {self.kind} of #{self.seq}"


class MessageEdit(models.Model):
    """A body a message had before an edit (shown to its sender and the room's admins)."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="edits", db_index=False
    )
    body = models.TextField()  # the text this edit replaced
    # Chosen by the client: the same edit sent again changes nothing.
    client_id = models.CharField(max_length=64)
    edited_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "client_id"], name="linkup_edit_once"),
        ]

    def __str__(self) -> str:
        return f"edit of message {self.message_id} at {self.edited_at}"


class Reaction(models.Model):
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="reactions", db_index=False
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Stored exactly as sent (no normalisation: a variation selector is kept).
    emoji = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user", "emoji"], name="linkup_reaction_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.emoji} by user {self.user_id} on message {self.message_id}"


class DeletedForMe(models.Model):
    """A message one user deleted for themselves: a tombstone for them alone."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+", db_index=False)
    seq = models.BigIntegerField()
    at = models.DateTimeField()

    class Meta:
        constraints = [
            # Also the index for a user's list per room (sync's deleted_for_me).
            models.UniqueConstraint(fields=["user", "room", "seq"], name="linkup_hidden_once"),
        ]
        # Who deleted these messages for themselves (a change's frame for every member).
        indexes = [models.Index(fields=["room", "seq"], name="linkup_hidden_room_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} of room {self.room_id} deleted for user {self.user_id}"


class Upload(models.Model):
    """A file a user uploaded: theirs alone until a message of theirs carries it, then an
    attachment of that message, seen by the members of its room.

    The file is kept through Django's storage API (the `STORAGE` setting names which of
    `STORAGES`) under a name of Linkup's choosing, never the client's: `name` is for
    display only. The type is decided from the content."""

    class Kind(models.TextChoices):
        IMAGE = "image"
        AUDIO = "audio"
        VIDEO = "video"
        FILE = "file"

    id = models.UUIDField(primary_key=True)
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="linkup_uploads",
        db_index=False,
    )
    created_at = models.DateTimeField()
    name = models.CharField(max_length=255)  # the client's file name, cleaned, for display
    size = models.BigIntegerField()
    content_type = models.CharField(max_length=127)
    kind = models.CharField(max_length=5, choices=Kind.choices)
    file = models.CharField(max_length=255)  # its name in the storage
    thumbnail = models.CharField(max_length=255, blank=True)  # made by the task worker
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    placeholder = models.TextField(blank=True)  # a tiny image (data: URL) shown while loading
    duration_s = models.FloatField(null=True, blank=True)
    # Set when a message carries it (then it is that message's `position`-th attachment).
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="uploads"
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [
            # A user's quota, and their unsent uploads.
            models.Index(fields=["uploader", "created_at"], name="linkup_upload_owner"),
        ]

    def __str__(self) -> str:
        return f"upload {self.id} ({self.name})"


class MarkerMove(models.Model):
    """One accepted move of a member's marker: a log of moves, not a row per message.

    The first move of a member's marker to a seq >= S is when message S reached them, which
    answers "message info" (who has it delivered, who read it, when)."""

    class Kind(models.TextChoices):
        DELIVERED = "delivered"
        READ = "read"

    # Indexed by (room, seq), below.
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=9, choices=Kind.choices)
    seq = models.BigIntegerField()
    at = models.DateTimeField()

    class Meta:
        # Message info: WHERE room = ? AND seq >= ? GROUP BY user, kind (MIN(at)).
        indexes = [models.Index(fields=["room", "seq"], name="linkup_markermove_room_seq")]

    def __str__(self) -> str:
        return f"user {self.user_id} {self.kind} {self.room_id}#{self.seq}"


class UserPresence(models.Model):
    """What outlives a connection: when the user was last seen, and their privacy choice."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="linkup_presence",
    )
    # When the user's last connection went (set as they go offline).
    last_seen = models.DateTimeField(null=True, blank=True)
    # Since when every tab of the user has been hidden, while online (null: one is in sight;
    # one older than last_seen is stale). Notifications then go by Web Push and email as if
    # the user were offline (linkup.tasks.fallback).
    hidden_since = models.DateTimeField(null=True, blank=True)
    # Hide last seen from others; reciprocal, as on WhatsApp: who hides it sees no one's.
    hide_last_seen = models.BooleanField(default=False)
    # Whether the user has a live connection, as of the last presence transition: the task
    # worker (another process) reads it to decide whether someone is offline.
    online = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"presence of user {self.user_id}"


class Account(models.Model):
    """A user's Linkup settings beyond presence: who may add them to groups, the email
    address they proved they read, and the username's confusable skeleton."""

    class GroupAdds(models.TextChoices):
        EVERYONE = "everyone"
        CONTACTS = "contacts"  # people who share a room with me
        NOBODY = "nobody"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="linkup_account",
    )

    class Theme(models.TextChoices):
        SYSTEM = ""  # as the device says (prefers-color-scheme)
        LIGHT = "light"
        DARK = "dark"

    # "" follows the site's GROUP_ADDS_DEFAULT; whoever may not add the user invites them.
    group_adds = models.CharField(max_length=8, choices=GroupAdds.choices, blank=True, default="")
    # The web client's colours: the device's choice, or the person's.
    theme = models.CharField(max_length=5, choices=Theme.choices, blank=True, default="")
    # The address a verification link was followed for: digests go to user.email only
    # while it is this one.
    verified_email = models.EmailField(blank=True, default="")
    # The username's confusability keys (linkup.core.confusables.username_keys, Unicode TR39
    # skeletons): no two accounts hold the same one ("" where an older account holds it).
    name_key = models.CharField(max_length=600, blank=True, default="")
    name_key_caseless = models.CharField(max_length=600, blank=True, default="")
    # The profile others see: a name to be shown by ("" shows the username), a line about
    # them, and their picture (the storage's name for it, linkup.actions.profiles; "" none).
    display_name = models.CharField(max_length=64, blank=True, default="")
    about = models.CharField(max_length=140, blank=True, default="")
    avatar = models.CharField(max_length=200, blank=True, default="")
    # The pages' language ("" follows the browser's Accept-Language; settings.LANGUAGES).
    language = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["name_key"], condition=~Q(name_key=""), name="linkup_name_key_once"
            ),
            models.UniqueConstraint(
                fields=["name_key_caseless"],
                condition=~Q(name_key_caseless=""),
                name="linkup_name_key_caseless_once",
            ),
        ]

    def __str__(self) -> str:
        return f"account settings of user {self.user_id}"


class Invitation(models.Model):
    """An invitation to a group, for someone who may not be added by the one who asked: they
    join by accepting it."""

    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, related_name="invitations", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="linkup_invitations"
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="linkup_invitation_once")
        ]

    def __str__(self) -> str:
        return f"invitation of user {self.user_id} to room {self.room_id}"


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="linkup_tokens"
    )
    # SHA-256 hex digest of the random token: a stolen table holds no usable token, and a
    # check costs one indexed look-up (a password hasher would cost ~100 ms a request).
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    # What asked for it (the User-Agent, cut short), shown in the person's list of sessions.
    user_agent = models.CharField(max_length=200, blank=True, default="")

    def __str__(self) -> str:
        return f"token {self.pk} of user {self.user_id}"


class WebSession(models.Model):
    """A signed-in web session (Django's session framework keeps its data), recorded at
    sign-in so its person can list their sessions and end one from another device."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="linkup_web_sessions"
    )
    # The session store's key: ending the session deletes it there (Django's own session
    # table holds the same key).
    session_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    user_agent = models.CharField(max_length=200, blank=True, default="")

    def __str__(self) -> str:
        return f"web session {self.pk} of user {self.user_id}"


class SocketTicket(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    # Set when redeemed: a ticket opens one socket only.
    used_at = models.DateTimeField(null=True, blank=True)
    # What minted it: a ticket dies with that token or session, and the socket it opens
    # closes when they end.
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.CASCADE)
    session_digest = models.CharField(max_length=64, blank=True, default="", db_index=True)

    def __str__(self) -> str:
        return f"ticket {self.pk} of user {self.user_id}"


class MessagingError(models.Model):
    class Category(models.TextChoices):
        ASYNC_CONTEXT = "async_context"
        SERIALIZATION = "serialization"
        CONNECTION = "connection"
        ROUTING = "routing"
        DATABASE = "database"
        DELIVERY = "delivery"

    category = models.CharField(max_length=16, choices=Category.choices)
    message = models.TextField()
    # Ids and names only (user, room, client_id, connection): never message bodies or tokens.
    context = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    resolved = models.BooleanField(default=False)

    class Meta:
        # The admin lists unresolved errors newest first.
        indexes = [
            models.Index(fields=["resolved", "-occurred_at"], name="linkup_error_open"),
        ]

    def __str__(self) -> str:
        return f"{self.category}: {self.message[:60]}"

    def as_dict(self) -> dict[str, Any]:
        return {"category": self.category, "message": self.message, "context": self.context}


class Notification(models.Model):
    """Something a user should see: stored always, delivered by the first path that reaches
    them (a live socket, the stored list on their next visit, an email digest, Web Push).

    It ends read, delivered, failed (every fallback gave up) or expired (still pending
    after NOTIFICATION_EXPIRE_DAYS)."""

    class Kind(models.TextChoices):
        MESSAGE = "message"  # a new message in a direct room
        MENTION = "mention"  # @username in a group
        ADDED = "added"  # added to a group
        INVITED = "invited"  # invited to a group (who may not add them directly)

    class Via(models.TextChoices):
        LIVE = "live"
        STORED = "stored"
        EMAIL = "email"
        PUSH = "push"

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="linkup_notifications",
        db_index=False,
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    title = models.CharField(max_length=200)
    body = models.CharField(max_length=300, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    # The room and seq it is about, when any: reading the room up to `seq` reads it.
    room = models.ForeignKey(
        Room, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    seq = models.BigIntegerField(null=True, blank=True)
    # Who caused it (a message's sender, who added or invited): per-sender limits count it.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivered_via = models.CharField(max_length=6, choices=Via.choices, blank=True, default="")
    failed_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The list (newest first) and the unread count.
            models.Index(fields=["recipient", "-id"], name="linkup_notif_recipient"),
            models.Index(fields=["recipient", "read_at"], name="linkup_notif_unread"),
            # Reading a room reads its notifications.
            models.Index(fields=["recipient", "room", "seq"], name="linkup_notif_room"),
            # A sender's recent notifications to one recipient (NOTIFY_PER_SENDER_MAX).
            models.Index(fields=["recipient", "actor", "created_at"], name="linkup_notif_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} notification {self.pk} for user {self.recipient_id}"

    @property
    def state(self) -> str:
        if self.read_at is not None:
            return "read"
        if self.delivered_at is not None:
            return "delivered"
        if self.failed_at is not None:
            return "failed"
        if self.expired_at is not None:
            return "expired"
        return "pending"


class NotificationDelivery(models.Model):
    """One fallback path (email, push) of one notification: at most one row per pair, so a
    notification is sent at most once by each path."""

    class Channel(models.TextChoices):
        EMAIL = "email"
        PUSH = "push"

    class Status(models.TextChoices):
        PENDING = "pending"  # waiting for its next attempt
        SENDING = "sending"  # claimed by a worker's batch
        SENT = "sent"
        SUPPRESSED = "suppressed"  # read or delivered elsewhere before it went
        FAILED = "failed"  # gave up after the last attempt
        EXPIRED = "expired"

    notification = models.ForeignKey(
        Notification,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_index=False,
    )
    channel = models.CharField(max_length=5, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When a pending delivery may be tried again (backoff after a failed attempt).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # The batch (one email digest, one push) that claimed or sent it.
    batch = models.CharField(max_length=32, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "channel"], name="linkup_delivery_once_per_path"
            ),
        ]
        indexes = [models.Index(fields=["batch"], name="linkup_delivery_batch")]

    def __str__(self) -> str:
        return f"{self.channel} of notification {self.notification_id}: {self.status}"


class FallbackSchedule(models.Model):
    """When a user's fallback deliveries are next looked at: one row per user with pending
    notifications, so a burst of notifications enqueues one task, not one each."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    due_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"fallback of user {self.user_id} due {self.due_at}"


class CircuitBreaker(models.Model):
    """The state of one transport's circuit breaker, shared by every worker process."""

    class State(models.TextChoices):
        CLOSED = "closed"
        OPEN = "open"
        HALF_OPEN = "half_open"

    transport = models.CharField(max_length=16, primary_key=True)
    state = models.CharField(max_length=9, choices=State.choices, default=State.CLOSED)
    failures = models.PositiveIntegerField(default=0)  # consecutive
    opened_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.transport} breaker: {self.state}"


class PushSubscription(models.Model):
    """A browser's Web Push subscription (PushSubscription.toJSON())."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="linkup_push"
    )
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"push subscription {self.pk} of user {self.user_id}"

    def as_info(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class Block(models.Model):
    """`blocker` blocked `blocked`: no direct room or message between them (either way), and
    neither sees the other's presence, last seen or typing. Groups they share are unchanged."""

    blocker = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="linkup_blocks",
        db_index=False,
    )
    blocked = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="linkup_block_unique"),
            models.CheckConstraint(
                condition=~Q(blocker=models.F("blocked")), name="linkup_block_not_self"
            ),
        ]
        # "Who blocked me" (sockets' handshakes, presence): the reverse look-up.
        indexes = [models.Index(fields=["blocked", "blocker"], name="linkup_block_blocked")]

    def __str__(self) -> str:
        return f"user {self.blocker_id} blocked user {self.blocked_id}"


class Report(models.Model):
    """A person's report of a message (with the messages around it as they were when
    reported) or of a user, for the site's moderators (the Django admin)."""

    class State(models.TextChoices):
        OPEN = "open"
        DISMISSED = "dismissed"
        ACTIONED = "actioned"

    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The user reported: the message's sender for a message, or the one named.
    reported_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="linkup_reports_against",
    )
    room = models.ForeignKey(
        Room, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    seq = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField()
    # The reported message and those around it when reported: [{"seq", "sender", "body",
    # "created_at", "reported"}], so a later edit or delete does not change what was seen.
    context = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    state = models.CharField(max_length=9, choices=State.choices, default=State.OPEN)
    action = models.CharField(max_length=40, blank=True, default="")  # what a moderator did
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("moderate", "Can review reports and act on them")]
        indexes = [models.Index(fields=["state", "created_at"], name="linkup_report_queue")]

    def __str__(self) -> str:
        what = f"message {self.room_id}#{self.seq}" if self.seq else f"user {self.reported_user_id}"
        return f"report {self.pk} of {what} ({self.state})"


class DataExport(models.Model):
    """A person's copy of their data (`POST /api/v1/me/export`): a zip the task worker
    builds, which only they can fetch, kept EXPORT_KEEP_S."""

    class State(models.TextChoices):
        PENDING = "pending"
        READY = "ready"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="linkup_exports"
    )
    state = models.CharField(max_length=7, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    file = models.CharField(max_length=255, blank=True)  # its name in the storage
    size = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"export {self.pk} of user {self.user_id} ({self.state})"
