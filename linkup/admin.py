from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from linkup.actions import changes
from linkup.models import (
    ApiToken,
    CircuitBreaker,
    Membership,
    Message,
    MessagingError,
    Notification,
    NotificationDelivery,
    PushSubscription,
    Room,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)
    readonly_fields = ("delivered_seq", "read_seq", "joined_at")


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "name", "last_seq", "last_activity_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    readonly_fields = ("last_seq", "direct_key", "created_at", "last_activity_at")
    inlines = [MembershipInline]


@admin.action(description="Delete for everyone (erases the text, edits and reactions)")
def delete_for_everyone(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> None:
    # Through the room's change log, so members' clients learn of it like any delete.
    done = sum(
        changes.do_moderate_delete(room_id, seq)
        for room_id, seq in queryset.values_list("room_id", "seq")
    )
    modeladmin.message_user(request, f"{done} message(s) deleted for everyone.")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "room", "seq", "sender", "created_at", "edited_at", "deleted_at")
    raw_id_fields = ("room", "sender")
    # A message changes only through the room's change log (edits, deletes, reactions):
    # nothing here writes to it but the action below.
    readonly_fields = (
        "room",
        "seq",
        "sender",
        "body",
        "client_id",
        "created_at",
        "reply_to_seq",
        "edited_at",
        "deleted_at",
        "change",
    )
    actions = [delete_for_everyone]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "created_at", "last_used_at")
    raw_id_fields = ("user",)
    exclude = ("digest",)


@admin.action(description="Mark as resolved")
def mark_resolved(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    queryset.update(resolved=True)


@admin.register(MessagingError)
class MessagingErrorAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "category", "message", "resolved")
    list_filter = ("category", "resolved")
    search_fields = ("message",)
    readonly_fields = ("category", "message", "context", "occurred_at")
    actions = [mark_resolved]


class DeliveryInline(admin.TabularInline):
    model = NotificationDelivery
    extra = 0
    can_delete = False
    readonly_fields = (
        "channel",
        "status",
        "attempts",
        "next_attempt_at",
        "batch",
        "last_error",
        "updated_at",
    )


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "recipient", "kind", "title", "created_at", "state", "delivered_via")
    list_filter = ("kind", "delivered_via")
    raw_id_fields = ("recipient", "room")
    readonly_fields = ("created_at", "read_at", "delivered_at", "failed_at", "expired_at")
    inlines = [DeliveryInline]


@admin.register(CircuitBreaker)
class CircuitBreakerAdmin(admin.ModelAdmin):
    """Each transport's breaker: open means batches are held until the cool-down ends."""

    list_display = ("transport", "state", "failures", "opened_at", "updated_at", "last_error")
    readonly_fields = ("transport", "failures", "opened_at", "updated_at", "last_error")
    fields = ("transport", "state", "failures", "opened_at", "updated_at", "last_error")


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "created_at")
    raw_id_fields = ("user",)
    exclude = ("p256dh", "auth")
