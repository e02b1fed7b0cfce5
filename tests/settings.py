"""Test settings: the server's settings with fast password hashing and a file database."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("LINKUP_VAR_DIR", tempfile.mkdtemp(prefix="linkup-test-"))

from linkup_server.settings import *  # noqa: F403
from linkup_server.settings import DATABASES, STORAGES, VAR_DIR

# Pages render here without a `collectstatic` first: plain static names, no manifest (the live
# servers run the standalone server's settings: hashed names, tests/test_static.py).
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Real hashing is measured elsewhere; tests log in thousands of times.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Threads need a file-backed test database: Django's in-memory one locks at once.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_linkup_{os.getpid()}"}

LINKUP = {
    "REGISTRATION_OPEN": True,
    "RECORD_ERRORS": True,
    # In-process tests (Hypothesis above all) ask as fast as a loop can: the budgets are
    # lifted here, and the tests of the budgets set them (tests/test_budgets.py). Live
    # servers run the standalone server's settings, defaults included.
    "FRAME_BURST": 10**9,
    "SYNC_CURSOR_BURST": 10**9,
    "READ_BURST": 10**9,
    "ROOM_CREATE_BURST": 10**9,
    "MEMBER_ADD_BURST": 10**9,
    "GROUP_CREATE_BURST": 10**9,
    "UPLOAD_BURST": 10**9,
    "FILE_READ_BURST": 10**9,
    "MESSAGE_SEARCH_BURST": 10**9,
    "REPORT_BURST": 10**9,
    "EXPORT_BURST": 10**9,
    # Empty search answers wait out a floor (a timing side channel); tests of it set it.
    "MESSAGE_SEARCH_EMPTY_FLOOR_S": 0,
}
