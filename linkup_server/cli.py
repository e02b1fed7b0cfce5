"""`python -m linkup_server demo|serve|manage …`: the standalone server's command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "linkup_server.settings")
    import django

    django.setup()


def _manage(*args: str) -> None:
    from django.core.management import call_command

    call_command(*args)


def collect_static() -> None:
    """Copy the web client's files into STATIC_ROOT (hashed names, gzip copies, the manifest
    pages read) as the server starts, when it serves them itself: nothing to run by hand.
    Skipped when nothing changed since the last collection (the sources' names, sizes and
    times, and the storage, are those it recorded): a collection takes over a second. When
    something changed, STATIC_ROOT is collected afresh."""
    from django.conf import settings

    if not settings.SERVE_STATIC:
        return  # behind a web server, the deployment runs `manage collectstatic`
    root = Path(settings.STATIC_ROOT)
    stamp = root.parent / f".{root.name}.sources"  # beside it: WhiteNoise serves what is in it
    with static_lock(exclusive=True):
        made_from = _sources()
        if stamp.exists() and stamp.read_text() == made_from:
            return
        # From scratch: collectstatic skips a file whose copy is newer than its source, so
        # a source older than the copy (another checkout's, a restored file) would be
        # served stale.
        _manage("collectstatic", "--no-input", "--clear", "-v", "0")
        stamp.write_text(made_from)


def _sources() -> str:
    """A digest of every file collectstatic would collect (name, size, modification time)
    and of the storage it would write them with."""
    import hashlib

    from django.conf import settings
    from django.contrib.staticfiles.finders import get_finders

    seen = []
    for finder in get_finders():
        for name, storage in finder.list(["CVS", ".*", "*~"]):
            stat = os.stat(storage.path(name))
            seen.append(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}")
    digest = hashlib.sha256(repr(settings.STORAGES["staticfiles"]).encode())
    for line in sorted(seen):
        digest.update(line.encode())
    return digest.hexdigest()


@contextmanager
def static_lock(exclusive: bool) -> Iterator[None]:
    """Held while `collect_static` writes STATIC_ROOT, and (shared) while a starting server
    reads its manifest and lists its files (linkup_server/asgi.py): processes that start
    together on one LINKUP_VAR_DIR collect one after another, and none reads a file that
    another is writing."""
    import fcntl

    from django.conf import settings

    root = Path(settings.STATIC_ROOT)
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield


def serve() -> None:
    """Serve on HOST:PORT (default 127.0.0.1:8000) with uvicorn, in the foreground."""
    import uvicorn

    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    workers = int(os.environ.get("LINKUP_WORKERS", "1"))
    if workers > 1 and not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        # The embedded default keeps its channel layer and presence in one process's memory:
        # a second worker would neither hear the first one's doorbells nor see its users.
        sys.exit(
            "LINKUP_WORKERS > 1 needs the scale-out configuration: set DATABASE_URL "
            "(PostgreSQL) and REDIS_URL (see docs/deployment.md)."
        )
    collect_static()
    uvicorn.run(
        "linkup_server.asgi:application",
        host=host,
        port=port,
        # N processes sharing the listening socket, behind one Redis and one PostgreSQL.
        workers=workers,
        lifespan="off",
        # Frames above Linkup's 64 KiB limit get a `too_large` error frame; the transport
        # only cuts what is far beyond it.
        ws_max_size=1024 * 1024,
        # permessage-deflate multiplies the memory of every socket.
        ws_per_message_deflate=False,
        # uvicorn's own protocol, plus TCP_USER_TIMEOUT: a peer that stops reading is let go.
        ws="linkup_server.transport:WebSocketProtocol",
        # uvicorn's httptools protocol, plus a deadline for request lines and headers.
        http="linkup_server.transport:HttpProtocol",
        # Transport pings find dead TCP peers; Linkup's own heartbeat is the `ping` frame.
        # uvicorn's default 20 s pong timeout cuts busy but live clients under load.
        ws_ping_interval=float(os.environ.get("LINKUP_WS_PING_INTERVAL", "30")),
        ws_ping_timeout=float(os.environ.get("LINKUP_WS_PING_TIMEOUT", "60")),
        # SIGTERM closes every socket (clients reconnect and sync); a connection that does
        # not finish within this many seconds does not hold a deploy up.
        timeout_graceful_shutdown=int(os.environ.get("LINKUP_SHUTDOWN_TIMEOUT_S", "10")),
        log_level=os.environ.get("LINKUP_UVICORN_LOG_LEVEL", "warning"),
        access_log=False,
    )


def start_worker() -> subprocess.Popen[bytes]:
    """The task worker (notification digests, retries, expiry) as a child process, stopped
    when serving ends; on Linux the kernel also stops it should this process die."""
    command = [sys.executable, "-m", "linkup_server", "manage", "db_worker", "--interval", "1"]
    print("Task worker: manage db_worker (email digests print here)", flush=True)
    # Unbuffered: a digest the console backend prints shows at once, even when the demo's
    # output goes to a pipe or a file (block-buffered otherwise, it waited there).
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, preexec_fn=_die_with_parent, env=env)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args else "serve"
    _setup()
    if command == "demo":
        _manage("migrate", "--no-input", "-v", "0")
        _manage("linkup_demo_seed")
        host = os.environ.get("HOST", "127.0.0.1")
        port = os.environ.get("PORT", "8000")
        db = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite"
        layer = "Redis" if os.environ.get("REDIS_URL") else "in-memory"
        print(f"Linkup on http://{host}:{port}/  ({db}, {layer} channel layer)", flush=True)
        worker = start_worker()
        try:
            serve()
        finally:
            stop_worker(worker)
    elif command == "serve":
        serve()
    elif command == "manage":
        from django.core.management import execute_from_command_line

        execute_from_command_line(["linkup-server", *args])
    else:
        sys.exit(f"unknown command {command!r}: use demo, serve or manage")


if __name__ == "__main__":
    main()
