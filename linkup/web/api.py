"""REST API under /api/v1 (django-ninja: typed input, OpenAPI 3 at /api/v1/openapi.json).

Views are async and thin: they authenticate, validate, call one action or query on the
database thread through `linkup.realtime.edges`, and render. Every error leaves as the contract's
`{"error": {"code", "detail"}}` body.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.contrib.auth import alogout
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Query
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.renderers import BaseRenderer
from ninja.responses import Status
from ninja.security.base import AuthBase
from ninja.utils import check_csrf

from linkup.actions import (
    accounts,
    blocks,
    changes,
    credentials,
    exports,
    farewell,
    notifications,
    presence,
    profiles,
    receipts,
    reports,
    rooms,
    uploads,
)
from linkup.core.conf import setting
from linkup.core.errors import (
    Forbidden,
    InvalidInput,
    LinkupError,
    NotFound,
    RateLimited,
    ServerError,
    TooLarge,
    Unauthorized,
    body_for_status,
)
from linkup.core.log import log_event
from linkup.core.looplocal import LoopLocal, Turns
from linkup.core.protocol import (
    MAX_ID,
    check_attachments,
    check_client_id,
    check_cursors,
    check_emoji,
    check_id,
    check_message_body,
    check_send_body,
)
from linkup.core.serialization import dumps, format_time
from linkup.realtime.edges import perform, read
from linkup.realtime.liveness import liveness
from linkup.realtime.ratelimit import limits, retry_after, spend
from linkup.realtime.sending import send_message as send_through_queue
from linkup.realtime.sending import spend_send
from linkup.store import queries
from linkup.store import search as message_search
from linkup.tasks import fallback
from linkup.web import files, throttle, verification
from linkup.web.schemas import (
    BlockAnswerOut,
    BlockIn,
    BlocksOut,
    ChangesOut,
    CredentialsIn,
    DeleteAccountIn,
    EditHistoryOut,
    EditIn,
    ErrorOut,
    ExportAnswerOut,
    HistoryOut,
    InvitationsOut,
    MembersIn,
    MeOut,
    MessageInfoOut,
    MessageOut,
    MuteIn,
    MuteOut,
    NotificationsOut,
    NotificationsReadOut,
    OkOut,
    PrivacyIn,
    ProfileOut,
    PushKeyOut,
    PushSubscriptionIn,
    ReceiptIn,
    ReceiptOut,
    RegisteredOut,
    RegisterIn,
    ReportAnswerOut,
    ReportIn,
    RoleIn,
    RoomCreatedOut,
    RoomIn,
    RoomOut,
    RoomPatchIn,
    RoomsOut,
    SearchOut,
    SendIn,
    SessionsOut,
    SyncOut,
    TicketOut,
    TokenOut,
    UploadAnswerOut,
    UsersOut,
    VerifyEmailIn,
    VerifyEmailOut,
    WhoReactedOut,
)


class OrjsonRenderer(BaseRenderer):
    media_type = "application/json"

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> Any:
        return dumps(data)


@dataclass(frozen=True)
class Principal:
    """Who is calling, and how (a bearer token id, or the session cookie)."""

    user: Any
    token_id: int | None


class BearerOrSession(AuthBase):
    """A bearer token, else the Django session; CSRF applies to cookie-authenticated writes."""

    openapi_type = "http"
    openapi_scheme = "bearer"

    async def __call__(self, request: HttpRequest) -> Principal | None:
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, raw = header.partition(" ")
            if scheme.lower() != "bearer":
                return None
            found = await read(credentials.authenticate_token, raw.strip())
            if not found:
                return None
            return Principal(found[0], found[1])
        user = await request.auser()
        if not user.is_authenticated:
            return None
        if request.method not in ("GET", "HEAD", "OPTIONS", "TRACE") and check_csrf(request):
            raise Forbidden("CSRF check failed: send the X-CSRFToken header")
        return Principal(user, None)

    authenticate = __call__


# Reads in flight per user in this process: at most READ_CONCURRENCY at once, the rest wait
# their turn (holding a connection, not the database thread), so one user's parallel reads
# cannot fill the queue every other request waits in.
_gates = LoopLocal(lambda: Turns(lambda: int(setting("READ_CONCURRENCY"))))
View = Callable[..., Awaitable[Any]]


def read_view(cost: int = 1, budget: str = "reads") -> Callable[[View], View]:
    """A REST read: charged `cost` tokens of its user's read budget (429 once spent; a read
    whose answer grows with the user's rooms costs more; files have a budget of their own),
    then run in the user's turn (see _Gates)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        async def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            principal: Principal = request.auth  # type: ignore[attr-defined]
            await spend(budget, principal.user.pk, cost)
            async with _gates().turn(principal.user.pk):
                return await view(request, *args, **kwargs)

        return wrapped

    return decorate


