// merge.js: rooms and markers as the server states them, messages merged by seq, sync
// results, history bounds and the bell's count, all on plain state.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  admitMessages,
  applySyncChanges,
  applySyncMarkers,
  applyUpdate,
  changeCursors,
  countUnread,
  cursorList,
  cursors,
  firstSeq,
  historyComplete,
  maxWatermark,
  mayLoadOlder,
  mergePerson,
  mergeRoom,
  noteNewest,
  parkAhead,
  readNotes,
  unlistedRooms,
  unreadAfterLoad,
} from "../../linkup/static/linkup/merge.js";
import { Segment } from "../../linkup/static/linkup/model.js";

const ME = 1;
const BOB = 2;
const from = (sender) => (seq) => ({
  seq,
  sender: { id: sender, username: sender === ME ? "alice" : "bob" },
  client_id: `c${seq}`,
  body: `m${seq}`,
  created_at: `2026-03-10T10:00:${String(seq).padStart(2, "0")}Z`,
});
const mine = from(ME);
const bobs = from(BOB);
const seqs = (room) => room.seg.list().map((m) => m.seq);

/** A held room as mergeRoom makes it, from a server description. */
function held(data) {
  const rooms = new Map();
  return mergeRoom(rooms, { id: 7, kind: "direct", last_seq: 0, unread_count: 0, ...data }, ME);
}

test("maxWatermark takes the higher of each field; a missing one is zero", () => {
  assert.deepEqual(maxWatermark(null, undefined), { delivered_seq: 0, read_seq: 0 });
  const a = { delivered_seq: 5, read_seq: 2 };
  const b = { delivered_seq: 3, read_seq: 4 };
  assert.deepEqual(maxWatermark(a, b), { delivered_seq: 5, read_seq: 4 });
  assert.deepEqual(maxWatermark(b, a), { delivered_seq: 5, read_seq: 4 });
  assert.equal(maxWatermark(a, null), a);
  assert.equal(maxWatermark(null, b), b);
});

test("mergePerson keeps known presence unless a status is stated", () => {
  const known = { id: 2, username: "bob", status: "online", last_seen: null };
  assert.deepEqual(mergePerson(known, { id: 2, username: "bobby" }), {
    ...known,
    username: "bobby",
  });
  assert.deepEqual(mergePerson(known, { id: 2, status: null, last_seen: "x" }), known);
  assert.deepEqual(mergePerson(known, { id: 2, status: "offline", last_seen: "t" }), {
    ...known,
    status: "offline",
    last_seen: "t",
  });
  assert.deepEqual(mergePerson(known, { id: 2, username: undefined }), known);
  const carol = { id: 3, username: "carol" };
  assert.deepEqual(mergePerson(undefined, carol), carol);
});

test("mergeRoom adds a room with the client's own fields", () => {
  const rooms = new Map();
  const data = { id: 7, kind: "group", last_seq: 4, read_seq: 2, unread_count: 2 };
  const room = mergeRoom(rooms, data, ME);
  assert.equal(rooms.get(7), room);
  assert.ok(room.seg instanceof Segment);
  assert.equal(room.countedSeq, 4);
  assert.equal(room.read_seq, 2);
  assert.equal(room.delivered_seq, 0);
  assert.equal(room.unread_count, 2);
  assert.deepEqual(room.watermark, { delivered_seq: 0, read_seq: 0 });
  assert.equal(room.parked.size, 0);
  assert.equal(room.typing.size, 0);
});

