"""Email verification from the web side: where the link points, and asking for one."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from linkup.actions import accounts
from linkup.core.conf import setting
from linkup.core.log import log_event
from linkup.realtime.edges import perform


def verify_url(request: HttpRequest) -> str | None:
    """The verification page's absolute URL (PUBLIC_URL, or as this request reached us);
    None where the site does not include the web client's pages."""
    try:
        path = reverse("linkup-verify-email")
    except NoReverseMatch:
        return None
    base = setting("PUBLIC_URL")
    return f"{str(base).rstrip('/')}{path}" if base else request.build_absolute_uri(path)


async def ask(request: HttpRequest, user: Any) -> bool:
    """Have a verification link emailed to the user's address, if any and not verified."""
    url = verify_url(request)
    if url is None:
        log_event(logging.WARNING, "routing", "no verification page: include linkup.web_urls")
        return False
    return bool(await perform(accounts.request_verification, user, url))
