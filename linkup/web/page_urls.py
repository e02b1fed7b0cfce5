"""The web client's pages. Include with `path("", include("linkup.web_urls"))` (or a prefix)."""

from __future__ import annotations

from django.urls import path

from linkup.web import appshell, views

urlpatterns = [
    path("", views.chat, name="linkup-chat"),
    path("sign-in/", views.sign_in, name="linkup-sign-in"),
    path("sign-up/", views.sign_up, name="linkup-sign-up"),
    path("sign-out/", views.sign_out, name="linkup-sign-out"),
    path("sessions/", views.sessions, name="linkup-sessions"),
    path("account/", views.account, name="linkup-account"),
    path("verify-email/", views.verify_email, name="linkup-verify-email"),
    path("sw.js", appshell.service_worker, name="linkup-sw"),
    path("manifest.webmanifest", appshell.manifest, name="linkup-manifest"),
]
