"""Presence per connection, with time injected.

A user is online while any of their connections is alive. Each connection has an expiry,
pushed forward by the process that holds it (every PRESENCE_REFRESH_S, to now +
PRESENCE_TTL_S) and removed when the socket closes. A sweep (every process, every
PRESENCE_REFRESH_S) drops expired connections; a user with none left is offline once
PRESENCE_GRACE_S has passed since the last one went, so a reload does not flicker. A process
killed with SIGKILL stops refreshing: its users go offline within TTL + sweep + grace + sweep.

`PresenceBook` holds that state in memory (the embedded default, one process);
`RedisPresence` holds the same state in Redis so that every process agrees.

Sockets connect and close in bursts (a deploy, a network blip), so admissions, connects and
disconnects also come many at a time (`admit_many`, `connect_many`, `disconnect_many`): the
same as the single calls one after the other, and on Redis one pipeline for them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from linkup.store.redis import Keys, hidden_of

Transition = tuple[int, str, float]  # (user id, "online" | "offline", at)
HIDDEN_KEEP_S = 86_400  # a user's hidden-tab entries outlive a dead process by a day at most
CHAT = "chat"  # the sockets presence is made of; admit() counts other kinds apart
Admission = tuple[int, str, str]  # (user id, connection id, kind)
Departure = tuple[int, str, int | None]  # (user id, connection id, the room it showed)


@dataclass
class PresenceBook:
    """In-memory presence state: connections with expiries, and users in their grace period."""

    ttl_s: float = 30.0
    grace_s: float = 30.0
    conns: dict[int, dict[str, float]] = field(default_factory=dict)  # user -> conn -> expiry
    present: set[int] = field(default_factory=set)  # online, or offline pending grace
    gone_at: dict[int, float] = field(default_factory=dict)  # user -> when the last conn went
    # room -> user -> connections showing that room (the `focus` frame)
    focus: dict[int, dict[int, set[str]]] = field(default_factory=dict)
    hidden: set[tuple[int, str]] = field(default_factory=set)  # (user, conn): tab hidden

    # Sockets of other kinds (notification sockets), counted the same way but apart from
    # presence: kind -> user -> conn -> expiry.
    counted: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)

    def _of(self, kind: str) -> dict[int, dict[str, float]]:
        return self.conns if kind == CHAT else self.counted.setdefault(kind, {})

    async def admit(self, user: int, conn: str, cap: int, now: float, kind: str = CHAT) -> bool:
        """Count `conn` among the user's live connections of `kind` unless they have `cap`
        already. Chat sockets are counted in presence's own entries (connect, refresh and
        disconnect keep them); other kinds with keep() and forget()."""
        by_user = self._of(kind)
        conns = by_user.setdefault(user, {})
        if sum(1 for expiry in conns.values() if expiry > now) >= cap:
            if not conns:
                del by_user[user]
            return False
        conns[conn] = now + self.ttl_s
        return True

    async def keep(self, kind: str, owned: list[tuple[int, str]], now: float) -> None:
        """These counted connections of `kind` are alive now (and put back if lost)."""
        for user, conn in owned:
            self._of(kind).setdefault(user, {})[conn] = now + self.ttl_s

    async def forget(self, kind: str, user: int, conn: str) -> None:
        by_user = self._of(kind)
        conns = by_user.get(user, {})
        conns.pop(conn, None)
        if not conns:
            by_user.pop(user, None)

    async def connect(self, user: int, conn: str, now: float) -> list[Transition]:
        self.conns.setdefault(user, {})[conn] = now + self.ttl_s
        self.gone_at.pop(user, None)
        if user in self.present:
            return []  # still shown online (another tab, or a reload within the grace)
        self.present.add(user)
        return [(user, "online", now)]

    async def refresh(self, owned: list[tuple[int, str]], now: float) -> None:
        """These connections are alive now (their process holds them open): push their
        expiry forward, and put back whatever the store lost of them (see RedisPresence)."""
        for user, conn in owned:
            self.conns.setdefault(user, {})[conn] = now + self.ttl_s
            self.present.add(user)
            self.gone_at.pop(user, None)

    async def disconnect(self, user: int, conn: str, now: float) -> None:
        self.hidden.discard((user, conn))
        conns = self.conns.get(user, {})
        conns.pop(conn, None)
        if not conns:
            self.conns.pop(user, None)
            if user in self.present:  # not for a socket admitted that never joined
                self.gone_at.setdefault(user, now)

    async def sweep(self, now: float) -> list[Transition]:
        transitions: list[Transition] = []
        for user in sorted(self.present):
            conns = self.conns.get(user, {})
            for conn in [c for c, expiry in conns.items() if expiry <= now]:
                del conns[conn]
            if conns:
                self.gone_at.pop(user, None)
                continue
            self.conns.pop(user, None)
            gone = self.gone_at.setdefault(user, now)
            if now - gone >= self.grace_s:
                self.present.discard(user)
                del self.gone_at[user]
                transitions.append((user, "offline", gone))
        return transitions

    async def admit_many(self, asks: list[Admission], cap: int, now: float) -> list[bool]:
        return [await self.admit(user, conn, cap, now, kind) for user, conn, kind in asks]

    async def connect_many(
        self, conns: list[tuple[int, str]], now: float
    ) -> list[list[Transition]]:
        return [await self.connect(user, conn, now) for user, conn in conns]

    async def disconnect_many(self, gone: list[Departure], now: float) -> None:
        for user, conn, focus in gone:
            if focus is not None:
                await self.set_focus(user, conn, focus, None)
            await self.disconnect(user, conn, now)

    async def online(self, users: list[int]) -> set[int]:
        return {u for u in users if u in self.present}

    async def set_focus(self, user: int, conn: str, old: int | None, new: int | None) -> None:
        if old is not None:
            watchers = self.focus.get(old, {})
            watchers.get(user, set()).discard(conn)
            if not watchers.get(user, True):
                del watchers[user]
            if not watchers:
                self.focus.pop(old, None)
        if new is not None:
            self.focus.setdefault(new, {}).setdefault(user, set()).add(conn)

    async def set_hidden(self, user: int, conn: str, hidden: bool) -> None:
        if hidden:
            self.hidden.add((user, conn))
        else:
            self.hidden.discard((user, conn))

    async def all_hidden(self, user: int, now: float) -> bool | None:
        """Whether every live chat socket of the user is in a hidden tab; None with none."""
        live = [conn for conn, expiry in self.conns.get(user, {}).items() if expiry > now]
        if not live:
            return None
        return all((user, conn) in self.hidden for conn in live)

    async def focused(self, rooms: list[int], now: float) -> dict[int, set[int]]:
        """The users with a live connection showing each of `rooms`."""
        found: dict[int, set[int]] = {}
        for room in rooms:
            for user, conns in self.focus.get(room, {}).items():
                alive = self.conns.get(user, {})
                if any(alive.get(c, 0) > now for c in conns):
                    found.setdefault(room, set()).add(user)
        return found


# Atomically, for one user: drop expired connections; with none left, note when they went
# (once) and, after the grace, take the user out of the present set. Returns the time the
# last connection went when this call made the user offline, else false. Atomic, so a
# connect between the check and the removal cannot be lost, and only one process reports it.
_SWEEP_USER = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) > 0 then
  redis.call('HDEL', KEYS[3], ARGV[3])
  return false
end
redis.call('HSETNX', KEYS[3], ARGV[3], ARGV[1])
local gone = redis.call('HGET', KEYS[3], ARGV[3])
if tonumber(ARGV[1]) - tonumber(gone) >= tonumber(ARGV[2]) then
  redis.call('SREM', KEYS[2], ARGV[3])
  redis.call('HDEL', KEYS[3], ARGV[3])
  return gone
end
return false
"""

