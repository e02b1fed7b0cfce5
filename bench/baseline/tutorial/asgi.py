import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutorial.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from tutorial.chat.routing import websocket_urlpatterns  # noqa: E402

# The tutorial wraps this in AllowedHostsOriginValidator too; the load generator is not a
# browser and sends no Origin, which that validator refuses, so it is left out.
application = ProtocolTypeRouter(
    {"http": django_asgi_app, "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns))}
)
