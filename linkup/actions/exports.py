"""A person's copy of their data: asked for, built by the task worker
(linkup/tasks/exports.py), fetched by its owner alone."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from linkup.actions.uploads import Fetch
from linkup.core.errors import NotFound
from linkup.core.serialization import format_time
from linkup.models import DataExport
from linkup.tasks import exports as export_tasks


def export_dict(export: DataExport) -> dict[str, Any]:
    """The export as `GET /me/export/{id}` shows it: `url` and `size` once it is ready."""
    found: dict[str, Any] = {
        "id": str(export.pk),
        "state": export.state,
        "created_at": format_time(export.created_at),
    }
    if export.state == DataExport.State.READY:
        found["url"] = reverse("linkup-api:export_file", kwargs={"export_id": str(export.pk)})
        found["size"] = export.size
    return found


def recent_exports(user: Any, count: int = 5) -> list[dict[str, Any]]:
    """The person's latest exports, newest first (`created`: the time itself, for pages)."""
    found = DataExport.objects.filter(user=user).order_by("-created_at")[:count]
    return [{**export_dict(e), "created": e.created_at} for e in found]


def do_request_export(user: Any) -> DataExport:
    """A new export of `user`'s data (or the one already being built)."""
    with transaction.atomic():
        pending = DataExport.objects.filter(user=user, state=DataExport.State.PENDING).first()
        if pending is not None:
            return pending
        export = DataExport.objects.create(id=uuid.uuid4(), user=user, created_at=timezone.now())
        transaction.on_commit(lambda: export_tasks.build_export.enqueue(str(export.pk)))
    return export


def export_of(user: Any, export_id: str) -> DataExport:
    """One of `user`'s exports; anyone else's, or none, is the same NotFound."""
    try:
        key = uuid.UUID(str(export_id))
    except ValueError:
        raise NotFound("export not found") from None
    export = DataExport.objects.filter(pk=key, user=user).first()
    if export is None:
        raise NotFound("export not found")
    return export


def export_file(user: Any, export_id: str) -> Fetch:
    export = export_of(user, export_id)
    if export.state != DataExport.State.READY:
        raise NotFound("export not ready")
    day = export.created_at.date().isoformat()
    return Fetch(export.file, f"linkup-export-{day}.zip", "application/zip", export.size, False)