class _Api(NinjaAPI):
    """NinjaAPI whose OpenAPI document is built once per process and path prefix.

    django-ninja builds it afresh for every request of /openapi.json: about 0.25 s of CPU,
    on the thread that sync views share, for anyone who asks, signed in or not. The
    operations are fixed once the URLconf is loaded, so the document is too."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.documents: dict[str, Any] = {}  # path prefix -> its document

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> Any:
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        if path_prefix not in self.documents:
            self.documents[path_prefix] = super().get_openapi_schema(path_prefix=path_prefix)
        return self.documents[path_prefix]


api = _Api(
    title="Linkup",
    version="1",
    description="Real-time chat: REST half of the Linkup wire contract (protocol version 1).",
    urls_namespace="linkup-api",
    renderer=OrjsonRenderer(),
    auth=BearerOrSession(),
    # The interactive page loads Swagger UI from a CDN: off unless API_DOCS is set (the
    # OpenAPI document itself is always at /openapi.json).
    docs_url="/docs" if setting("API_DOCS") else None,
)

E = ErrorOut


def _error_response(request: HttpRequest, exc: LinkupError) -> HttpResponse:
    response = HttpResponse(
        dumps(exc.as_body()), status=exc.status, content_type="application/json"
    )
    if exc.retry_after_s is not None:
        # Whole seconds, rounded up: a client that waits as told is let in.
        response["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return response


@api.exception_handler(LinkupError)
def on_linkup_error(request: HttpRequest, exc: LinkupError) -> HttpResponse:
    return _error_response(request, exc)


@api.exception_handler(NinjaValidationError)
def on_validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    parts = []
    for error in exc.errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "payload"))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg")))
    return _error_response(request, InvalidInput("; ".join(parts) or "invalid request"))


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _error_response(request, Unauthorized())
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return HttpResponse(
        dumps({"error": {"code": "not_found", "detail": "Not found."}}),
        status=404,
        content_type="application/json",
    )


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return HttpResponse(
        dumps(body_for_status(exc.status_code, str(exc))),
        status=exc.status_code,
        content_type="application/json",
    )


@api.exception_handler(RequestDataTooBig)
def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _error_response(request, TooLarge("request body is too large"))


@api.exception_handler(Exception)
def on_exception(request: HttpRequest, exc: Exception) -> HttpResponse:
    log_event(logging.ERROR, "delivery", f"unhandled error in {request.path}", exc)
    return _error_response(request, ServerError())


def _me(request: HttpRequest) -> Any:
    return request.auth.user  # type: ignore[attr-defined]


# -- authentication ------------------------------------------------------------------------


@api.post("/auth/token", auth=None, response={200: TokenOut, 400: E, 401: E, 429: E}, tags=["auth"])
async def issue_token(request: HttpRequest, payload: CredentialsIn) -> Any:
    """Log in with a username and password; get a bearer token. Failed attempts are
    throttled per account and per client address (429 with Retry-After)."""
    # The password hasher is slow by design: keep it off the shared database thread.
    user = await throttle.guarded(
        request,
        payload.username,
        lambda: sync_to_async(credentials.check_credentials, thread_sensitive=False)(
            payload.username, payload.password
        ),
    )
    if user is None:
        raise Unauthorized("wrong username or password")
    token = await perform(
        credentials.do_issue_token, user, user_agent=request.headers.get("User-Agent", "")
    )
    return {"token": token, "user": queries.user_dict(user)}


@api.post("/auth/logout", response={200: OkOut, 401: E, 429: E, 403: E}, tags=["auth"])
async def logout(request: HttpRequest) -> Any:
    """Revoke the token in use (its sockets close with 4401), or end the session."""
    principal: Principal = request.auth  # type: ignore[attr-defined]
    if principal.token_id is not None:
        await perform(credentials.do_revoke_token, principal.token_id)
    else:
        await alogout(request)
    return {"ok": True}


@api.get("/sessions", response={200: SessionsOut, 401: E, 429: E}, tags=["auth"])
@read_view()
async def sessions(request: HttpRequest) -> Any:
    """The caller's sessions (bearer tokens and signed-in browsers), newest first; the one
    making this call is `current`."""
    principal: Principal = request.auth  # type: ignore[attr-defined]
    found = await read(
        credentials.sessions_of,
        principal.user.pk,
        current_token=principal.token_id,
        current_session=None if principal.token_id is not None else request.session.session_key,
    )
    for one in found:
        one["created_at"] = format_time(one["created_at"])
        one["last_used_at"] = one["last_used_at"] and format_time(one["last_used_at"])
    return {"sessions": found}


@api.delete(
    "/sessions/{session_id}", response={200: OkOut, 401: E, 429: E, 403: E, 404: E}, tags=["auth"]
)
async def end_session(request: HttpRequest, session_id: str) -> Any:
    """End one of the caller's sessions (the current one too): its sockets close (4401),
    its tickets die, a browser's cookie signs in nowhere."""
    principal: Principal = request.auth  # type: ignore[attr-defined]
    await perform(credentials.do_end_credential, principal.user.pk, session_id)
    return {"ok": True}


@api.post("/auth/ws-ticket", response={200: TicketOut, 401: E, 429: E, 403: E}, tags=["auth"])
async def ws_ticket(request: HttpRequest) -> Any:
    """A one-use ticket for `/ws/chat/?ticket=…`, valid for 30 seconds."""
    principal: Principal = request.auth  # type: ignore[attr-defined]
    ticket, expires = await perform(
        credentials.do_issue_ticket,
        principal.user,
        token_id=principal.token_id,
        session_key=None if principal.token_id is not None else request.session.session_key,
    )
    return {"ticket": ticket, "expires_at": format_time(expires)}