test("mergeRoom never takes markers, watermark or a live last message back", () => {
  const rooms = new Map();
  const data = { id: 7, last_seq: 3, read_seq: 3, delivered_seq: 3, unread_count: 0 };
  const room = mergeRoom(rooms, data, ME);
  room.last_seq = 5; // arrived live
  room.last_message = { seq: 5 };
  room.unread_count = 2;
  room.watermark = { delivered_seq: 4, read_seq: 4 };
  const stale = {
    id: 7,
    name: "renamed",
    last_seq: 4,
    last_message: { seq: 4 },
    read_seq: 1,
    delivered_seq: 2,
    unread_count: 9,
    watermark: { delivered_seq: 2, read_seq: 1 },
  };
  assert.equal(mergeRoom(rooms, stale, ME), room);
  assert.equal(room.name, "renamed", "other fields are taken");
  assert.equal(room.last_seq, 5);
  assert.deepEqual(room.last_message, { seq: 5 });
  assert.equal(room.unread_count, 2);
  assert.equal(room.read_seq, 3);
  assert.equal(room.delivered_seq, 3);
  assert.deepEqual(room.watermark, { delivered_seq: 4, read_seq: 4 });
  assert.equal(room.countedSeq, 4);
});

test("mergeRoom recounts unread from the held run when my read is ahead of the answer", () => {
  const rooms = new Map();
  const room = mergeRoom(rooms, { id: 7, last_seq: 3, read_seq: 0, unread_count: 3 }, ME);
  room.seg.append([bobs(1), mine(2), bobs(3)]);
  room.readSent = 1; // my read of 1 is in flight
  mergeRoom(rooms, { id: 7, last_seq: 3, read_seq: 0, unread_count: 3 }, ME);
  assert.equal(room.unread_count, 1, "only bob's 3 is after my read; 2 is mine");
  // Without a run covering it, the server's count stands.
  const other = mergeRoom(rooms, { id: 8, last_seq: 9, read_seq: 0, unread_count: 6 }, ME);
  other.readSent = 2;
  mergeRoom(rooms, { id: 8, last_seq: 9, read_seq: 0, unread_count: 6 }, ME);
  assert.equal(other.unread_count, 6);
});

test("countUnread: zero when read to the end, counted when covered, null when not", () => {
  const room = held({ last_seq: 5 });
  room.read_seq = 5;
  room.readSent = 0;
  assert.equal(countUnread(room, ME), 0);
  room.read_seq = 2;
  assert.equal(countUnread(room, ME), null, "nothing held");
  room.seg.append([bobs(3), mine(4), bobs(5)]);
  assert.equal(countUnread(room, ME), 2);
  room.readSent = 3;
  assert.equal(countUnread(room, ME), 1, "a read in flight counts as read");
  room.last_seq = 6;
  assert.equal(countUnread(room, ME), null, "the run stops short of the end");
});

test("parkAhead parks what lies beyond the run + 1 and lets the rest through", () => {
  const room = held({ last_seq: 2 });
  const none = parkAhead(room, [bobs(5)]);
  assert.equal(none.parked, false, "an empty run takes anything");
  assert.deepEqual(none.fitting.map((m) => m.seq), [5]);
  room.seg.append([bobs(1), bobs(2)]);
  const r = parkAhead(room, [bobs(2), bobs(3), bobs(5), bobs(7)]);
  assert.equal(r.parked, true);
  assert.deepEqual(r.fitting.map((m) => m.seq), [2, 3]);
  assert.deepEqual([...room.parked.keys()].sort(), [5, 7]);
  const fits = parkAhead(room, [bobs(3)]);
  assert.equal(fits.parked, false);
  assert.deepEqual(fits.fitting.map((m) => m.seq), [3]);
});

test("admitMessages counts others' new messages as unread once, and moves my markers", () => {
  const room = held({ last_seq: 2, read_seq: 0, unread_count: 2 }); // 1 and 2 counted already
  const added = admitMessages(room, [bobs(1), bobs(2), bobs(3)], ME);
  assert.deepEqual(added.map((m) => m.seq), [1, 2, 3]);
  assert.equal(room.unread_count, 3, "only 3 is new to the count");
  assert.equal(room.countedSeq, 3);
  assert.deepEqual(admitMessages(room, [bobs(3)], ME), [], "held already");
  assert.equal(room.unread_count, 3);
  room.parked.set(4, mine(4));
  admitMessages(room, [mine(4)], ME);
  assert.equal(room.unread_count, 3, "my own message is never unread");
  assert.equal(room.read_seq, 4);
  assert.equal(room.delivered_seq, 4);
  assert.equal(room.parked.size, 0, "taken out of the parked ones");
  assert.deepEqual(seqs(room), [1, 2, 3, 4]);
  admitMessages(room, [bobs(5)], ME);
  assert.equal(room.unread_count, 4, "bob's 5 comes after my read of 4");
});

