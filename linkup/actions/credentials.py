"""API tokens, one-use socket tickets, registration and password checks."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from linkup.actions.events import notify_group, send_event_on_commit, user_group
from linkup.core.conf import setting
from linkup.core.confusables import username_keys
from linkup.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from linkup.core.shapes import AuthRevokedEvent
from linkup.models import Account, ApiToken, SocketTicket, WebSession
from linkup.store import sendsql

User = get_user_model()


def digest(raw: str) -> str:
    """SHA-256 of a random secret: enough for 256-bit random tokens, and one look-up to check."""
    return hashlib.sha256(raw.encode()).hexdigest()


def do_issue_token(user: Any, *, now: dt.datetime | None = None, user_agent: str = "") -> str:
    """Create an API token for `user`; return the raw token (stored only as its digest)."""
    raw = secrets.token_urlsafe(32)
    ApiToken.objects.create(
        user=user,
        digest=digest(raw),
        created_at=now or timezone.now(),
        user_agent=user_agent[:200],
    )
    return raw


def authenticate_token(raw: str) -> tuple[Any, int] | None:
    """Return (user, token id) for a valid bearer token of an active user, else None."""
    return authenticate_tokens([raw]).get(raw)


def authenticate_tokens(
    raws: list[str], *, now: dt.datetime | None = None
) -> dict[str, tuple[Any, int]]:
    """{raw: (user, token id)} for those of `raws` that are valid bearer tokens of active
    users, in one query. A token unused for TOKEN_IDLE_EXPIRY_S is expired (and deleted);
    a use is recorded (`last_used_at`) at most once per TOKEN_TOUCH_S."""
    wanted = {digest(raw): raw for raw in raws if raw and len(raw) <= 200}
    if not wanted:
        return {}
    now = now or timezone.now()
    idle = dt.timedelta(seconds=float(setting("TOKEN_IDLE_EXPIRY_S")))
    touch = dt.timedelta(seconds=float(setting("TOKEN_TOUCH_S")))
    found, expired, touched = {}, [], []
    # Every socket's handshake asks (realtime.coalesce): a statement written as SQL.
    for token in sendsql.tokens_with_users(list(wanted)):
        used = token.last_used_at or token.created_at
        if now - used > idle:
            expired.append(token.token_id)
            continue
        if token.user.is_active:
            found[wanted[token.digest]] = (token.user, token.token_id)
            if token.last_used_at is None or now - token.last_used_at > touch:
                touched.append(token.token_id)
    if expired:
        ApiToken.objects.filter(pk__in=expired).delete()
    if touched:
        ApiToken.objects.filter(pk__in=touched).update(last_used_at=now)
    return found


def _revoked(user_id: int, event: AuthRevokedEvent) -> None:
    """Tell every socket of the user (chat and notifications, every process) that a
    credential ended: those opened with it close (4401)."""
    for group in (user_group(user_id), notify_group(user_id)):
        send_event_on_commit(group, event)


def do_revoke_token(token_id: int) -> None:
    """Delete a token (and the tickets it minted); sockets opened with it are told to close."""
    with transaction.atomic():
        token = ApiToken.objects.filter(pk=token_id).first()
        if token is None:
            return
        token.delete()
        _revoked(token.user_id, {"type": "auth.revoked", "token_id": token_id})


def do_end_session(user_id: int, session_key: str | None) -> None:
    """A web session ends (sign-out, logout): the tickets it minted die, and the sockets
    opened with its cookie or those tickets are told to close."""
    if not session_key:
        return
    with transaction.atomic():
        session = digest(session_key)
        SocketTicket.objects.filter(session_digest=session).delete()
        WebSession.objects.filter(session_key=session_key).delete()
        _revoked(user_id, {"type": "auth.revoked", "session": session})


def do_end_all_sessions(user_id: int) -> None:
    """Every credential of the user ends (password changed, account deactivated or
    deleted): tokens and tickets are deleted, and every socket of theirs is told to close.
    Web sessions end by themselves: Django refuses a session whose password hash changed,
    and an inactive user's."""
    with transaction.atomic():
        ApiToken.objects.filter(user_id=user_id).delete()
        SocketTicket.objects.filter(user_id=user_id).delete()
        store = _session_store()
        for web in WebSession.objects.filter(user_id=user_id):
            store.delete(web.session_key)
            web.delete()
        _revoked(user_id, {"type": "auth.revoked", "all": True})


def _session_store() -> Any:
    """A SessionStore of the configured engine (its `delete` and `exists` take a key)."""
    return import_module(settings.SESSION_ENGINE).SessionStore()


def do_record_session(user_id: int, session_key: str | None, user_agent: str = "") -> None:
    """A web session began (a sign-in): record it, so its person can list and end it."""
    if not session_key:
        return
    WebSession.objects.update_or_create(
        session_key=session_key,
        defaults={"user_id": user_id, "created_at": timezone.now(), "user_agent": user_agent[:200]},
    )


