"""API tokens, one-use socket tickets, registration and password checks."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.contrib.auth import authenticate, get_user_model, password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import IntegrityError, close_old_connections, transaction
from django.utils import timezone

from linkup.actions.events import notify_group, send_event_on_commit, user_group
from linkup.core.conf import setting
from linkup.core.errors import Conflict, Forbidden, InvalidInput
from linkup.models import ApiToken, SocketTicket

User = get_user_model()


def digest(raw: str) -> str:
    """SHA-256 of a random secret: enough for 256-bit random tokens, and one look-up to check."""
    return hashlib.sha256(raw.encode()).hexdigest()


def do_issue_token(user: Any, *, now: dt.datetime | None = None) -> str:
    """Create an API token for `user`; return the raw token (stored only as its digest)."""
    raw = secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, digest=digest(raw), created_at=now or timezone.now())
    return raw


def authenticate_token(raw: str) -> tuple[Any, int] | None:
    """Return (user, token id) for a valid bearer token of an active user, else None."""
    if not raw or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(digest=digest(raw)).first()
    if token is None or not token.user.is_active:
        return None
    return token.user, token.pk


def authenticate_tokens(raws: list[str]) -> dict[str, tuple[Any, int]]:
    """`authenticate_token` for many bearer tokens in one query: {raw: (user, token id)} for
    the valid ones of active users."""
    wanted = {digest(raw): raw for raw in raws if raw and len(raw) <= 200}
    found = {}
    for token in ApiToken.objects.select_related("user").filter(digest__in=list(wanted)):
        if token.user.is_active:
            found[wanted[token.digest]] = (token.user, token.pk)
    return found


def do_revoke_token(token_id: int) -> None:
    """Delete a token; sockets opened with it are told to close."""
    with transaction.atomic():
        token = ApiToken.objects.filter(pk=token_id).first()
        if token is None:
            return
        token.delete()
        for group in (user_group(token.user_id), notify_group(token.user_id)):
            send_event_on_commit(group, {"type": "auth.revoked", "token_id": token_id})


def do_issue_ticket(user: Any, *, now: dt.datetime | None = None) -> tuple[str, dt.datetime]:
    """Create a one-use socket ticket; return (raw ticket, expiry)."""
    now = now or timezone.now()
    raw = secrets.token_urlsafe(32)
    expires = now + dt.timedelta(seconds=int(setting("TICKET_TTL_S")))
    SocketTicket.objects.create(user=user, digest=digest(raw), expires_at=expires)
    return raw, expires


def redeem_ticket(raw: str, *, now: dt.datetime | None = None) -> Any | None:
    """Spend a ticket: return its user once, if unexpired; None otherwise."""
    if not raw or len(raw) > 200:
        return None
    now = now or timezone.now()
    with transaction.atomic():
        # One conditional UPDATE: of two concurrent redeemers exactly one changes the row.
        spent = SocketTicket.objects.filter(
            digest=digest(raw), used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
        if spent != 1:
            return None
        ticket = SocketTicket.objects.select_related("user").get(digest=digest(raw))
    return ticket.user if ticket.user.is_active else None


def check_credentials(username: Any, password: Any) -> Any | None:
    """Return the user for a correct username and password, else None.

    Runs the (deliberately slow) password hasher: call it off the shared database thread."""
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    if "\x00" in username:  # no username holds one (PostgreSQL cannot even compare it)
        return None
    try:
        return authenticate(username=username, password=password)
    finally:
        # Called on a worker thread of its own: give its connection back (to the pool).
        close_old_connections()


def username_taken(username: str) -> bool:
    """Is a username that differs only in case already registered? ("Émile" vs "émile")."""
    if User.objects.filter(username__iexact=username).exists():
        return True
    if username.isascii():
        return False
    # SQLite's case-insensitive match folds ASCII letters only: compare non-ASCII names here.
    folded = username.casefold()
    candidates = User.objects.filter(username__regex=r"[^\x00-\x7f]").values_list(
        "username", flat=True
    )
    return any(name.casefold() == folded for name in candidates.iterator())


def do_register(username: Any, password: Any, email: Any = None) -> Any:
    """Create a user; InvalidInput for a bad name or weak password, Conflict if taken."""
    if not setting("REGISTRATION_OPEN"):
        raise Forbidden("registration is closed")
    if not isinstance(username, str) or not isinstance(password, str):
        raise InvalidInput("username and password are strings")
    if email is not None and not isinstance(email, str):
        raise InvalidInput("email is a string")
    # NFKC, as Django's create_user does: fullwidth "zed" becomes plain "zed".
    username = str(User.normalize_username(username.strip()))
    if not 1 <= len(username) <= 150:
        raise InvalidInput("a username is 1-150 characters")
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages)) from None
    candidate = User(username=username, email=email or "")
    try:
        password_validation.validate_password(password, candidate)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages)) from None
    candidate.set_password(password)
    try:
        with transaction.atomic():
            if username_taken(username):
                raise Conflict("that username is taken")
            candidate.save()
    except IntegrityError:
        raise Conflict("that username is taken") from None
    finally:
        close_old_connections()
    return candidate
