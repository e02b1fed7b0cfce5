"""`make demo` runs `python -m linkup_server demo`: seed idempotently, serve, restart cleanly."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from linkup.models import Membership, Room
from tests.live import ROOT, api, free_port, send_over_rest


@pytest.mark.django_db
def test_demo_seed_is_idempotent() -> None:
    call_command("linkup_demo_seed", stdout=io.StringIO())
    out = io.StringIO()
    call_command("linkup_demo_seed", stdout=out)
    assert "alice / linkup-demo" in out.getvalue()
    assert Room.objects.filter(kind="direct").count() == 1
    assert Room.objects.filter(kind="group").count() == 1
    group = Room.objects.get(kind="group")
    assert sorted(
        Membership.objects.filter(room=group).values_list("user__username", flat=True)
    ) == ["alice", "bob", "carol"]


def _start_demo(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "linkup_server", "demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=10).read()
            return
        except (urllib.error.URLError, OSError):
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            time.sleep(0.1)
    raise AssertionError("demo did not start in 90 s")


def _stop(proc: subprocess.Popen[bytes]) -> str:
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    return out.decode()


def _emailed(var_dir: str) -> bool:
    """Whether the demo's worker has emailed alice's message to bob (before it, the digest
    of bob's "added to the group" notification may go alone)."""
    import sqlite3

    with sqlite3.connect(Path(var_dir, "linkup.sqlite3")) as db:
        row = db.execute(
            "SELECT count(*) FROM linkup_notification WHERE delivered_via = 'email'"
            " AND kind = 'message'"
        ).fetchone()
    return bool(row[0])


@pytest.mark.live
@pytest.mark.embedded_only  # the demo is the embedded default, whatever the environment says
def test_demo_serves_seeded_users_and_restarts_on_the_same_database() -> None:
    env: dict[str, Any] = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    env["LINKUP_VAR_DIR"] = tempfile.mkdtemp(prefix="linkup-demo-")
    env["PORT"] = str(free_port())
    env["LINKUP_NOTIFY_OFFLINE_DELAY_S"] = "1"
    base = f"http://127.0.0.1:{env['PORT']}"
    for run in range(2):
        proc = _start_demo(env)
        started = time.monotonic()
        _wait_up(base, proc)
        took = time.monotonic() - started
        status, body = api(
            base, "POST", "/auth/token", {"username": "alice", "password": "linkup-demo"}
        )
        assert status == 200, body
        status, rooms = api(base, "GET", "/rooms", token=body["token"])
        assert status == 200 and len(rooms["rooms"]) == 2
        if run == 0:
            # The task worker runs beside the server: bob is offline, so alice's message
            # reaches him as an email digest (the console backend prints it) within seconds.
            direct = next(r for r in rooms["rooms"] if r["kind"] == "direct")
            status, _ = send_over_rest(base, direct["id"], "see you at the demo", body["token"])
            assert status == 201
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not _emailed(env["LINKUP_VAR_DIR"]):
                time.sleep(0.3)
        output = _stop(proc)
        if run == 0:
            assert "To: bob@example.com" in output and "alice: see you at the demo" in output, (
                output
            )
        assert "alice / linkup-demo" in output and base in output
        assert Path(env["LINKUP_VAR_DIR"], "linkup.sqlite3").exists()
        print(f"demo run {run + 1} served after {took:.1f} s")
