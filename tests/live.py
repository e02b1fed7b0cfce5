"""Start a real Linkup server process (uvicorn) for end-to-end tests over real sockets.

Embedded pass: a fresh SQLite file and the in-memory layer. Scale-out pass: a fresh
PostgreSQL database and a Redis key prefix of its own."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _migrations_key() -> str:
    """What a migrated database depends on: Linkup's migrations and the versions of the
    other apps that bring theirs."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "linkup" / "migrations").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for dist in ("django", "django-tasks", "django-tasks-db"):
        digest.update(importlib.metadata.version(dist).encode())
    return digest.hexdigest()[:12]


def _migrated_template(env: dict[str, str]) -> str:
    """A database migrated once for every live server of these migrations (each server's
    own is a copy: PostgreSQL's `CREATE DATABASE ... TEMPLATE`, or a copy of the SQLite
    file): a `migrate` per server cost three seconds of CPU. Built under a lock, so the
    workers of a run build it once; built under another name and renamed when done, so a
    run stopped halfway leaves nothing that looks finished. Returns the PostgreSQL
    database's name, or the SQLite file's path."""
    import fcntl
    import tempfile

    key = _migrations_key()
    lock_path = Path(tempfile.gettempdir()) / "linkup-test-template.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not env.get("DATABASE_URL"):
            path = Path(tempfile.gettempdir()) / f"linkup-test-template-{key}.sqlite3"
            if not path.exists():
                building = path.with_suffix(".building")
                building.unlink(missing_ok=True)
                _migrate({**env, "LINKUP_DB_PATH": str(building)})
                db = sqlite3.connect(building)  # everything in the file itself, no WAL
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                db.close()
                for suffix in ("-wal", "-shm"):
                    Path(f"{building}{suffix}").unlink(missing_ok=True)
                os.replace(building, path)
            return str(path)
        import psycopg

        name = f"linkup_tpl_{key}"
        server = env["DATABASE_URL"].rsplit("/", 1)[0]
        with psycopg.connect(server + "/postgres", autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if found.fetchone() is None:
                stale = conn.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'linkup_tpl_%%'"
                ).fetchall()
                for (old,) in stale:  # other migrations' templates, and an unfinished one
                    conn.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
                building = name + "_building"
                conn.execute(f'CREATE DATABASE "{building}"')
                _migrate({**env, "DATABASE_URL": f"{server}/{building}"})
                conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        return name


def _migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "linkup_server", "manage", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


@contextmanager
def live_server(
    extra_env: dict[str, str] | None = None,
    share: dict[str, Any] | None = None,
    port: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield {"base", "ws", "env"} for a migrated, running server; stop it afterwards.

    With `share` (another live_server's result), use its database, Redis prefix and secret
    key: a second process of the same deployment (or the same one restarted, on its `port`)."""
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="linkup-live-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(
        {
            "LINKUP_VAR_DIR": str(tmp),
            "LINKUP_MEDIA_ROOT": str(tmp / "media"),
            "LINKUP_SECRET_KEY": "live-test-" + uuid.uuid4().hex,
        }
    )
    # One collection of the static files for every server of the run (each checks it is
    # current, under a lock, and collects again only if a source changed).
    # One per checkout: two clones on one machine (a session's and CI's) never share it.
    checkout = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
    static_root = Path(tempfile.gettempdir()) / f"linkup-test-static-{checkout}"
    env.setdefault("LINKUP_STATIC_ROOT", str(static_root))
    db_name = None
    if share is not None:
        for key in (
            "DATABASE_URL",
            "REDIS_URL",
            "LINKUP_REDIS_PREFIX",
            "LINKUP_DB_PATH",
            "LINKUP_SECRET_KEY",
            "LINKUP_MEDIA_ROOT",
            "LINKUP_S3_BUCKET",
        ):
            if key in share["env"]:
                env[key] = share["env"][key]
    elif env.get("DATABASE_URL"):
        import psycopg

        db_name = f"linkup_live_{uuid.uuid4().hex[:10]}"
        admin_url = env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
        template = _migrated_template(env)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db_name}" TEMPLATE "{template}"')
        env["DATABASE_URL"] = env["DATABASE_URL"].rsplit("/", 1)[0] + "/" + db_name
        env["LINKUP_REDIS_PREFIX"] = "live" + uuid.uuid4().hex[:8]
    else:
        env["LINKUP_DB_PATH"] = str(tmp / "live.sqlite3")
        shutil.copyfile(_migrated_template(env), env["LINKUP_DB_PATH"])
    env.update(extra_env or {})
    if {"DATABASE_URL", "LINKUP_DB_PATH"} & set(extra_env or {}):
        _migrate(env)  # a database of the caller's (the fault suite's own PostgreSQL)
    port = port or free_port()
    env["PORT"] = str(port)
    python = sys.executable
    log = open(tmp / "server.log", "wb")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(
        [python, "-m", "linkup_server", "serve"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_raise_fd_limit,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Generous: a server starts in about 2 s on an idle machine, but CI's passes run side
        # by side on two cores, and a start there was seen taking over 30 s.
        # Each try waits long enough for a loaded machine's first answer: a try abandoned
        # early leaves its request behind, for the starting server to answer anyway.
        begun = time.monotonic()
        while True:
            try:
                urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=10).read()
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if proc.poll() is not None or time.monotonic() - begun > 90:
                    raise RuntimeError(
                        f"server did not start (exit code {proc.poll()}, after "
                        f"{time.monotonic() - begun:.0f} s):\n"
                        + (tmp / "server.log").read_text()[-3000:]
                    ) from None
                time.sleep(0.1)
        yield {
            "base": base,
            "ws": f"ws://127.0.0.1:{port}",
            "env": env,
            "proc": proc,
            "log": tmp / "server.log",
            "port": port,
        }
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        if db_name is not None:
            import psycopg

            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def api(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    request = urllib.request.Request(
        base + "/api/v1" + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
    )
    request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw or b"null")
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def new_user(base: str, prefix: str = "u") -> dict[str, Any]:
    name = prefix + uuid.uuid4().hex[:10]
    password = uuid.uuid4().hex
    status, body = api(base, "POST", "/auth/register", {"username": name, "password": password})
    assert status == 201, body
    status, body = api(base, "POST", "/auth/token", {"username": name, "password": password})
    assert status == 200, body
    return {"name": name, "password": password, "token": body["token"], "id": body["user"]["id"]}


def send_over_rest(base: str, room_id: int, body: str, token: str) -> tuple[int, Any]:
    """POST a message with a fresh client_id; (status, message)."""
    payload = {"client_id": str(uuid.uuid4()), "body": body}
    return api(base, "POST", f"/rooms/{room_id}/messages", payload, token)


def refused_start(env: dict[str, str]) -> str:
    """Start `python -m linkup_server serve` with `env`, expecting it to refuse; its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "linkup_server", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0, done.stdout
    return done.stderr
