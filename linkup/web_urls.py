"""The web client's pages: include with `path("", include("linkup.web_urls"))` (or a prefix).

Public: a site names this module. The patterns live in linkup.web.page_urls."""

from linkup.web.page_urls import urlpatterns

__all__ = ["urlpatterns"]