@api.post(
    "/auth/register",
    auth=None,
    response={201: RegisteredOut, 400: E, 403: E, 409: E},
    tags=["auth"],
)
async def register(request: HttpRequest, payload: RegisterIn) -> Any:
    """Create an account (a setting can close registration)."""
    user = await sync_to_async(credentials.do_register, thread_sensitive=False)(
        payload.username, payload.password, payload.email
    )
    await verification.ask(request, user)
    return Status(201, {"user": queries.user_dict(user)})


@api.post("/auth/verify-email", auth=None, response={200: OkOut, 400: E, 429: E}, tags=["auth"])
async def verify_email(request: HttpRequest, payload: VerifyEmailIn) -> Any:
    """Verify an email address with the token of the link sent to it."""
    await perform(accounts.do_verify_email, payload.token)
    return {"ok": True}


# -- people ----------------------------------------------------------------------------------


async def _with_presence(viewer: Any, people: list[Any]) -> None:
    """Add "status" and "last_seen" (as the viewer may see it) to user objects, in place."""
    ids = sorted({p["id"] for p in people})
    online = await liveness().online(ids)
    views = await read(presence.presence_views, viewer.pk, ids, online)
    for person in people:
        person.update(views[person["id"]])


@api.get("/me", response={200: MeOut, 401: E, 429: E}, tags=["users"])
@read_view()
async def me(request: HttpRequest) -> Any:
    user = _me(request)
    return {**queries.user_dict(user), **await read(accounts.settings_of, user)}


@api.patch("/me", response={200: MeOut, 400: E, 401: E, 429: E, 403: E}, tags=["users"])
async def update_me(request: HttpRequest, payload: PrivacyIn) -> Any:
    """Change any of: hiding last seen (reciprocal: who hides it sees no one's); who may
    add me to groups (the others invite me); my email address (a link to verify it is
    emailed there; until it is followed, no notification is); the web client's colours and
    language; my display name and about line (everyone sharing a room with me is told:
    `user.updated`)."""
    user = _me(request)
    given = payload.model_dump(exclude_none=True)
    if not given:
        raise InvalidInput(
            "give hide_last_seen, group_adds, email, theme, language, display_name or about"
        )
    if payload.email is not None:
        await spend("verify_email", user.pk)
    changed = await perform(
        accounts.do_update_settings,
        user,
        hide_last_seen=payload.hide_last_seen,
        group_adds=payload.group_adds,
        email=payload.email,
        theme=payload.theme,
        language=payload.language,
        display_name=payload.display_name,
        about=payload.about,
    )
    if changed:
        await verification.ask(request, user)
    return {**queries.user_dict(user), **await read(accounts.settings_of, user)}


@api.delete("/me", response={204: None, 400: E, 401: E, 403: E, 429: E}, tags=["users"])
async def delete_me(request: HttpRequest, payload: DeleteAccountIn) -> Any:
    """Delete the caller's account, the password given again. Their sockets and tokens end
    at once; their messages stay in others' rooms from "Deleted user"; everything else of
    theirs is removed (docs/protocol.md, Accounts)."""
    me = _me(request)

    async def check() -> Any:
        # The password hasher is slow by design: off the shared database thread.
        right = await sync_to_async(me.check_password, thread_sensitive=False)(payload.password)
        return me if right else None

    # A wrong password spends the account's password-guess budget, as a sign-in does.
    if await throttle.guarded(request, me.get_username(), check) is None:
        raise Forbidden("the password is wrong")
    await perform(farewell.do_delete_account, me)
    return Status(204, None)


@api.post(
    "/me/verify-email", response={202: VerifyEmailOut, 401: E, 403: E, 429: E}, tags=["users"]
)
async def resend_verification(request: HttpRequest) -> Any:
    """Email a new verification link to my address (if it is not verified yet)."""
    user = _me(request)
    await spend("verify_email", user.pk)
    return Status(202, {"sent": await verification.ask(request, user)})


@api.get("/invitations", response={200: InvitationsOut, 401: E, 429: E}, tags=["rooms"])
@read_view()
async def invitations(request: HttpRequest) -> Any:
    """Groups I was invited to by someone who may not add me, newest first."""
    return {"invitations": await read(rooms.invitations_of, _me(request))}


@api.post(
    "/invitations/{invitation_id}/accept",
    response={200: RoomOut, 400: E, 401: E, 403: E, 404: E, 429: E},
    tags=["rooms"],
)
async def accept_invitation(request: HttpRequest, invitation_id: int) -> Any:
    """Join the group (403 when it is full)."""
    room = await perform(
        rooms.do_accept_invitation, _me(request), check_id(invitation_id, "invitation")
    )
    await _with_presence(_me(request), room["members"])
    return room


@api.delete(
    "/invitations/{invitation_id}",
    response={200: OkOut, 400: E, 401: E, 403: E, 404: E, 429: E},
    tags=["rooms"],
)
async def decline_invitation(request: HttpRequest, invitation_id: int) -> Any:
    await perform(rooms.do_decline_invitation, _me(request), check_id(invitation_id, "invitation"))
    return {"ok": True}


