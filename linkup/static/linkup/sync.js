// The chat socket and staying in sync: frames from the server, catching up from the held
// cursors when a socket says hello, and polling over HTTP while there is no live socket.

import { alertAdded, alertMessages } from "./alerts.js";
import { announce } from "./keyboard.js";
import { api, signedOut } from "./api.js";
import { Connection } from "./connection.js";
import { stateText } from "./format.js";
import {
  applySyncChanges,
  applySyncMarkers,
  applyUpdate,
  changeCursors,
  cursorList,
  cursors,
  maxWatermark,
  unlistedRooms,
} from "./merge.js";
import { $, config, me } from "./page.js";
import { receipt } from "./receipts.js";
import { render } from "./render.js";
import { blockChanged } from "./safety.js";
import { changeDone, flushOutbox, pendingAcks } from "./send.js";
import {
  current,
  dropRoom,
  keepOrphan,
  loadRooms,
  people,
  recountUnread,
  refreshRoomsSoon,
  rememberPerson,
  rooms,
  stopShowingTyping,
  takeMessages,
  upsertRoom,
} from "./store.js";

const POLL_MS = (config.poll_s || 3) * 1000;
const TYPING_SHOWN_MS = 6000; // the server sends "stop" after 5 s; this only guards a lost one

let pollTimer = null;

export const connection = new Connection({
  url: config.socket,
  heartbeatS: config.heartbeat_s,
  firstS: config.reconnect_first_s,
  attempts: config.reconnect_attempts,
  onFrame,
  onState: stateChanged,
  onHello: connected,
  onUnauthorized: signedOut,
});

function onFrame(frame) {
  switch (frame.type) {
    case "message.new":
    case "message.ack": {
      const message = frame.message;
      const room = rooms.get(message.room);
      if (!room) {
        // A room this tab does not know yet (just joined): keep the message for when the
        // room list arrives, so it is delivered (and receipted) like any other.
        keepOrphan(message);
        return;
      }
      const added = takeMessages(room, [message]);
      if (frame.type === "message.new") {
        alertMessages(room, added).catch(() => {});
        announce(room, added);
      }
      break;
    }
    case "change.ack":
      changeDone(frame.client_id, frame.message);
      break;
    case "message.updated": {
      // An edit, a delete or a reaction (or a delete for me, change null): the held copy
      // takes the newer object.
      const room = rooms.get(frame.message.room);
      if (!room || !applyUpdate(room, frame)) return;
      break;
    }
    case "receipt": {
      const room = rooms.get(frame.room);
      if (!room || frame.user !== me.id) return;
      if (frame.kind === "read") {
        room.read_seq = Math.max(room.read_seq, frame.seq);
        room.delivered_seq = Math.max(room.delivered_seq, frame.seq);
        recountUnread(room);
      } else {
        room.delivered_seq = Math.max(room.delivered_seq, frame.seq);
      }
      break;
    }
    case "watermark": {
      const room = rooms.get(frame.room);
      if (room) room.watermark = maxWatermark(room.watermark, frame);
      break;
    }
    case "typing": {
      const room = rooms.get(frame.room);
      if (!room || frame.user === me.id) return;
      if (frame.state === "start") {
        clearTimeout(room.typing.get(frame.user));
        room.typing.set(
          frame.user,
          setTimeout(() => {
            stopShowingTyping(room, frame.user);
            render();
          }, TYPING_SHOWN_MS),
        );
      } else stopShowingTyping(room, frame.user);
      break;
    }
    case "presence": {
      rememberPerson({ id: frame.user, status: frame.status, last_seen: frame.last_seen });
      for (const room of rooms.values()) {
        for (const member of room.members || []) {
          if (member.id === frame.user) Object.assign(member, people.get(frame.user));
        }
      }
      break;
    }
    case "user.updated": {
      // Someone I share a room with (or I) changed their name or picture.
      rememberPerson(frame.user);
      for (const room of rooms.values()) {
        for (const member of room.members || []) {
          if (member.id === frame.user.id) Object.assign(member, frame.user);
        }
      }
      if (frame.user.id === me.id) $("me").textContent = frame.user.display_name || me.username;
      break;
    }
    case "room.updated":
      if (!rooms.has(frame.room.id)) {
        refreshRoomsSoon(); // a new room: its members' presence
        const room = upsertRoom(frame.room);
        if (room.kind === "group") alertAdded(room).catch(() => {});
      } else upsertRoom(frame.room);
      break;
    case "room.removed":
      dropRoom(typeof frame.room === "object" ? frame.room.id : frame.room);
      break;
    case "block.updated": // mine, made here or in another tab
      blockChanged(frame.user.id, frame.blocked);
      break;
    case "error": {
      const waiter = frame.ref && pendingAcks.get(frame.ref);
      if (waiter) waiter.reject(frame);
      else console.warn("linkup:", frame.code, frame.detail);
      break;
    }
    default:
      return; // pong, sync.result (answered by request()), and types we do not know
  }
  render();
}

