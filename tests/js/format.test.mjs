// format.js: the text the room list, the header, the bubbles and the bell show.
import assert from "node:assert/strict";
import { test } from "node:test";

import { random } from "./random.mjs";

import {
  bellCount,
  bellLabel,
  byActivity,
  dayKey,
  dayLabel,
  initial,
  messageItems,
  noteTitle,
  otherMember,
  recentNotes,
  roomPreview,
  roomStatus,
  stateText,
  tickTitle,
  typingNames,
  unreadDivider,
  timeline,
} from "../../linkup/static/linkup/format.js";

const ME = { id: 1, username: "alice" };
const BOB = { id: 2, username: "bob" };
const CAROL = { id: 3, username: "carol" };
const direct = { id: 10, kind: "direct", members: [ME, BOB], typing: new Map() };
const group = { id: 11, kind: "group", name: "Team", members: [ME, BOB, CAROL], typing: new Map() };

test("stateText words the connection states and passes an unknown one through", () => {
  assert.equal(stateText("online"), "Online");
  assert.equal(stateText("fallback"), "No live connection: using HTTP");
  assert.equal(stateText("offline"), "Offline: messages will be sent later");
  assert.equal(stateText("weird"), "weird");
});

test("initial is the first letter, upper-cased", () => {
  assert.equal(initial("bob"), "B");
  assert.equal(initial("élan"), "É");
  assert.equal(initial(""), "");
});

test("byActivity puts the most recent first and rooms without activity last", () => {
  const rooms = [
    { id: 1, last_activity_at: "2026-03-10T10:00:00Z" },
    { id: 2 },
    { id: 3, last_activity_at: "2026-03-11T09:00:00Z" },
  ];
  assert.deepEqual(byActivity(rooms).map((r) => r.id), [3, 1, 2]);
  const held = new Map(rooms.map((r) => [r.id, r]));
  assert.deepEqual(byActivity(held.values()).map((r) => r.id), [3, 1, 2]);
  assert.deepEqual(rooms.map((r) => r.id), [1, 2, 3], "the input is not reordered");
});

test("otherMember is the other one of a direct room, as people knows them", () => {
  const people = new Map([[2, { ...BOB, status: "online" }]]);
  assert.deepEqual(otherMember(direct, people, ME.id), { ...BOB, status: "online" });
  assert.deepEqual(otherMember(direct, new Map(), ME.id), BOB);
  assert.equal(otherMember(group, people, ME.id), null);
  assert.equal(otherMember({ kind: "direct", members: [ME] }, people, ME.id), null);
});

test("typingNames names who types, 'Someone' when unknown", () => {
  const people = new Map([[2, BOB]]);
  const room = { typing: new Map([[2, 0], [9, 0]]) };
  assert.deepEqual(typingNames(room, people), ["bob", "Someone"]);
});

test("roomPreview: typing first, then my draft, then my queued message, then the last message", () => {
  const none = { typing: [], queued: [], meId: ME.id };
  const last = { seq: 4, body: "hello\nsecond line", sender: BOB };
  assert.deepEqual(
    roomPreview({ ...direct, last_message: last }, { typing: ["bob"], queued: [], meId: ME.id }),
    { text: "typing…", typing: true, draft: false },
  );
  assert.deepEqual(
    roomPreview({ ...group, last_message: last }, { ...none, typing: ["bob", "carol"] }),
    { text: "bob and carol are typing…", typing: true, draft: false },
  );
  assert.deepEqual(
    roomPreview({ ...direct, last_message: last }, { typing: [], queued: [], meId: ME.id }),
    { text: "hello", typing: false, draft: false },
  );
  assert.deepEqual(
    roomPreview({ ...group, last_message: last }, { typing: [], queued: [], meId: ME.id }),
    { text: "bob: hello", typing: false, draft: false },
  );
  assert.deepEqual(
    roomPreview({ ...group, last_message: { body: "mine", sender: ME } }, none),
    { text: "You: mine", typing: false, draft: false },
  );
  const queued = [{ body: "first" }, { body: "queued\nmore" }];
  assert.deepEqual(
    roomPreview({ ...group, last_message: last }, { typing: [], queued, meId: ME.id }),
    { text: "You: queued", typing: false, draft: false },
  );
  assert.deepEqual(roomPreview(direct, { typing: [], queued: [], meId: ME.id }), {
    text: "",
    typing: false,
    draft: false,
  });
  // A draft comes after typing and before anything sent or queued.
  assert.deepEqual(
    roomPreview({ ...group, last_message: last }, { typing: [], queued, meId: ME.id, draft: "  plan\nb " }),
    { text: "plan", typing: false, draft: true },
  );
  assert.deepEqual(
    roomPreview({ ...direct, last_message: last }, { typing: ["bob"], queued, meId: ME.id, draft: "plan" }),
    { text: "typing…", typing: true, draft: false },
  );
  assert.deepEqual(
    roomPreview({ ...direct, last_message: last }, { typing: [], queued: [], meId: ME.id, draft: " \n " }),
    { text: "hello", typing: false, draft: false },
  );
});

