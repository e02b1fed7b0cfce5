"""Reports: a person tells the site's moderators about a message or a user.

A message is reported with the messages around it as they are at that moment (`context`),
so what the moderator reads is what the reporter saw, whatever is edited or deleted later.
The person reported is told nothing, by any path. Moderators work through the queue in the
Django admin (linkup/admin.py), with the `linkup.moderate` permission alone if they like.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from linkup.core.errors import InvalidInput, NotFound
from linkup.core.protocol import check_id
from linkup.core.serialization import format_time
from linkup.models import Membership, Message, Report
from linkup.store.views import sender_dict

User = get_user_model()

REASON_MAX_CHARS = 1000
CONTEXT_BEFORE = 5  # messages kept before the reported one, and after it
CONTEXT_AFTER = 5


def check_reason(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("reason is required: say what is wrong")
    reason = value.strip()
    if len(reason) > REASON_MAX_CHARS:
        raise InvalidInput(f"reason is longer than {REASON_MAX_CHARS} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in reason):
        raise InvalidInput("reason contains a control character")
    return reason


def _context(room_id: int, seq: int) -> list[dict[str, Any]]:
    rows = (
        Message.objects.filter(
            room_id=room_id, seq__gte=seq - CONTEXT_BEFORE, seq__lte=seq + CONTEXT_AFTER
        )
        .select_related("sender")
        .order_by("seq")
    )
    return [
        {
            "seq": m.seq,
            "sender": sender_dict(m.sender),
            "body": m.body,
            "created_at": format_time(m.created_at),
            "deleted": m.deleted_at is not None,
            "reported": m.seq == seq,
        }
        for m in rows
    ]


def do_report(
    reporter: Any,
    *,
    reason: Any,
    user_id: Any = None,
    room: Any = None,
    seq: Any = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Report a message (`room` and `seq`, of a room the reporter is in) or a user
    (`user_id`); return `{"id", "created_at"}`."""
    reason = check_reason(reason)
    now = now or timezone.now()
    if room is not None or seq is not None:
        if room is None or seq is None:
            raise InvalidInput("a message is reported by its room and seq, both")
        room_id, seq = check_id(room, "room"), check_id(seq, "seq")
        if not Membership.objects.filter(room_id=room_id, user=reporter).exists():
            raise NotFound("room not found")
        message = Message.objects.filter(room_id=room_id, seq=seq).first()
        if message is None:
            raise NotFound("message not found")
        if user_id is not None and user_id != message.sender_id:
            raise InvalidInput("user_id is not the message's sender")
        if message.sender_id == reporter.pk:
            raise InvalidInput("you cannot report your own message")
        report = Report.objects.create(
            reporter=reporter,
            reported_user_id=message.sender_id,
            room_id=room_id,
            seq=seq,
            reason=reason,
            context=_context(room_id, seq),
            created_at=now,
        )
    elif user_id is not None:
        target = User.objects.filter(pk=check_id(user_id, "user_id")).first()
        if target is None:
            raise InvalidInput(f"unknown user: {user_id}")
        if target.pk == reporter.pk:
            raise InvalidInput("you cannot report yourself")
        report = Report.objects.create(
            reporter=reporter, reported_user=target, reason=reason, created_at=now
        )
    else:
        raise InvalidInput("say what is reported: a user_id, or a room and seq")
    return {"id": report.pk, "created_at": format_time(report.created_at)}


# -- moderation (the admin's actions) --------------------------------------------------------


def _close(report: Report, moderator: Any, state: str, action: str, now: dt.datetime) -> None:
    report.state, report.action = state, action
    report.resolved_by, report.resolved_at = moderator, now
    report.save(update_fields=["state", "action", "resolved_by", "resolved_at"])


def dismiss(reports: Any, moderator: Any, *, now: dt.datetime | None = None) -> int:
    """Close reports with nothing done; return how many."""
    now = now or timezone.now()
    done = 0
    for report in reports:
        _close(report, moderator, Report.State.DISMISSED, "dismissed", now)
        done += 1
    return done


def delete_reported_messages(
    reports: Any, moderator: Any, *, now: dt.datetime | None = None
) -> int:
    """Delete each reported message for everyone (through its room's change log, so every
    member's client learns of it) and close its report; return how many messages were
    deleted now. Reports of users alone are left open."""
    from linkup.actions.changes import do_moderate_delete

    now = now or timezone.now()
    deleted = 0
    for report in reports:
        if report.room_id is None or report.seq is None:
            continue
        try:
            deleted += do_moderate_delete(report.room_id, report.seq, now=now)
        except NotFound:  # the room is gone: nothing left to delete
            pass
        _close(report, moderator, Report.State.ACTIONED, "deleted the message", now)
    return deleted


def deactivate_reported_users(
    reports: Any, moderator: Any, *, now: dt.datetime | None = None
) -> tuple[int, list[str]]:
    """Deactivate each reported user (which ends their sockets, tokens and sessions at
    once) and close the report; staff accounts are left to an administrator. Return (how
    many were deactivated, the usernames refused)."""
    now = now or timezone.now()
    done, refused = 0, []
    for report in reports:
        user = report.reported_user
        if user is None:
            continue
        if user.is_staff or user.is_superuser:
            refused.append(user.get_username())
            continue
        if user.is_active:
            user.is_active = False
            user.save(update_fields=["is_active"])
            done += 1
        _close(report, moderator, Report.State.ACTIONED, "deactivated the user", now)
    return done, refused
