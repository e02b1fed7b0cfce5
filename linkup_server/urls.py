from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from linkup.web.throttle import admin_login

urlpatterns = [
    # The admin's login answers to the same password-guessing throttle as Linkup's own.
    path("admin/login/", admin_login(admin.site)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("linkup.urls")),
    path("", include("linkup.web_urls")),
]
