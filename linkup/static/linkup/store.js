// The client's state: the rooms (the server's fields plus the client's own), the people, the
// room shown; and taking in rooms and messages from any source. Messages are merged by seq
// (Segment), so nothing shows twice or out of order; the rules themselves are in merge.js.

import { api } from "./api.js";
import {
  admitMessages,
  countUnread,
  mergePerson,
  mergeRoom,
  noteNewest,
  parkAhead,
} from "./merge.js";
import { showList } from "./navigate.js";
import { me } from "./page.js";
import { receipt } from "./receipts.js";
import { render, renderConversation, renderRooms } from "./render.js";
import { browserStorage, Drafts } from "./drafts.js";
import { readSnapshot } from "./offline.js";
import { dropFiles } from "./filestore.js";
import { outbox, pendingAcks } from "./send.js";

export const rooms = new Map(); // id -> room
export const people = new Map(); // user id -> {id, username, status, last_seen}
const orphans = new Map(); // room id -> messages that came before the room did

export let current = null; // the room shown
export const drafts = new Drafts(browserStorage(), me.id); // per room: what was typed, unsent
// The search hit last opened: its message shows the words it matched marked (find.js).
export const found = { room: null, seq: null, terms: [] };

export function setCurrent(room) {
  current = room;
}

export function upsertRoom(data) {
  const room = mergeRoom(rooms, data, me.id);
  for (const member of data.members || []) rememberPerson(member);
  return room;
}

export function rememberPerson(person) {
  // Only what is stated: a room pushed without presence must not wipe what we know of it.
  people.set(person.id, mergePerson(people.get(person.id), person));
}

/** Count a room's unread again; ask the server when the held run cannot tell. */
export function recountUnread(room) {
  const unread = countUnread(room, me.id);
  if (unread != null) room.unread_count = unread;
  else refreshRoomsSoon();
}

/** Keep a message for a room this tab does not know yet, until the room list brings it. */
export function keepOrphan(message) {
  if (!orphans.has(message.room)) orphans.set(message.room, []);
  orphans.get(message.room).push(message);
  refreshRoomsSoon();
}

export async function loadRooms() {
  const data = await api("GET", "/rooms");
  const seen = new Set();
  for (const room of data.rooms) {
    upsertRoom(room);
    seen.add(room.id);
  }
  for (const id of [...rooms.keys()]) if (!seen.has(id)) dropRoom(id);
  drafts.prune(seen); // a room left or removed takes its draft with it
  for (const [id, messages] of orphans) {
    if (rooms.has(id)) takeMessages(rooms.get(id), messages);
  }
  orphans.clear();
  renderRooms();
  renderConversation();
}

/** Offline at the start: show the conversations kept last time (offline.js), until the
 * room list can be fetched. */
export async function restoreSnapshot() {
  const snapshot = await readSnapshot();
  if (!snapshot || rooms.size) return;
  for (const { room, messages } of snapshot.rooms) {
    const held = upsertRoom(room);
    held.seg.append(messages);
  }
  renderRooms();
  renderConversation();
  refreshRoomsSoon(); // and ask again: the network may be back
}

let roomsRefresh = null;
export function refreshRoomsSoon() {
  clearTimeout(roomsRefresh);
  roomsRefresh = setTimeout(() => loadRooms().catch(() => {}), 300);
}

export function dropRoom(id) {
  rooms.delete(id);
  if (current && current.id === id) showList();
}

/** Add messages to a room (from any source); returns those that were new. */
export function takeMessages(room, messages) {
  // In the shown room, a message beyond the held run waits while the gap is fetched (an
  // ack can overtake the doorbell of an earlier message): the run never skips a seq.
  let fitting = messages;
  if (room === current) {
    const park = parkAhead(room, messages);
    fitting = park.fitting;
    if (park.parked) fillGap(room);
  }
  const added = admitMessages(room, fitting, me.id);
  for (const message of added) {
    if (message.sender.id !== me.id) stopShowingTyping(room, message.sender.id);
  }
  for (const message of messages) {
    if (message.sender.id !== me.id) continue;
    // Committed, whichever path told us (ack, another tab's echo, sync, REST), and whether
    // or not it was held already: it leaves the outbox and its sender stops waiting.
    outbox.remove(message.client_id);
    dropFiles(message.client_id); // however late the ack: its files are the server's now
    const waiter = pendingAcks.get(message.client_id);
    if (waiter) waiter.resolve(message);
  }
  noteNewest(room, added);
  if (added.some((m) => m.sender.id !== me.id)) {
    receipt(room, "delivered", Math.max(...added.map((m) => m.seq)));
  }
  return added;
}

/** Fetch what lies between the held run and the parked messages, then take them in order. */
async function fillGap(room) {
  if (room.filling) return;
  room.filling = true;
  try {
    for (let page = 0; page < 5 && room.parked.size; page++) {
      const after = room.seg.hi;
      const got = await api("GET", `/rooms/${room.id}/messages?after_seq=${after}&limit=100`);
      takeMessages(room, got.messages.filter((m) => m.seq <= after + 100));
      const ready = [...room.parked.values()].filter((m) => m.seq <= room.seg.hi + 1);
      if (ready.length) takeMessages(room, ready);
      if (!got.messages.length) break;
    }
  } catch {
    // the next doorbell, ping or sync brings the rest
  } finally {
    room.filling = false;
    if (room.parked.size) {
      // Too far behind to page through: start again from the newest (history loads on scroll).
      const rest = [...room.parked.values()];
      room.parked.clear();
      room.seg.append(rest);
    }
    render();
  }
}

export function stopShowingTyping(room, user) {
  clearTimeout(room.typing.get(user));
  room.typing.delete(user);
}