test("roomStatus: typing, the other's presence, or the group's members", () => {
  assert.equal(roomStatus(direct, { typing: ["bob"], other: null, meId: ME.id }), "typing…");
  assert.equal(roomStatus(group, { typing: ["bob"], other: null, meId: ME.id }), "bob is typing…");
  assert.equal(
    roomStatus(direct, { typing: [], other: { ...BOB, status: "online" }, meId: ME.id }),
    "online",
  );
  assert.equal(roomStatus(direct, { typing: [], other: null, meId: ME.id }), "");
  assert.equal(roomStatus(group, { typing: [], other: null, meId: ME.id }), "You, bob, carol");
});

test("messageItems adds my queued messages not held yet, after the held ones", () => {
  const confirmed = [
    { seq: 1, client_id: "a", sender: BOB, body: "hi" },
    { seq: 2, client_id: "b", sender: ME, body: "yo" },
  ];
  const queued = [
    { client_id: "b", body: "yo", queued_at: 0, state: "pending" }, // acked meanwhile
    { client_id: "c", body: "later", queued_at: Date.UTC(2026, 2, 10), state: "pending" },
    { client_id: "d", body: "no", queued_at: 0, state: "failed", error: "too long" },
    { client_id: "a", body: "same id as bob's", queued_at: 0, state: "pending" },
  ];
  const items = messageItems(confirmed, queued, ME);
  assert.deepEqual(items.map((m) => m.client_id), ["a", "b", "c", "d", "a"]);
  assert.deepEqual(items[2], {
    client_id: "c",
    body: "later",
    sender: { id: 1, username: "alice" },
    created_at: "2026-03-10T00:00:00.000Z",
    seq: null,
    reply_to: null,
    reactions: [],
    files: [],
    uploaded: true,
    failed: false,
    error: undefined,
  });
  assert.equal(items[3].failed, true);
  assert.equal(items[3].error, "too long");
  assert.deepEqual(messageItems([], [], ME), []);
});

test("messageItems shows my queued changes on the held messages, and a queued reply's quote", () => {
  const confirmed = [
    { seq: 1, client_id: "a", sender: BOB, body: "hi", reactions: [] },
    { seq: 2, client_id: "b", sender: ME, body: "tpyo", reactions: [] },
  ];
  const quote = { seq: 1, sender: BOB, preview: "hi" };
  const queued = [
    { client_id: "e1", kind: "edit", room: 5, seq: 2, body: "typo", queued_at: 1, state: "pending" },
    { client_id: "r1", kind: "reaction", room: 5, seq: 1, emoji: "👍", react: "add", queued_at: 2, state: "pending" },
    { client_id: "s1", body: "indeed", reply_to: 1, quote, queued_at: 3, state: "pending" },
  ];
  const items = messageItems(confirmed, queued, ME);
  assert.deepEqual(items.map((m) => m.client_id), ["a", "b", "s1"]);
  assert.deepEqual(items[0].reactions, [{ emoji: "👍", count: 1, me: true }]);
  assert.equal(items[0].pending, true);
  assert.equal(items[1].body, "typo");
  assert.ok(items[1].edited_at);
  assert.deepEqual(items[2].reply_to, quote);
  // The held objects themselves are left as the server sent them.
  assert.equal(confirmed[1].body, "tpyo");
  assert.deepEqual(confirmed[0].reactions, []);
  // A change is never a bubble of its own, nor the room list's preview.
  assert.equal(
    roomPreview({ kind: "direct", last_message: confirmed[1] }, { typing: [], queued, meId: ME.id }).text,
    "You: indeed",
  );
  assert.equal(
    roomPreview({ kind: "direct", last_message: confirmed[1] }, { typing: [], queued: queued.slice(0, 2), meId: ME.id }).text,
    "You: tpyo",
  );
});

test("tickTitle says why a message failed, else the status", () => {
  assert.equal(tickTitle("failed", "too long"), "Not sent: too long");
  assert.equal(tickTitle("failed", undefined), "Not sent");
  assert.equal(tickTitle("read", "ignored"), "Read");
  assert.equal(tickTitle("pending"), "Sending");
});

test("the bell's count and label", () => {
  assert.equal(bellCount(0), "0");
  assert.equal(bellCount(7), "7");
  assert.equal(bellCount(99), "99");
  assert.equal(bellCount(100), "99+");
  assert.equal(bellLabel(0), "Notifications");
  assert.equal(bellLabel(3), "Notifications, 3 unread");
});

