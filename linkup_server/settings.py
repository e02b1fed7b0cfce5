"""Settings of the standalone Linkup server, read from the environment.

No configuration: SQLite (WAL, IMMEDIATE transactions) and the in-memory channel layer, one
process. DATABASE_URL switches to PostgreSQL with psycopg's pool; REDIS_URL to channels_redis.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LINKUP_VAR_DIR", BASE_DIR / "var"))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _secret_key() -> str:
    key = os.environ.get("LINKUP_SECRET_KEY")
    if key:
        return key
    # Embedded default: a random key kept beside the database, so sessions survive restarts.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _env_bool("LINKUP_DEBUG", False)
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("LINKUP_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_tasks",
    "django_tasks_db",
    "linkup",
]

# Background work (notification digests, retries, expiry): Django's Tasks API with the
# database backend; `python -m linkup_server manage db_worker` runs it (`make demo` does).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

# Email digests: the console by default (the demo prints them); EMAIL_URL-style settings
# are left to the operator (LINKUP_EMAIL_BACKEND and Django's EMAIL_* variables).
EMAIL_BACKEND = os.environ.get(
    "LINKUP_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = os.environ.get("LINKUP_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("LINKUP_EMAIL_PORT", "25"))
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("LINKUP_EMAIL_FROM", "Linkup <linkup@localhost>")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The pages' language: the person's choice (a cookie set at sign-in and on the account
    # page), else the browser's Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "linkup.middleware.ApiErrorMiddleware",
]

ROOT_URLCONF = "linkup_server.urls"
ASGI_APPLICATION = "linkup_server.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


# SQLite: pages of write-ahead log between checkpoints (below, in _database).
SQLITE_CHECKPOINT_PAGES = int(os.environ.get("LINKUP_SQLITE_CHECKPOINT_PAGES", "400"))


def _database() -> dict[str, Any]:
    url = os.environ.get("DATABASE_URL")
    if url:
        if not url.startswith(("postgres://", "postgresql://")):
            raise ImproperlyConfigured("DATABASE_URL must be a postgres:// or postgresql:// URL.")
        db: dict[str, Any] = dict(dj_database_url.parse(url))
        # Persistent connections leak under ASGI; psycopg's pool does not. A short pool
        # timeout turns a database outage into a quick `unavailable`, not 30 s of silence.
        # A short reconnect timeout stops the pool's own retries (backing off 1, 2, 4, 8 s)
        # after a second: the next request then connects at once, so the server is back as
        # soon as the database is, not up to 8 s later.
        db["CONN_MAX_AGE"] = 0
        db["OPTIONS"] = {
            "connect_timeout": 2,
            "pool": {
                "min_size": int(os.environ.get("LINKUP_DB_POOL_MIN", "2")),
                "max_size": int(os.environ.get("LINKUP_DB_POOL_MAX", "10")),
                "timeout": float(os.environ.get("LINKUP_DB_POOL_TIMEOUT", "2")),
                "reconnect_timeout": float(os.environ.get("LINKUP_DB_POOL_RECONNECT_TIMEOUT", "1")),
            },
        }
        db["TEST"] = {"NAME": os.environ.get("LINKUP_TEST_DB_NAME", "test_linkup")}
        return db
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = os.environ.get("LINKUP_DB_PATH", str(VAR_DIR / "linkup.sqlite3"))
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        # One connection per thread, kept: the database thread reuses its connection.
        "CONN_MAX_AGE": None,
        "OPTIONS": {
            # IMMEDIATE: take the write lock at BEGIN, so a transaction never fails upgrading
            # a read lock ("database is locked"); WAL lets readers run beside the writer.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            # SQLite's own page cache (2 MB) is kept: 64 MB was tried (W6, 5 minutes): p99
            # lower at first (7.0 against 9.0 ms) but the same by the fifth minute (8.9 and
            # 9.1), for 40 MB more memory.
            # The log is copied back into the database (checkpointed) by the commit that
            # takes it past wal_autocheckpoint pages, while that batch's senders wait, and a
            # checkpoint costs more as the tables grow (its pages spread over the file). At
            # SQLite's 1,000 pages (about 90 sends) it took 6-10 ms, one commit in 70: W6's
            # p99 climbed with it. At 400, 3-5 ms; at 10,000, 30-90 ms (docs/bench).
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES};"
            ),
        },
        "TEST": {"NAME": os.environ.get("LINKUP_TEST_DB_PATH", str(VAR_DIR / "test.sqlite3"))},
    }


DATABASES = {"default": _database()}


def _channel_layers() -> dict[str, Any]:
    url = os.environ.get("REDIS_URL")
    if url:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ImproperlyConfigured("REDIS_URL must be a redis:// or rediss:// URL.")
        host = {
            "address": url,
            # redis-py 8 caps an async pool at 100 connections by default, and
            # channels_redis then fails with "Too many connections" under a few hundred
            # sockets: set the cap deliberately.
            "max_connections": int(os.environ.get("LINKUP_REDIS_MAX_CONNECTIONS", "2000")),
            # redis-py 8 reads with a 5 s socket timeout by default, and channels_redis
            # blocks 5 s in BZPOPMIN: an idle socket's read then times out and kills its
            # consumer. Wait longer than the blocking pop (a dead Redis is still noticed
            # within 30 s).
            "socket_timeout": float(os.environ.get("LINKUP_REDIS_SOCKET_TIMEOUT", "30")),
            "socket_connect_timeout": 5,
        }
        prefix = os.environ.get("LINKUP_REDIS_PREFIX", "linkup")
        kind = os.environ.get("LINKUP_REDIS_LAYER", "pubsub")
        if kind == "pubsub":
            # One PUBLISH per group send, fanned out to the process's sockets in memory (see
            # docs/architecture.md for the measurements against the list-based layer).
            return {
                "default": {
                    "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                    "CONFIG": {"hosts": [host], "prefix": prefix},
                }
            }
        if kind != "core":
            raise ImproperlyConfigured("LINKUP_REDIS_LAYER must be pubsub or core.")
        return {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [host],
                    "capacity": 1000,
                    "expiry": 60,
                    "group_expiry": 86400,
                    "prefix": prefix,
                },
            }
        }
    return {
        "default": {
            "BACKEND": "linkup.layers.EmbeddedChannelLayer",
            "CONFIG": {"capacity": 1000, "expiry": 60},
        }
    }


CHANNEL_LAYERS = _channel_layers()

PASSWORD_HASHERS = [
    "linkup_server.hashers.OwaspArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
# The languages Linkup ships (linkup/locale): English and Spanish.
LANGUAGES = [("en", "English"), ("es", "Español")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("LINKUP_STATIC_ROOT") or VAR_DIR / "static")
# The web client's files. `collectstatic` copies them into STATIC_ROOT, each also under a name
# with a hash of its content (what `{% static %}` writes into pages) and compressed (gzip);
# `python -m linkup_server serve` (and `demo`) runs it at start when it serves them itself.
# Attachments: the local disk (LINKUP_MEDIA_ROOT) by default; S3-compatible object storage
# through django-storages when LINKUP_S3_BUCKET is set (several processes share it). Its
# credentials come the usual AWS way (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the
# instance's role); LINKUP_S3_ENDPOINT_URL points at MinIO, Ceph, R2 or the like.
MEDIA_ROOT = Path(os.environ.get("LINKUP_MEDIA_ROOT") or VAR_DIR / "media")


def _file_storage() -> dict[str, Any]:
    bucket = os.environ.get("LINKUP_S3_BUCKET")
    if not bucket:
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(MEDIA_ROOT)},
        }
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": os.environ.get("LINKUP_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("LINKUP_S3_REGION") or None,
            # Private objects: members fetch them through Linkup, which checks membership
            # and redirects to a URL signed for a few minutes.
            "default_acl": None,
            "querystring_auth": True,
            "signature_version": "s3v4",  # every region takes it; some take nothing else
            "file_overwrite": True,  # names are upload ids: never taken, no HEAD to ask
        },
    }


STORAGES = {
    "default": _file_storage(),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# The standalone server answers /static/ itself, with WhiteNoise in front of Django
# (linkup_server/asgi.py); LINKUP_SERVE_STATIC=0 behind a web server that serves STATIC_ROOT.
SERVE_STATIC = os.environ.get("LINKUP_SERVE_STATIC", "1") != "0"


def _static_headers(headers: Any, path: str, url: str) -> None:
    """Headers of every static file, beside WhiteNoise's own (Content-Type, Cache-Control:
    ten years and immutable for hashed names, a minute for the rest; ETag, Vary)."""
    headers["X-Content-Type-Options"] = "nosniff"


WHITENOISE_ADD_HEADERS_FUNCTION = _static_headers
# Same-origin pages only: no `Access-Control-Allow-Origin: *` (WhiteNoise's default).
WHITENOISE_ALLOW_ALL_ORIGINS = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True
# Django already trusts the request's own origin (scheme, host and port, exactly); other
# origins only when named, the same rule as cookie sockets (LINKUP_ALLOWED_ORIGINS).
PUBLIC_ORIGINS = [o for o in os.environ.get("LINKUP_ALLOWED_ORIGINS", "").split(",") if o]
CSRF_TRUSTED_ORIGINS = PUBLIC_ORIGINS

LINKUP: dict[str, Any] = {
    "REGISTRATION_OPEN": _env_bool("LINKUP_REGISTRATION_OPEN", True),
    "ALLOWED_ORIGINS": PUBLIC_ORIGINS,
    "API_DOCS": _env_bool("LINKUP_API_DOCS", False),
}

# Served over HTTPS (behind a proxy that terminates TLS and sends X-Forwarded-Proto):
# cookies only over HTTPS, HSTS, and the proxy's word for the scheme (docs/deployment.md).
if _env_bool("LINKUP_HTTPS", False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("LINKUP_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("LINKUP_HSTS_INCLUDE_SUBDOMAINS", False)
# Presence and web-client timings (seconds) may be shortened for tests and demos.
for _name in (
    "PRESENCE_TTL_S",
    "PRESENCE_REFRESH_S",
    "PRESENCE_GRACE_S",
    "IDLE_TIMEOUT_S",
    "CLIENT_RECONNECT_FIRST_S",
    "CLIENT_POLL_S",
    "CLIENT_PUSH_WAIT_S",
    "SEND_RATE_PER_S",
    "SEND_BURST",
    "TYPING_RATE_PER_S",
    "TYPING_BURST",
    "MAX_CONNECTIONS_PER_USER",
    "LIMITS_REDIS_TIMEOUT_S",
    "NOTIFY_OFFLINE_DELAY_S",
    "SLOW_CONSUMER_TIMEOUT_S",
    "SLOW_CONSUMER_MAX_BYTES",
    "HUB_REORDER_WAIT_S",
    "HUB_CHECK_S",
    "SEARCH_RATE_PER_S",
    "SEARCH_BURST",
    "TOKEN_IDLE_EXPIRY_S",
    "LOGIN_ACCOUNT_BURST",
    "LOGIN_ACCOUNT_REFILL_S",
    "LOGIN_ADDRESS_BURST",
    "LOGIN_ADDRESS_REFILL_S",
    "FRAME_RATE_PER_S",
    "FRAME_BURST",
    "SYNC_CURSORS_PER_S",
    "SYNC_CURSOR_BURST",
    "READ_RATE_PER_S",
    "READ_BURST",
    "ROOM_CREATE_RATE_PER_S",
    "ROOM_CREATE_BURST",
    "MEMBER_ADD_RATE_PER_S",
    "MEMBER_ADD_BURST",
    "GROUP_CREATE_RATE_PER_S",
    "GROUP_CREATE_BURST",
    "VERIFY_EMAIL_RATE_PER_S",
    "VERIFY_EMAIL_BURST",
    "GROUP_MAX_MEMBERS",
    "NOTIFY_MENTIONS_MAX",
    "NOTIFY_PER_SENDER_MAX",
    "NOTIFY_PER_SENDER_WINDOW_S",
    "HTTP_PER_ADDRESS",
    "HTTP_THREADS",
    "EDIT_WINDOW_S",
    "DELETE_WINDOW_S",
    "REACTIONS_PER_MESSAGE_MAX",
    "SYNC_MAX_CHANGES",
    "UPLOAD_MAX_BYTES",
    "ATTACHMENTS_PER_MESSAGE_MAX",
    "UPLOAD_QUOTA_BYTES",
    "UPLOAD_RATE_PER_S",
    "UPLOAD_BURST",
    "FILE_READ_RATE_PER_S",
    "FILE_READ_BURST",
    "UPLOAD_UNSENT_TTL_S",
    "IMAGE_MAX_PIXELS",
    "AVATAR_MAX_BYTES",
    "THUMBNAIL_PX",
    "ANIMATION_MAX_FRAMES",
    "ANIMATION_MAX_PIXELS",
    "MESSAGE_SEARCH_RATE_PER_S",
    "MESSAGE_SEARCH_BURST",
    "REPORT_RATE_PER_S",
    "REPORT_BURST",
):
    if os.environ.get(f"LINKUP_{_name}"):
        LINKUP[_name] = float(os.environ[f"LINKUP_{_name}"])
# Whole numbers only: a signed URL's lifetime goes into it as written (X-Amz-Expires).
if os.environ.get("LINKUP_ATTACHMENT_URL_TTL_S"):
    LINKUP["ATTACHMENT_URL_TTL_S"] = int(os.environ["LINKUP_ATTACHMENT_URL_TTL_S"])

# A deleted account's messages are erased too (default: kept, from "Deleted user").
if os.environ.get("LINKUP_ACCOUNT_DELETE_ERASES_MESSAGES"):
    LINKUP["ACCOUNT_DELETE_ERASES_MESSAGES"] = _env_bool(
        "LINKUP_ACCOUNT_DELETE_ERASES_MESSAGES", False
    )

# The language of the message search index (a PostgreSQL text-search configuration).
if os.environ.get("LINKUP_SEARCH_LANGUAGE"):
    LINKUP["SEARCH_LANGUAGE"] = os.environ["LINKUP_SEARCH_LANGUAGE"]

# Reactions a site allows, as a comma-separated list ("👍,❤️,😂"); unset: any one emoji.
if os.environ.get("LINKUP_REACTION_EMOJI"):
    LINKUP["REACTION_EMOJI"] = [
        e.strip() for e in os.environ["LINKUP_REACTION_EMOJI"].split(",") if e.strip()
    ]

# The attachment types accepted (content types, comma-separated); unset: the default list.
if os.environ.get("LINKUP_UPLOAD_TYPES"):
    LINKUP["UPLOAD_TYPES"] = [
        t.strip() for t in os.environ["LINKUP_UPLOAD_TYPES"].split(",") if t.strip()
    ]

for _name in ("GROUP_ADDS_DEFAULT", "PUBLIC_URL", "ATTACHMENT_X_ACCEL_PREFIX"):
    if os.environ.get(f"LINKUP_{_name}"):
        LINKUP[_name] = os.environ[f"LINKUP_{_name}"]

if os.environ.get("LINKUP_LIMITS_SHARED"):
    LINKUP["LIMITS_SHARED"] = _env_bool("LINKUP_LIMITS_SHARED", True)

# Web Push: VAPID keys from the environment (both, or Web Push stays off).
for _name in ("VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY", "VAPID_SUBJECT"):
    if os.environ.get(f"LINKUP_{_name}"):
        LINKUP[_name] = os.environ[f"LINKUP_{_name}"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "linkup.core.log.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
    "loggers": {
        "linkup": {
            "handlers": ["stderr"],
            "level": os.environ.get("LINKUP_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
        "django": {"handlers": ["stderr"], "level": "WARNING"},
        # 4xx answers are the API working as specified, not warnings.
        "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
    },
}
