// Pure rules for merging what the server says into the client's plain state: rooms and their
// markers, people, messages by seq, sync results and the bell's count. No DOM, no network, no
// timers: the modules around them do the I/O, and `node --test` checks these.

import { refreshQuotes } from "./changes.js";
import { newer, Segment } from "./model.js";

/** The higher of two watermarks, field by field (a missing one counts as zero). */
export function maxWatermark(a, b) {
  if (!a) return b || { delivered_seq: 0, read_seq: 0 };
  if (!b) return a;
  return {
    delivered_seq: Math.max(a.delivered_seq, b.delivered_seq),
    read_seq: Math.max(a.read_seq, b.read_seq),
  };
}

/** What we know of a person after `person` is stated: a missing status keeps the known one. */
export function mergePerson(known, person) {
  const stated = Object.fromEntries(Object.entries(person).filter(([, v]) => v !== undefined));
  if (!("status" in person) || person.status == null) {
    delete stated.status;
    delete stated.last_seen;
  }
  return { ...(known || {}), ...stated };
}

/**
 * Unread = others' messages after my read position, when the held run covers them all;
 * null when it does not (the server's count is needed).
 */
export function countUnread(room, meId) {
  const readPos = Math.max(room.read_seq, room.readSent);
  if (readPos >= room.last_seq) return 0;
  if (room.seg.lo != null && room.seg.lo <= readPos + 1 && room.seg.hi >= room.last_seq) {
    return room.seg.list().filter((m) => m.seq > readPos && m.sender.id !== meId).length;
  }
  return null;
}

/** Merge a room as the server describes it into `rooms` (a Map by id); return the held room. */
export function mergeRoom(rooms, data, meId) {
  let room = rooms.get(data.id);
  if (!room) {
    room = {
      seg: new Segment(),
      typing: new Map(), // user id -> timer
      countedSeq: data.last_seq, // unread_count already counts every seq up to here
      deliveredSent: 0,
      readSent: 0,
      parked: new Map(), // seq -> message that arrived ahead of the held run
      // Changes to messages (edits, deletes, reactions) are reflected up to this number:
      // what is fetched after the room list shows them all.
      changeSeen: data.last_change || 0,
      filling: false,
      loadingOlder: false,
    };
    rooms.set(data.id, room);
  } else {
    room.countedSeq = Math.max(room.countedSeq, data.last_seq);
  }
  const mine = { read: room.read_seq || 0, delivered: room.delivered_seq || 0 };
  const watermark = room.watermark;
  const newer = {
    last_seq: room.last_seq,
    last_message: room.last_message,
    last_activity_at: room.last_activity_at,
    unread_count: room.unread_count,
  };
  Object.assign(room, data);
  if (newer.last_seq != null && newer.last_seq > data.last_seq) {
    Object.assign(room, newer); // a snapshot older than what arrived live: keep the live view
  }
  // Markers only grow: a stale answer never takes a tick or a read state back.
  room.read_seq = Math.max(mine.read, data.read_seq || 0);
  room.delivered_seq = Math.max(mine.delivered, data.delivered_seq || 0);
  room.watermark = maxWatermark(watermark, data.watermark);
  // An answer computed before my latest read (another tab's, or this one's in flight) would
  // bring a badge back: count again from what this tab holds when it can.
  if (Math.max(room.read_seq, room.readSent) > (data.read_seq || 0)) {
    const unread = countUnread(room, meId);
    if (unread != null) room.unread_count = unread;
  }
  return room;
}

/**
 * Park the messages beyond the held run + 1 (they wait while the gap is fetched: the run
 * never skips a seq). Returns {fitting, parked}: what may be appended now, and whether any
 * was parked.
 */
export function parkAhead(room, messages) {
  if (room.seg.hi == null) return { fitting: messages, parked: false };
  const ahead = messages.filter((m) => m.seq > room.seg.hi + 1);
  if (!ahead.length) return { fitting: messages, parked: false };
  for (const m of ahead) room.parked.set(m.seq, m);
  return { fitting: messages.filter((m) => m.seq <= room.seg.hi + 1), parked: true };
}

/** Append messages to the held run and count them (unread, my markers); return the new ones. */
export function admitMessages(room, messages, meId) {
  const { added } = room.seg.append(messages);
  for (const message of added) {
    room.parked.delete(message.seq);
    if (message.sender.id !== meId) {
      if (message.seq > room.countedSeq && message.seq > room.read_seq) room.unread_count++;
    } else {
      // Sending moved my own markers to it (the contract): never receipt my own messages.
      room.read_seq = Math.max(room.read_seq, message.seq);
      room.delivered_seq = Math.max(room.delivered_seq, message.seq);
    }
    room.countedSeq = Math.max(room.countedSeq, message.seq);
  }
  return added;
}

