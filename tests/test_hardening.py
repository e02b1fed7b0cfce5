"""Smaller defences from the red-team probe (issue 16, item 7): the API docs page is off by
default, HTTPS deployments get secure cookies and HSTS from one setting, and the demo's
console emails are not held in a pipe's buffer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent


def test_the_api_docs_page_is_off_by_default_and_the_document_stays(db: Any) -> None:
    client = Client()
    response = client.get("/api/v1/docs")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert client.get("/api/v1/openapi.json").status_code == 200


def _settings_under(env: dict[str, str]) -> dict[str, Any]:
    code = (
        "import json, linkup_server.settings as s; print(json.dumps({k: getattr(s, k, None) "
        "for k in ('SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_PROXY_SSL_HEADER', "
        "'SECURE_HSTS_SECONDS', 'CSRF_TRUSTED_ORIGINS')}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LINKUP_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("https", [False, True])
def test_one_setting_turns_on_secure_cookies_hsts_and_the_proxy_header(https: bool) -> None:
    found = _settings_under({"LINKUP_HTTPS": "1"} if https else {})
    if https:
        assert found["SESSION_COOKIE_SECURE"] and found["CSRF_COOKIE_SECURE"]
        assert found["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
        assert found["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    else:
        assert not found["SESSION_COOKIE_SECURE"] and not found["SECURE_HSTS_SECONDS"]
        assert found["SECURE_PROXY_SSL_HEADER"] is None
    # CSRF trusts the request's own origin and what is named: never derived variants.
    assert found["CSRF_TRUSTED_ORIGINS"] == []


def test_the_demo_worker_writes_its_output_unbuffered(monkeypatch: pytest.MonkeyPatch) -> None:
    from linkup_server import cli

    seen: dict[str, Any] = {}

    def fake_popen(command: list[str], **kwargs: Any) -> Any:
        seen.update(kwargs)
        return None

    monkeypatch.setattr(cli.subprocess, "Popen", fake_popen)
    cli.start_worker()
    assert seen["env"]["PYTHONUNBUFFERED"] == "1"


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("quinn", "password", "too common"),
        ("quinn-the-eskimo", "quinn-the-eskimo", "too similar"),
        ("quinn", "8675309123", "entirely numeric"),
        ("quinn", "short", "too short"),
    ],
)
def test_registration_refuses_weak_passwords_saying_why(
    db: Any, username: str, password: str, reason: str
) -> None:
    from tests.test_api import Api

    response = Api().post("/auth/register", {"username": username, "password": password})
    assert response.status_code == 400
    assert reason in response.json()["error"]["detail"]
    page = Client().post(
        "/sign-up/", {"username": username, "password": password, "password2": password}
    )
    assert page.status_code == 400 and reason in page.content.decode()
