"""The REST API's URLs: include with `path("api/v1/", include("linkup.urls"))`.

Public: a site names this module. The patterns live in linkup.web.urls."""

from linkup.web.urls import urlpatterns

__all__ = ["urlpatterns"]
