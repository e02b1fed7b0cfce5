"""ASGI entry point of the standalone server (uvicorn linkup_server.asgi:application)."""

from __future__ import annotations

import os

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "linkup_server.settings")
http_application = get_asgi_application()

if os.environ.get("LINKUP_SERVE_STATIC", "1") != "0":
    # The standalone server serves the web client's few small files itself, with Django's
    # own handler (from the apps' static folders, no collectstatic needed). Behind nginx, set
    # LINKUP_SERVE_STATIC=0 and serve `manage collectstatic`'s output there instead.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    http_application = ASGIStaticFilesHandler(http_application)

from linkup.asgi import RequestThreads, websocket_application  # noqa: E402  (apps loaded)

application = ProtocolTypeRouter(
    {"http": RequestThreads(http_application), "websocket": websocket_application()}
)
