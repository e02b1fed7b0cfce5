"""What every fault scenario shares: a deployment on the suite's own services, users in one
group, traffic from contract clients, the checks that nothing was lost or doubled, and that
the server's memory and connections came back to where they were before the fault."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import redis

from tests.faults.client import ContractClient
from tests.live import api, new_user

FAST = {
    "LINKUP_PRESENCE_TTL_S": "3",
    "LINKUP_PRESENCE_REFRESH_S": "0.5",
    "LINKUP_PRESENCE_GRACE_S": "1",
    "LINKUP_LOG_LEVEL": "WARNING",
}


def fresh_database(server_url: str) -> str:
    """A new database on the suite's PostgreSQL; its URL."""
    name = f"fault_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


def deployment(pg_url: str, redis_url: str) -> dict[str, str]:
    return {
        **FAST,
        "DATABASE_URL": fresh_database(pg_url),
        "REDIS_URL": redis_url,
        "LINKUP_REDIS_PREFIX": "fault" + uuid.uuid4().hex[:8],
    }


# -- server hygiene ---------------------------------------------------------------------------

ESTABLISHED = "01"  # the state column of /proc/net/tcp


@dataclass(frozen=True)
class TcpSocket:
    local_port: int
    remote_port: int
    state: str
    inode: int


