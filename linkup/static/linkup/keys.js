// Keyboard shortcuts: which action a key press asks for (pure, tested with node --test).
// keyboard.js carries the actions out.
//
//   Alt+↓ / Alt+↑        the next / previous chat in the list
//   Ctrl+K, or /         search messages (/ only outside a text field)
//   Alt+R                reply to the newest message from someone else in the open chat
//   Escape               close the search's hits and go back to the composer

import { gettext } from "./i18n.js";

/** The action a keydown asks for, or null. `typing`: the focus is in a text field. */
export function shortcut(event, { typing = false, inRoom = false } = {}) {
  const plain = !event.ctrlKey && !event.metaKey && !event.altKey;
  if (event.altKey && !event.ctrlKey && !event.metaKey) {
    if (event.key === "ArrowDown") return "next-chat";
    if (event.key === "ArrowUp") return "previous-chat";
    if ((event.key === "r" || event.key === "R" || event.code === "KeyR") && inRoom) return "reply";
  }
  if ((event.ctrlKey || event.metaKey) && !event.altKey && (event.key === "k" || event.key === "K")) {
    return "search";
  }
  if (plain && event.key === "/" && !typing) return "search";
  return null;
}

/** The room `step` places from `current` in the list's order, wrapping; the first (or the
 * last, going up) when none is open. null for an empty list. */
export function neighbour(ids, current, step) {
  if (!ids.length) return null;
  const at = ids.indexOf(current);
  if (at < 0) return step > 0 ? ids[0] : ids[ids.length - 1];
  return ids[(at + step + ids.length) % ids.length];
}

/** The newest message from someone else (not deleted), to reply to; null if none. */
export function replyTarget(messages, meId) {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m.seq != null && m.sender.id !== meId && !m.deleted) return m;
  }
  return null;
}

/** What a screen reader is told of a new message in the open chat. */
export function announcement(message, text, who = message.sender.username) {
  const body = text.replace(/\s+/g, " ").trim();
  if (!body) return gettext("%(name)s sent an attachment", { name: who });
  return gettext("%(name)s: %(text)s", { name: who, text: body });
}
