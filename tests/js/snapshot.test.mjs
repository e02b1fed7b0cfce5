// snapshot.js: what is kept for opening offline: the most recent rooms, each with its newest
// messages, as plain data that survives a structured clone, and nothing of the client's own.
import assert from "node:assert/strict";
import { test } from "node:test";

import { random } from "./random.mjs";

import { Segment } from "../../linkup/static/linkup/model.js";
import { snapshotOf } from "../../linkup/static/linkup/snapshot.js";

function room(id, activity, count) {
  const seg = new Segment();
  seg.append(Array.from({ length: count }, (_, i) => ({ seq: i + 1, body: `m${i + 1}`, sender: { id: 2 } })));
  return {
    id, kind: "direct", name: "", members: [], last_seq: count, unread_count: 1, seg,
    last_activity_at: activity, typing: new Map(), parked: new Map(), loadingOlder: false,
  };
}

test("the newest rooms, their newest messages, in order, as plain data", () => {
  for (let seed = 1; seed <= 100; seed++) {
    const next = random(seed);
    const rooms = Array.from({ length: Math.floor(next() * 30) }, (_, i) =>
      room(i + 1, new Date(Date.UTC(2026, 0, 1, 0, Math.floor(next() * 10_000))).toISOString(), Math.floor(next() * 80)),
    );
    const snap = structuredClone(snapshotOf(rooms, { at: 5, keepRooms: 20, keepMessages: 50 }));
    assert.equal(snap.rooms.length, Math.min(20, rooms.length));
    const times = snap.rooms.map((r) => r.room.last_activity_at);
    assert.deepEqual(times, [...times].sort().reverse(), `seed ${seed}`);
    const newest = [...rooms].map((r) => r.last_activity_at).sort().reverse().slice(0, 20);
    assert.deepEqual(times, newest);
    for (const { room: data, messages } of snap.rooms) {
      assert.deepEqual(Object.keys(data).sort(), ["id", "kind", "last_activity_at", "last_seq", "members", "name", "unread_count"]);
      const seqs = messages.map((m) => m.seq);
      const top = data.last_seq;
      assert.deepEqual(seqs, Array.from({ length: Math.min(50, top) }, (_, i) => top - Math.min(50, top) + i + 1));
    }
  }
});

test("a room not opened since the page loaded keeps the messages kept before", () => {
  const opened = room(1, "2026-01-02T00:00:00Z", 3);
  const unopened = room(2, "2026-01-01T00:00:00Z", 0);
  unopened.last_seq = 7;
  const previous = { rooms: [{ room: { id: 2 }, messages: [{ seq: 7, body: "old" }] }] };
  const snap = snapshotOf([opened, unopened], { previous });
  assert.deepEqual(snap.rooms.map((r) => r.messages.map((m) => m.seq)), [[1, 2, 3], [7]]);
  assert.deepEqual(snapshotOf([unopened]).rooms[0].messages, []);
});