@api.get("/users", response={200: UsersOut, 401: E, 429: E}, tags=["users"])
@read_view()
async def users(request: HttpRequest, q: str = "") -> Any:
    """Find people to talk to by part of their username (at least SEARCH_MIN_CHARS
    characters; a shorter query finds nobody). Presence is shown only for people who share
    a room with the caller (`status` and `last_seen` are null for the others)."""
    me = _me(request)
    wait = await limits().search.hit(
        me.pk, float(setting("SEARCH_RATE_PER_S")), int(setting("SEARCH_BURST"))
    )
    if wait:
        raise RateLimited(retry_after_s=retry_after(wait))
    found = await read(
        queries.search_users, q[:150], exclude=me, min_chars=int(setting("SEARCH_MIN_CHARS"))
    )
    known = await read(queries.sharing_a_room, me.pk, [p["id"] for p in found])
    people: list[dict[str, Any]] = [
        {**person, "status": None, "last_seen": None} for person in found
    ]
    await _with_presence(me, [p for p in people if p["id"] in known])
    return {"users": people}


@api.get(
    "/users/{user_id}", response={200: ProfileOut, 400: E, 401: E, 404: E, 429: E}, tags=["users"]
)
@read_view()
async def user_profile(request: HttpRequest, user_id: int) -> Any:
    """A person's profile: display name, about line, picture; presence too for someone who
    shares a room with the caller (null for others, as in `GET /users`)."""
    me = _me(request)
    person = await read(profiles.profile_view, me, check_id(user_id, "user"))
    person.update(status=None, last_seen=None)
    if person["id"] == me.pk or await read(queries.sharing_a_room, me.pk, [person["id"]]):
        await _with_presence(me, [person])
    return person


# -- blocks ----------------------------------------------------------------------------------


@api.get("/blocks", response={200: BlocksOut, 401: E, 429: E}, tags=["users"])
@read_view()
async def list_blocks(request: HttpRequest) -> Any:
    """The people the caller blocked, most recent first."""
    return {"blocks": await read(blocks.list_blocks, _me(request))}


@api.post(
    "/blocks",
    response={200: BlockAnswerOut, 201: BlockAnswerOut, 400: E, 401: E, 429: E, 403: E},
    tags=["users"],
)
async def block_user(request: HttpRequest, payload: BlockIn) -> Any:
    """Block a person: no direct chat or message between you either way, and neither sees
    the other's presence, last seen or typing (groups you share carry on). 201, or 200 when
    already blocked."""
    await spend("frames", _me(request).pk)
    block, created = await perform(blocks.do_block, _me(request), payload.user_id)
    return Status(201 if created else 200, {"block": block})


@api.delete(
    "/blocks/{user_id}", response={204: None, 400: E, 401: E, 429: E, 403: E}, tags=["users"]
)
async def unblock_user(request: HttpRequest, user_id: int) -> Any:
    """Unblock a person (204 whether or not they were blocked)."""
    await spend("frames", _me(request).pk)
    await perform(blocks.do_unblock, _me(request), check_id(user_id, "user_id"))
    return Status(204, None)


@api.post(
    "/reports",
    response={201: ReportAnswerOut, 400: E, 401: E, 403: E, 404: E, 429: E},
    tags=["users"],
)
async def report(request: HttpRequest, payload: ReportIn) -> Any:
    """Report a message (`room` and `seq`) or a person (`user_id`) to the site's
    moderators, saying why. The person reported is not told, nor who reported them."""
    await spend("reports", _me(request).pk)
    made = await perform(
        reports.do_report,
        _me(request),
        reason=payload.reason,
        user_id=payload.user_id,
        room=payload.room,
        seq=payload.seq,
    )
    return Status(201, {"report": made})


# -- rooms -----------------------------------------------------------------------------------


@api.get("/rooms", response={200: RoomsOut, 401: E, 429: E}, tags=["rooms"])
@read_view(cost=10)
async def list_rooms(request: HttpRequest) -> Any:
    """The caller's rooms, most recent activity first (members with their presence)."""
    rooms = await read(queries.list_rooms, _me(request))
    await _with_presence(_me(request), [m for room in rooms for m in room["members"]])
    return {"rooms": rooms}


@api.post(
    "/rooms",
    response={200: RoomCreatedOut, 201: RoomCreatedOut, 400: E, 401: E, 429: E, 403: E},
    tags=["rooms"],
)
async def create_room(request: HttpRequest, payload: RoomIn) -> Any:
    """Create a group, or open the direct room with one user (the existing one if any).
    Those who did not allow the caller to add them are invited instead (`invited`)."""
    await spend("rooms", _me(request).pk)
    if payload.kind == "group":
        await spend("groups", _me(request).pk)
        await spend("members", _me(request).pk, len(payload.members))
    room, created = await perform(
        rooms.do_create_room, _me(request), payload.kind, payload.members, payload.name
    )
    await _with_presence(_me(request), room["members"])
    return Status(201 if created else 200, room)


@api.get(
    "/rooms/{room_id}", response={200: RoomOut, 400: E, 401: E, 429: E, 404: E}, tags=["rooms"]
)
@read_view()
async def get_room(request: HttpRequest, room_id: int) -> Any:
    room = await read(queries.room_view, _me(request), check_id(room_id, "room"))
    await _with_presence(_me(request), room["members"])
    return room


@api.patch(
    "/rooms/{room_id}",
    response={200: RoomOut, 400: E, 401: E, 429: E, 403: E, 404: E},
    tags=["rooms"],
)
async def update_room(request: HttpRequest, room_id: int, payload: RoomPatchIn) -> Any:
    """Rename a group or change its description (owner or admins)."""
    room = await perform(
        rooms.do_update_room,
        _me(request),
        check_id(room_id, "room"),
        name=payload.name,
        description=payload.description,
    )
    await _with_presence(_me(request), room["members"])
    return room


