// model.js: ticks, the Segment held per room, and the small formatting and backoff rules.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  backoffDelay,
  httpSendOutcome,
  newClientId,
  presenceText,
  retryAfterMs,
  roomName,
  Segment,
  shortTime,
  shownBody,
  socketSendOutcome,
  TICK_LABELS,
  TICKS,
  tickStatus,
  typingText,
  vapidKey,
} from "../../linkup/static/linkup/model.js";

const msg = (seq, extra = {}) => ({ seq, body: `m${seq}`, ...extra });
const seqs = (seg) => seg.list().map((m) => m.seq);

test("tickStatus follows the watermark, failure and a missing seq first", () => {
  const wm = { delivered_seq: 5, read_seq: 3 };
  assert.equal(tickStatus({ seq: 3 }, wm), "read");
  assert.equal(tickStatus({ seq: 4 }, wm), "delivered");
  assert.equal(tickStatus({ seq: 5 }, wm), "delivered");
  assert.equal(tickStatus({ seq: 6 }, wm), "sent");
  assert.equal(tickStatus({ seq: 1 }, null), "sent");
  assert.equal(tickStatus({ seq: null }, wm), "pending");
  assert.equal(tickStatus({ seq: 1, failed: true }, wm), "failed");
  for (const status of ["pending", "sent", "delivered", "read", "failed"]) {
    assert.equal(typeof TICKS[status], "string");
    assert.equal(typeof TICK_LABELS[status], "string");
  }
});

test("Segment.append keeps one contiguous run in seq order, never a duplicate", () => {
  const seg = new Segment();
  assert.deepEqual(seg.list(), []);
  let r = seg.append([msg(3), msg(1), msg(2)]);
  assert.deepEqual(r.added.map((m) => m.seq), [1, 2, 3]);
  assert.equal(r.reset, false);
  assert.deepEqual(seqs(seg), [1, 2, 3]);
  r = seg.append([msg(2), msg(3), msg(4)]);
  assert.deepEqual(r.added.map((m) => m.seq), [4], "held ones are not added again");
  assert.equal(seg.size, 4);
  assert.equal(seg.lo, 1);
  assert.equal(seg.hi, 4);
  assert.ok(seg.has(4));
  assert.ok(!seg.has(5));
});

test("Segment.append past a gap starts a new run (reset)", () => {
  const seg = new Segment();
  seg.append([msg(1), msg(2)]);
  const r = seg.append([msg(5)]);
  assert.equal(r.reset, true);
  assert.deepEqual(seqs(seg), [5]);
  assert.equal(seg.lo, 5);
  assert.ok(!seg.has(1));
});

test("Segment.append ignores what is older than the run (prepend takes those)", () => {
  const seg = new Segment();
  seg.append([msg(10)]);
  const r = seg.append([msg(8)]);
  assert.deepEqual(r.added, []);
  assert.deepEqual(seqs(seg), [10]);
});

test("Segment.prepend keeps only what joins on downwards", () => {
  const seg = new Segment();
  seg.append([msg(10), msg(11)]);
  assert.equal(seg.prepend([msg(7), msg(9), msg(8)]), 3);
  assert.deepEqual(seqs(seg), [7, 8, 9, 10, 11]);
  assert.equal(seg.prepend([msg(5), msg(4)]), 0, "6 is missing: 5 and 4 do not join");
  assert.deepEqual(seqs(seg), [7, 8, 9, 10, 11]);
  const empty = new Segment();
  assert.equal(empty.prepend([msg(2), msg(3)]), 2);
  assert.deepEqual(seqs(empty), [2, 3]);
});

test("typingText names one or two, counts more", () => {
  assert.equal(typingText([]), "");
  assert.equal(typingText(["Bob"]), "Bob is typing…");
  assert.equal(typingText(["Bob", "Carol"]), "Bob and Carol are typing…");
  assert.equal(typingText(["a", "b", "c"]), "3 people are typing…");
});

test("backoffDelay doubles from the first delay, is capped, and is jittered", () => {
  assert.equal(backoffDelay(0, () => 0.5), 2000);
  assert.equal(backoffDelay(1, () => 0.5), 4000);
  assert.equal(backoffDelay(2, () => 0.5), 8000);
  assert.equal(backoffDelay(10, () => 0.5), 30000);
  assert.equal(backoffDelay(0, () => 0), 1000);
  assert.equal(backoffDelay(0, () => 0.999), 2998);
  assert.equal(backoffDelay(1, () => 0.5, 500, 1500), 1000);
  assert.equal(backoffDelay(3, () => 0.5, 500, 1500), 1500);
});

test("retryAfterMs rounds to milliseconds and defaults to one second", () => {
  assert.equal(retryAfterMs(3), 3000);
  assert.equal(retryAfterMs(0.25), 250);
  assert.equal(retryAfterMs(undefined), 1000);
  assert.equal(retryAfterMs(null), 1000);
  assert.equal(retryAfterMs(0), 1000);
});

test("socketSendOutcome: wait when told to, fail on a refusal, stop otherwise", () => {
  assert.equal(socketSendOutcome({ code: "rate_limited", retry_after_s: 2 }), 2000);
  assert.equal(socketSendOutcome({ code: "unavailable" }), 1000);
  assert.equal(socketSendOutcome({ code: "forbidden", detail: "no" }), "failed");
  assert.equal(socketSendOutcome(null), "stop");
  assert.equal(socketSendOutcome({}), "stop");
});