def tcp_sockets() -> list[TcpSocket]:
    """Every TCP socket of the network namespace (/proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            f = line.split()
            local, remote = (int(a.rsplit(":", 1)[1], 16) for a in (f[1], f[2]))
            found.append(TcpSocket(local, remote, f[3], int(f[9])))
    return found


def server_pids(server: dict[str, Any]) -> list[int]:
    """The processes of a live_server: it starts `python -m linkup_server serve` as the
    leader of a session (and process group) of its own, which with one worker (the suite's)
    is uvicorn's server itself; with LINKUP_WORKERS > 1 the workers join its group."""
    leader = int(server["proc"].pid)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        pgrp = int(stat.rsplit(")", 1)[1].split()[2])  # after the name: state, ppid, pgrp
        if pgrp == leader:
            pids.append(int(entry))
    assert leader in pids, f"server {leader} is not running"
    return pids


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


@dataclass(frozen=True)
class Snapshot:
    """One server process (its process group) and the deployment around it, at one moment."""

    rss_mib: float
    fds: int
    tcp: int  # established client connections to the deployment's ports
    pg: int  # the process's connections to the scenario's database, as PostgreSQL sees them
    redis: int  # the process's connections to Redis, as Redis sees them
    pg_others: int  # connections to the scenario's database from anyone else
    redis_others: int  # connections to Redis from anyone else (the sampler's own excluded)


# How far "after recovery" may be from "before the fault". The baseline is warm (the crowd
# connected, a second of traffic acknowledged); the after sample is taken once every client
# is back, every send acknowledged and every view synced. Measured over several runs of the
# six scenarios (2 cores, loopback), after - before was: fds -1..+4, PostgreSQL -1..0, Redis
# -1..+4, RSS up to +2.6 MiB (-20 for a restarted process, which starts lower). The
# scenarios store 80 to 400 messages, and those with reconnects have 3 to 50 of them, so a
# leak per reconnect or per message would go beyond these slacks, while what the pools
# legitimately keep stays within them:
#
# File descriptors: the sockets to clients (compared exactly), PostgreSQL and Redis (below),
# and uvicorn's and asyncio's own (listening socket, epoll, self-pipe).
FD_SLACK = 10
# PostgreSQL: psycopg's pool (min 2, max 10 a process) grows only while every connection is
# busy and closes idle ones after max_idle (10 min), so a recovery burst may leave one or two
# more open; never more than the pool's max.
PG_SLACK = 4
# Redis: channels_redis (one subscriber connection and a publish pool) and presence (a
# blocking pool, up to 50) grow with concurrent calls (the presence joins and refreshes of
# every reconnecting socket at once) and do not shrink: +4 seen.
REDIS_SLACK = 8
# RSS: a process that served the fault keeps some of what it allocated meanwhile (CPython and
# malloc return memory lazily).
RSS_SLACK_MIB = 20
SETTLE_S = 5  # the pools close what a dead peer left lazily: poll this long for the counts


class Hygiene:
    """The server's memory, descriptors and connections before a fault and after recovery:
    they must come back (within the slacks above) once the clients have."""

    def __init__(self, env: dict[str, str], servers: list[dict[str, Any]]) -> None:
        self.database_url = env["DATABASE_URL"]
        self.redis_url = env["REDIS_URL"]
        self.database = self.database_url.rsplit("/", 1)[1]
        self.admin_url = self.database_url.rsplit("/", 1)[0] + "/postgres"
        self.pg_port = int(urlsplit(self.database_url).port or 5432)
        self.redis_port = int(urlsplit(self.redis_url).port or 6379)
        # The deployment's ports: a restarted process comes back on its own, and the clients
        # of a killed one move to the other's.
        self.ports = {int(s["port"]) for s in servers}
        self.before: Snapshot | None = None

    def sample(self, server: dict[str, Any]) -> Snapshot:
        pids = server_pids(server)
        inodes = set().union(*(_socket_inodes(pid) for pid in pids))
        sockets = tcp_sockets()
        own = [s for s in sockets if s.inode in inodes and s.state == ESTABLISHED]
        pg_ports = {s.local_port for s in own if s.remote_port == self.pg_port}
        redis_ports = {s.local_port for s in own if s.remote_port == self.redis_port}
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            pg = [
                int(r[0])
                for r in conn.execute(
                    "SELECT client_port FROM pg_stat_activity WHERE datname = %s",
                    (self.database,),
                ).fetchall()
            ]
        with redis.Redis.from_url(self.redis_url, socket_timeout=5) as client:
            me = client.client_id()
            rd = [
                int(c["addr"].rsplit(":", 1)[1]) for c in client.client_list() if c["id"] != str(me)
            ]
        return Snapshot(
            rss_mib=sum(rss_mib(pid) for pid in pids),
            fds=sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in pids),
            tcp=sum(1 for s in sockets if s.state == ESTABLISHED and s.local_port in self.ports),
            pg=sum(1 for p in pg if p in pg_ports),
            redis=sum(1 for p in rd if p in redis_ports),
            pg_others=sum(1 for p in pg if p not in pg_ports),
            redis_others=sum(1 for p in rd if p not in redis_ports),
        )

    async def baseline(self, server: dict[str, Any]) -> Snapshot:
        self.before = await asyncio.to_thread(self.sample, server)
        return self.before

    def _problems(self, after: Snapshot) -> list[str]:
        before = self.before
        assert before is not None, "no baseline"
        problems = []
        if after.tcp != before.tcp:
            problems.append(f"{after.tcp} client connections, {before.tcp} before")
        if after.fds > before.fds + FD_SLACK:
            problems.append(f"{after.fds} file descriptors, {before.fds} before")
        if after.pg > before.pg + PG_SLACK:
            problems.append(f"{after.pg} PostgreSQL connections, {before.pg} before")
        if after.redis > before.redis + REDIS_SLACK:
            problems.append(f"{after.redis} Redis connections, {before.redis} before")
        if after.rss_mib - before.rss_mib >= RSS_SLACK_MIB:
            problems.append(f"RSS {after.rss_mib:.0f} MiB, {before.rss_mib:.0f} before")
        if after.pg_others or after.redis_others:
            problems.append(
                f"{after.pg_others} PostgreSQL and {after.redis_others} Redis connections"
                " held by others (a dead process's?)"
            )
        return problems

    async def returned(self, server: dict[str, Any]) -> dict[str, Any]:
        """Sample `server` (the process measured before, or the one restarted in its place)
        until it is back to the baseline, for up to SETTLE_S; assert it is; the figures."""
        started = time.monotonic()
        deadline = started + SETTLE_S
        while True:
            after = await asyncio.to_thread(self.sample, server)
            problems = self._problems(after)
            if not problems or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        before = self.before
        assert before is not None
        figures: dict[str, Any] = {
            "rss_mib_before_after": [round(before.rss_mib, 1), round(after.rss_mib, 1)],
            "fds_before_after": [before.fds, after.fds],
            "tcp_before_after": [before.tcp, after.tcp],
            "pg_conns_before_after": [before.pg, after.pg],
            "redis_conns_before_after": [before.redis, after.redis],
            "baseline_again_after_s": round(time.monotonic() - started, 2),
        }
        assert not problems, f"not back to baseline after {SETTLE_S} s: {problems}; {figures}"
        return figures


