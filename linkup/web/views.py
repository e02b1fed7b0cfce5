"""The web client's pages: sign in, sign up, sign out, and the chat itself.

The pages are thin: the chat page hands `chat.js` who the user is and where the API and the
socket live; everything else happens over the wire contract. Every page carries a strict
Content-Security-Policy (scripts and styles from our own origin only, no inline code), so a
message body that slipped past `textContent` still could not run.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import alogin, alogout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.i18n import JSONCatalog

from linkup.actions import accounts, credentials, exports, farewell, profiles
from linkup.core.conf import setting
from linkup.core.errors import InvalidInput, LinkupError, RateLimited
from linkup.realtime.edges import perform, read
from linkup.realtime.ratelimit import spend
from linkup.realtime.routing import ROUTE_EXAMPLES
from linkup.store import files
from linkup.tasks.fallback import push_enabled
from linkup.web import appshell, throttle, verification
from linkup.web import files as web_files

View = Callable[..., Any]  # async views (django-stubs types path() for sync ones)


def content_security_policy() -> str:
    """The policy of every Linkup page: nothing but our own origin, and no inline code.
    Images and media may also come from the attachments' storage when it answers by signed
    redirects (S3), and images from `data:` (placeholders)."""
    storage = files.redirect_origin()
    media = "'self'" + (f" {storage}" if storage else "")
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {media} data:",
            f"media-src {media}",
            # 'self' covers ws: and wss: to the same host (CSP Level 3).
            "connect-src 'self'",
            "manifest-src 'self'",
            # The service worker that shows Web Push notifications.
            "worker-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


def with_csp(view: View) -> View:
    """Add the Content-Security-Policy and friends to a page's response."""

    @wraps(view)
    async def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = await view(request, *args, **kwargs)
        response["Content-Security-Policy"] = content_security_policy()
        response["Referrer-Policy"] = "same-origin"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    return wrapped


