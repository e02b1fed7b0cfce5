// changes.js: the frames and REST calls of a queued change, the optimistic view of my queued
// changes (checked against a model of the server's rules over many random runs), the menu's
// rules, quotes that follow their original, and who reacted.
import assert from "node:assert/strict";
import { test } from "node:test";

import { random } from "./random.mjs";

import {
  changeFrame,
  changeRequest,
  isSend,
  menuActions,
  QUICK_EMOJI,
  quoteOf,
  reactorsText,
  refreshQuotes,
  roleIn,
  toggledState,
  withPending,
} from "../../linkup/static/linkup/changes.js";
import { applyAck, applyUpdate, mergeRoom } from "../../linkup/static/linkup/merge.js";
import { Segment } from "../../linkup/static/linkup/model.js";

const ME = { id: 1, username: "alice" };
const BOB = { id: 2, username: "bob" };

test("a queued change is the contract's frame, or its REST call without a socket", () => {
  const base = { client_id: "c1", room: 7, seq: 3, queued_at: 0 };
  const edit = { ...base, kind: "edit", body: "fixed" };
  const mine = { ...base, kind: "delete", scope: "me" };
  const add = { ...base, kind: "reaction", emoji: "❤️", react: "add" };
  const remove = { ...add, react: "remove" };
  assert.deepEqual(changeFrame(edit), {
    type: "message.edit", room: 7, seq: 3, client_id: "c1", body: "fixed",
  });
  assert.deepEqual(changeFrame(mine), {
    type: "message.delete", room: 7, seq: 3, client_id: "c1", scope: "me",
  });
  assert.deepEqual(changeFrame(add), {
    type: "reaction", room: 7, seq: 3, client_id: "c1", emoji: "❤️", state: "add",
  });
  assert.deepEqual(changeRequest(edit), {
    method: "PATCH", path: "/rooms/7/messages/3", body: { body: "fixed", client_id: "c1" },
  });
  assert.deepEqual(changeRequest(mine), { method: "DELETE", path: "/rooms/7/messages/3?scope=me" });
  const heart = encodeURIComponent("❤️");
  assert.deepEqual(changeRequest(add), { method: "PUT", path: `/rooms/7/messages/3/reactions/${heart}` });
  assert.deepEqual(changeRequest(remove), {
    method: "DELETE", path: `/rooms/7/messages/3/reactions/${heart}`,
  });
  assert.throws(() => changeFrame({ ...base, kind: "send" }));
  assert.equal(isSend({ client_id: "x", body: "hi" }), true);
  assert.equal(isSend(edit), false);
});

// -- the optimistic view against a model of the server ---------------------------------------


/** What the server makes of my change (its rules, written independently of changes.js). */
function serverApplies(message, item) {
  if (message.deleted === "me") return message;
  if (item.kind === "delete") {
    const deleted = item.scope === "me" ? "me" : "everyone";
    return { ...message, body: "", deleted, reactions: [], reply_to: null, edited_at: null };
  }
  if (message.deleted) return message; // forbidden: nothing changes
  if (item.kind === "edit") return { ...message, body: item.body, edited_at: "later" };
  const counts = new Map(message.reactions.map((r) => [r.emoji, { ...r }]));
  const chip = counts.get(item.emoji);
  if (item.react === "add" && !(chip && chip.me)) {
    counts.set(item.emoji, { emoji: item.emoji, count: (chip ? chip.count : 0) + 1, me: true });
  } else if (item.react === "remove" && chip && chip.me) {
    if (chip.count === 1) counts.delete(item.emoji);
    else counts.set(item.emoji, { ...chip, count: chip.count - 1, me: false });
  }
  return { ...message, reactions: [...counts.values()] };
}

const visible = (m) => ({
  body: m.body,
  deleted: m.deleted || null,
  edited: Boolean(m.edited_at),
  reactions: [...m.reactions].sort((a, b) => a.emoji.localeCompare(b.emoji)),
});

test("the optimistic view of queued changes is what the server makes of them (300 runs)", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const next = random(seed);
    const pick = (list) => list[Math.floor(next() * list.length)];
    const emoji = QUICK_EMOJI.slice(0, 3);
    // Someone's message with others' reactions on it, some of which may be mine too.
    const reactions = emoji
      .filter(() => next() < 0.5)
      .map((e) => ({ emoji: e, count: 1 + Math.floor(next() * 3), me: false }))
      .map((r) => (next() < 0.5 ? { ...r, me: true } : r));
    const message = {
      seq: 4, sender: pick([ME, BOB]), body: "first", deleted: null, edited_at: null,
      reactions, reply_to: { seq: 1, sender: BOB, preview: "x" },
    };
    const items = [];
    for (let n = Math.floor(next() * 8); n > 0; n--) {
      const kind = pick(["edit", "reaction", "reaction", "reaction", "delete"]);
      const item = { client_id: `c${n}`, room: 7, seq: 4, queued_at: 1000 + n, kind };
      if (kind === "edit") item.body = pick(["one", "two", "three"]);
      if (kind === "reaction") Object.assign(item, { emoji: pick(emoji), react: pick(["add", "remove"]) });
      if (kind === "delete") item.scope = next() < 0.3 ? "everyone" : "me";
      items.push(item);
    }
    const expected = items.reduce(serverApplies, message);
    const shown = withPending(message, items);
    assert.deepEqual(visible(shown), visible(expected), `seed ${seed}: ${JSON.stringify(items)}`);
    assert.equal(shown.pending === true, items.length > 0, `seed ${seed}`);
    assert.equal(message.body, "first"); // the held object is never changed in place
  }
});