test("httpSendOutcome: 429/503 wait, other 5xx stop, 4xx fail", () => {
  assert.equal(httpSendOutcome(429, 5), 5000);
  assert.equal(httpSendOutcome(503, null), 1000);
  assert.equal(httpSendOutcome(500, 9), "stop");
  assert.equal(httpSendOutcome(502, null), "stop");
  assert.equal(httpSendOutcome(400, null), "failed");
  assert.equal(httpSendOutcome(403, 3), "failed");
});

test("shortTime shows the time today, a date otherwise, nothing for no time", () => {
  const now = new Date(2026, 2, 10, 15, 0);
  const today = new Date(2026, 2, 10, 14, 5);
  const before = new Date(2026, 1, 20, 9, 30);
  assert.equal(shortTime(null, now), "");
  const hhmm = today.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  assert.equal(shortTime(today.toISOString(), now), hhmm);
  assert.match(hhmm, /05/);
  const date = before.toLocaleDateString([], { day: "numeric", month: "short" });
  assert.equal(shortTime(before.toISOString(), now), date);
  assert.notEqual(date, shortTime(today.toISOString(), now));
});

test("presenceText: online, last seen today, yesterday, or on a date", () => {
  const now = new Date(2026, 2, 10, 15, 0);
  assert.equal(presenceText(null, now), "");
  assert.equal(presenceText({ status: "online", last_seen: null }, now), "online");
  assert.equal(presenceText({ status: "offline", last_seen: null }, now), "");
  const at = (d) => d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const today = new Date(2026, 2, 10, 14, 5);
  const yesterday = new Date(2026, 2, 9, 23, 10);
  const older = new Date(2026, 2, 1, 8, 0);
  assert.equal(
    presenceText({ status: "offline", last_seen: today.toISOString() }, now),
    `last seen today at ${at(today)}`,
  );
  assert.equal(
    presenceText({ status: "offline", last_seen: yesterday.toISOString() }, now),
    `last seen yesterday at ${at(yesterday)}`,
  );
  const day = older.toLocaleDateString([], { day: "numeric", month: "short" });
  assert.equal(
    presenceText({ status: "offline", last_seen: older.toISOString() }, now),
    `last seen ${day} at ${at(older)}`,
  );
});

test("roomName: a group's name, the other member of a direct room, fallbacks", () => {
  const members = [{ id: 1, username: "alice" }, { id: 2, username: "bob" }];
  assert.equal(roomName({ kind: "group", name: "Team", members }, 1), "Team");
  assert.equal(roomName({ kind: "group", name: "" }, 1), "Group");
  assert.equal(roomName({ kind: "direct", members }, 1), "bob");
  assert.equal(roomName({ kind: "direct", members }, 2), "alice");
  assert.equal(roomName({ kind: "direct", members: [members[0]], name: "" }, 1), "Deleted user");
  assert.equal(roomName({ kind: "direct", name: "" }, 1), "Direct chat");
  assert.equal(roomName({ kind: "direct", name: "x" }, 1), "x");
});

test("newClientId makes distinct version-4 UUIDs, with or without randomUUID", () => {
  const uuid4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const a = newClientId();
  const b = newClientId();
  assert.match(a, uuid4);
  assert.notEqual(a, b);
  // The fallback for browsers without crypto.randomUUID (plain HTTP in some): shadow it.
  Object.defineProperty(crypto, "randomUUID", { value: undefined, configurable: true });
  try {
    assert.equal(crypto.randomUUID, undefined);
    const c = newClientId();
    assert.match(c, uuid4);
    assert.notEqual(c, newClientId());
  } finally {
    delete crypto.randomUUID;
  }
  assert.equal(typeof crypto.randomUUID, "function");
});

test("vapidKey decodes base64url without padding into bytes", () => {
  assert.deepEqual([...vapidKey("AQID")], [1, 2, 3]);
  assert.deepEqual([...vapidKey("-_8")], [0xfb, 0xff]);
  assert.deepEqual([...vapidKey("AQ")], [1]);
  const key = Buffer.from(Array.from({ length: 65 }, (_, i) => i * 3)).toString("base64url");
  assert.deepEqual([...vapidKey(key)], Array.from({ length: 65 }, (_, i) => (i * 3) & 0xff));
});

test("Segment.update takes a changed message only over an older or equal one", () => {
  const seg = new Segment();
  seg.append([msg(1), msg(2, { change: 3 })]);
  assert.equal(seg.update(msg(2, { body: "edited", change: 5 })), true);
  assert.equal(seg.list()[1].body, "edited");
  assert.equal(seg.update(msg(2, { body: "older", change: 4 })), false); // late, stale
  assert.equal(seg.list()[1].body, "edited");
  assert.equal(seg.update(msg(9, { change: 6 })), false); // not held: nothing
  assert.deepEqual(seqs(seg), [1, 2]);
  // Deleted for me, then a reaction's frame encoded before that with the same number.
  assert.equal(seg.update(msg(1, { body: "", deleted: "me", change: 7 })), true);
  assert.equal(seg.update(msg(1, { deleted: null, change: 7 })), false);
  assert.equal(seg.list()[0].deleted, "me");
  // An update ahead of the run waits for its message, and wins over the older copy.
  assert.equal(seg.update(msg(3, { body: "edited", change: 8 })), false);
  seg.append([msg(3, { change: 0 })]);
  assert.equal(seg.list()[2].body, "edited");
  seg.append([msg(4, { change: 0 })]); // nothing waited for it
  assert.equal(seg.list()[3].body, "m4");
});

test("shownBody says what is left of a deleted message", () => {
  assert.equal(shownBody({ body: "hi", deleted: null }), "hi");
  assert.equal(shownBody({ body: "", deleted: "everyone" }), "This message was deleted");
  assert.equal(shownBody({ body: "", deleted: "me" }), "You deleted this message");
});