@api.put(
    "/rooms/{room_id}/members/{user_id}",
    response={200: RoomOut, 400: E, 401: E, 429: E, 403: E, 404: E},
    tags=["rooms"],
)
async def set_role(request: HttpRequest, room_id: int, user_id: int, payload: RoleIn) -> Any:
    """Make a member an admin (owner or admins), or an admin a member again (the owner)."""
    room = await perform(
        rooms.do_set_role,
        _me(request),
        check_id(room_id, "room"),
        check_id(user_id, "user"),
        payload.role,
    )
    await _with_presence(_me(request), room["members"])
    return room


@api.post(
    "/rooms/{room_id}/members",
    response={200: RoomCreatedOut, 400: E, 401: E, 429: E, 403: E, 404: E},
    tags=["rooms"],
)
async def add_members(request: HttpRequest, room_id: int, payload: MembersIn) -> Any:
    """Add members to a group (owner or admins); those who did not allow the caller to add
    them are invited instead (`invited`)."""
    await spend("members", _me(request).pk, len(payload.user_ids))
    room = await perform(
        rooms.do_add_members, _me(request), check_id(room_id, "room"), payload.user_ids
    )
    await _with_presence(_me(request), room["members"])
    return room


@api.delete(
    "/rooms/{room_id}/members/{user_id}",
    response={200: OkOut, 400: E, 401: E, 429: E, 403: E, 404: E},
    tags=["rooms"],
)
async def remove_member(request: HttpRequest, room_id: int, user_id: int) -> Any:
    """Remove a member (owner or admins), or leave (anyone, with their own id)."""
    await perform(
        rooms.do_remove_member, _me(request), check_id(room_id, "room"), check_id(user_id, "user")
    )
    return {"ok": True}


# -- messages --------------------------------------------------------------------------------


@api.get(
    "/rooms/{room_id}/messages",
    response={200: HistoryOut, 400: E, 401: E, 429: E, 404: E},
    tags=["messages"],
)
@read_view()
async def history(
    request: HttpRequest,
    room_id: int,
    after_seq: int | None = Query(None, ge=0, le=2**63 - 1),
    before_seq: int | None = Query(None, ge=0, le=2**63 - 1),
    limit: int | None = Query(None, ge=1, le=1000),
) -> Any:
    """A page of history, ascending by seq (see Paging in the protocol)."""
    if after_seq is not None and before_seq is not None:
        raise InvalidInput("use after_seq or before_seq, not both")
    return await read(
        queries.history,
        _me(request),
        check_id(room_id, "room"),
        after_seq=after_seq,
        before_seq=before_seq,
        limit=limit,
    )


