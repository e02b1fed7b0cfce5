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
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    # Highest seq assigned in this room. Sends lock the row and take last_seq + 1, so
    # seqs are gap-free and in commit order.
    last_seq = models.BigIntegerField(default=0)
    # Lowest seq still stored: messages below it were purged by retention (not lost).
    first_seq = models.BigIntegerField(default=1)
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

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="linkup_memberships"
    )
    role = models.CharField(max_length=6, choices=Role.choices, default=Role.MEMBER)
    # Receipt markers: "delivered up to seq N", "read up to seq N". They only grow, are
    # clamped to the room's last_seq, and read_seq <= delivered_seq always holds.
    delivered_seq = models.BigIntegerField(default=0)
    read_seq = models.BigIntegerField(default=0)
    joined_at = models.DateTimeField()

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
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    seq = models.BigIntegerField()
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="linkup_messages"
    )
    body = models.TextField()
    # Chosen by the client (a UUID string); makes sends idempotent per room and sender.
    client_id = models.CharField(max_length=64)
    created_at = models.DateTimeField()

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


class MarkerMove(models.Model):
    """One accepted move of a member's marker: a log of moves, not a row per message.

    The first move of a member's marker to a seq >= S is when message S reached them, which
    answers "message info" (who has it delivered, who read it, when)."""

    class Kind(models.TextChoices):
        DELIVERED = "delivered"
        READ = "read"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
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
    # Hide last seen from others; reciprocal, as on WhatsApp: who hides it sees no one's.
    hide_last_seen = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"presence of user {self.user_id}"


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="linkup_tokens"
    )
    # SHA-256 hex digest of the random token: a stolen table holds no usable token, and a
    # check costs one indexed look-up (a password hasher would cost ~100 ms a request).
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token {self.pk} of user {self.user_id}"


class SocketTicket(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    # Set when redeemed: a ticket opens one socket only.
    used_at = models.DateTimeField(null=True, blank=True)

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
