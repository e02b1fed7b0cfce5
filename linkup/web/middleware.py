"""The REST error-body safety net: Django's own answers under /api/ get the contract's body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from linkup.core.errors import body_for_status
from linkup.core.serialization import dumps


class ApiErrorMiddleware:
    """Give every non-2xx answer under the API prefix the contract's JSON error body.

    Catches what our handlers never see: Django's 404 for unknown URLs, 405s, CSRF failures."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        return self._fix(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        response = await self.get_response(request)
        return self._fix(request, response)

    @staticmethod
    def _fix(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if (
            request.path.startswith("/api/")
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            fixed = HttpResponse(
                dumps(body_for_status(response.status_code)),
                status=response.status_code,
                content_type="application/json",
            )
            for header in ("Retry-After", "Allow"):
                if header in response:
                    fixed[header] = response[header]
            return fixed
        return response
