"""`make test`: lint (with the layer contract) and the web client's unit tests (node --test),
the suite on the embedded default (then the fault suite) and on PostgreSQL + Redis, all three
side by side, each pass spread over the cores (pytest-xdist); then the latency tests alone.

With CI=true a missing PostgreSQL or Redis fails the run; elsewhere it is reported loudly.
pytest's exit code 5 (no tests collected) is a failure, like any other non-zero code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("LINKUP_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/linkup")
REDIS_URL = os.environ.get("LINKUP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# One worker more than the cores: the tests wait on servers, sockets and databases about
# half the time (a full run measured 56 % of two cores busy with two workers).
WORKERS = int(os.environ.get("LINKUP_TEST_WORKERS", str((os.cpu_count() or 1) + 1)))


def banner(text: str) -> None:
    print(f"\n===== {text} =====", flush=True)


def run(cmd: list[str], env: dict[str, str] | None = None) -> int:
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def services_problem() -> str | None:
    """Return why PostgreSQL or Redis cannot be used, or None when both answer."""
    try:
        import psycopg

        with psycopg.connect(PG_URL.rsplit("/", 1)[0] + "/postgres", connect_timeout=3):
            pass
    except Exception as exc:
        return f"PostgreSQL at {PG_URL}: {exc}"
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()
    except Exception as exc:
        return f"Redis at {REDIS_URL}: {exc}"
    return None


class Job:
    """Commands run one after another in a thread, their output kept in a file and shown
    when `show` is called (jobs running side by side would interleave their lines)."""

    def __init__(
        self, name: str, short: str, commands: list[tuple[str, list[str], dict[str, str] | None]]
    ):
        self.name, self.short = name, short
        self.commands = commands  # (what fails when it fails, argv, env)
        self.failures: list[str] = []
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (show reads and closes it)
        self.thread = threading.Thread(target=self._run, name=name)
        self.started = self.took = 0.0

    def _run(self) -> None:
        self.started = time.monotonic()
        for failure, cmd, env in self.commands:
            self.log.write("$ " + " ".join(cmd) + "\n")
            self.log.flush()
            code = subprocess.call(
                cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
            )
            if code != 0:
                self.failures.append(f"{failure} (exit {code})")
        self.took = time.monotonic() - self.started

    def start(self) -> Job:
        self.thread.start()
        return self

    def show(self) -> list[str]:
        self.thread.join()
        banner(f"{self.name} ({self.took:.0f} s)")
        self.log.seek(0)
        shutil.copyfileobj(self.log, sys.stdout)
        sys.stdout.flush()
        self.log.close()
        return self.failures


def spread(args: list[str]) -> list[str]:
    """Every test but the fault suite and the latency tests, over the cores (pytest-xdist; a
    file's tests stay on one worker, so they share its module's server); or, given
    arguments (a file, -k ...), those, in one process."""
    pytest = [str(BIN / "python"), "-m", "pytest"]
    if args:
        return [*pytest, "--durations=15", *args]
    marks = ["-m", "not faults and not alone", "--durations=20"]
    return [*pytest, "-n", str(WORKERS), "--dist", "loadfile", *marks]


def main() -> int:
    args = sys.argv[1:]
    base_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    failures: list[str] = []
    pytest = [str(BIN / "python"), "-m", "pytest"]

    # Three jobs side by side: lint and the web client's tests, the embedded pass, and the
    # PostgreSQL + Redis pass. A pass keeps about 1.4 of two cores busy (its tests wait on
    # servers, sockets and databases), so running them together takes a little more than
    # the longer one, not the sum of both. The latency tests follow, alone: they measure
    # time, and would measure their neighbours.
    lint: list[tuple[str, list[str], dict[str, str] | None]] = [
        ("ruff", [str(BIN / "ruff"), "check", "linkup", "linkup_server", "tests", "bench"], None),
        ("mypy", [str(BIN / "mypy"), "linkup", "linkup_server"], None),
        ("layer contract (lint-imports)", [str(BIN / "lint-imports")], None),
    ]
    node = shutil.which("node")
    js_tests = sorted(str(p) for p in (ROOT / "tests" / "js").glob("*.test.mjs"))
    if not js_tests:
        failures.append("web client unit tests: none found in tests/js/")
    elif node is not None:
        lint.append(("web client unit tests (node --test)", [node, "--test", *js_tests], None))
    elif CI:
        failures.append("web client unit tests could not run: node is not installed")
    else:
        print("!!! WEB CLIENT UNIT TESTS NOT RUN: node is not installed", flush=True)
    # The fault suite follows the embedded pass in its job, beside the scale-out pass's last
    # minutes (the longer pass). Spread too: each worker starts PostgreSQL and Redis of its
    # own (the module's fixture) and kills only those, and the recovery bounds they check
    # are seconds.
    cores = str(min(WORKERS, os.cpu_count() or 1))  # one fault test a core at most
    faults = (
        "fault suite",
        [*pytest, "-n", cores, "--dist", "load", "-m", "faults", "--durations=10"],
        base_env,
    )
    jobs = [
        Job(
            "lint: ruff + mypy + the layer contract (lint-imports); node --test tests/js/",
            "lint",
            lint,
        ),
        Job(
            "tests: embedded default (SQLite + in-memory channel layer), then the fault suite",
            "embedded pass",
            [("embedded pass", spread(args), base_env)] + ([] if args else [faults]),
        ),
    ]
    problem = services_problem()
    if problem is None:
        env = {**base_env, "DATABASE_URL": PG_URL, "REDIS_URL": REDIS_URL}
        # A test database need not survive a crash of PostgreSQL: commits return without
        # waiting for the disk (17 % off a Hypothesis test alone). Not for the fault suite,
        # which crashes its own PostgreSQL and counts what survives.
        env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " -c synchronous_commit=off").strip()
        # The fault suite starts PostgreSQL and Redis of its own: it runs after the first.
        jobs.append(
            Job(
                "tests: scale-out (PostgreSQL + Redis)",
                "scale-out pass",
                [("scale-out pass", spread(args), env)],
            )
        )
    elif CI:
        failures.append(f"scale-out pass could not run: {problem}")
    else:
        print(f"!!! SCALE-OUT PASS NOT RUN: {problem}", flush=True)
        print("!!! (CI=true makes this a failure.)", flush=True)
    for job in jobs:
        job.start()
    begun = time.monotonic()
    while alive := [job for job in jobs if job.thread.is_alive()]:
        alive[0].thread.join(timeout=60)  # a line a minute, so a long run shows it lives
        still = ", ".join(job.short for job in jobs if job.thread.is_alive())
        if still:
            print(f"... {time.monotonic() - begun:.0f} s: {still} running", flush=True)
    for job in jobs:
        failures += job.show()

    if not args:
        banner("tests: latency, alone")
        if run([*pytest, "-m", "alone", "--durations=10"], env=base_env) != 0:
            failures.append("latency tests")

    if failures:
        banner("FAILED: " + "; ".join(failures))
        return 1
    banner("all passes green")
    return 0


if __name__ == "__main__":
    sys.exit(main())