# Atomically: add the connection, cancel a pending offline, and report whether the user was
# absent (then they just came online).
_CONNECT = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[3])
return redis.call('SADD', KEYS[2], ARGV[3])
"""


# Atomically: drop the user's expired connections (as the sweep would), count the live ones
# and add this one unless there are `cap` already. Returns 1 when admitted. Every process
# counts in the same set, so the cap holds across processes, and a killed process's
# connections expire out of it.
_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
return 1
"""


# Atomically: remove the connection (and its focus entry, when KEYS[4] names one); with
# none of the user's left and the user present, note when they went (the sweep takes them
# offline after the grace). A socket admitted that never joined leaves no trace.
_DISCONNECT = """
redis.call('ZREM', KEYS[1], ARGV[1])
if KEYS[4] then
  redis.call('HDEL', KEYS[4], ARGV[2] .. ':' .. ARGV[1])
end
if redis.call('ZCARD', KEYS[1]) == 0 and redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then
  redis.call('HSETNX', KEYS[3], ARGV[2], ARGV[3])
end
return 1
"""


class RedisPresence:
    """The same state as PresenceBook, in Redis, shared by every server process."""

    def __init__(self, client: Any, prefix: str, ttl_s: float = 30.0, grace_s: float = 30.0):
        self.redis = client
        self.keys = Keys(prefix)
        self.ttl_s = ttl_s
        self.grace_s = grace_s
        self._sweep_user = client.register_script(_SWEEP_USER)
        self._connect = client.register_script(_CONNECT)
        self._admit = client.register_script(_ADMIT)
        self._disconnect = client.register_script(_DISCONNECT)

    def _conns(self, user: int) -> str:
        return self.keys.presence_conns(user)

    @property
    def _present(self) -> str:
        return self.keys.presence_present

    @property
    def _gone(self) -> str:
        return self.keys.presence_gone

    def _counted(self, kind: str, user: int) -> str:
        return self._conns(user) if kind == CHAT else self.keys.counted(kind, user)

    async def admit(self, user: int, conn: str, cap: int, now: float, kind: str = CHAT) -> bool:
        return (await self.admit_many([(user, conn, kind)], cap, now))[0]

    async def admit_many(self, asks: list[Admission], cap: int, now: float) -> list[bool]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for user, conn, kind in asks:
                await self._admit(
                    keys=[self._counted(kind, user)],
                    args=[repr(now), repr(now + self.ttl_s), cap, conn],
                    client=pipe,
                )
            answers = await pipe.execute()
        return [bool(int(admitted)) for admitted in answers]

    async def keep(self, kind: str, owned: list[tuple[int, str]], now: float) -> None:
        if not owned:
            return
        by_user: dict[int, dict[str, float]] = {}
        for user, conn in owned:
            by_user.setdefault(user, {})[conn] = now + self.ttl_s
        async with self.redis.pipeline(transaction=False) as pipe:
            for user, conns in by_user.items():
                pipe.zadd(self._counted(kind, user), conns)
            await pipe.execute()

    async def forget(self, kind: str, user: int, conn: str) -> None:
        await self.redis.zrem(self._counted(kind, user), conn)

    async def connect(self, user: int, conn: str, now: float) -> list[Transition]:
        return (await self.connect_many([(user, conn)], now))[0]

    async def connect_many(
        self, conns: list[tuple[int, str]], now: float
    ) -> list[list[Transition]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for user, conn in conns:
                await self._connect(
                    keys=[self._conns(user), self._present, self._gone],
                    args=[conn, now + self.ttl_s, user],
                    client=pipe,
                )
            added = await pipe.execute()
        return [
            [(user, "online", now)] if int(flag) else []
            for (user, _), flag in zip(conns, added, strict=True)
        ]

    async def refresh(self, owned: list[tuple[int, str]], now: float) -> None:
        if not owned:
            return
        # Not only an update: a Redis that restarted and lost every key gets the live
        # connections (and so their users' presence) back at the next refresh. One command
        # per user (their tabs together), and one for all users' presence.
        expiry = now + self.ttl_s
        by_user: dict[int, dict[str, float]] = {}
        for user, conn in owned:
            by_user.setdefault(user, {})[conn] = expiry
        async with self.redis.pipeline(transaction=False) as pipe:
            for user, conns in by_user.items():
                pipe.zadd(self._conns(user), conns)
            pipe.sadd(self._present, *by_user)
            pipe.hdel(self._gone, *by_user)
            await pipe.execute()

    async def disconnect(self, user: int, conn: str, now: float) -> None:
        await self.disconnect_many([(user, conn, None)], now)

    async def disconnect_many(self, gone: list[Departure], now: float) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for user, conn, focus in gone:
                pipe.hdel(self.keys.hidden(user), conn)
                keys = [self._conns(user), self._present, self._gone]
                if focus is not None:
                    keys.append(self._focus(focus))
                await self._disconnect(keys=keys, args=[conn, user, now], client=pipe)
            await pipe.execute()

    async def sweep(self, now: float) -> list[Transition]:
        transitions: list[Transition] = []
        for raw in sorted(await self.redis.smembers(self._present)):
            user = int(raw)
            gone = await self._sweep_user(
                keys=[self._conns(user), self._present, self._gone],
                args=[now, self.grace_s, user],
            )
            if gone is not None:
                transitions.append((user, "offline", float(gone)))
        return transitions

    async def online(self, users: list[int]) -> set[int]:
        if not users:
            return set()
        flags = await self.redis.smismember(self._present, users)
        return {u for u, flag in zip(users, flags, strict=True) if flag}

    def _focus(self, room: int) -> str:
        return self.keys.focus(room)

    async def set_hidden(self, user: int, conn: str, hidden: bool) -> None:
        key = self.keys.hidden(user)
        async with self.redis.pipeline(transaction=False) as pipe:
            if hidden:
                pipe.hset(key, conn, 1)
                pipe.expire(key, HIDDEN_KEEP_S)  # entries of a process that died go in time
            else:
                pipe.hdel(key, conn)
            await pipe.execute()

    async def all_hidden(self, user: int, now: float) -> bool | None:
        """Whether every live chat socket of the user (on any process) is in a hidden tab;
        None with none. One round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(self._conns(user), f"({now}", "+inf")
            pipe.hkeys(self.keys.hidden(user))
            live, hidden = await pipe.execute()
        return hidden_of(live, hidden)

    async def set_focus(self, user: int, conn: str, old: int | None, new: int | None) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            if old is not None:
                pipe.hdel(self._focus(old), f"{user}:{conn}")
            if new is not None:
                pipe.hset(self._focus(new), f"{user}:{conn}", 1)
            await pipe.execute()

    async def focused(self, rooms: list[int], now: float) -> dict[int, set[int]]:
        """The users with a live connection showing each of `rooms`: two round trips. An
        entry whose connection expired (its process died) is ignored and removed."""
        if not rooms:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.hkeys(self._focus(room))
            keyed = await pipe.execute()
        entries = []
        for room, fields in zip(rooms, keyed, strict=True):
            for raw in fields:
                user, _, conn = (raw.decode() if isinstance(raw, bytes) else raw).partition(":")
                entries.append((room, int(user), conn))
        if not entries:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for _, user, conn in entries:
                pipe.zscore(self._conns(user), conn)
            scores = await pipe.execute()
        found: dict[int, set[int]] = {}
        dead = []
        for (room, user, conn), score in zip(entries, scores, strict=True):
            if score is not None and float(score) > now:
                found.setdefault(room, set()).add(user)
            else:
                dead.append((room, f"{user}:{conn}"))
        if dead:
            async with self.redis.pipeline(transaction=False) as pipe:
                for room, key in dead:
                    pipe.hdel(self._focus(room), key)
                await pipe.execute()
        return found