@dataclass
class Crowd:
    """Users in one group, each with a contract client."""

    room: int
    users: list[dict[str, Any]]
    clients: list[ContractClient] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, base: str, ws: str | list[str], size: int = 4) -> Crowd:
        users = [new_user(base, "f") for _ in range(size)]
        status, room = api(
            base,
            "POST",
            "/rooms",
            {"kind": "group", "name": "faults", "members": [u["id"] for u in users[1:]]},
            users[0]["token"],
        )
        assert status == 201, room
        crowd = cls(int(room["id"]), users)
        crowd.clients = []
        for i, u in enumerate(users):
            # With several servers, the clients start spread over them.
            urls = ws if isinstance(ws, str) else ws[i % len(ws) :] + ws[: i % len(ws)]
            crowd.clients.append(ContractClient(urls, u["token"], u["id"], [crowd.room]))
        return crowd

    def start(self) -> None:
        for client in self.clients:
            client.start()

    async def warm_up(self, hygiene: Hygiene, server: dict[str, Any]) -> None:
        """Before the fault: every client connected, a second of traffic acknowledged, then
        the baseline of `server` (the process measured again after recovery)."""
        self.start()
        await self.connected()
        await self.traffic(1, rate=10)
        await asyncio.gather(*(c.settle(10) for c in self.clients))
        before = await hygiene.baseline(server)
        assert before.tcp == len(self.clients), f"{before.tcp} client connections counted"

    async def recover(
        self, hygiene: Hygiene, server: dict[str, Any], timeout: float = 30
    ) -> dict[str, Any]:
        """After the fault: every send acknowledged and every view the database's (verify),
        then `server` back to the baseline (the same process, or the one restarted in the
        first one's place). The figures of both."""
        await self.settle(timeout)
        figures = verify(self, hygiene.database_url)
        figures.update(await hygiene.returned(server))
        return figures

    async def connected(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while any(c.ws is None for c in self.clients):
            assert time.monotonic() < deadline, "clients did not connect"
            await asyncio.sleep(0.05)

    async def traffic(self, seconds: float, rate: float = 20.0) -> None:
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            client = random.choice(self.clients)
            self.sent.append(await client.send(self.room, f"m{n} from {client.user_id}"))
            n += 1
            await asyncio.sleep(1 / rate)

    async def settle(self, timeout: float = 30) -> None:
        await asyncio.gather(*(c.settle(timeout) for c in self.clients))
        # Final sync: every view must now be the database's.
        for _ in range(3):
            await asyncio.gather(*(c._sync() for c in self.clients))
            await asyncio.sleep(0.5)

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.clients))

    def live_after(self, moment: float) -> float | None:
        """Seconds from `moment` until a message acknowledged after it had reached every
        other member live (as `message.new`, not by sync); None if none did."""
        best = None
        for sender in self.clients:
            for message_id, acked in sender.ack_times.items():
                if acked <= moment:
                    continue
                others = [c.live.get(message_id) for c in self.clients if c is not sender]
                if all(t is not None for t in others):
                    reached = max(t for t in others if t is not None) - moment
                    best = reached if best is None else min(best, reached)
        return best


def verify(crowd: Crowd, database_url: str) -> dict[str, Any]:
    """The pass criteria: nothing acknowledged lost, nothing stored twice, seqs without gaps,
    every client's view equal to the database. Returns the figures."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id, seq, sender_id, client_id FROM linkup_message WHERE room_id = %s"
            " ORDER BY seq",
            (crowd.room,),
        ).fetchall()
    seqs = [r[1] for r in rows]
    assert seqs == list(range(1, len(rows) + 1)), "seq has gaps"
    stored = {r[3]: r for r in rows}
    duplicated = len(rows) - len(stored)
    assert duplicated == 0
    acked = {cid: m for c in crowd.clients for cid, m in c.acked.items()}
    lost = [cid for cid in acked if cid not in stored]
    assert not lost, f"{len(lost)} acknowledged messages are not in the database"
    for cid, message in acked.items():  # never acked what was not committed
        assert (message["id"], message["seq"]) == (stored[cid][0], stored[cid][1])
    unsent = [cid for cid in crowd.sent if cid not in stored]
    assert not unsent, f"{len(unsent)} sends never stored (their clients retried)"
    truth = {r[1]: r[0] for r in rows}
    for client in crowd.clients:
        view = {seq: m["id"] for seq, m in client.seen[crowd.room].items()}
        assert view == truth, f"user {client.user_id}'s view differs from the database"
    return {
        "sent": len(crowd.sent),
        "stored": len(rows),
        "lost": len(lost),
        "duplicated": duplicated,
        "reconnects": sum(c.connects - 1 for c in crowd.clients),
        "dropped_before_ack": sum(c.drops for c in crowd.clients),
        "errors": dict(sum((c.errors for c in crowd.clients), start=Counter())),
    }
