"""What every fault scenario shares: a deployment on the suite's own services, users in one
group, traffic from contract clients, and the checks that nothing was lost or doubled."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

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


@dataclass
class Crowd:
    """Users in one group, each with a contract client."""

    room: int
    users: list[dict[str, Any]]
    clients: list[ContractClient] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    @classmethod
    def make(
        cls, base: str, ws: str | list[str], size: int = 4, drop_after_send: float = 0.0
    ) -> Crowd:
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
            crowd.clients.append(
                ContractClient(
                    urls, u["token"], u["id"], [crowd.room], drop_after_send=drop_after_send
                )
            )
        return crowd

    def start(self) -> None:
        for client in self.clients:
            client.start()

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