test("admitMessages does not count a message at or below my read marker", () => {
  const room = held({ last_seq: 0 });
  room.read_seq = 6;
  admitMessages(room, [bobs(5), bobs(6), bobs(7)], ME);
  assert.equal(room.unread_count, 1);
});

test("noteNewest makes the newest the last message, never an older one", () => {
  const room = held({ last_seq: 3, last_message: bobs(3), last_activity_at: "t3" });
  noteNewest(room, []);
  assert.equal(room.last_message.seq, 3);
  noteNewest(room, [bobs(2)]);
  assert.equal(room.last_message.seq, 3);
  assert.equal(room.last_seq, 3);
  noteNewest(room, [bobs(5), bobs(4)]);
  assert.equal(room.last_message.seq, 5);
  assert.equal(room.last_activity_at, bobs(5).created_at);
  assert.equal(room.last_seq, 5);
});

test("cursors: the end of the held run, else my delivered marker; cursorList joins them", () => {
  const rooms = new Map();
  const a = mergeRoom(rooms, { id: 1, last_seq: 9, delivered_seq: 4 }, ME);
  mergeRoom(rooms, { id: 2, last_seq: 3, delivered_seq: 3 }, ME);
  a.seg.append([bobs(6), bobs(7)]);
  const at = cursors(rooms);
  assert.deepEqual(at, { 1: 7, 2: 3 });
  assert.equal(cursorList(at), "1:7,2:3");
  assert.equal(cursorList({}), "");
});

test("unlistedRooms lists the held rooms a sync no longer names", () => {
  const rooms = new Map([
    [1, {}],
    [2, {}],
    [3, {}],
  ]);
  assert.deepEqual(unlistedRooms(rooms, [1, 3, 4]), [2]);
  assert.deepEqual(unlistedRooms(rooms, [1, 2, 3]), []);
  assert.deepEqual(unlistedRooms(new Map(), [1]), []);
});

test("applySyncMarkers takes my markers up only, the watermark and the first seq", () => {
  const room = held({ last_seq: 9, read_seq: 5, delivered_seq: 6 });
  applySyncMarkers(room, {
    markers: { [ME]: { read_seq: 3, delivered_seq: 8 }, [BOB]: { read_seq: 9, delivered_seq: 9 } },
    watermark: { delivered_seq: 4, read_seq: 2 },
    first_seq: 3,
  }, ME);
  assert.equal(room.read_seq, 5);
  assert.equal(room.delivered_seq, 8);
  assert.deepEqual(room.watermark, { delivered_seq: 4, read_seq: 2 });
  assert.equal(room.first_seq, 3);
  applySyncMarkers(room, { watermark: { delivered_seq: 1, read_seq: 1 }, first_seq: null }, ME);
  assert.equal(room.first_seq, 3, "a missing first seq keeps the known one");
  assert.deepEqual(room.watermark, { delivered_seq: 4, read_seq: 2 });
});

