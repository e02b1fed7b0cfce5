"""Linkup settings, read lazily from ``settings.LINKUP`` (a dict) with these defaults."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    # Message body: 1..N Unicode code points after trimming.
    "MAX_BODY_CHARS": 4000,
    # Largest WebSocket text frame accepted; larger ones earn `too_large`.
    "MAX_FRAME_BYTES": 64 * 1024,
    # Longest client_id accepted (clients send UUID strings: 36 characters).
    "MAX_CLIENT_ID_CHARS": 64,
    # Sends per user: a token bucket refilled at RATE per second holding up to BURST.
    "SEND_RATE_PER_S": 10.0,
    "SEND_BURST": 20,
    # Most sends one transaction commits together (group commit, linkup/realtime/sending.py).
    "SEND_BATCH_MAX": 100,
    # Typing frames per user (a client sends about one a second at most: start every 3 s,
    # stop after 1 s idle); more get `rate_limited` and are not relayed.
    "TYPING_RATE_PER_S": 2.0,
    "TYPING_BURST": 10,
    # People searches per user (`GET /users?q=`), and the shortest query that finds anyone:
    # nobody can list every user a few letters at a time, or all at once.
    "SEARCH_RATE_PER_S": 1.0,
    "SEARCH_BURST": 20,
    "SEARCH_MIN_CHARS": 3,
    # Message search (`GET /api/v1/search`, linkup/store/search.py): the language of the
    # full-text index (a PostgreSQL text-search configuration; on SQLite "english" stems
    # with Porter's algorithm and any other matches whole words); after changing it run
    # `manage.py linkup_search_index`. Queries are 1..QUERY_MAX_CHARS characters; pages
    # hold DEFAULT_LIMIT hits (MAX_LIMIT at most); each user may search RATE times a second
    # after a burst.
    "SEARCH_LANGUAGE": "english",
    "MESSAGE_SEARCH_QUERY_MAX_CHARS": 500,
    "MESSAGE_SEARCH_DEFAULT_LIMIT": 20,
    "MESSAGE_SEARCH_MAX_LIMIT": 100,
    "MESSAGE_SEARCH_RATE_PER_S": 2.0,
    "MESSAGE_SEARCH_BURST": 30,
    # A search that finds nothing is answered no sooner than this after it came: whether
    # an outsider's words are said in rooms they are not in must not show in the time
    # (measured difference without it: 2.7 ms at p50 over 1,000,000 messages).
    "MESSAGE_SEARCH_EMPTY_FLOOR_S": 0.05,
    # Reports of messages and users per user (`POST /api/v1/reports`): 10 at once, then ten
    # an hour.
    "REPORT_RATE_PER_S": 10 / 3600,
    "REPORT_BURST": 10,
    # Password guesses (linkup/web/throttle.py): each account gets BURST attempts, then one
    # every REFILL_S seconds, whatever the address; each client address the same over all
    # accounts. A correct password costs nothing, so only failures run a bucket dry.
    "LOGIN_ACCOUNT_BURST": 10,
    "LOGIN_ACCOUNT_REFILL_S": 60.0,
    "LOGIN_ADDRESS_BURST": 30,
    "LOGIN_ADDRESS_REFILL_S": 10.0,
    # Budgets per user for everything else a client can ask for (linkup/realtime/ratelimit.py
    # BUDGETS). ping, receipt and focus frames (and receipts over REST), one token each; a
    # client pings every 30 s and sends a receipt or a focus as the person reads.
    "FRAME_RATE_PER_S": 20.0,
    "FRAME_BURST": 100,
    # sync (frame and REST) costs one token per cursor: a client in 5,000 rooms syncs all of
    # them at once twice, then every five seconds.
    "SYNC_CURSORS_PER_S": 1000.0,
    "SYNC_CURSOR_BURST": 10_000,
    # Every GET under /api/v1 (GET /rooms costs 10: after the burst, one list a second).
    "READ_RATE_PER_S": 10.0,
    "READ_BURST": 100,
    # ... and at most this many of one user's reads run at once in a process (the others
    # wait their turn, holding a connection but not the database thread).
    "READ_CONCURRENCY": 2,
    # Rooms created (a few a minute, after a burst), and members added to groups (a group of
    # a thousand at once, then two a second).
    "ROOM_CREATE_RATE_PER_S": 0.1,
    "ROOM_CREATE_BURST": 20,
    "MEMBER_ADD_RATE_PER_S": 2.0,
    "MEMBER_ADD_BURST": 1100,
    # Groups created per user: 30 at once, then 30 an hour (on top of ROOM_CREATE_*).
    "GROUP_CREATE_RATE_PER_S": 30 / 3600,
    "GROUP_CREATE_BURST": 30,
    # Verification emails a user can ask for: 3, then one every 10 minutes.
    "VERIFY_EMAIL_RATE_PER_S": 1 / 600,
    "VERIFY_EMAIL_BURST": 3,
    # A socket refused `rate_limited` this many times within ABUSE_WINDOW_S is closed (1008):
    # a client that waits `retry_after_s` never comes near it.
    "ABUSE_MAX_RATE_LIMITED": 100,
    # After a `rate_limited` refusal a socket's frames are not read until the wait is over
    # (at most this long): the flood waits in the client's own buffers.
    "RATE_LIMITED_PAUSE_MAX_S": 1.0,
    # With channels_redis, those buckets live in Redis, shared by every process. A Redis
    # that does not answer within this long leaves the decision to the process's own
    # buckets (fail open: a user's budget is then per process) for a second.
    "LIMITS_REDIS_TIMEOUT_S": 0.25,
    # False keeps those buckets per process even with Redis (a Redis round trip less a send).
    "LIMITS_SHARED": True,
    "LIMITS_REDIS_CONNECTIONS": 50,
    # Open chat sockets per user, and notification sockets per user apart (across
    # processes with Redis, see LIMITS_SHARED).
    "MAX_CONNECTIONS_PER_USER": 20,
    # A socket earning this many invalid_frame/unknown_type/too_large errors within the
    # window is closed with 1008.
    "ABUSE_MAX_BAD_FRAMES": 50,
    "ABUSE_WINDOW_S": 60.0,
    # A socket whose client stops reading: once one frame has waited this long to be
    # written, the socket is closed (1013), so the frames queued behind it cannot grow
    # without bound nor hold up that user's other work.
    "SLOW_CONSUMER_TIMEOUT_S": 10.0,
    # ... and a socket whose unsent frames stay over this many bytes that long is closed
    # (1013) and its buffers dropped: the hub writes frames without waiting for the client.
    "SLOW_CONSUMER_MAX_BYTES": 1024 * 1024,
    # The hub delivers what its process commits to its own sockets at once (False: through
    # the channel layer like everyone else's; tests of a lossy layer use it).
    "HUB_LOCAL_FIRST": True,
    # A message that arrives before the ones it follows (another process's doorbell lost or
    # overtaken) waits this long for them; then the hub reads them from the database, once
    # for all its sockets in the room.
    "HUB_REORDER_WAIT_S": 0.02,
    # Each hub compares its rooms' last seqs with the database this often (one query), so
    # messages whose doorbells were all lost arrive with no ping.
    "HUB_CHECK_S": 5.0,
    # Threads that run HTTP requests' database work (linkup.asgi.RequestThreads), each with
    # its own connection; sockets have their own database thread beside them.
    "HTTP_THREADS": 4,
    # HTTP requests from one client address handled at once; more wait their turn (holding
    # a connection, costing no CPU), so parallel requests from one place cannot take the
    # whole process.
    "HTTP_PER_ADDRESS": 2,
    # Heartbeat the client is told to keep, and the silence after which a socket may be closed.
    "HEARTBEAT_S": 30,
    "IDLE_TIMEOUT_S": 75,
    # Typing ends this long after the last "start" refresh; refreshes are relayed to the
    # room at most this often.
    "TYPING_EXPIRE_S": 5.0,
    "TYPING_RELAY_INTERVAL_S": 3.0,
    # Presence: a connection is alive while refreshed (every REFRESH_S, for TTL_S); a user is
    # offline GRACE_S after their last connection went.
    "PRESENCE_TTL_S": 30.0,
    "PRESENCE_REFRESH_S": 10.0,
    "PRESENCE_GRACE_S": 30.0,
    # Presence frames go to those sharing a room of at most this many members with the
    # user (direct rooms always); larger rooms read presence instead of being pushed it.
    "PRESENCE_FANOUT_MAX_MEMBERS": 100,
    # Rooms up to this many members get every member's `receipt` frames.
    "RECEIPT_FANOUT_MAX_MEMBERS": 20,
    # Catch-up pages (sync): at most this many messages and this many bytes per room.
    "SYNC_MAX_MESSAGES": 100,
    "SYNC_MAX_BYTES": 256 * 1024,
    # Rooms whose catch-up pages one query fetches (sync costs one query per this many).
    "SYNC_ROOMS_PER_QUERY": 500,
    # Changes to messages (edits, deletes, reactions) per room in one sync entry, and the
    # seqs a user deleted for themselves listed per room (newest first).
    "SYNC_MAX_CHANGES": 100,
    "DELETED_FOR_ME_MAX": 1000,
    # How long after sending its sender may edit a message (WhatsApp's 15 minutes), and
    # delete it for everyone (a room's owner and admins may delete any message, any time).
    "EDIT_WINDOW_S": 15 * 60,
    "DELETE_WINDOW_S": 2 * 24 * 3600,
    # Reactions allowed: None takes any one emoji (one grapheme cluster: a ZWJ sequence, a
    # flag, a skin tone); a list allows those strings only.
    "REACTION_EMOJI": None,
    # Different emoji on one message at most (one of each per person).
    "REACTIONS_PER_MESSAGE_MAX": 50,
    # Attachments. Which of Django's STORAGES keeps the files ("default": the site's; the
    # standalone server's is the local disk, or S3-compatible storage when configured).
    "STORAGE": "default",
    # A file at most (bigger: 413 `too_large`, refused before anything is stored), files on
    # one message, and what one user's uploads may weigh in all.
    "UPLOAD_MAX_BYTES": 25 * 1024 * 1024,
    "ATTACHMENTS_PER_MESSAGE_MAX": 10,
    "UPLOAD_QUOTA_BYTES": 1024**3,
    # Types accepted, decided from the content (signatures), never from the name or the
    # client's Content-Type. `text/plain` is any valid UTF-8 text without a signature.
    "UPLOAD_TYPES": [
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "application/zip",
        "application/gzip",
        "application/x-7z-compressed",
        "application/x-tar",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "audio/mpeg",
        "audio/ogg",
        "audio/x-wav",
        "audio/x-flac",
        "audio/mp4",
        "audio/aac",
        "audio/webm",
        "video/mp4",
        "video/webm",
        "video/quicktime",
    ],
    # Uploads per user: the send budget's shape (a burst, then a steady rate).
    "UPLOAD_RATE_PER_S": 1.0,
    "UPLOAD_BURST": 20,
    # Attachment fetches per user (a chat full of photos, players asking for ranges): a
    # budget of their own, apart from REST reads.
    "FILE_READ_RATE_PER_S": 50.0,
    "FILE_READ_BURST": 500,
    # Frames of an animated image at most, and its pixels over all frames (re-encoding
    # composes every frame: a GIF of many frames is a bomb of its own).
    "ANIMATION_MAX_FRAMES": 500,
    "ANIMATION_MAX_PIXELS": 200_000_000,
    # An upload no message carries this long after it arrived is deleted (the task worker).
    "UPLOAD_UNSENT_TTL_S": 24 * 3600,
    # Images: pixels at most (a decompression bomb is refused), and the thumbnail's box.
    "IMAGE_MAX_PIXELS": 40_000_000,
    # A profile picture as uploaded (it is stored as a 256 px square, a few KiB).
    "AVATAR_MAX_BYTES": 5 * 1024 * 1024,
    "THUMBNAIL_PX": 320,
    # Serving: a storage that signs URLs (S3) is redirected to for this long; with a prefix
    # here, the local disk's files are handed to nginx (X-Accel-Redirect) instead of being
    # streamed by Linkup (docs/deployment.md).
    "ATTACHMENT_URL_TTL_S": 300,
    "ATTACHMENT_X_ACCEL_PREFIX": None,
    # A deleted account's messages stay in others' rooms, from "Deleted user": with this
    # set their text is erased too (deleted for everyone). Their files always go.
    "ACCOUNT_DELETE_ERASES_MESSAGES": False,
    # A person's data export (`POST /api/v1/me/export`) is kept this long once built, and
    # each person may ask for EXPORT_BURST at once, then one every 1/EXPORT_RATE_PER_S s.
    "EXPORT_KEEP_S": 7 * 24 * 3600,
    "EXPORT_RATE_PER_S": 1 / 3600,
    "EXPORT_BURST": 3,
    # Days of history to keep; None keeps everything. `manage.py linkup_purge` applies it.
    "RETENTION_DAYS": None,
    # REST history paging.
    "HISTORY_DEFAULT_LIMIT": 50,
    "HISTORY_MAX_LIMIT": 100,
    # Messages fetched per query when a socket fills a gap from the database.
    "GAP_FILL_BATCH": 500,
    # Open registration over `POST /api/v1/auth/register`.
    "REGISTRATION_OPEN": True,
    # Members of a group at most (WhatsApp's 1,024), counting the owner.
    "GROUP_MAX_MEMBERS": 1024,
    # Who may add a person to a group unless they chose otherwise: "everyone", "contacts"
    # (people who share a room with them) or "nobody". Whoever may not, invites instead.
    "GROUP_ADDS_DEFAULT": "everyone",
    # A verification link (emailed on sign-up or on asking) works this long.
    "EMAIL_VERIFY_MAX_AGE_S": 3 * 24 * 3600,
    # The address links in emails start with ("https://chat.example.com"); None builds it
    # from the request that asked for the email.
    "PUBLIC_URL": None,
    # Lifetime of a one-use WebSocket ticket.
    "TICKET_TTL_S": 30,
    # A bearer token unused this long is expired (30 days); a use is recorded at most once
    # per TOKEN_TOUCH_S, so a busy client does not write on every request.
    "TOKEN_IDLE_EXPIRY_S": 30 * 24 * 3600,
    "TOKEN_TOUCH_S": 3600,
    # Serve the API's interactive docs page at /api/v1/docs (it loads Swagger UI from a
    # CDN, so it is off by default; the OpenAPI document is always served).
    "API_DOCS": False,
    # Origins allowed, besides the server's own as served, to open a socket authenticated by
    # the session cookie: exact "scheme://host[:port]" strings (a site on another origin).
    "ALLOWED_ORIGINS": None,
    # Seconds a client is told to wait before retrying when storage is unavailable.
    "UNAVAILABLE_RETRY_S": 2,
    # Re-join channel-layer groups this often, so group expiry or a Redis restart that
    # forgot every group never leaves a live socket deaf.
    "GROUP_REFRESH_S": 300,
    # The web client: its first reconnect delay (doubling, with jitter), the tries before it
    # falls back to HTTP (sending by REST, polling GET /sync) while retrying the socket, and
    # how often it polls then.
    "CLIENT_RECONNECT_FIRST_S": 2.0,
    "CLIENT_RECONNECT_ATTEMPTS": 5,
    "CLIENT_POLL_S": 3.0,
    # How long the web client waits for the browser's push service when subscribing.
    "CLIENT_PUSH_WAIT_S": 15.0,
    # Redis connections the presence store of one process may hold, and how long a presence
    # call waits for a free one before it fails (and is logged; the socket still serves).
    "PRESENCE_REDIS_CONNECTIONS": 50,
    "PRESENCE_REDIS_WAIT_S": 10,
    # Store a MessagingError row for errors an operator must see.
    "RECORD_ERRORS": True,
    # Notifications (linkup/actions/notifications.py, linkup/tasks/fallback.py). A
    # notification nobody has seen goes by email (one digest per batch) and Web Push once
    # its user has been offline this long; a failing attempt is retried with exponential
    # backoff and jitter (base, cap), at most NOTIFY_MAX_ATTEMPTS times, then recorded as
    # failed. Whatever is still pending after NOTIFY_EXPIRE_DAYS expires.
    "NOTIFY_OFFLINE_DELAY_S": 120.0,
    "NOTIFY_MAX_ATTEMPTS": 5,
    "NOTIFY_RETRY_BASE_S": 30.0,
    "NOTIFY_RETRY_MAX_S": 3600.0,
    "NOTIFY_EXPIRE_DAYS": 7,
    # Notifications one digest (or push) carries at most; the rest go in the next batch.
    "NOTIFY_BATCH_MAX": 50,
    # A batch claimed by a worker that died before it finished is retried after this long.
    "NOTIFY_SENDING_LEASE_S": 600.0,
    # @mentions one message notifies at most (the first ones named).
    "NOTIFY_MENTIONS_MAX": 50,
    # Notifications one sender causes one recipient within the window at most: the messages
    # beyond still arrive (and count unread), unannounced.
    "NOTIFY_PER_SENDER_MAX": 30,
    "NOTIFY_PER_SENDER_WINDOW_S": 60.0,
    # Characters of a message shown in its notification.
    "NOTIFY_PREVIEW_CHARS": 140,
    # Circuit breaker per transport: open after this many consecutive failures, try again
    # (half-open: one batch) after the cool-down.
    "BREAKER_FAILURES": 5,
    "BREAKER_COOLDOWN_S": 60.0,
    # Email digests: the sender address (None: DEFAULT_FROM_EMAIL).
    "NOTIFY_EMAIL_FROM": None,
    # Web Push (optional: pip install 'linkup[push]'): VAPID keys (base64url, as
    # `vapid --gen` or py_vapid make them) and the contact claimed to push services.
    "VAPID_PUBLIC_KEY": None,
    "VAPID_PRIVATE_KEY": None,
    "VAPID_SUBJECT": "mailto:admin@localhost",
    "PUSH_TIMEOUT_S": 10.0,
    # Push endpoints must be https (push services are); http is for a local test service.
    "PUSH_ALLOW_HTTP": False,
}


def setting(name: str) -> Any:
    """Return the Linkup setting `name`, falling back to its default."""
    if name not in DEFAULTS:
        raise ImproperlyConfigured(f"Unknown Linkup setting {name!r}; known: {sorted(DEFAULTS)}")
    overrides = getattr(settings, "LINKUP", {}) or {}
    if not isinstance(overrides, dict):
        raise ImproperlyConfigured("settings.LINKUP must be a dict of Linkup settings.")
    return overrides.get(name, DEFAULTS[name])


def normal_origin(origin: str) -> str:
    """An origin as browsers send it: lower case, no trailing slash, no default port
    (`http://h:80` is `http://h`, `https://h:443` is `https://h`)."""
    origin = origin.strip().rstrip("/").lower()
    for scheme, port in (("http", ":80"), ("https", ":443")):
        if origin.startswith(f"{scheme}://") and origin.endswith(port):
            return origin[: -len(port)]
    return origin


def allowed_origins() -> set[str]:
    """The Origins, besides the server's own, allowed to open cookie-authenticated sockets:
    ALLOWED_ORIGINS, exactly (scheme, host and port). None (the default) allows none: only
    the server's own origin as served, never a portless or other-scheme variant of it."""
    return {normal_origin(o) for o in setting("ALLOWED_ORIGINS") or ()}
