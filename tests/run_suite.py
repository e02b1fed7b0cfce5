"""`make test`: lint (with the layer contract), the web client's unit tests (node --test), then
the suite on the embedded default, then on PostgreSQL + Redis, each spread over the cores
(pytest-xdist), the fault suite alone.

With CI=true a missing PostgreSQL or Redis fails the run; elsewhere it is reported loudly.
pytest's exit code 5 (no tests collected) is a failure, like any other non-zero code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


def pytest_pass(name: str, args: list[str], env: dict[str, str], with_faults: bool) -> list[str]:
    """One configuration's tests; the failures, named. With no arguments: every test but the
    fault suite spread over the cores (pytest-xdist; a file's tests stay on one worker, so
    they share its module's server), then the fault suite (spread too, each worker with
    services of its own to kill), then the tests marked `alone`, which measure latency and
    would measure their neighbours too. Arguments (a file, -k ...) run as given, in one
    process."""
    pytest = [str(BIN / "python"), "-m", "pytest"]
    if args:
        code = run([*pytest, "--durations=15", *args], env=env)
        return [] if code == 0 else [f"{name} (pytest exit {code})"]
    failures = []
    workers = str(WORKERS)
    spread = ["-n", workers, "--dist", "loadfile", "-m", "not faults and not alone"]
    spread.append("--durations=20")
    code = run([*pytest, *spread], env=env)
    if code != 0:
        failures.append(f"{name} (pytest exit {code})")
    if with_faults:
        # The fault tests spread too: each worker starts PostgreSQL and Redis of its own
        # (the module's fixture) and kills only those, and the recovery bounds they check
        # are seconds, not milliseconds. The tests that measure latency run last, alone.
        cores = str(min(WORKERS, os.cpu_count() or 1))  # one fault test a core at most
        faults = ["-n", cores, "--dist", "load", "-m", "faults", "--durations=10"]
        code = run([*pytest, *faults], env=env)
        if code != 0:
            failures.append(f"{name}, fault suite (pytest exit {code})")
        code = run([*pytest, "-m", "alone", "--durations=10"], env=env)
        if code != 0:
            failures.append(f"{name}, latency tests (pytest exit {code})")
    return failures


def main() -> int:
    args = sys.argv[1:]
    base_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    failures: list[str] = []

    banner("lint: ruff + mypy + the layer contract (lint-imports)")
    if run([str(BIN / "ruff"), "check", "linkup", "linkup_server", "tests", "bench"]) != 0:
        failures.append("ruff")
    if run([str(BIN / "mypy"), "linkup", "linkup_server"]) != 0:
        failures.append("mypy")
    if run([str(BIN / "lint-imports")]) != 0:
        failures.append("layer contract (lint-imports)")

    banner("web client: node --test tests/js/")
    node = shutil.which("node")
    js_tests = sorted(str(p) for p in (ROOT / "tests" / "js").glob("*.test.mjs"))
    if not js_tests:
        failures.append("web client unit tests: none found in tests/js/")
    elif node is not None:
        if run([node, "--test", *js_tests]) != 0:
            failures.append("web client unit tests (node --test)")
    elif CI:
        failures.append("web client unit tests could not run: node is not installed")
    else:
        print("!!! WEB CLIENT UNIT TESTS NOT RUN: node is not installed", flush=True)

    banner("tests: embedded default (SQLite + in-memory channel layer)")
    failures += pytest_pass("embedded pass", args, base_env, with_faults=True)

    banner("tests: scale-out (PostgreSQL + Redis)")
    problem = services_problem()
    if problem is None:
        env = {**base_env, "DATABASE_URL": PG_URL, "REDIS_URL": REDIS_URL}
        # The fault suite starts PostgreSQL and Redis of its own: it runs in the first pass.
        failures += pytest_pass("scale-out pass", args, env, with_faults=False)
    elif CI:
        failures.append(f"scale-out pass could not run: {problem}")
    else:
        print(f"!!! SCALE-OUT PASS NOT RUN: {problem}", flush=True)
        print("!!! (CI=true makes this a failure.)", flush=True)

    if failures:
        banner("FAILED: " + "; ".join(failures))
        return 1
    banner("all passes green")
    return 0


if __name__ == "__main__":
    sys.exit(main())
