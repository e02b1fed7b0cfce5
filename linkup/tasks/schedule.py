"""Background work, through Django's Tasks API (django-tasks with its database backend).

Why the database backend rather than Celery: the task row is written in the same transaction
as the notification it serves, so a committed notification always has its task and a
rolled-back one never does (no broker to dual-write to), and the embedded default needs no
service beside SQLite. Run the worker with `manage.py db_worker` (`make demo` starts one).

One task, `deliver_fallback(user_id)`, looks at a user's undelivered notifications: it sends
the due ones (email digest, Web Push), retries failures with backoff, expires old ones, and
enqueues itself again for the next moment anything is due. `FallbackSchedule` keeps one
pending run per user, so a burst of notifications enqueues one task.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

try:  # Django 6 has the Tasks API built in; Django 5.2 takes the django-tasks backport.
    from django.tasks import task  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the Django version
    from django_tasks import task  # type: ignore[no-redef,unused-ignore]

from linkup.core.log import log_event
from linkup.models import FallbackSchedule
from linkup.tasks import fallback

# A run that failed (the database down, a bug) is tried again this much later: the chain
# never stops because one run did.
RETRY_FAILED_RUN_S = 60.0
# A schedule this far past due has no task coming (its worker died): enqueue another.
STALE_SCHEDULE_S = 120.0


@task()
def deliver_fallback(user_id: int) -> str | None:
    """Run the fallback chain for one user; return when it runs next (ISO time), if ever."""
    try:
        due = fallback.run_for_user(user_id)
    except Exception as exc:
        log_event(logging.ERROR, "delivery", "fallback run failed; retrying", exc, user_id=user_id)
        retry = timezone.now() + dt.timedelta(seconds=RETRY_FAILED_RUN_S)
        try:
            with transaction.atomic():
                schedule_fallback([user_id], retry, force=True)
        except Exception as again:  # the database itself is down: the next send reschedules
            log_event(logging.ERROR, "delivery", "fallback retry not scheduled", again)
        raise
    if due is not None:
        with transaction.atomic():
            schedule_fallback([user_id], due, force=True)
        return due.isoformat()
    return None


def schedule_fallback(user_ids: list[int], due: dt.datetime, *, force: bool = False) -> None:
    """Make sure a fallback run for each user happens no later than `due` (in the caller's
    transaction: the schedule and its task commit with whatever called for them).

    The schedule rows are read FOR UPDATE: a run deleting one (it is starting) waits for
    this transaction, so it sees the notification this transaction adds. A row long past
    due has no task coming (its worker died) and counts as missing; `force` (the task
    rescheduling itself) always enqueues."""
    if not user_ids:
        return
    existing = dict(
        FallbackSchedule.objects.select_for_update()
        .filter(user_id__in=user_ids)
        .order_by("user_id")  # one lock order for every transaction: no deadlock
        .values_list("user_id", "due_at")
    )
    stale = timezone.now() - dt.timedelta(seconds=STALE_SCHEDULE_S)
    new = [u for u in user_ids if u not in existing]
    sooner = [
        u for u in user_ids if u in existing and (force or existing[u] > due or existing[u] < stale)
    ]
    if new:
        FallbackSchedule.objects.bulk_create(
            [FallbackSchedule(user_id=u, due_at=due) for u in new], ignore_conflicts=True
        )
    if sooner:
        FallbackSchedule.objects.filter(user_id__in=sooner).update(due_at=due)
    for user_id in new + sooner:
        deliver_fallback.using(run_after=due).enqueue(user_id)
