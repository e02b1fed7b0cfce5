"""`make bench`: Linkup, the tutorial baseline and the bare ceiling, side by side, one run.

    python -m bench.run                 # the full run; writes docs/bench/results.json and .png
    python -m bench.run --smoke         # seconds, small: CI runs it so the harness cannot rot
    python -m bench.run --configs embedded --targets linkup,ceiling --workloads W1,W2

Workloads (issues 7 and 15): W1 500 clients in 50 rooms of 10 at 1 msg/s each; W2 the same
clients at 2 msg/s each (1,000 msg/s, 10,000 deliveries/s); W3 10,000 sockets (500 users x 20
tabs) and one broadcast per room; W4 one room of 1,000 members, 5 msg/s; W5 W1 on two server
processes sharing PostgreSQL + Redis (scale-out configuration only; the ceiling has no shared
bus); W6 W1's load held for 10 minutes (Linkup only), RSS and p99 per minute.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.servers import LOAD_CORE, ROOT, TARGETS, Server, database, pinning, run_server


@dataclass(frozen=True)
class Shape:
    users: int  # Linkup users to register (the tutorial dialect has none)
    clients: int  # W1/W2/W5 sockets
    room_size: int
    w1_rate: float
    w2_rate: float
    seconds: float
    w3_users: int
    w3_tabs: int
    w4_members: int
    w4_rate: float
    w4_senders: int
    warmup: float
    soak_seconds: float  # W6: W1's load this long
    soak_window: float  # ... measured in windows this long


FULL = Shape(
    users=1000, clients=500, room_size=10, w1_rate=500, w2_rate=1000, seconds=20,
    w3_users=500, w3_tabs=20, w4_members=1000, w4_rate=5, w4_senders=50, warmup=2,
    soak_seconds=600, soak_window=60,
)  # fmt: skip
SMOKE = Shape(
    users=40, clients=40, room_size=10, w1_rate=40, w2_rate=80, seconds=1,
    w3_users=10, w3_tabs=10, w4_members=40, w4_rate=10, w4_senders=5, warmup=0,
    soak_seconds=2, soak_window=0.5,
)  # fmt: skip

# What issue 15 asks of Linkup, per configuration where they differ; the ceiling's figures
# come from the same run.
TARGET_P99_MS = {
    "W1": {"embedded": 25, "scaleout": 50},
    "W2": {"embedded": 100, "scaleout": 200},
    "W5": {"scaleout": 50},
}
W1_MAX_CPU_VS_CEILING = 2.0
W3_MAX_RSS_KIB, W3_MAX_CPU_MS_PER_HANDSHAKE = 30, 1.0
W4_MAX_P99_VS_CEILING = 2.0
W5_MAX_COST_RATIO = 1.15
W6_MAX_RSS_GROWTH, W6_MAX_P99_DRIFT = 0.05, 0.20
# How long a workload waits for its last deliveries (what is missing then is lost: W3 waits
# three times this), and for the newcomers' presence to settle before it measures.
DRAIN_S, SETTLE_S = 10.0, 2.0


@dataclass
class Setup:
    """What a workload needs of a server: Linkup's users and rooms, or tutorial room names."""

    users: list[dict[str, Any]]
    small_rooms: list[int]  # Linkup room ids of W1/W2/W3, room_size members each
    big_room: int | None

    def stream_plan(self, server: Server, shape: Shape) -> list[tuple[Any, str | None]]:
        if server.protocol == "linkup":
            return [
                (self.small_rooms[i // shape.room_size], self.users[i]["token"])
                for i in range(shape.clients)
            ]
        return [(f"a{i // shape.room_size}", None) for i in range(shape.clients)]

    def big_plan(self, server: Server, shape: Shape) -> list[tuple[Any, str | None]]:
        if server.protocol == "linkup":
            return [(self.big_room, u["token"]) for u in self.users[: shape.w4_members]]
        return [("big", None)] * shape.w4_members

    def tabs_plan(self, server: Server, shape: Shape) -> list[tuple[Any, str | None]]:
        plan: list[tuple[Any, str | None]] = []
        for u in range(shape.w3_users):
            for _tab in range(shape.w3_tabs):
                if server.protocol == "linkup":
                    room = self.small_rooms[u // shape.room_size]
                    plan.append((room, self.users[u]["token"]))
                else:
                    plan.append((f"c{u // shape.room_size}", None))
        return plan


def prepare(server: Server, shape: Shape, workloads: list[str]) -> Setup:
    if server.protocol != "linkup":
        return Setup([], [], None)
    started = time.perf_counter()
    tag = os.urandom(3).hex()
    needed = max(
        shape.clients if {"W1", "W2", "W5", "W6"} & set(workloads) else 0,
        shape.w3_users if "W3" in workloads else 0,
        shape.w4_members if "W4" in workloads else 0,
    )
    users = loadgen.make_users(server.base(), needed, tag)
    size = shape.room_size
    rooms = [
        loadgen.make_room(server.base(), users[i : i + size], f"bench {i // size}")
        for i in range(0, min(len(users), max(shape.clients, shape.w3_users)), size)
    ]
    print(
        f"    set up {len(users)} users and {len(rooms)} rooms over REST "
        f"in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return Setup(users, rooms, None)


def add_big_room(server: Server, setup: Setup, shape: Shape) -> None:
    """W4's room, made after W3: its members would otherwise all be contacts, and W3 would
    measure presence announcements to 999 contacts x 20 tabs rather than sockets."""
    if server.protocol == "linkup" and setup.big_room is None:
        setup.big_room = loadgen.make_room(server.base(), setup.users[: shape.w4_members], "big")


def _spread(clients: list[loadgen.Client], count: int) -> list[loadgen.Client]:
    step = max(1, len(clients) // count)
    return clients[::step][:count]


async def stream(
    server: Server,
    plan: list[tuple[Any, str | None]],
    rate: float,
    seconds: float,
    warmup: float,
    senders: int | None = None,
    closed: bool = False,
    window: float | None = None,
) -> dict[str, Any]:
    """Hold a message load on `plan`'s sockets; with `window`, also each window's p99 and
    the server's RSS at its end (W6)."""
    stats = loadgen.Stats()
    beat = asyncio.create_task(loadgen.heartbeat(server.protocol, stats))
    clients, took, failed = await loadgen.connect_all(server, plan, stats)
    in_room = Counter(c.room for c in clients)
    chosen = _spread(clients, senders) if senders else clients
    await asyncio.sleep(SETTLE_S)  # presence announcements of the newcomers settle
    cpu0, t0 = server.cpu_seconds(), time.perf_counter()
    stats.measure_from = t0 + warmup
    windows: list[dict[str, Any]] = []
    sampler = (
        asyncio.create_task(_sample_windows(server, stats, window, windows)) if window else None
    )
    if closed:
        sending = await loadgen.closed_loop(server.protocol, chosen, in_room, stats, seconds)
    else:
        sending = await loadgen.open_loop(server.protocol, chosen, in_room, stats, rate, seconds)
    if sampler is not None:
        sampler.cancel()
    await stats.drain(DRAIN_S)
    elapsed = time.perf_counter() - t0
    cpu = server.cpu_seconds() - cpu0
    rss = server.rss_bytes()
    beat.cancel()
    await loadgen.close_all(clients)
    await asyncio.sleep(1)
    return {
        **loadgen.summary(stats),
        **_handshakes(clients, took, failed),
        **_cpu_per_delivery(cpu, stats),
        "offered_msg_per_s": None if closed else rate,
        "send_seconds": sending,
        "msg_per_s": stats.sent / sending if sending else None,
        **_soak(windows),
        "deliveries_per_s": (
            stats.received / (stats.last_delivery - t0) if stats.last_delivery > t0 else None
        ),
        "server_cpu_percent": 100 * cpu / elapsed if elapsed else None,
        "server_rss_mib": rss / 2**20,
    }


async def _sample_windows(
    server: Server, stats: loadgen.Stats, seconds: float, windows: list[dict[str, Any]]
) -> None:
    """At the end of each window: its latencies' p99 and the server's RSS."""
    start = len(stats.latencies)
    while True:
        await asyncio.sleep(seconds)
        end = len(stats.latencies)
        ordered = sorted(stats.latencies[start:end])
        windows.append(
            {
                "p99_ms": loadgen.percentile(ordered, 0.99),
                "samples": len(ordered),
                "rss_mib": server.rss_bytes() / 2**20,
            }
        )
        start = end


def _soak(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """W6's figures: RSS growth after the first window, and the last window's p99 against
    the first's."""
    if len(windows) < 2:
        return {"windows": windows} if windows else {}
    first, last = windows[0], windows[-1]
    return {
        "windows": windows,
        "rss_growth_after_first_window": last["rss_mib"] / first["rss_mib"] - 1,
        "p99_last_vs_first_window": (
            last["p99_ms"] / first["p99_ms"] if first["p99_ms"] and last["p99_ms"] else None
        ),
    }


async def many_sockets(server: Server, plan: list[tuple[Any, str | None]]) -> dict[str, Any]:
    """W3: open every socket of `plan`, weigh the server, then one broadcast per room."""
    stats = loadgen.Stats()
    rss0 = server.rss_bytes()
    beat = asyncio.create_task(loadgen.heartbeat(server.protocol, stats))
    cpu_open = server.cpu_seconds()
    load_open = time.process_time()
    clients, took, failed = await loadgen.connect_all(server, plan, stats, concurrency=200)
    cpu_open = server.cpu_seconds() - cpu_open
    load_open = time.process_time() - load_open
    await asyncio.sleep(2)
    rss1 = server.rss_bytes()
    in_room = Counter(c.room for c in clients)
    firsts: dict[Any, loadgen.Client] = {}
    for client in clients:
        firsts.setdefault(client.room, client)
    cpu0, t0 = server.cpu_seconds(), time.perf_counter()
    for client in firsts.values():
        await loadgen.send_one(server.protocol, client, stats, in_room[client.room], closed=False)
    await stats.drain(3 * DRAIN_S)
    elapsed = time.perf_counter() - t0
    cpu = server.cpu_seconds() - cpu0
    alive = sum(1 for c in clients if c.reader is not None and not c.reader.done())
    beat.cancel()
    await loadgen.close_all(clients)
    await asyncio.sleep(2)
    return {
        **loadgen.summary(stats),
        **_handshakes(clients, took, failed),
        **_cpu_per_delivery(cpu, stats),
        "sockets": len(clients),
        "sockets_alive_at_end": alive,
        "cpu_ms_per_handshake": 1000 * cpu_open / len(clients) if clients else None,
        # The load generator's own CPU while connecting: near 100 % of its core, it was
        # the limit of handshakes/s, not the server.
        "loadgen_cpu_percent_connecting": 100 * load_open / took if took else None,
        "handshake_seconds": took,
        "rss_before_mib": rss0 / 2**20,
        "rss_open_mib": rss1 / 2**20,
        "rss_kib_per_socket": (rss1 - rss0) / 1024 / len(clients) if clients else None,
        "broadcast_seconds": elapsed,
    }


def _handshakes(clients: list[loadgen.Client], took: float, failed: int) -> dict[str, Any]:
    return {
        "clients": len(clients),
        "handshake_failures": failed,
        "handshakes_per_s": len(clients) / took if took else None,
    }


def _cpu_per_delivery(cpu: float, stats: loadgen.Stats) -> dict[str, Any]:
    """Server CPU milliseconds per 1,000 deliveries (the honest measure of scaling)."""
    return {"cpu_ms_per_1k_deliveries": cpu * 1e6 / stats.received if stats.received else None}


LINKUP_ENV: dict[str, str] = {}  # --env KEY=VALUE: settings to try on Linkup's server


def _bench_env(target: str) -> dict[str, str]:
    return dict(LINKUP_ENV) if target == "linkup" else {}


# --profile DIR: Linkup's server processes are sampled by py-spy during each workload, one
# flame graph (SVG) per configuration and workload. Sampling costs the server a little CPU:
# quote figures from runs without it.
PROFILE_DIR: Path | None = None


def workload(name: str, server: Server, setup: Setup, shape: Shape, closed: bool) -> dict[str, Any]:
    """Run one workload against a started server; a contender that fails is reported so."""
    print(f"  {server.config:9s} {server.target:8s} {name} ...", flush=True)
    before = server.tracebacks()
    profiler = _start_profile(server, name)
    try:
        result = _workload(name, server, setup, shape, closed)
    except Exception as exc:
        print(f"    {name} failed: {exc!r}\n{server.log_tail(3000)}", flush=True)
        return {"error": f"failed: {exc!r}"}
    finally:
        _stop_profile(profiler)
    result["server_tracebacks"] = server.tracebacks() - before
    print("    " + _line(name, result), flush=True)
    if result["server_tracebacks"]:
        print(f"    the server logged {result['server_tracebacks']} tracebacks, the first:")
        print("    " + server.first_error().replace("\n", "\n    "), flush=True)
    return result


def _start_profile(server: Server, name: str) -> subprocess.Popen[bytes] | None:
    """py-spy on a Linkup server during one workload, until `_stop_profile`."""
    if PROFILE_DIR is None or server.target != "linkup":
        return None
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    output = PROFILE_DIR / f"{server.config}-{name}.svg"
    # The first process (W5 runs two alike).
    # py-spy from this interpreter's environment (its bin/ need not be on PATH).
    beside = Path(sys.executable).with_name("py-spy")
    spy = str(beside) if beside.exists() else "py-spy"
    command = [spy, "record", "--nonblocking", "--rate", "200", "--output", str(output)]
    if os.environ.get("LINKUP_PROFILE_FORMAT"):  # e.g. raw: collapsed stacks, for reading
        command += ["--format", os.environ["LINKUP_PROFILE_FORMAT"]]
    return subprocess.Popen(
        [*command, "--pid", str(server.procs[0].pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop_profile(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is None:
        return
    profiler.send_signal(signal.SIGINT)  # py-spy writes its flame graph and exits
    try:
        profiler.wait(timeout=60)
    except subprocess.TimeoutExpired:
        profiler.kill()


def _workload(
    name: str, server: Server, setup: Setup, shape: Shape, closed: bool
) -> dict[str, Any]:
    if name == "W3":
        return asyncio.run(many_sockets(server, setup.tabs_plan(server, shape)))
    if name == "W4":
        add_big_room(server, setup, shape)
        plan = setup.big_plan(server, shape)
        return asyncio.run(
            stream(server, plan, shape.w4_rate, shape.seconds, shape.warmup, shape.w4_senders)
        )
    plan = setup.stream_plan(server, shape)
    if name == "W6":  # W1's load, held
        return asyncio.run(
            stream(
                server, plan, shape.w1_rate, shape.soak_seconds, shape.warmup,
                window=shape.soak_window,
            )
        )  # fmt: skip
    # W1, W2, and W5 (W1's load)
    rate = shape.w2_rate if name == "W2" else shape.w1_rate
    return asyncio.run(stream(server, plan, rate, shape.seconds, shape.warmup, closed=closed))


def run_target(
    target: str, config: str, shape: Shape, workloads: list[str], closed: bool
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    w5 = "W5" in workloads and config == "scaleout" and target != "ceiling"
    with database(config) as db_env:
        # W6 (the soak) is Linkup's alone, and last.
        single = [w for w in workloads if w != "W5" and (w != "W6" or target == "linkup")]
        with run_server(target, config, db_env, extra_env=_bench_env(target)) as server:
            setup = prepare(server, shape, workloads)
            for name in sorted(single, key=lambda w: (w != "W3", w == "W6", w)):
                if not server.alive():
                    results[name] = {"error": "server died", "log": server.log_tail()}
                    continue
                results[name] = workload(name, server, setup, shape, closed)
            # W5's one-process reference, in the same state as the two-process run.
            reference = workload("W5", server, setup, shape, closed) if w5 else {}
            if not server.alive():
                results["server_log"] = server.log_tail()
        if w5:
            with run_server(
                target, config, db_env, processes=2, extra_env=_bench_env(target), migrate=False
            ) as server:
                result = workload("W5", server, setup, shape, closed)
                result["processes"] = 2
                result["one_process"] = reference
                one = reference.get("cpu_ms_per_1k_deliveries")
                two = result["cpu_ms_per_1k_deliveries"]
                result["cost_ratio_to_one_process"] = two / one if one and two else None
                results["W5"] = result
    return results


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _line(name: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{name}: {r['error']}"
    head = f"{name}: sent {_fmt(r['sent'])} lost {_fmt(r['lost'])} dup {_fmt(r['duplicates'])}"
    lat = f"p50 {_fmt(r['p50_ms'])} p99 {_fmt(r['p99_ms'])} max {_fmt(r['max_ms'])} ms"
    if name == "W3":
        return (
            f"{head} sockets {_fmt(r['sockets'])} ({_fmt(r['handshakes_per_s'], 0)}/s, "
            f"{_fmt(r['rss_kib_per_socket'])} KiB each) broadcast {lat}"
        )
    return (
        f"{head} {lat} {_fmt(r['deliveries_per_s'], 0)} deliveries/s "
        f"cpu {_fmt(r['cpu_ms_per_1k_deliveries'], 0)} ms/1k"
    )


def verdicts(runs: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per configuration and workload: does Linkup meet issue 15's target (the ceiling's
    figures from the same run)?"""
    out: dict[str, dict[str, str]] = {}
    for config, targets in runs.items():
        mine = targets.get("linkup", {})
        ceiling = targets.get("ceiling", {})
        out[config] = {}
        for name, r in mine.items():
            if not isinstance(r, dict) or "error" in r or name.startswith("server"):
                continue
            verdict = _verdict(config, name, r, mine, ceiling.get(name) or {})
            if verdict is not None:
                out[config][name] = "met" if verdict else "MISSED"
    return out


def _verdict(
    config: str, name: str, r: dict[str, Any], mine: dict[str, Any], ceiling: dict[str, Any]
) -> bool | None:
    """Whether one workload's result meets its target; None where the run cannot tell."""
    ok = r["lost"] == 0 and r["duplicates"] == 0
    p99, cpu = r.get("p99_ms"), r.get("cpu_ms_per_1k_deliveries")
    limit = TARGET_P99_MS.get(name, {}).get(config)
    if limit is not None:
        ok = ok and p99 is not None and p99 <= limit
    if name == "W1":
        ceiling_cpu = ceiling.get("cpu_ms_per_1k_deliveries")
        if not ceiling_cpu:
            return None
        return ok and bool(cpu) and cpu <= W1_MAX_CPU_VS_CEILING * ceiling_cpu
    if name == "W2":
        return ok and (r["msg_per_s"] or 0) >= 0.98 * (r["offered_msg_per_s"] or 0)
    if name == "W3":
        return (
            ok
            and r["handshake_failures"] == 0
            and (r["rss_kib_per_socket"] or 1e9) <= W3_MAX_RSS_KIB
            and (r.get("cpu_ms_per_handshake") or 1e9) <= W3_MAX_CPU_MS_PER_HANDSHAKE
        )
    if name == "W4":
        if not ceiling.get("p99_ms"):
            return None
        return ok and p99 is not None and p99 <= W4_MAX_P99_VS_CEILING * ceiling["p99_ms"]
    if name == "W5":
        reference = r.get("one_process") or mine.get("W1", {})
        one = reference.get("cpu_ms_per_1k_deliveries")
        return ok and bool(one and cpu and cpu <= W5_MAX_COST_RATIO * one)
    if name == "W6":
        growth, drift = r.get("rss_growth_after_first_window"), r.get("p99_last_vs_first_window")
        if growth is None or drift is None:
            return None
        return ok and growth <= W6_MAX_RSS_GROWTH and drift <= 1 + W6_MAX_P99_DRIFT
    return None


def table(runs: dict[str, Any]) -> str:
    lines = []
    header = (
        f"{'config':9s} {'work':4s} {'target':8s} {'sent':>7s} {'lost':>7s} {'dup':>4s} "
        f"{'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} {'deliv/s':>8s} {'cpu/1k':>7s} "
        f"{'RSS MiB':>7s}  extra"
    )
    lines.append(header)
    lines.append("-" * len(header))
    judged = verdicts(runs)
    for config, targets in runs.items():
        names = sorted({w for t in targets.values() for w in t if w.startswith("W")})
        for name in names:
            for target in TARGETS:
                r = targets.get(target, {}).get(name)
                if r is None:
                    continue
                if "error" in r:
                    lines.append(f"{config:9s} {name:4s} {target:8s} {r['error']}")
                    continue
                extra = ""
                if name == "W3":
                    extra = (
                        f"{r['sockets']} sockets, {_fmt(r['handshakes_per_s'], 0)} handshakes/s,"
                        f" {_fmt(r['rss_kib_per_socket'])} KiB/socket,"
                        f" {_fmt(r.get('cpu_ms_per_handshake'), 2)} ms CPU/handshake"
                    )
                    rss = r["rss_open_mib"]
                    rate = None
                else:
                    rss = r["server_rss_mib"]
                    rate = r["deliveries_per_s"]
                if name == "W6" and r.get("windows"):
                    extra = (
                        f"RSS +{_fmt(100 * (r.get('rss_growth_after_first_window') or 0))} %"
                        " after the first window, last window's p99"
                        f" {_fmt(r.get('p99_last_vs_first_window'), 2)}x the first's"
                    )
                if target == "linkup" and name in judged.get(config, {}):
                    extra = (extra + " " if extra else "") + f"[{judged[config][name]}]"
                lines.append(
                    f"{config:9s} {name:4s} {target:8s} {_fmt(r['sent']):>7s} "
                    f"{_fmt(r['lost']):>7s} {_fmt(r['duplicates']):>4s} {_fmt(r['p50_ms']):>8s} "
                    f"{_fmt(r['p99_ms']):>8s} {_fmt(r['max_ms']):>8s} {_fmt(rate, 0):>8s} "
                    f"{_fmt(r.get('cpu_ms_per_1k_deliveries'), 0):>7s} {_fmt(rss, 0):>7s}  {extra}"
                )
            lines.append(_ratios(config, name, targets))
    return "\n".join(line for line in lines if line)


def _ratios(config: str, name: str, targets: dict[str, Any]) -> str:
    mine = targets.get("linkup", {}).get(name)
    if not mine or "error" in mine or mine.get("p99_ms") is None:
        return ""
    parts = []
    for other in ("baseline", "ceiling"):
        r = targets.get(other, {}).get(name)
        if not r or "error" in r or not r.get("p99_ms"):
            continue
        parts.append(f"p99 {mine['p99_ms'] / r['p99_ms']:.2f}x {other}'s")
        a, b = mine.get("cpu_ms_per_1k_deliveries"), r.get("cpu_ms_per_1k_deliveries")
        if a and b:
            parts.append(f"cpu/delivery {a / b:.2f}x {other}'s")
    return f"{'':9s} {name:4s} linkup: " + ", ".join(parts) if parts else ""


def plot(runs: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(runs)
    fig, axes = plt.subplots(1, len(configs), figsize=(6 * len(configs), 4), squeeze=False)
    for ax, config in zip(axes[0], configs, strict=True):
        targets = runs[config]
        names = sorted({w for t in targets.values() for w in t if w.startswith("W")})
        width = 0.8 / len(TARGETS)
        for k, target in enumerate(TARGETS):
            values = []
            for name in names:
                r = targets.get(target, {}).get(name) or {}
                values.append(r.get("p99_ms") or 0)
            xs = [i + (k - 1) * width for i in range(len(names))]
            ax.bar(xs, values, width, label=target)
        for i, name in enumerate(names):
            limit = TARGET_P99_MS.get(name, {}).get(config)
            if limit is not None:
                ax.hlines(limit, i - 0.4, i + 0.4, colors="k", linestyles="dotted")
        ax.set_xticks(range(len(names)), names)
        ax.set_yscale("log")
        ax.set_ylabel("end-to-end p99 (ms, log)")
        ax.set_title(config)
        ax.legend()
    fig.suptitle("Linkup vs the tutorial baseline vs a bare broadcaster (dotted: target)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _reachable(config: str) -> bool:
    if config == "embedded":
        return True
    try:
        import psycopg
        import redis

        url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", connect_timeout=3).close()
        redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")).ping()
        return True
    except Exception as exc:
        print(f"scale-out configuration skipped: {exc}", file=sys.stderr)
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a small run of a few seconds")
    parser.add_argument("--configs", default="embedded,scaleout")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6")
    parser.add_argument("--closed", action="store_true", help="closed loop for W1/W2/W5")
    parser.add_argument("--out", default=None, help="folder for results.json and the plot")
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for Linkup's server (repeatable)"
    )
    parser.add_argument(
        "--profile", default=None, help="folder for py-spy flame graphs of Linkup's server"
    )
    parser.add_argument(
        "--soak", type=float, default=None, help="W6's length in seconds (600; 60 s windows)"
    )
    args = parser.parse_args(argv)
    global PROFILE_DIR, DRAIN_S, SETTLE_S
    PROFILE_DIR = Path(args.profile) if args.profile else None
    if args.smoke:  # a smoke run proves the harness works; the baseline's losses need no 10 s
        DRAIN_S, SETTLE_S = 3.0, 0.5
    LINKUP_ENV.update(item.split("=", 1) for item in args.env)
    shape = SMOKE if args.smoke else FULL
    if args.soak:
        shape = dataclasses.replace(shape, soak_seconds=args.soak)
    out = Path(args.out) if args.out else (None if args.smoke else ROOT / "docs" / "bench")
    configs = [c for c in args.configs.split(",") if c]
    requested_scaleout = "scaleout" in configs
    configs = [c for c in configs if _reachable(c)]
    if requested_scaleout and "scaleout" not in configs and os.environ.get("CI"):
        print("CI: the scale-out configuration could not run", file=sys.stderr)
        return 1
    if pinning():
        os.sched_setaffinity(0, {LOAD_CORE})
    started = dt.datetime.now(dt.UTC)
    runs: dict[str, Any] = {}
    for config in configs:
        runs[config] = {}
        for target in [t for t in args.targets.split(",") if t]:
            runs[config][target] = run_target(
                target, config, shape, args.workloads.split(","), args.closed
            )
    print()
    print(table(runs))
    document = {
        "started": started.isoformat(timespec="seconds"),
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "machine": {"cpus": os.cpu_count(), "pinned": pinning()},
        "shape": shape.__dict__,
        "mode": "closed loop" if args.closed else "open loop",
        "linkup_env": LINKUP_ENV,
        "runs": runs,
        "verdicts": verdicts(runs),
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(document, indent=1) + "\n")
        try:
            plot(runs, out / "p99.png")
        except ImportError:
            print("matplotlib is not installed: no plot (pip install '.[bench]')")
        print(f"\nwrote {out / 'results.json'}")
    if args.smoke:
        # The smoke run checks the harness and Linkup's guarantees, never timings.
        bad = [
            f"{config}/{name}"
            for config, targets in runs.items()
            for name, r in targets.get("linkup", {}).items()
            if isinstance(r, dict)
            and name.startswith("W")
            and ("error" in r or r["lost"] or r["duplicates"] or not r["sent"])
        ]
        if bad:
            print(f"smoke run: Linkup lost, duplicated or failed in {bad}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