test("recentNotes lists the newest 50, highest id first", () => {
  const notes = new Map();
  for (let id = 1; id <= 60; id++) notes.set(id, { id });
  const recent = recentNotes(notes);
  assert.equal(recent.length, 50);
  assert.equal(recent[0].id, 60);
  assert.equal(recent[49].id, 11);
  assert.deepEqual(recentNotes(new Map([[2, { id: 2 }], [9, { id: 9 }]])).map((n) => n.id), [9, 2]);
});

test("dayLabel: Today, Yesterday, the weekday within a week, else the date", () => {
  const now = new Date(2026, 11, 7, 9, 30); // a Monday morning
  const at = (y, m, d, h = 12) => new Date(y, m, d, h).toISOString();
  assert.equal(dayLabel(at(2026, 11, 7, 0), now, "en-GB"), "Today");
  assert.equal(dayLabel(at(2026, 11, 6, 23), now, "en-GB"), "Yesterday");
  assert.equal(dayLabel(at(2026, 11, 6), now, "es", { yesterday: "Ayer" }), "Ayer");
  assert.equal(dayLabel(at(2026, 11, 2), now, "en-GB"), "Wednesday");
  assert.equal(dayLabel(at(2026, 10, 30), now, "en-GB"), "30 November");
  assert.equal(dayLabel(at(2025, 11, 31), now, "en-GB"), "31 December 2025");
});

test("timeline: a separator at each new day, the divider before its message, nothing lost", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const next = random(seed);
    let t = new Date(2026, 0, 1).getTime();
    const messages = Array.from({ length: Math.floor(next() * 30) }, (_, i) => {
      t += Math.floor(next() * 40) * 3_600_000; // 0 to 39 hours later
      return { seq: i + 1, created_at: new Date(t).toISOString(), sender: { id: 1 } };
    });
    const divider = messages.length && next() < 0.7 ? 1 + Math.floor(next() * messages.length) : null;
    const rows = timeline(messages, divider);
    assert.deepEqual(rows.filter((r) => r.kind === "message").map((r) => r.message), messages);
    const days = rows.filter((r) => r.kind === "day").map((r) => r.key);
    assert.equal(new Set(days).size, days.length, `seed ${seed}: a day twice`);
    assert.equal(days.length, new Set(messages.map((m) => dayKey(m.created_at))).size);
    rows.forEach((row, i) => {
      if (row.kind !== "message") return;
      // Each message sits under the separator of its own day.
      const above = rows.slice(0, i).reverse().find((r) => r.kind === "day");
      assert.equal(above.key, `day:${dayKey(row.message.created_at)}`, `seed ${seed}`);
    });
    const at = rows.findIndex((r) => r.kind === "divider");
    if (divider == null) assert.equal(at, -1);
    else assert.equal(rows[at + 1].message.seq, divider, `seed ${seed}`);
  }
});

test("unreadDivider: my first unread message from someone else, and how many", () => {
  const msgs = [
    { seq: 3, sender: { id: 2 } }, { seq: 4, sender: { id: 1 } }, { seq: 5, sender: { id: 2 } },
    { seq: 6, sender: { id: 2 } }, { seq: null, sender: { id: 1 } },
  ];
  assert.deepEqual(unreadDivider(msgs, 3, 1), { seq: 5, count: 2 });
  assert.deepEqual(unreadDivider(msgs, 2, 1), { seq: 3, count: 3 });
  assert.equal(unreadDivider(msgs, 6, 1), null);
});

test("roomPreview shows a formatted message as it reads, markers gone", () => {
  const last = { seq: 9, body: "*big* news: `v2` is _out_", sender: BOB };
  assert.equal(
    roomPreview({ ...direct, last_message: last }, { typing: [], queued: [], meId: ME.id }).text,
    "big news: v2 is out",
  );
});

test("a notification's title is made again from what it carries, else the server's", () => {
  const people = new Map([[7, { id: 7, username: "ana", display_name: "Ana Pérez" }]]);
  const groups = (id) => (id === 3 ? "Walks" : null);
  const sender = { id: 7, username: "ana" };
  const note = (kind, data, title = "server title") => ({ kind, data, title });
  assert.equal(noteTitle(note("message", { room: 1, sender }), people, groups), "Ana Pérez");
  assert.equal(
    noteTitle(note("mention", { room: 3, sender }), people, groups),
    "Ana Pérez mentioned you in Walks",
  );
  assert.equal(
    noteTitle(note("invited", { room: 9, room_name: "Books", by: sender }), people, groups),
    "Ana Pérez invited you to Books",
  );
  assert.equal(
    noteTitle(note("added", { room: 3, by: { id: 8, username: "ben" } }), people, groups),
    "ben added you to Walks",
  );
  // A group the page cannot name, or nobody to name: the server's words.
  assert.equal(noteTitle(note("mention", { room: 4, sender }), people, groups), "server title");
  assert.equal(noteTitle(note("added", {}), people, groups), "server title");
});

