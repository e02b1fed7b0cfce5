"""Public: `MIDDLEWARE` names `linkup.middleware.ApiErrorMiddleware` (linkup.web.middleware);
an ASGI application composed by hand may wrap its router in `SocketAuthMiddleware`
(linkup.realtime.auth)."""

from linkup.realtime.auth import SocketAuthMiddleware
from linkup.web.middleware import ApiErrorMiddleware

__all__ = ["ApiErrorMiddleware", "SocketAuthMiddleware"]