def _when(value: str | None, name: str, *, end: bool = False) -> dt.datetime | None:
    """A date (`2026-12-07`: the day's start, or with `end` the next day's) or an ISO 8601
    time (UTC unless it says otherwise)."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value) + dt.timedelta(days=1 if end else 0)
            return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        when = dt.datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@api.get(
    "/search",
    response={200: SearchOut, 400: E, 401: E, 404: E, 429: E},
    tags=["messages"],
)
@read_view(budget="search")
async def search_messages(
    request: HttpRequest,
    q: str = "",
    room: int | None = Query(None, ge=1, le=2**63 - 1),
    before: str | None = Query(None, max_length=64),
    limit: int | None = Query(None, ge=1, le=1000),
    sender: int | None = Query(None, alias="from", ge=1, le=2**63 - 1),
    since: str | None = Query(None, max_length=40),
    until: str | None = Query(None, max_length=40),
    order: Literal["newest", "relevance"] = "newest",
) -> Any:
    """Messages of the caller's rooms (or of `room`) matching `q`: words, "quoted phrases",
    -excluded words, `or`. Newest first (or by rank with `order=relevance`), each hit with
    a snippet and the ranges of it that matched. `from` (a user id), `since` and `until`
    (dates or times; `until` a date includes that day) narrow it; `next` pages on."""
    filters = message_search.Filters(
        room=room,
        sender=sender,
        since=_when(since, "since"),
        until=_when(until, "until", end=True),
    )
    started = time.monotonic()
    answer = await read(
        message_search.search,
        _me(request),
        message_search.check_query(q),
        filters=filters,
        before=before or None,
        limit=limit,
        order=order,
    )
    if not answer["results"] and not before:
        # Nothing found answers no sooner than the floor: how long the index took to find
        # nothing in the caller's rooms must not tell whether the words are said elsewhere.
        wait = float(setting("MESSAGE_SEARCH_EMPTY_FLOOR_S")) - (time.monotonic() - started)
        if wait > 0:
            await asyncio.sleep(wait)
    return answer


@api.post(
    "/rooms/{room_id}/messages",
    response={200: MessageOut, 201: MessageOut, 400: E, 401: E, 403: E, 404: E, 429: E, 503: E},
    tags=["messages"],
)
async def send_message(request: HttpRequest, room_id: int, payload: SendIn) -> Any:
    """Send over HTTP: 201 for a new message, 200 with the original for a repeated client_id."""
    client_id = check_client_id(payload.client_id, int(setting("MAX_CLIENT_ID_CHARS")))
    files = check_attachments(payload.attachments, int(setting("ATTACHMENTS_PER_MESSAGE_MAX")))
    body = check_send_body(payload.body, int(setting("MAX_BODY_CHARS")), files)
    message, created = await send_through_queue(
        _me(request),
        check_id(room_id, "room"),
        client_id,
        body,
        reply_to=payload.reply_to,
        attachments=files,
    )
    return Status(201 if created else 200, message)


# -- messages that change: edits, deletes, reactions (linkup.actions.changes) ---------------------

CHANGED = {200: MessageOut, 400: E, 401: E, 403: E, 404: E, 429: E, 503: E}


@api.patch("/rooms/{room_id}/messages/{seq}", response=CHANGED, tags=["messages"])
async def edit_message(request: HttpRequest, room_id: int, seq: int, payload: EditIn) -> Any:
    """Edit one of my messages (within EDIT_WINDOW_S of sending it); the same client_id
    again changes nothing."""
    await spend_send(_me(request))
    return await perform(
        changes.do_edit_message,
        _me(request),
        check_id(room_id, "room"),
        check_id(seq, "seq"),
        check_message_body(payload.body, int(setting("MAX_BODY_CHARS"))),
        check_client_id(payload.client_id, int(setting("MAX_CLIENT_ID_CHARS"))),
    )


@api.delete("/rooms/{room_id}/messages/{seq}", response=CHANGED, tags=["messages"])
async def delete_message(
    request: HttpRequest, room_id: int, seq: int, scope: Literal["everyone", "me"] = "everyone"
) -> Any:
    """Delete a message for everyone (my own within DELETE_WINDOW_S; any, for the room's
    owner and admins), or for me alone (`scope=me`). Answers the tombstone."""
    await spend_send(_me(request))
    return await perform(
        changes.do_delete_message,
        _me(request),
        check_id(room_id, "room"),
        check_id(seq, "seq"),
        scope,
    )


async def _react(request: HttpRequest, room_id: int, seq: int, emoji: str, state: str) -> Any:
    await spend_send(_me(request))
    return await perform(
        changes.do_react,
        _me(request),
        check_id(room_id, "room"),
        check_id(seq, "seq"),
        check_emoji(emoji, setting("REACTION_EMOJI")),
        state,
    )


@api.put("/rooms/{room_id}/messages/{seq}/reactions/{emoji}", response=CHANGED, tags=["messages"])
async def add_reaction(request: HttpRequest, room_id: int, seq: int, emoji: str) -> Any:
    """React with one emoji (URL-encoded); again changes nothing."""
    return await _react(request, room_id, seq, emoji, "add")


@api.delete(
    "/rooms/{room_id}/messages/{seq}/reactions/{emoji}", response=CHANGED, tags=["messages"]
)
async def remove_reaction(request: HttpRequest, room_id: int, seq: int, emoji: str) -> Any:
    """Take my reaction back; one that is not there changes nothing."""
    return await _react(request, room_id, seq, emoji, "remove")


@api.get(
    "/rooms/{room_id}/messages/{seq}/reactions",
    response={200: WhoReactedOut, 400: E, 401: E, 404: E, 429: E},
    tags=["messages"],
)
@read_view()
async def who_reacted(request: HttpRequest, room_id: int, seq: int) -> Any:
    """Who reacted to a message with what, in the order they did."""
    return await read(
        changes.reactors, _me(request), check_id(room_id, "room"), check_id(seq, "seq")
    )


@api.get(
    "/rooms/{room_id}/messages/{seq}/history",
    response={200: EditHistoryOut, 400: E, 401: E, 403: E, 404: E, 429: E},
    tags=["messages"],
)
@read_view()
async def edit_history(request: HttpRequest, room_id: int, seq: int) -> Any:
    """A message's texts before its edits, and its current one (its sender and the room's
    owner and admins only)."""
    return await read(
        changes.edit_history, _me(request), check_id(room_id, "room"), check_id(seq, "seq")
    )


@api.get(
    "/rooms/{room_id}/changes",
    response={200: ChangesOut, 400: E, 401: E, 404: E, 429: E},
    tags=["messages"],
)
@read_view()
async def room_changes(
    request: HttpRequest,
    room_id: int,
    after_change: int = Query(0, ge=0, le=2**63 - 1),
    limit: int | None = Query(None, ge=1, le=1000),
) -> Any:
    """The room's change log after `after_change`, ascending, each change with the message
    as it is now."""
    return await read(
        changes.changes_page, _me(request), check_id(room_id, "room"), after_change, limit
    )


@api.post(
    "/rooms/{room_id}/receipts",
    response={200: ReceiptOut, 400: E, 401: E, 429: E, 403: E, 404: E},
    tags=["messages"],
)
async def move_marker(request: HttpRequest, room_id: int, payload: ReceiptIn) -> Any:
    """Move the caller's delivered or read marker (monotonic, clamped to last_seq)."""
    await spend("frames", _me(request).pk)
    receipt = await perform(
        receipts.do_move_marker, _me(request), check_id(room_id, "room"), payload.kind, payload.seq
    )
    return {"accepted": receipt is not None, "receipt": receipt}