/** The newest of new messages becomes the room's last message, and last_seq moves on. */
export function noteNewest(room, added) {
  let newest = null;
  for (const message of added) if (!newest || message.seq > newest.seq) newest = message;
  if (newest && newest.seq >= (room.last_message ? room.last_message.seq : 0)) {
    room.last_message = newest;
    room.last_activity_at = newest.created_at;
  }
  if (newest) room.last_seq = Math.max(room.last_seq, newest.seq);
}

/** Where each held room is: the end of its held run, or my delivered marker. */
export function cursors(rooms) {
  const out = {};
  for (const [id, room] of rooms) out[id] = room.seg.hi != null ? room.seg.hi : room.delivered_seq;
  return out;
}

/** Change cursors for sync: each held room's last change number reflected. */
export function changeCursors(rooms) {
  const out = {};
  for (const [id, room] of rooms) out[id] = room.changeSeen || 0;
  return out;
}

/** A live `message.updated` (a number: the room's change line; null: a delete for me). */
export function applyUpdate(room, frame) {
  const replaced = takeChanged(room, frame.message);
  if (frame.change != null) room.changeSeen = Math.max(room.changeSeen || 0, frame.change);
  return replaced;
}

/**
 * A changed message into the held run (the newer object wins), and the quotes of the
 * replies to it follow its text. Returns whether anything held changed.
 */
function takeChanged(room, message) {
  const held = room.seg.has(message.seq);
  const replaced = room.seg.update(message);
  const last = room.last_message;
  if (last && last.seq === message.seq && newer(message, last)) room.last_message = message;
  if ((held && !replaced) || message.deleted === "me") return replaced;
  return refreshQuotes(room.seg, message).length > 0 || replaced;
}

/** A change.ack: the message as I now see it (no change number: the line is not moved). */
export function applyAck(room, message) {
  return takeChanged(room, message);
}

/**
 * A sync entry's changes and deletions for me, over what the room holds. Returns whether
 * more changes are to be fetched (then changeSeen stops at the last one applied).
 */
export function applySyncChanges(room, entry) {
  for (const change of entry.changes || []) {
    takeChanged(room, change.message);
    room.changeSeen = Math.max(room.changeSeen || 0, change.change);
  }
  if (entry.changes && !entry.changes_has_more && entry.last_change != null) {
    room.changeSeen = Math.max(room.changeSeen || 0, entry.last_change);
  }
  for (const seq of entry.deleted_for_me || []) {
    const held = room.seg.bySeq.get(seq);
    if (held && held.deleted !== "me") {
      room.seg.bySeq.set(seq, {
        ...held, body: "", deleted: "me", reactions: [], reply_to: null, edited_at: null,
      });
    }
  }
  return Boolean(entry.changes_has_more);
}

/** Cursors as the HTTP sync endpoint takes them: "room:seq,room:seq". */
export function cursorList(held) {
  return Object.entries(held)
    .map(([room, seq]) => `${room}:${seq}`)
    .join(",");
}

/** Held rooms a sync result no longer lists (I left them, or was removed). */
export function unlistedRooms(rooms, roomIds) {
  const listed = new Set(roomIds);
  return [...rooms.keys()].filter((id) => !listed.has(id));
}

/** My markers, the watermark and the first seq from a room's sync entry (markers only grow). */
export function applySyncMarkers(room, entry, meId) {
  const mine = entry.markers && entry.markers[meId];
  if (mine) {
    room.read_seq = Math.max(room.read_seq, mine.read_seq);
    room.delivered_seq = Math.max(room.delivered_seq, mine.delivered_seq);
  }
  room.watermark = maxWatermark(room.watermark, entry.watermark);
  if (entry.first_seq != null) room.first_seq = entry.first_seq;
}

/** The lowest seq the room still has (older ones were purged). */
export function firstSeq(room) {
  return Math.max(1, room.first_seq || 1);
}

/** Whether the held run already shows the room's end and enough before it (or all of it). */
export function historyComplete(room, wanted) {
  const seg = room.seg;
  return seg.hi === room.last_seq && (seg.size >= wanted || seg.lo <= firstSeq(room));
}

/** Whether older messages than the held run may be loaded now. */
export function mayLoadOlder(room) {
  return !!room && !room.loadingOlder && room.seg.lo != null && room.seg.lo > firstSeq(room);
}

/** Mark the known notifications among `ids` read; return the ids that were not read before. */
export function readNotes(notes, ids) {
  const fresh = ids.filter((id) => !(notes.get(id) || {}).read);
  for (const id of ids) {
    const note = notes.get(id);
    if (note) note.read = true;
  }
  return fresh;
}

/**
 * The bell's count after the list loads: the server's count, plus the unread ones that
 * arrived meanwhile and committed after the page was read (higher ids than it holds).
 */
export function unreadAfterLoad(page, arriving) {
  const newest = Math.max(0, ...page.notifications.map((n) => n.id));
  const later = (arriving || []).filter((n) => !n.read && n.id > newest);
  return page.unread_count + new Set(later.map((n) => n.id)).size;
}