def _next_url(request: HttpRequest) -> str:
    """Where to go after signing in: a local `next`, else the chat."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("linkup-chat")


def _too_many_sign_ins(request: HttpRequest, username: str, exc: RateLimited) -> HttpResponse:
    wait = max(1, math.ceil(exc.retry_after_s or 1))
    response = render(
        request,
        "linkup/sign_in.html",
        {
            "error": _("Too many failed sign-ins. Try again in %(wait)s seconds.") % {"wait": wait},
            "username": username,
            "next": request.GET.get("next", ""),
            "registration_open": bool(setting("REGISTRATION_OPEN")),
        },
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


@with_csp
async def sign_in(request: HttpRequest) -> HttpResponse:
    """Show the sign-in form; on a correct password, start a session and open the chat."""
    error = ""
    username = ""
    if request.method == "POST":
        username = request.POST.get("username", "")
        # The password hasher is slow by design: keep it off the shared database thread.
        try:
            user = await throttle.guarded(
                request,
                username,
                lambda: sync_to_async(credentials.check_credentials, thread_sensitive=False)(
                    username, request.POST.get("password", "")
                ),
            )
        except RateLimited as exc:
            return _too_many_sign_ins(request, username, exc)
        if user is not None:
            await alogin(request, user)
            language = (await read(accounts.appearance_of, user))["language"]
            response = HttpResponseRedirect(_next_url(request))
            return remember_language(response, language) if language else response
        error = _("Wrong username or password.")
    return render(
        request,
        "linkup/sign_in.html",
        {
            "error": error,
            "username": username,
            "next": request.GET.get("next", ""),
            "registration_open": bool(setting("REGISTRATION_OPEN")),
        },
        status=401 if error else 200,
    )


@with_csp
async def sign_up(request: HttpRequest) -> HttpResponse:
    """Show the sign-up form; create the account, sign in and open the chat."""
    error = ""
    username = ""
    if not setting("REGISTRATION_OPEN"):
        return render(request, "linkup/sign_up.html", {"closed": True}, status=403)
    if request.method == "POST":
        username = request.POST.get("username", "")
        password = request.POST.get("password", "")
        if password != request.POST.get("password2", ""):
            error = _("The two passwords differ.")
        else:
            try:
                user = await sync_to_async(credentials.do_register, thread_sensitive=False)(
                    username, password, request.POST.get("email") or None
                )
            except LinkupError as exc:
                error = exc.detail
            else:
                await alogin(request, user, backend="django.contrib.auth.backends.ModelBackend")
                await verification.ask(request, user)
                return HttpResponseRedirect(reverse("linkup-chat"))
    return render(
        request,
        "linkup/sign_up.html",
        {"error": error, "username": username, "closed": False},
        status=400 if error else 200,
    )


@with_csp
async def verify_email(request: HttpRequest) -> HttpResponse:
    """The link in a verification email: a page with a button (a GET changes nothing, so a
    mail scanner that follows links verifies nobody's address); its POST verifies."""
    token = str(request.POST.get("token") or request.GET.get("token") or "")[:1000]
    if request.method == "POST":
        try:
            user = await perform(accounts.do_verify_email, token)
        except LinkupError as exc:
            return render(request, "linkup/verify_email.html", {"error": exc.detail}, status=400)
        return render(request, "linkup/verify_email.html", {"verified": user.email})
    return render(request, "linkup/verify_email.html", {"token": token})


@with_csp
async def sign_out(request: HttpRequest) -> HttpResponse:
    """End the session (POST only: a link must not sign anyone out)."""
    if request.method == "POST":
        await alogout(request)
        return HttpResponseRedirect(reverse("linkup-sign-in"))
    return render(request, "linkup/sign_out.html", {})


@with_csp
async def sessions(request: HttpRequest) -> HttpResponse:
    """The person's sessions (browsers and API tokens); a POST ends one (`end` names it).
    Ending the one in use signs this browser out."""
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponseRedirect(f"{reverse('linkup-sign-in')}?next={request.path}")
    current = request.session.session_key
    if request.method == "POST":
        target = str(request.POST.get("end", ""))
        try:
            await perform(credentials.do_end_credential, user.pk, target)
        except LinkupError:
            pass  # gone already (ended elsewhere): the list below says so
        listed = await read(credentials.sessions_of, user.pk, current_session=current)
        if not any(s["current"] for s in listed):
            await alogout(request)
            return HttpResponseRedirect(reverse("linkup-sign-in"))
        return HttpResponseRedirect(reverse("linkup-sessions"))
    listed = await read(credentials.sessions_of, user.pk, current_session=current)
    return render(
        request,
        "linkup/sessions.html",
        {
            "sessions": listed,
            "username": user.get_username(),
            "theme": await read(accounts.theme_of, user),
        },
    )


@with_csp
async def account(request: HttpRequest) -> HttpResponse:
    """The person's account: a copy of their data to download, and deleting the account
    (their password again). POST `action`: `export` or `delete` (with `password`)."""
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponseRedirect(f"{reverse('linkup-sign-in')}?next={request.path}")
    error = ""
    if request.method == "POST":
        action = str(request.POST.get("action", ""))
        if action in ("profile", "avatar", "avatar_remove", "language"):
            error = await _change_profile(request, user, action)
            if not error:
                done = HttpResponseRedirect(reverse("linkup-account"))
                if action == "language":  # checked by the action: one of LANGUAGES, or ""
                    return remember_language(done, str(request.POST.get("language", "")))
                return done
        elif action == "theme":
            try:
                theme = str(request.POST.get("theme", ""))
                await perform(accounts.do_update_settings, user, theme=theme)
                return HttpResponseRedirect(reverse("linkup-account"))
            except InvalidInput:
                error = _("Choose one of the colours offered.")
        elif action == "export":
            try:
                await spend("exports", user.pk)
                await perform(exports.do_request_export, user)
                return HttpResponseRedirect(reverse("linkup-account"))
            except RateLimited:
                error = _("You asked for a copy a moment ago: try again in an hour.")
        elif action == "delete":
            password = str(request.POST.get("password", ""))

            async def check() -> Any:
                right = await sync_to_async(user.check_password, thread_sensitive=False)(password)
                return user if right else None

            try:
                if await throttle.guarded(request, user.get_username(), check) is None:
                    error = _("That is not your password: the account was not deleted.")
                else:
                    await perform(farewell.do_delete_account, user)
                    await alogout(request)
                    return HttpResponseRedirect(f"{reverse('linkup-sign-in')}?deleted=1")
            except RateLimited:
                error = _("Too many wrong passwords: wait a while before trying again.")
    listed = await read(exports.recent_exports, user)
    return render(
        request,
        "linkup/account.html",
        {
            "username": user.get_username(),
            "exports": listed,
            "error": error,
            "profile": await read(profiles.profile_view, user, user.pk),
            "languages": settings.LANGUAGES,
            **await read(accounts.appearance_of, user),
        },
    )


async def _change_profile(request: HttpRequest, user: Any, action: str) -> str:
    """The account page's profile forms; what went wrong, or "" when it is done."""
    try:
        if action == "profile":
            name = str(request.POST.get("display_name", ""))
            about = str(request.POST.get("about", ""))
            await perform(profiles.do_update_profile, user, display_name=name, about=about)
        elif action == "avatar":
            web_files.announced_length(request)
            await spend("uploads", user.pk)
            await perform(web_files.take_avatar, request, user)
        elif action == "avatar_remove":
            await perform(profiles.do_remove_avatar, user)
        else:
            language = str(request.POST.get("language", ""))
            await perform(accounts.do_update_settings, user, language=language)
    except RateLimited:
        return _("Too many changes at once: wait a minute and try again.")
    except LinkupError as exc:
        return _("That was not saved: %(reason)s.") % {"reason": exc.detail}
    return ""


@with_csp
@ensure_csrf_cookie
async def chat(request: HttpRequest) -> HttpResponse:
    """The chat page: the room list, a conversation, and `chat.js` to drive them."""
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponseRedirect(f"{reverse('linkup-sign-in')}?next={request.path}")
    config = {
        "user": await read(profiles.profile_view, user, user.pk),
        "api": reverse("linkup-api:api-root").rstrip("/"),
        "socket": ROUTE_EXAMPLES["linkup-chat"],
        "notifications_socket": ROUTE_EXAMPLES["linkup-notifications"],
        # Web Push: the VAPID key to subscribe with (null: off), and the worker that shows it.
        "push_key": setting("VAPID_PUBLIC_KEY") if push_enabled() else None,
        # At the chat's own level, so that its scope is the chat (see appshell.py): it keeps
        # the app for offline use and shows Web Push notifications.
        "service_worker": reverse("linkup-sw"),
        "service_worker_scope": reverse("linkup-chat"),
        # Where an older version's worker was registered (push only): unregistered.
        "legacy_worker_scope": appshell.static_prefix(),
        "push_wait_s": float(setting("CLIENT_PUSH_WAIT_S")),
        "heartbeat_s": setting("HEARTBEAT_S"),
        "reconnect_first_s": float(setting("CLIENT_RECONNECT_FIRST_S")),
        "reconnect_attempts": int(setting("CLIENT_RECONNECT_ATTEMPTS")),
        "poll_s": float(setting("CLIENT_POLL_S")),
        # The menu offers Edit and Delete for everyone while these windows are open.
        "edit_window_s": float(setting("EDIT_WINDOW_S")),
        "delete_window_s": float(setting("DELETE_WINDOW_S")),
        # Files the composer takes: refused at once above these, with the reason.
        "upload_max_bytes": int(setting("UPLOAD_MAX_BYTES")),
        "attachments_max": int(setting("ATTACHMENTS_PER_MESSAGE_MAX")),
        # Where to go when the session has ended (the pages may be mounted under a prefix).
        "sign_in": reverse("linkup-sign-in"),
    }
    # The client's words in the page's language (Django's JSON catalog of the djangojs domain).
    config["language"] = get_language() or settings.LANGUAGE_CODE
    config["catalog"] = await js_catalog(request)
    theme = await read(accounts.theme_of, user)
    context = {"config": config, "me": config["user"], "theme": theme}
    return render(request, "linkup/chat.html", context)


async def js_catalog(request: HttpRequest) -> dict[str, Any]:
    """The web client's translations for the request's language: `catalog` (msgid -> the
    translation, or the list of plural forms) as Django's JSONCatalog serves it. Built once
    per language and process, off the event loop (it reads the compiled catalogs)."""
    language = get_language() or settings.LANGUAGE_CODE
    cached = _catalogs.get(language)
    if cached is None:

        def build() -> dict[str, Any]:
            with translation.override(language):
                answer = JSONCatalog(packages=["linkup"]).get(request)
            return dict(json.loads(answer.content)["catalog"])

        cached = _catalogs[language] = await asyncio.to_thread(build)
    return cached


_catalogs: dict[str, dict[str, Any]] = {}  # per language: the files do not change while running


def remember_language(response: HttpResponse, language: str) -> HttpResponse:
    """Make the person's language the pages' from now on in this browser (Django's language
    cookie, which LocaleMiddleware reads before Accept-Language); "" forgets it."""
    if language:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH,
            samesite="Lax",
        )
    else:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME, path=settings.LANGUAGE_COOKIE_PATH)
    return response