test("toggledState removes my reaction and adds any other", () => {
  const message = { reactions: [{ emoji: "👍", count: 2, me: true }, { emoji: "😂", count: 1, me: false }] };
  assert.equal(toggledState(message, "👍"), "remove");
  assert.equal(toggledState(message, "😂"), "add");
  assert.equal(toggledState(message, "🙏"), "add");
  assert.equal(toggledState({}, "🙏"), "add");
});

// -- the menu ---------------------------------------------------------------------------------

test("the menu offers edit and delete for everyone only where the server would allow them", () => {
  const now = Date.UTC(2026, 11, 7, 12, 0, 0);
  const at = (secondsAgo) => new Date(now - secondsAgo * 1000).toISOString();
  const rules = { meId: ME.id, role: "member", now, editWindowS: 900, deleteWindowS: 172800 };
  const mine = { seq: 5, sender: ME, created_at: at(60) };
  assert.deepEqual(menuActions(mine, rules), [
    "reply", "react", "edit", "delete-me", "delete-everyone", "info",
  ]);
  assert.deepEqual(menuActions({ ...mine, created_at: at(901) }, rules), [
    "reply", "react", "delete-me", "delete-everyone", "info",
  ]);
  assert.deepEqual(menuActions({ ...mine, created_at: at(172801) }, rules), [
    "reply", "react", "delete-me", "info",
  ]);
  const theirs = { seq: 6, sender: BOB, created_at: at(10) };
  assert.deepEqual(menuActions(theirs, rules), ["reply", "react", "delete-me", "report"]);
  for (const role of ["owner", "admin"]) {
    assert.deepEqual(menuActions(theirs, { ...rules, role }), [
      "reply", "react", "delete-me", "delete-everyone", "report",
    ]);
  }
  // Not sent yet, deleted for me, deleted for everyone.
  assert.deepEqual(menuActions({ ...mine, seq: null }, rules), []);
  assert.deepEqual(menuActions({ ...mine, deleted: "me" }, rules), []);
  assert.deepEqual(menuActions({ ...theirs, deleted: "everyone" }, rules), ["delete-me"]);
});

test("roleIn reads my role from the room's members", () => {
  const room = { members: [{ id: 1, role: "admin" }, { id: 2, role: "owner" }] };
  assert.equal(roleIn(room, 1), "admin");
  assert.equal(roleIn(room, 2), "owner");
  assert.equal(roleIn(room, 3), "member");
  assert.equal(roleIn({}, 1), "member");
});

// -- quotes -----------------------------------------------------------------------------------

test("a quote is the original's first 100 code points, and empty once it is deleted", () => {
  const long = "😀".repeat(150);
  const quote = quoteOf({ seq: 3, sender: { ...BOB, extra: 1 }, body: long });
  assert.deepEqual(quote, { seq: 3, sender: BOB, preview: "😀".repeat(100), deleted: false });
  assert.equal(quoteOf({ seq: 3, sender: BOB, body: "", deleted: "everyone" }).preview, "");
});

test("replies held follow their original's edits and deletes; acks move no change cursor", () => {
  const rooms = new Map();
  const room = mergeRoom(rooms, { id: 7, last_seq: 0, last_change: 2, members: [] }, ME.id);
  const original = { seq: 1, room: 7, sender: BOB, body: "meet at 5", change: 0, reactions: [] };
  const reply = (seq) => ({
    seq, room: 7, sender: ME, body: "ok", change: 0, reactions: [],
    reply_to: { seq: 1, sender: BOB, preview: "meet at 5" },
  });
  room.seg.append([original, reply(2), { ...reply(3), reply_to: null }, reply(4)]);
  room.last_message = original;
  const edited = { ...original, body: "meet at 6", change: 3 };
  assert.equal(applyUpdate(room, { change: 3, message: edited }), true);
  assert.equal(room.last_message.body, "meet at 6"); // the room list's line follows too
  assert.deepEqual([2, 4].map((s) => room.seg.bySeq.get(s).reply_to.preview), ["meet at 6", "meet at 6"]);
  assert.equal(room.seg.bySeq.get(3).reply_to, null);
  // A stale copy of the original (an older change) leaves the quotes alone.
  applyUpdate(room, { change: 2, message: { ...original, body: "stale", change: 2 } });
  assert.equal(room.seg.bySeq.get(2).reply_to.preview, "meet at 6");
  // My own delete's ack: the quotes empty, the change line is not moved by an ack.
  const gone = { ...original, body: "", deleted: "everyone", change: 4 };
  assert.equal(applyAck(room, gone), true);
  assert.equal(room.seg.bySeq.get(4).reply_to.preview, "");
  assert.equal(room.changeSeen, 3);
  // Nothing to refresh: refreshQuotes says so.
  assert.deepEqual(refreshQuotes(room.seg, gone), []);
  // An original not held (older than the run) still updates the replies that are.
  const seg = new Segment();
  seg.append([reply(10)]);
  assert.equal(refreshQuotes(seg, { ...original, body: "new" }).length, 1);
  assert.equal(seg.bySeq.get(10).reply_to.preview, "new");
});

test("who reacted reads as a short list, me as You", () => {
  const users = [ME, BOB, { id: 3, username: "carol" }, { id: 4, username: "dan" }, { id: 5, username: "eve" }];
  assert.equal(reactorsText(users.slice(1, 2), ME.id), "bob");
  assert.equal(reactorsText(users.slice(0, 2), ME.id), "You and bob");
  assert.equal(reactorsText(users.slice(0, 3), ME.id), "You, bob and carol");
  assert.equal(reactorsText(users.slice(0, 4), ME.id), "You, bob, carol and 1 other");
  assert.equal(reactorsText(users, ME.id), "You, bob, carol and 2 others");
  assert.equal(reactorsText([], ME.id), "");
});