@api.get(
    "/rooms/{room_id}/messages/{seq}/info",
    response={200: MessageInfoOut, 400: E, 401: E, 429: E, 403: E, 404: E},
    tags=["messages"],
)
@read_view()
async def message_info(request: HttpRequest, room_id: int, seq: int) -> Any:
    """Message info for its sender: its status, and who has it delivered and read, when."""
    return await read(
        receipts.message_info, _me(request), check_id(room_id, "room"), check_id(seq, "seq")
    )


def _pairs(text: str, name: str) -> dict[int, int]:
    parsed: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        room, sep, number = part.partition(":")
        if not sep or not (number.isascii() and number.isdigit() and len(number) <= 19):
            raise InvalidInput(f"{name} are <room>:<number> pairs separated by commas")
        parsed[room] = int(number)
    return check_cursors(parsed, name)


@api.get(
    "/sync",
    response={200: SyncOut, 400: E, 401: E, 429: E},
    tags=["messages"],
    exclude_unset=True,
)
@read_view()
async def sync(request: HttpRequest, cursors: str = "", changes: str | None = None) -> Any:
    """Catch up: `cursors=<room>:<seq>,…` (the HTTP form of the `sync` frame), and
    `changes=<room>:<change>,…` for the changes to messages after those numbers."""
    checked = _pairs(cursors, "cursors")
    changed = None if changes is None else _pairs(changes, "changes")
    await spend("sync", _me(request).pk, len(checked) + len(changed or {}))
    return await read(queries.build_sync, _me(request), checked, changed)


# -- notifications ---------------------------------------------------------------------------


@api.get(
    "/notifications",
    response={200: NotificationsOut, 400: E, 401: E, 429: E},
    tags=["notifications"],
)
@read_view()
async def list_notifications(
    request: HttpRequest,
    unread: bool = False,
    before_id: int | None = Query(None, ge=1, le=2**63 - 1),
    limit: int = Query(50, ge=1, le=100),
) -> Any:
    """The caller's notifications, newest first (`unread=1`: unread only; page with
    `before_id`)."""
    return await read(
        notifications.list_for, _me(request), unread=unread, before_id=before_id, limit=limit
    )


@api.post(
    "/notifications/read-all",
    response={200: NotificationsReadOut, 401: E, 429: E, 403: E},
    tags=["notifications"],
)
async def read_all_notifications(request: HttpRequest) -> Any:
    """Mark every notification of the caller read (every tab is told)."""
    ids = await perform(notifications.do_mark_all_read, _me(request))
    return {"ids": ids, "unread_count": 0}


@api.post(
    "/notifications/{notification_id}/read",
    response={200: NotificationsReadOut, 400: E, 401: E, 429: E, 403: E, 404: E},
    tags=["notifications"],
)
async def read_notification(request: HttpRequest, notification_id: int) -> Any:
    """Mark one notification read (404 for another user's, as for a missing one)."""
    user = _me(request)
    ids = await perform(
        notifications.do_mark_read, user, [check_id(notification_id, "notification")]
    )
    return {"ids": ids, "unread_count": await read(notifications.unread_count, user)}


@api.post(
    "/rooms/{room_id}/mute",
    response={200: MuteOut, 400: E, 401: E, 429: E, 403: E, 404: E},
    tags=["notifications"],
)
async def mute_room(request: HttpRequest, room_id: int, payload: MuteIn) -> Any:
    """Mute or unmute a room: a muted room creates no notifications for the caller."""
    return await perform(
        notifications.do_set_muted, _me(request), check_id(room_id, "room"), payload.muted
    )


@api.get("/push/key", response={200: PushKeyOut, 401: E, 429: E}, tags=["notifications"])
@read_view()
async def push_key(request: HttpRequest) -> Any:
    """The VAPID public key browsers subscribe with (null when Web Push is off)."""
    return {"public_key": setting("VAPID_PUBLIC_KEY") if fallback.push_enabled() else None}


@api.post(
    "/push/subscriptions",
    response={200: OkOut, 201: OkOut, 400: E, 401: E, 429: E, 403: E},
    tags=["notifications"],
)
async def subscribe_push(request: HttpRequest, payload: PushSubscriptionIn) -> Any:
    """Store the browser's PushSubscription (its toJSON()); the same endpoint again is 200."""
    created = await perform(
        notifications.do_subscribe_push,
        _me(request),
        payload.endpoint,
        payload.keys.p256dh,
        payload.keys.auth,
    )
    return Status(201 if created else 200, {"ok": True})


@api.delete(
    "/push/subscriptions",
    response={200: OkOut, 400: E, 401: E, 429: E, 403: E},
    tags=["notifications"],
)
async def unsubscribe_push(request: HttpRequest, endpoint: str) -> Any:
    """Forget a push subscription of the caller's (by endpoint)."""
    await perform(notifications.do_unsubscribe_push, _me(request), endpoint)
    return {"ok": True}


# -- attachments (linkup.actions.uploads, linkup.web.files) -----------------------------------

MULTIPART_FILE = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        # A recorded voice note's length, for a format that does not say it.
                        "duration_s": {"type": "number", "minimum": 0},
                    },
                }
            }
        },
    }
}
FILE_ANSWERS = {
    "responses": {
        "200": {"description": "The file (Range: 206 with the part asked for)."},
        "302": {"description": "A short-lived signed URL of the storage (S3)."},
    }
}


