// The keyboard shortcuts (keys.js says which) and the screen reader's line for new
// messages in the open chat.

import { byActivity } from "./format.js";
import { announcement, neighbour, replyTarget, shortcut } from "./keys.js";
import { replyTo } from "./menu.js";
import { openRoom } from "./navigate.js";
import { $, me } from "./page.js";
import { parse, plain } from "./richtext.js";
import { senderName } from "./model.js";
import { current, people, rooms } from "./store.js";

export function wireKeyboard() {
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const field = ["INPUT", "TEXTAREA", "SELECT"];
    const typing =
      target instanceof HTMLElement && (target.isContentEditable || field.includes(target.tagName));
    const action = shortcut(event, { typing, inRoom: Boolean(current) });
    if (!action) return;
    event.preventDefault();
    if (action === "next-chat" || action === "previous-chat") {
      const ids = byActivity(rooms.values()).map((room) => room.id);
      const id = neighbour(ids, current ? current.id : null, action === "next-chat" ? 1 : -1);
      if (id != null) openRoom(id);
    } else if (action === "search") {
      $("find").focus();
      $("find").select();
    } else if (action === "reply") {
      const message = replyTarget(current.seg.list(), me.id);
      if (message) replyTo(message);
    }
  });
}

/** Tell a screen reader, politely, of others' new messages in the open chat. */
export function announce(room, messages) {
  if (room !== current) return;
  const lines = messages
    .filter((m) => m.sender.id !== me.id && !m.deleted)
    .map((m) => announcement(m, plain(parse(m.body || "")), senderName(m.sender, people)));
  if (lines.length) $("announcer").textContent = lines.join(". ");
}
