// Receipts: moving my delivered and read markers, batched, over the socket or else HTTP; and
// reading the shown room's bubbles to know what I have seen.

import { api } from "./api.js";
import { $ } from "./page.js";
import { renderRooms } from "./render.js";
import { current, recountUnread } from "./store.js";
import { connection } from "./sync.js";

const receiptTimers = new Map();

/** Move my marker, batched: one receipt up to the highest seq, not one per message. */
export function receipt(room, kind, seq) {
  const sentKey = kind === "read" ? "readSent" : "deliveredSent";
  const markerKey = kind === "read" ? "read_seq" : "delivered_seq";
  if (seq <= room[markerKey] || seq <= room[sentKey]) return;
  room[sentKey] = seq;
  const key = `${room.id}:${kind}`;
  if (receiptTimers.has(key)) return;
  receiptTimers.set(
    key,
    setTimeout(() => {
      receiptTimers.delete(key);
      const upTo = room[sentKey];
      const frame = { type: "receipt", room: room.id, kind, seq: upTo };
      if (!connection.send(frame)) {
        api("POST", `/rooms/${room.id}/receipts`, { kind, seq: upTo })
          .then(() => {
            room[markerKey] = Math.max(room[markerKey], upTo);
          })
          .catch(() => {
            room[sentKey] = 0; // try again on the next occasion
          });
      }
    }, 50),
  );
}

/** Mark read up to the newest of others' bubbles on screen, while the tab is seen. */
export function markVisibleRead() {
  const room = current;
  if (!room || room.opening || document.visibilityState !== "visible" || !document.hasFocus()) return;
  const scroller = $("scroller");
  const box = scroller.getBoundingClientRect();
  const items = $("messages").children;
  for (let i = items.length - 1; i >= 0; i--) {
    const el = items[i];
    if (!el.dataset.seq || el.classList.contains("own")) continue;
    const rect = el.getBoundingClientRect();
    if (rect.top < box.bottom && rect.bottom > box.top) {
      const seq = Number(el.dataset.seq);
      if (seq > room.read_seq && seq > room.readSent) {
        receipt(room, "read", seq);
        recountUnread(room);
        renderRooms();
      }
      return;
    }
  }
}
