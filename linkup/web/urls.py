"""Include with `path("api/v1/", include("linkup.urls"))`."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from linkup.core.errors import body_for_status
from linkup.core.serialization import dumps
from linkup.web.api import api


@csrf_exempt  # it changes nothing: whatever the method, an unknown path is a 404, not a 403
def api_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Unknown API paths answer with the contract's JSON body, not Django's HTML page."""
    return HttpResponse(dumps(body_for_status(404)), status=404, content_type="application/json")


urlpatterns = [
    path("", api.urls),
    re_path(r"^(?P<rest>.*)$", api_not_found),
]
