from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from channels.layers import channel_layers
from hypothesis import HealthCheck, settings

settings.register_profile(
    "linkup",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("linkup")

SCALEOUT = bool(os.environ.get("DATABASE_URL")) and bool(os.environ.get("REDIS_URL"))


def _flush_by_delete() -> None:
    """Transactional tests empty every table after each test (Django's `flush`). On
    PostgreSQL that is one TRUNCATE of all 30 tables: 210 ms a test, measured, while the
    same with DELETE takes a few (the tables hold a test's few rows). Django's foreign keys
    there are DEFERRABLE INITIALLY DEFERRED and the flush runs in one transaction, so the
    order of the DELETEs does not matter. Sequences are kept, as they are by default."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(
        self: Any, style: Any, tables: Any, *, reset_sequences: bool = False, **kwargs: Any
    ) -> list[str]:
        if reset_sequences or not tables:
            return truncate(self, style, tables, reset_sequences=reset_sequences, **kwargs)
        return [f"DELETE FROM {self.quote_name(table)};" for table in tables]

    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign]


if SCALEOUT:
    _flush_by_delete()


def pytest_report_header(config: Any) -> str:
    if SCALEOUT:
        return "linkup configuration: PostgreSQL + Redis (scale-out)"
    return "linkup configuration: SQLite + in-memory layer (embedded default)"


# The longest files (measured: `--durations`), run first: spread over the workers a file at
# a time (`--dist loadfile`), the long ones started last would leave one worker alone at the
# end. The rest keep their order.
LONGEST_FIRST = [
    "test_delivery.py",
    "test_fuzz.py",
    "test_browser_client.py",
    "test_browser_app.py",
    "test_blocks.py",
    "test_account_deletion.py",
    "test_browser.py",
    "test_api.py",
    "test_limits.py",
    "test_sending.py",
    "test_presence_processes.py",
    "test_bench.py",
    "test_search.py",
    "test_group_admin.py",
    "test_uploads.py",
    "test_browser_changes.py",
    "test_browser_files.py",
    "test_browser_find.py",
    "test_convergence.py",
    "test_security.py",
    "test_live.py",
]


def _file_rank(item: Any) -> int:
    name = item.path.name
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    items.sort(key=_file_rank)  # stable: a file's tests keep their order
    if SCALEOUT:
        for item in items:
            if "faults" in item.keywords:
                # They start PostgreSQL and Redis of their own whatever the configuration:
                # the embedded pass runs them once.
                item.add_marker(pytest.mark.skip(reason="runs in the embedded pass"))
            elif "embedded_only" in item.keywords:
                # The same code on both configurations: running it twice proves nothing more.
                item.add_marker(
                    pytest.mark.skip(reason="does not depend on the configuration: embedded pass")
                )
        return
    for item in items:
        if "scaleout" in item.keywords:
            # `make test` runs these in its second pass, on PostgreSQL + Redis; under CI that
            # pass cannot be skipped (tests/run_suite.py fails when the services are missing).
            item.add_marker(pytest.mark.skip(reason="runs in the PostgreSQL + Redis pass"))


@pytest.fixture(autouse=True)
def fresh_channel_layer(settings: Any) -> Iterator[None]:
    """A channel layer of its own for every test (a unique Redis prefix in the scale-out run)."""
    config = settings.CHANNEL_LAYERS["default"]
    if config["BACKEND"].startswith("channels_redis"):
        config = {**config, "CONFIG": {**config["CONFIG"], "prefix": f"t{uuid.uuid4().hex[:10]}"}}
        settings.CHANNEL_LAYERS = {"default": config}
    channel_layers.backends.clear()
    from linkup.realtime.ratelimit import (
        budget_limiter,
        login_limiter,
        search_limiter,
        send_limiter,
        typing_limiter,
    )

    for limiter in (send_limiter, typing_limiter, search_limiter, login_limiter, budget_limiter):
        limiter._buckets.clear()
    yield
    channel_layers.backends.clear()


def make_user(username: str, password: str = "pw-" + "x" * 8) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username=username, password=password)


@pytest.fixture
def alice(db: Any) -> Any:
    return make_user("alice")


@pytest.fixture
def bob(db: Any) -> Any:
    return make_user("bob")


@pytest.fixture
def carol(db: Any) -> Any:
    return make_user("carol")


def token_for(user: Any) -> str:
    from linkup.actions.credentials import do_issue_token

    return do_issue_token(user)


@pytest.fixture
def emitted(django_capture_on_commit_callbacks: Any) -> Callable[..., tuple[Any, list[Any]]]:
    """Run a write action; return its result and the events its commit queued."""
    from linkup.actions.events import collecting_events

    def run(func: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, list[Any]]:
        with collecting_events() as events, django_capture_on_commit_callbacks(execute=True):
            result = func(*args, **kwargs)
        return result, events

    return run


def expected_status(markers: dict[int, tuple[int, int]], sender: int, seq: int) -> str:
    """The contract's status of message `seq` for its sender, from every other member's
    (delivered, read) markers: the reference the watermark-derived status must match."""
    others = [value for user, value in markers.items() if user != sender]
    if all(read >= seq for _, read in others):
        return "read"
    if all(delivered >= seq for delivered, _ in others):
        return "delivered"
    return "sent"


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    """A started server process of the current configuration, one per test module."""
    from tests.live import live_server

    with live_server() as srv:
        yield srv


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test database, whose teardown first ends the PostgreSQL sessions that
    threads of this process left open on it (the database thread of async tests keeps its
    own connection), so DROP DATABASE is not refused at the end of a worker's run."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


# -- S3-compatible storage for attachments: moto's standalone server on loopback -------------

S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "linkup-test", "AWS_SECRET_ACCESS_KEY": "linkup-test-secret"}
S3_REGION = "us-east-1"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, started for the session on first use."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def new_bucket(endpoint: str) -> str:
    import boto3

    name = f"linkup-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_REGION,
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=name)
    return name


def s3_storage(endpoint: str, bucket: str) -> dict[str, Any]:
    """A STORAGES entry for a bucket, with the options the standalone server deploys."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            "region_name": S3_REGION,
            "access_key": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "secret_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "default_acl": None,
            "querystring_auth": True,
            "signature_version": "s3v4",
            "file_overwrite": True,
        },
    }