export function stateChanged(state) {
  if (state !== "online") {
    // Sends in flight on a socket that is gone: resent (same client_id) when one is back.
    for (const waiter of [...pendingAcks.values()]) waiter.reject(null);
  }
  const el = $("conn");
  el.dataset.state = state;
  el.textContent = stateText(state);
  clearInterval(pollTimer);
  pollTimer = null;
  if (state === "fallback") {
    pollTimer = setInterval(() => pollOverHttp().catch(() => {}), POLL_MS);
    pollOverHttp().catch(() => {});
    flushOutbox();
  }
}

async function connected() {
  sendFocus();
  try {
    await loadRooms();
    await syncRooms();
  } catch (error) {
    console.warn("linkup: catch-up failed", error);
  }
  flushOutbox();
  // Receipts handed to a socket that then died may never have reached the server: start
  // again from the markers it confirmed.
  for (const room of rooms.values()) {
    room.readSent = room.read_seq;
    room.deliveredSent = room.delivered_seq;
    const others = room.seg.list().filter((m) => m.sender.id !== me.id);
    if (others.length) receipt(room, "delivered", others[others.length - 1].seq);
  }
  render();
}

/** Catch up from the cursors held: the shown room to its end, the others one page each. */
async function syncRooms() {
  let wanted = cursors(rooms);
  let changes = changeCursors(rooms);
  for (let round = 0; round < 50 && Object.keys(wanted).length; round++) {
    const result = await connection.request(
      { type: "sync", cursors: wanted, changes },
      "sync.result",
    );
    const { more, moreChanges } = applySync(result);
    wanted = {};
    changes = {};
    if (current && more.includes(current.id)) wanted[current.id] = current.seg.hi;
    for (const id of moreChanges) {
      const room = rooms.get(id);
      wanted[id] = room.seg.hi != null ? room.seg.hi : room.delivered_seq;
      changes[id] = room.changeSeen;
    }
  }
}

/** Take a sync result in; return the rooms that have more messages, and more changes, to
 * fetch. */
function applySync(result) {
  const more = [];
  const moreChanges = [];
  for (const id of unlistedRooms(rooms, result.room_ids)) dropRoom(id);
  if (result.room_ids.some((id) => !rooms.has(id))) refreshRoomsSoon();
  for (const entry of result.rooms) {
    const room = rooms.get(entry.room);
    if (!room) continue;
    applySyncMarkers(room, entry, me.id);
    takeMessages(room, entry.messages);
    if (applySyncChanges(room, entry)) moreChanges.push(room.id);
    room.last_seq = Math.max(room.last_seq, entry.last_seq);
    if (entry.has_more && entry.messages.length) more.push(room.id);
  }
  render();
  return { more, moreChanges };
}

async function pollOverHttp() {
  if (connection.state !== "fallback") return;
  const list = cursorList(cursors(rooms));
  const changed = cursorList(changeCursors(rooms));
  const result = await api(
    "GET",
    `/sync?cursors=${encodeURIComponent(list)}&changes=${encodeURIComponent(changed)}`,
  );
  applySync(result);
  flushOutbox();
}

/** Tell the server which room this tab shows (none while hidden). */
/** Which room this tab shows, and whether it is in sight at all: a hidden tab shows none
 * (its rooms' notifications are made), and with every tab hidden the person is away
 * (notifications go by Web Push and email too). */
export function sendFocus() {
  const visible = document.visibilityState === "visible";
  connection.send({ type: "focus", room: current && visible ? current.id : null, visible });
}
