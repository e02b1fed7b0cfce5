from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from linkup.actions import changes, reports
from linkup.models import (
    ApiToken,
    CircuitBreaker,
    Membership,
    Message,
    MessagingError,
    Notification,
    NotificationDelivery,
    PushSubscription,
    Report,
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


# -- moderation: the report queue -------------------------------------------------------------
# Staff with only the `linkup.moderate` permission ("Can review reports and act on them") see
# this queue and nothing else of Linkup's; superusers see it too.


def _moderator(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.has_perm("linkup.moderate"))


@admin.action(description="Dismiss (nothing to do)")
def dismiss_reports(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    done = reports.dismiss(queryset.filter(state=Report.State.OPEN), request.user)
    modeladmin.message_user(request, f"{done} report(s) dismissed.")


@admin.action(description="Delete the reported message for everyone")
def delete_reported(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    done = reports.delete_reported_messages(queryset, request.user)
    modeladmin.message_user(request, f"{done} message(s) deleted for everyone.")


@admin.action(description="Deactivate the reported user (ends their sessions at once)")
def deactivate_reported(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> None:
    done, refused = reports.deactivate_reported_users(
        queryset.select_related("reported_user"), request.user
    )
    modeladmin.message_user(request, f"{done} user(s) deactivated.")
    if refused:
        modeladmin.message_user(
            request, f"Staff accounts are left to an administrator: {', '.join(refused)}."
        )


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "state", "what", "reported_user", "short_reason")
    list_filter = ("state", "created_at", "room__kind")
    date_hierarchy = "created_at"
    search_fields = ("reason", "reported_user__username")
    ordering = ("state", "-created_at")
    list_select_related = ("reported_user", "room")
    fields = (
        "state",
        "created_at",
        "reporter",
        "reported_user",
        "room",
        "seq",
        "reason",
        "in_context",
        "action",
        "resolved_by",
        "resolved_at",
    )
    readonly_fields = fields
    actions = [dismiss_reports, delete_reported, deactivate_reported]

    @admin.display(description="reported")
    def what(self, report: Report) -> str:
        if report.seq is not None:
            return f"message {report.room_id}#{report.seq}"
        return "user"

    @admin.display(description="reason")
    def short_reason(self, report: Report) -> str:
        return report.reason if len(report.reason) <= 80 else report.reason[:79] + "…"

    @admin.display(description="the message in context (as it was when reported)")
    def in_context(self, report: Report) -> Any:
        if not report.context:
            return "—"
        rows = format_html_join(
            "",
            '<tr style="{}"><td>{}</td><td>{}</td><td>{}</td>'
            '<td style="white-space:pre-wrap">{}</td></tr>',
            (
                (
                    "background:#fff3bf;font-weight:bold" if item.get("reported") else "",
                    item.get("seq"),
                    item.get("created_at"),
                    (item.get("sender") or {}).get("username"),
                    "(deleted)" if item.get("deleted") else item.get("body"),
                )
                for item in report.context
            ),
        )
        return format_html(
            "<table><tr><th>seq</th><th>time</th><th>sender</th><th>text</th></tr>{}</table>",
            rows,
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _moderator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _moderator(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _moderator(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
