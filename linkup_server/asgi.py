"""ASGI entry point of the standalone server (uvicorn linkup_server.asgi:application)."""

from __future__ import annotations

import os

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "linkup_server.settings")
http_application = get_asgi_application()

from linkup.asgi import websocket_application  # noqa: E402  (needs the apps loaded)

application = ProtocolTypeRouter({"http": http_application, "websocket": websocket_application()})