@api.post(
    "/uploads",
    response={201: UploadAnswerOut, 400: E, 401: E, 403: E, 411: E, 413: E, 429: E, 503: E},
    tags=["attachments"],
    openapi_extra=MULTIPART_FILE,
)
async def upload(request: HttpRequest) -> Any:
    """Upload one file (multipart, field `file`) to attach to a message later: its type is
    decided from its content; an image is stored without its metadata. Unsent, it is
    deleted after UPLOAD_UNSENT_TTL_S."""
    user = _me(request)
    files.announced_length(request)  # 411 without a length, 413 over the limit: unread
    await spend("uploads", user.pk)
    stored = await perform(files.take_upload, request, user)
    return Status(201, {"upload": stored})


def members_only(view: View) -> View:
    """An attachment's route: whoever is not signed in gets the same 404 as everyone else
    who may not see the file (the contract: "404 to anyone else, anonymous included")."""

    @functools.wraps(view)
    async def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        principal = await BearerOrSession()(request)
        if principal is None:
            raise NotFound("file not found")
        request.auth = principal  # type: ignore[attr-defined]
        return await view(request, *args, **kwargs)

    return wrapped


@api.get(
    "/attachments/{upload_id}",
    auth=None,
    response={404: E, 416: E, 429: E, 503: E},
    tags=["attachments"],
    url_name="attachment",
    openapi_extra=FILE_ANSWERS,
)
@members_only
@read_view(budget="files")
async def attachment(request: HttpRequest, upload_id: str) -> Any:
    """An attachment, for the members of its message's room (and its uploader before it is
    sent); the same 404 for anyone else as for a missing file."""
    fetch = await read(uploads.attachment_for, _me(request), upload_id)
    return await files.serve(request, fetch)


@api.get(
    "/attachments/{upload_id}/thumbnail",
    auth=None,
    response={404: E, 416: E, 429: E, 503: E},
    tags=["attachments"],
    openapi_extra=FILE_ANSWERS,
)
@members_only
@read_view(budget="files")
async def attachment_thumbnail(request: HttpRequest, upload_id: str) -> Any:
    """An image attachment's thumbnail (a JPEG at most THUMBNAIL_PX a side); the image
    itself, not to be cached, until the task worker has made it."""
    fetch = await read(uploads.attachment_for, _me(request), upload_id, thumbnail=True)
    return await files.serve(request, fetch)


@api.post(
    "/me/avatar",
    response={200: ProfileOut, 400: E, 401: E, 403: E, 411: E, 413: E, 429: E, 503: E},
    tags=["users"],
    openapi_extra=MULTIPART_FILE,
)
async def set_avatar(request: HttpRequest) -> Any:
    """Make an image (multipart, field `file`: JPEG, PNG, GIF or WebP) my picture: its middle
    square, 256 px, re-encoded without metadata. Everyone sharing a room with me is told."""
    user = _me(request)
    files.announced_length(request)
    await spend("uploads", user.pk)
    return await perform(files.take_avatar, request, user)


@api.delete("/me/avatar", response={200: ProfileOut, 401: E, 403: E, 429: E}, tags=["users"])
async def remove_avatar(request: HttpRequest) -> Any:
    """Take my picture away."""
    return await perform(profiles.do_remove_avatar, _me(request))


@api.get(
    "/users/{user_id}/avatar",
    auth=None,
    response={404: E, 429: E, 503: E},
    tags=["users"],
    url_name="user_avatar",
    openapi_extra=FILE_ANSWERS,
)
@members_only
@read_view(budget="files")
async def user_avatar(request: HttpRequest, user_id: int) -> Any:
    """A person's picture (WebP), for anyone signed in; the same 404 where none is set, a
    block stands between the two, or the caller is not signed in."""
    if not 0 < user_id <= MAX_ID:
        raise NotFound("no picture")  # the same answer as for anyone else's missing picture
    fetch = await read(profiles.avatar_for, _me(request), user_id)
    return await files.serve(request, fetch)


# -- a person's data ---------------------------------------------------------------------------


@api.post("/me/export", response={202: ExportAnswerOut, 401: E, 403: E, 429: E}, tags=["users"])
async def request_export(request: HttpRequest) -> Any:
    """Ask for a copy of everything of yours (profile, rooms, messages sent and received,
    receipts, notifications, files sent): a zip the task worker builds; poll its state."""
    await spend("exports", _me(request).pk)
    export = await perform(exports.do_request_export, _me(request))
    return Status(202, {"export": exports.export_dict(export)})


@api.get(
    "/me/export/{export_id}",
    response={200: ExportAnswerOut, 401: E, 404: E, 429: E},
    tags=["users"],
)
@read_view()
async def export_state(request: HttpRequest, export_id: str) -> Any:
    """An export's state: `pending`, `ready` (with its `url`) or `failed`."""
    export = await read(exports.export_of, _me(request), export_id)
    return {"export": exports.export_dict(export)}


@api.get(
    "/me/export/{export_id}/file",
    response={401: E, 404: E, 416: E, 429: E, 503: E},
    tags=["users"],
    url_name="export_file",
    openapi_extra=FILE_ANSWERS,
)
@read_view(budget="files")
async def export_file(request: HttpRequest, export_id: str) -> Any:
    """The export's zip, for its owner alone (anyone else: 404)."""
    fetch = await read(exports.export_file, _me(request), export_id)
    return await files.serve(request, fetch)
