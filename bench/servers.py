"""Start the three contenders of a benchmark run as real server processes.

Every server gets a fresh database (a SQLite file, or a PostgreSQL database of its own) and,
on Redis, a key prefix of its own. Servers are pinned to core 0 (`taskset`) when the machine
has two cores or more; the load generator pins itself to core 1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tests.live import free_port

ROOT = Path(__file__).resolve().parent.parent
BASELINE_DIR = ROOT / "bench" / "baseline"
TARGETS = ("linkup", "baseline", "ceiling")
SERVER_CORE = 0
LOAD_CORE = 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def pinning() -> bool:
    return (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None


def _proc_tree(pid: int) -> list[int]:
    """The pid and its descendants (uvicorn may fork; taskset execs in place)."""
    pids, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        with suppress(OSError):
            for task in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    for child in f.read().split():
                        pids.append(int(child))
                        frontier.append(int(child))
    return pids


def cpu_seconds(pid: int) -> float:
    total = 0
    for p in _proc_tree(pid):
        with suppress(OSError), open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    total = 0
    for p in _proc_tree(pid):
        with suppress(OSError), open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


@dataclass
class Server:
    target: str
    config: str
    ports: list[int]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)

    @property
    def protocol(self) -> str:
        return "linkup" if self.target == "linkup" else "tutorial"

    def base(self, i: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[i % len(self.ports)]}"

    def ws(self, i: int = 0) -> str:
        return f"ws://127.0.0.1:{self.ports[i % len(self.ports)]}"

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def rss_bytes(self) -> int:
        return sum(rss_bytes(p.pid) for p in self.procs)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def tracebacks(self) -> int:
        """Tracebacks the server processes have logged so far (server errors)."""
        marker = "Traceback (most recent"
        return sum(log.read_text(errors="replace").count(marker) for log in self.logs)

    def first_error(self) -> str:
        """The last frames and the exception of the first traceback logged."""
        for log in self.logs:
            lines = log.read_text(errors="replace").splitlines()
            for i, line in enumerate(lines):
                if line.startswith("Traceback (most recent"):
                    j = i + 1
                    while j < len(lines) and lines[j].startswith(" "):
                        j += 1
                    return "\n".join(lines[max(i, j - 6) : j + 1])
        for log in self.logs:  # a traceback inside a structured (JSON) log line
            for line in log.read_text(errors="replace").splitlines():
                if "Traceback (most recent" in line:
                    return line[-3000:]
        return ""

    def log_tail(self, chars: int = 2000) -> str:
        return "\n".join(log.read_text(errors="replace")[-chars:] for log in self.logs)


def _commands(target: str, port: int) -> tuple[list[str], list[str], Path, str]:
    """(migrate, serve, cwd, readiness path) of a target."""
    py = sys.executable
    if target == "linkup":
        migrate = [py, "-m", "linkup_server", "manage", "migrate", "--no-input", "-v", "0"]
        return migrate, [py, "-m", "linkup_server", "serve"], ROOT, "/api/v1/openapi.json"
    serve_asgi = str(ROOT / "bench" / "serve_asgi.py")
    if target == "baseline":
        migrate = [py, "manage.py", "migrate", "--no-input", "-v", "0"]
        return migrate, [py, serve_asgi, "tutorial.asgi:application", str(port)], BASELINE_DIR, "/"
    if target == "ceiling":
        return [], [py, serve_asgi, "bench.ceiling:app", str(port)], ROOT, "/"
    raise ValueError(target)


@contextmanager
def database(config: str) -> Iterator[dict[str, str]]:
    """Environment naming a fresh database (and Redis prefix) for one server deployment."""
    tmp = Path(tempfile.mkdtemp(prefix="linkup-bench-"))
    env: dict[str, str] = {"BENCH_TMP": str(tmp)}
    db_name = None
    admin_url = ""
    if config == "scaleout":
        url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        env["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        import psycopg

        db_name = f"linkup_bench_{uuid.uuid4().hex[:10]}"
        admin_url = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db_name}"')
        env["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + db_name
        prefix = "bench" + uuid.uuid4().hex[:8]
        env["LINKUP_REDIS_PREFIX"] = prefix
        env["BASELINE_REDIS_PREFIX"] = prefix
    else:
        env["LINKUP_DB_PATH"] = str(tmp / "linkup.sqlite3")
        env["BASELINE_DB_PATH"] = str(tmp / "baseline.sqlite3")
    try:
        yield env
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if db_name is not None:
            import psycopg

            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def _environment(db_env: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "LINKUP_", "BASELINE_"))
        and k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(db_env)
    env["LINKUP_VAR_DIR"] = db_env["BENCH_TMP"]
    env.setdefault("LINKUP_SECRET_KEY", "bench-" + uuid.uuid4().hex)
    env["LINKUP_LOG_LEVEL"] = "WARNING"
    env.update(extra)
    return env


@contextmanager
def run_server(
    target: str,
    config: str,
    db_env: dict[str, str],
    processes: int = 1,
    extra_env: dict[str, str] | None = None,
    migrate: bool = True,
) -> Iterator[Server]:
    """Start `processes` server processes of `target` on the database of `db_env`."""
    env = _environment(db_env, extra_env or {})
    ports = [free_port() for _ in range(processes)]
    server = Server(target, config, ports, env=env)
    mig, _serve, cwd, ready = _commands(target, ports[0])
    if migrate and mig:
        subprocess.run(mig, cwd=cwd, env=env, check=True)
    prefix = ["taskset", "-c", str(SERVER_CORE)] if pinning() else []
    tmp = Path(db_env["BENCH_TMP"])
    try:
        for i, port in enumerate(ports):
            _m, serve, _c, _r = _commands(target, port)
            log_path = tmp / f"{target}-{port}.log"
            log = open(log_path, "wb")  # noqa: SIM115  (the process owns it until it ends)
            server.logs.append(log_path)
            proc_env = {**env, "PORT": str(port)}
            server.procs.append(
                subprocess.Popen(
                    prefix + serve,
                    cwd=cwd,
                    env=proc_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(server.base(i) + ready, timeout=2).read()
                    break
                except (urllib.error.URLError, ConnectionError, OSError):
                    if server.procs[-1].poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{target} did not start:\n{server.log_tail()}"
                        ) from None
                    time.sleep(0.1)
        yield server
    finally:
        for proc in server.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in server.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