def sessions_of(
    user_id: int, *, current_token: int | None = None, current_session: str | None = None
) -> list[dict[str, Any]]:
    """The person's credentials, newest first: bearer tokens and web sessions, each with an
    id to end it by. Web sessions the session store no longer holds (expired, or cycled by
    a password change) are forgotten here."""
    found: list[dict[str, Any]] = []
    for token in ApiToken.objects.filter(user_id=user_id):
        found.append(
            {
                "id": f"token-{token.pk}",
                "kind": "token",
                "created_at": token.created_at,
                "last_used_at": token.last_used_at or token.created_at,
                "user_agent": token.user_agent,
                "current": token.pk == current_token,
            }
        )
    store, gone = _session_store(), []
    for web in WebSession.objects.filter(user_id=user_id):
        if not store.exists(web.session_key):
            gone.append(web.pk)
            continue
        found.append(
            {
                "id": f"web-{web.pk}",
                "kind": "web",
                "created_at": web.created_at,
                "last_used_at": None,
                "user_agent": web.user_agent,
                "current": web.session_key == current_session,
            }
        )
    if gone:
        WebSession.objects.filter(pk__in=gone).delete()
    found.sort(key=lambda s: (s["created_at"], s["id"]), reverse=True)
    return found


def do_end_credential(user_id: int, credential: str) -> None:
    """End one of the person's sessions by its id (`token-N` or `web-N`, as `sessions_of`
    gives it): its sockets close, its tickets die, and a web session is deleted from the
    session store, so its cookie signs in nowhere. NotFound for anything else (another
    person's included)."""
    kind, _, number = credential.partition("-")
    if not number.isdigit() or len(number) > 18:
        raise NotFound("no such session")
    if kind == "token" and ApiToken.objects.filter(pk=int(number), user_id=user_id).exists():
        do_revoke_token(int(number))
        return
    web = (
        WebSession.objects.filter(pk=int(number), user_id=user_id).first()
        if kind == "web"
        else None
    )
    if web is None:
        raise NotFound("no such session")
    _session_store().delete(web.session_key)
    do_end_session(user_id, web.session_key)


def do_issue_ticket(
    user: Any,
    *,
    token_id: int | None = None,
    session_key: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[str, dt.datetime]:
    """Create a one-use socket ticket, minted by a token or a session; return (raw ticket,
    expiry)."""
    now = now or timezone.now()
    raw = secrets.token_urlsafe(32)
    expires = now + dt.timedelta(seconds=int(setting("TICKET_TTL_S")))
    SocketTicket.objects.create(
        user=user,
        digest=digest(raw),
        expires_at=expires,
        token_id=token_id,
        session_digest=digest(session_key) if session_key else "",
    )
    return raw, expires


def spend_ticket(
    raw: str, *, now: dt.datetime | None = None
) -> tuple[Any, int | None, str | None] | None:
    """Spend a ticket: (its user, the token that minted it, the digest of the session that
    minted it) once, if unexpired and the user is active; None otherwise."""
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
    if not ticket.user.is_active:
        return None
    return ticket.user, ticket.token_id, ticket.session_digest or None


def redeem_ticket(raw: str, *, now: dt.datetime | None = None) -> Any | None:
    """Spend a ticket: return its user once, if unexpired; None otherwise."""
    spent = spend_ticket(raw, now=now)
    return spent[0] if spent else None


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


def name_keys(username: str) -> tuple[str, str]:
    """The username's confusability keys as stored (Account.name_key, name_key_caseless)."""
    looks, caseless = username_keys(username)
    return looks[:600], caseless[:600]


def looks_taken(username: str) -> bool:
    """Does an existing account's name look like this one (a TR39 skeleton in common)?"""
    looks, caseless = name_keys(username)
    return Account.objects.filter(Q(name_key=looks) | Q(name_key_caseless=caseless)).exists()


def keep_name_keys(user: Any) -> bool:
    """Store the user's username keys, each one unless another account holds it; return
    whether both are the user's now."""
    looks, caseless = name_keys(user.get_username())
    mine = {}
    for field, key in (("name_key", looks), ("name_key_caseless", caseless)):
        held = Account.objects.filter(**{field: key}).exclude(user_id=user.pk).exists()
        mine[field] = "" if held else key
    try:
        with transaction.atomic():
            Account.objects.update_or_create(user_id=user.pk, defaults=mine)
    except IntegrityError:  # another account took one meanwhile: hold neither
        with transaction.atomic():
            Account.objects.update_or_create(
                user_id=user.pk, defaults={"name_key": "", "name_key_caseless": ""}
            )
        return False
    return mine == {"name_key": looks, "name_key_caseless": caseless}


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
            if looks_taken(username):
                raise Conflict("that username looks like one that is taken")
            candidate.save()  # its keys are kept as it is saved (linkup.actions.sessions)
            if not keep_name_keys(candidate):  # a look-alike registered at the same moment
                raise Conflict("that username looks like one that is taken")
    except IntegrityError:
        raise Conflict("that username is taken") from None
    finally:
        close_old_connections()
    return candidate
