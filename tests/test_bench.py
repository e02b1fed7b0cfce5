"""The benchmark harness (bench/): its accounting, and a smoke run so it cannot rot.

The smoke run is small and asserts no timing: only that every contender ran every workload
and that Linkup lost and duplicated nothing. Full runs are manual (`make bench`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import loadgen, run

ROOT = Path(__file__).resolve().parent.parent


class _Socket:
    """Stands in for a client's socket: the accounting never touches it."""


def _client(room: int = 1) -> loadgen.Client:
    return loadgen.Client(ws=_Socket(), room=room)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(
    sockets=st.integers(1, 6),
    messages=st.integers(1, 8),
    arrivals=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 5)), max_size=80),
)
def test_lost_and_duplicates_are_counted_exactly(
    sockets: int, messages: int, arrivals: list[tuple[int, int]]
) -> None:
    async def scenario() -> dict[str, Any]:
        stats = loadgen.Stats()
        clients = [_client() for _ in range(sockets)]
        keys = [f"k{i}" for i in range(messages)]
        for key in keys:
            stats.sent_at[key] = 0.0
            stats.expected += sockets
            stats.sent += 1
        for m, s in arrivals:
            stats.deliver(clients[s % sockets], keys[m % messages], 0.001)
        stats.deliver(clients[0], "never-sent", 0.001)
        return loadgen.summary(stats)

    result = asyncio.run(scenario())
    pairs = [(m % messages, s % sockets) for m, s in arrivals]
    distinct = len(set(pairs))
    assert result["received"] == distinct
    assert result["duplicates"] == len(pairs) - distinct
    assert result["lost"] == messages * sockets - distinct
    assert result["unmatched"] == 1
    assert result["latency_samples"] == distinct


def _result(**overrides: Any) -> dict[str, Any]:
    base = {
        "sent": 10,
        "lost": 0,
        "duplicates": 0,
        "p99_ms": 10.0,
        "msg_per_s": 1000.0,
        "offered_msg_per_s": 1000.0,
        "cpu_ms_per_1k_deliveries": 100.0,
        "handshake_failures": 0,
        "rss_kib_per_socket": 30.0,
        "handshakes_per_s": 900.0,
        "cpu_ms_per_handshake": 0.9,
    }
    return {**base, **overrides}


def test_verdicts_follow_issue_15s_targets() -> None:
    ceiling = {"W1": _result(cpu_ms_per_1k_deliveries=50.0), "W4": _result(p99_ms=10.0)}
    runs = {
        "embedded": {
            "linkup": {
                "W1": _result(),  # CPU 2x the ceiling's: met
                "W2": _result(p99_ms=120.0),  # over 100 ms embedded
                "W3": _result(rss_kib_per_socket=31.0),
                "W4": _result(p99_ms=21.0),  # over 2x the ceiling's p99
                "W6": _result(rss_growth_after_first_window=0.04, p99_last_vs_first_window=1.1),
            },
            "ceiling": ceiling,
        },
        "scaleout": {
            "linkup": {
                "W1": _result(p99_ms=45.0, cpu_ms_per_1k_deliveries=101.0),  # CPU over 2x
                "W2": _result(p99_ms=150.0),  # under 200 ms on scale-out
                "W3": _result(cpu_ms_per_handshake=1.5),
                "W4": _result(p99_ms=20.0),
                "W5": _result(p99_ms=40.0, cpu_ms_per_1k_deliveries=117.0),  # 1.16x W1's
                "W6": _result(rss_growth_after_first_window=0.06, p99_last_vs_first_window=1.0),
            },
            "ceiling": ceiling,
        },
        "no ceiling": {"linkup": {"W1": _result(), "W4": _result()}},
    }
    assert run.verdicts(runs) == {
        "embedded": {"W1": "met", "W2": "MISSED", "W3": "MISSED", "W4": "MISSED", "W6": "met"},
        "scaleout": {
            "W1": "MISSED",
            "W2": "met",
            "W3": "MISSED",
            "W4": "met",
            "W5": "MISSED",
            "W6": "MISSED",
        },
        "no ceiling": {},  # the ceiling's figures are part of the target: no verdict
    }