test("history: first seq, a complete first page, whether older may load", () => {
  const room = held({ last_seq: 60 });
  assert.equal(firstSeq(room), 1);
  assert.equal(firstSeq({ first_seq: 0 }), 1);
  assert.equal(firstSeq({ first_seq: 12 }), 12);
  assert.equal(historyComplete(room, 50), false, "nothing held");
  room.seg.append(Array.from({ length: 10 }, (_, i) => bobs(51 + i)));
  assert.equal(historyComplete(room, 50), false, "only 10 of the wanted 50");
  assert.equal(historyComplete(room, 10), true);
  room.first_seq = 51;
  assert.equal(historyComplete(room, 50), true, "all there is");
  assert.equal(mayLoadOlder(room), false, "nothing older than the first seq");
  room.first_seq = 1;
  assert.equal(mayLoadOlder(room), true);
  room.loadingOlder = true;
  assert.equal(mayLoadOlder(room), false, "one page at a time");
  assert.equal(mayLoadOlder(null), false);
  assert.equal(mayLoadOlder(held({ last_seq: 0 })), false, "an empty run");
});

test("readNotes marks known notes read and returns the ids that were unread", () => {
  const notes = new Map([
    [1, { id: 1, read: false }],
    [2, { id: 2, read: true }],
  ]);
  assert.deepEqual(readNotes(notes, [1, 2, 3]), [1, 3], "3 is not held: still fresh");
  assert.equal(notes.get(1).read, true);
  assert.deepEqual(readNotes(notes, [1, 2]), []);
});

test("unreadAfterLoad adds unread arrivals newer than the page, each once", () => {
  const page = { unread_count: 2, notifications: [{ id: 4 }, { id: 5 }] };
  const arriving = [
    { id: 5, read: false }, // on the page already
    { id: 6, read: false },
    { id: 6, read: false }, // the same twice
    { id: 7, read: true },
    { id: 8, read: false },
  ];
  assert.equal(unreadAfterLoad(page, arriving), 4);
  assert.equal(unreadAfterLoad(page, null), 2);
  const empty = { unread_count: 0, notifications: [] };
  assert.equal(unreadAfterLoad(empty, [{ id: 1, read: false }]), 1);
});

test("changes: live ones move the change cursor, sync pages them and hides mine", () => {
  const rooms = new Map();
  const room = mergeRoom(rooms, { id: 7, last_seq: 3, last_change: 4, members: [] }, ME);
  admitMessages(room, [bobs(1), bobs(2), bobs(3)], ME);
  assert.deepEqual(changeCursors(rooms), { 7: 4 });
  // A live edit of seq 2 (change 5), then a late copy of an older state: the newer stays.
  assert.equal(applyUpdate(room, { change: 5, message: { ...bobs(2), body: "edited", change: 5 } }), true);
  assert.equal(applyUpdate(room, { change: 4, message: { ...bobs(2), body: "old", change: 4 } }), false);
  assert.equal(room.seg.bySeq.get(2).body, "edited");
  // A delete for me from this tab (change null) leaves the change cursor where it is.
  applyUpdate(room, { change: null, message: { ...bobs(3), body: "", deleted: "me", change: 0 } });
  assert.equal(room.changeSeen, 5);
  // Sync after an outage: a page of changes with more to come, then the rest.
  const page = {
    changes: [{ change: 6, kind: "delete", message: { ...bobs(1), body: "", deleted: "everyone", change: 6 } }],
    changes_has_more: true,
    last_change: 9,
    deleted_for_me: [3, 2],
  };
  assert.equal(applySyncChanges(room, page), true);
  assert.equal(room.changeSeen, 6);
  assert.equal(room.seg.bySeq.get(1).deleted, "everyone");
  assert.equal(room.seg.bySeq.get(2).deleted, "me"); // hidden on another device
  assert.equal(room.seg.bySeq.get(2).body, "");
  const rest = { changes: [], changes_has_more: false, last_change: 9, deleted_for_me: [] };
  assert.equal(applySyncChanges(room, rest), false);
  assert.equal(room.changeSeen, 9);
  // An entry without change cursors (not asked for) moves nothing.
  assert.equal(applySyncChanges(room, { last_change: 12, deleted_for_me: [] }), false);
  assert.equal(room.changeSeen, 9);
});
