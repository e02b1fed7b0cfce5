"""Attachments over real HTTP, against a started server: a file goes up as multipart,
travels in a message, and comes back in ranges to members only; an upload whose stated
length is over the limit is refused before a byte of its body is read."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest

from tests.live import api, new_user

pytestmark = pytest.mark.live


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


def http(
    base: str, method: str, path: str, token: str | None, body: bytes | None = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(base + "/api/v1" + path, method=method, data=body)
    for key, value in headers.items():
        request.add_header(key.replace("_", "-"), value)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, _lower(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, _lower(exc.headers), exc.read()


def upload_over_http(base: str, token: str, data: bytes, name: str) -> dict[str, Any]:
    """POST one file as multipart to a live server; the upload object (201 asserted)."""
    body, boundary = multipart(data, name)
    content_type = f"multipart/form-data; boundary={boundary}"
    status, _, raw = http(base, "POST", "/uploads", token, body, Content_Type=content_type)
    assert status == 201, raw
    return dict(json.loads(raw)["upload"])


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def test_a_file_goes_up_travels_in_a_message_and_comes_back_in_ranges(
    server: dict[str, Any],
) -> None:
    base = server["base"]
    alice, bob, carol = (new_user(base, n) for n in ("alice", "bob", "carol"))
    status, room = api(
        base, "POST", "/rooms", {"kind": "direct", "members": [bob["id"]]}, alice["token"]
    )
    assert status == 201, room
    data = b"%PDF-1.7\n" + os.urandom(3 * 1024 * 1024)
    upload = upload_over_http(base, alice["token"], data, "quarterly report.pdf")
    assert upload["content_type"] == "application/pdf" and upload["size"] == len(data)
    send = {"client_id": str(uuid.uuid4()), "body": "the report", "attachments": [upload["id"]]}
    status, message = api(base, "POST", f"/rooms/{room['id']}/messages", send, alice["token"])
    assert status == 201, message
    path = message["attachments"][0]["url"].removeprefix("/api/v1")
    status, headers, whole = http(base, "GET", path, bob["token"])
    assert status == 200 and whole == data, headers
    assert headers["content-disposition"].startswith("attachment;")
    assert headers["x-content-type-options"] == "nosniff"
    status, headers, part = http(base, "GET", path, bob["token"], Range="bytes=1048576-1048675")
    assert status == 206 and part == data[1048576:1048676]
    assert headers["content-range"] == f"bytes 1048576-1048675/{len(data)}"
    status, _, outsider = http(base, "GET", path, carol["token"])
    status_missing, _, missing = http(base, "GET", f"/attachments/{uuid.uuid4()}", carol["token"])
    assert status == status_missing == 404 and outsider == missing


def test_an_oversize_upload_is_refused_before_its_body_is_read(server: dict[str, Any]) -> None:
    base = server["base"]
    user = new_user(base, "big")
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            (
                "POST /api/v1/uploads HTTP/1.1\r\n"
                f"Host: {host}\r\nAuthorization: Bearer {user['token']}\r\n"
                "Content-Type: multipart/form-data; boundary=x\r\n"
                f"Content-Length: {100 * 1024 * 1024}\r\n\r\n"
            ).encode()
            + b"--x\r\n"  # and nothing more: the 100 MB never come
        )
        started = time.monotonic()
        received = b""
        while chunk := sock.recv(4096):  # the server closes after its answer
            received += chunk
        answer = received.decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer
    assert '"too_large"' in answer
    assert time.monotonic() - started < 5
    # The server is unaffected.
    status, me = api(base, "GET", "/me", token=user["token"])
    assert status == 200, me
    # A chunked body states no length: it could be any size, so it is refused unread too.
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            (
                "POST /api/v1/uploads HTTP/1.1\r\n"
                f"Host: {host}\r\nAuthorization: Bearer {user['token']}\r\n"
                "Content-Type: multipart/form-data; boundary=x\r\n"
                "Transfer-Encoding: chunked\r\n\r\n5\r\n--x\r\n\r\n"
            ).encode()
        )
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert received.startswith(b"HTTP/1.1 413"), received
