"""Structured logs: the JSON line format, and the ids a failure's line carries."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from django.db import IntegrityError

from linkup.core.errors import ServerError
from linkup.core.log import JsonFormatter, log_event
from linkup.models import MessagingError
from linkup.realtime.edges import failure_context, perform

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def a_send(sender: Any, room_id: int, client_id: str, body: str) -> None:
    raise IntegrityError("duplicate key value violates unique constraint")


def test_json_lines_carry_time_level_category_context_and_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        with caplog.at_level(logging.INFO, logger="linkup"):
            log_event(logging.WARNING, "delivery", "it broke", exc, room_id=7, body="secret")
    line = JsonFormatter().format(caplog.records[-1])
    entry = json.loads(line)
    assert "\n" not in line
    assert set(entry) == {"time", "level", "logger", "message", "category", "context", "exception"}
    assert TIME_RE.match(entry["time"])
    assert (entry["level"], entry["logger"], entry["message"]) == ("warning", "linkup", "it broke")
    assert entry["category"] == "delivery"
    assert entry["context"] == {"room_id": 7}  # the body is never logged
    assert "ValueError: boom" in entry["exception"]


def test_failure_context_names_ids_however_they_were_passed(alice: Any) -> None:
    assert failure_context(a_send, (alice, 3, "c-1", "a body"), {}) == {
        "user_id": alice.pk,
        "room_id": 3,
        "client_id": "c-1",
    }
    assert failure_context(a_send, (), {"sender": alice, "room_id": 3}) == {
        "user_id": alice.pk,
        "room_id": 3,
    }
    assert failure_context(a_send, (1, 2, 3, 4, 5, 6), {}) == {}  # does not bind: nothing


@pytest.mark.django_db(transaction=True)
async def test_a_database_failure_is_logged_and_recorded_with_its_ids(
    alice: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="linkup"), pytest.raises(ServerError):
        await perform(a_send, alice, 42, "client-9", "the body")
    record = next(r for r in caplog.records if r.name == "linkup")
    assert record.category == "database"  # type: ignore[attr-defined]
    assert record.context == {  # type: ignore[attr-defined]
        "user_id": alice.pk,
        "room_id": 42,
        "client_id": "client-9",
    }
    stored = await MessagingError.objects.aget()
    assert stored.category == "database"
    assert stored.context["room_id"] == 42 and "the body" not in json.dumps(stored.context)