@pytest.mark.live
def test_smoke_run(tmp_path: Path) -> None:
    """Every contender runs every kind of workload, end to end: in the embedded pass W1
    (W2 is W1 at twice the rate), W3's many sockets, W4's large room and (Linkup only) W6's
    soak in windows; in the scale-out pass what its configuration changes (W1 on
    PostgreSQL + Redis, and W5's two processes), since the load generator is the same on
    both."""
    config = "scaleout" if os.environ.get("DATABASE_URL") else "embedded"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    workloads = {"W1", "W5"} if config == "scaleout" else {"W1", "W3", "W4", "W6"}
    command = [sys.executable, "-m", "bench.run", "--smoke", "--configs", config]
    command += ["--workloads", ",".join(sorted(workloads)), "--out", str(tmp_path)]
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "p99 ms" in done.stdout  # the table
    document = json.loads((tmp_path / "results.json").read_text())
    runs = document["runs"][config]
    for target in ("linkup", "baseline", "ceiling"):
        expected = workloads - ({"W5"} if target == "ceiling" else set())
        expected -= {"W6"} if target != "linkup" else set()  # the soak is Linkup's alone
        assert expected <= set(runs[target]), (target, sorted(runs[target]))
    for name in workloads:
        mine = runs["linkup"][name]
        assert mine["sent"] > 0 and mine["received"] == mine["expected"] > 0, (name, mine)
        assert mine["lost"] == 0 and mine["duplicates"] == 0, (name, mine)
    assert (tmp_path / "p99.png").stat().st_size > 1000


@pytest.mark.live
@pytest.mark.embedded_only  # the storage is the disk's either way; F1 runs on the embedded default
def test_files_bench_runs_and_reports_every_figure(tmp_path: Path) -> None:
    """`python -m bench.files` (run by `make bench`): both workloads, every figure present
    and sane; no timing is asserted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = [sys.executable, "-m", "bench.files", "--runs", "1", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "F1 uploads" in done.stdout and "F2 images" in done.stdout
    results = json.loads((tmp_path / "files.json").read_text())
    f1, f2 = results["F1"], results["F2"]
    assert f1["upload_mb_s_p50"] > 0 and f1["disk_copy_mb_s_p50"] > 0 and f1["rss_samples"] > 0
    assert f1["rss_peak_mib"] >= f1["rss_before_mib"] > 0
    assert f2["thumbnail_ms_p50"] > 0 and f2["clean_ms_p50"] > 0 and f2["upload_ms_p50"] > 0


@pytest.mark.live
def test_search_bench_runs_and_reports_every_figure(tmp_path: Path) -> None:
    """`python -m bench.search` (run by `make bench`), small, on this pass's configuration:
    every kind of query measured, the searcher finding their own phrases; no timing is
    asserted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    config = "scaleout" if os.environ.get("DATABASE_URL") else "embedded"
    command = [
        sys.executable, "-m", "bench.search", "--messages", "3000", "--rooms", "30",
        "--member-of", "5", "--queries", "10", "--configs", config, "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (result,) = json.loads((tmp_path / "search.json").read_text())
    assert result["config"] == config and result["messages"] == 3000
    kinds = result["kinds"]
    assert set(kinds) == {
        "one word", "two words", "phrase", "outsider: others' word", "outsider: no such word",
    }  # fmt: skip
    assert all(k["queries"] == 10 and k["p99_ms"] >= k["p50_ms"] > 0 for k in kinds.values())
    assert kinds["phrase"]["hits_max"] > 0  # phrases come from the searcher's own messages
    assert kinds["outsider: others' word"]["hits_max"] == 0
