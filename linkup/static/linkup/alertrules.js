// When the page alerts a person, and how it says so: pure rules (tested with node --test).
// alerts.js does the browser's part.

import { gettext } from "./i18n.js";
import { parse } from "./richtext.js";

/** Whether a new message would alert me: someone else's, in a room I have not muted, and
 * in a direct room or naming me with an @mention (as the server's notifications do). */
export function wouldAlert(room, message, me) {
  if (!room || room.muted || !message || message.sender.id === me.id) return false;
  if (message.deleted) return false;
  if (room.kind === "direct") return true;
  let named = false;
  const walk = (nodes) => {
    for (const node of nodes) {
      if (node.t === "mention" && node.me) named = true;
      if (node.children) walk(node.children);
    }
  };
  walk(parse(message.body || "", { names: new Set([me.username]), me: me.username }));
  return named;
}

/** The unread messages the title and the icon count: those of rooms not muted. */
export function unreadTotal(rooms) {
  let total = 0;
  for (const room of rooms) if (!room.muted) total += Math.max(0, room.unread_count || 0);
  return total;
}

/** The page's title with the count first, as mail and chat apps do: "(3) Linkup". */
export function titleText(base, count) {
  if (!count) return base;
  return `(${count > 99 ? "99+" : count}) ${base}`;
}

/** The icon with a red count in its corner (an SVG: the page may show `data:` images). */
export function badgedIcon(count) {
  const body =
    '<rect width="64" height="64" rx="14" fill="#128c7e"/>' +
    '<path d="M16 20h32a4 4 0 0 1 4 4v16a4 4 0 0 1-4 4H28l-10 8v-8h-2a4 4 0 0 1-4-4V24a4 4 0 0 1 4-4z" fill="#fff"/>';
  const text = count > 9 ? "9+" : String(count);
  const badge = count
    ? '<circle cx="46" cy="18" r="18" fill="#d32f2f"/>' +
      `<text x="46" y="26" font-size="22" font-family="sans-serif" font-weight="700" fill="#fff" text-anchor="middle">${text}</text>`
    : "";
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">${body}${badge}</svg>`;
  return `data:image/svg+xml,${encodeURIComponent(svg)}`;
}

/** A desktop notification's title and text for a message. */
export function alertText(room, message, roomName, who = message.sender.username) {
  const title =
    room.kind === "direct" ? who : gettext("%(name)s in %(chat)s", { name: who, chat: roomName });
  const text = (message.body || "").replace(/\s+/g, " ").trim();
  const files = (message.attachments || []).length;
  const body = text ? (text.length > 140 ? `${text.slice(0, 139)}…` : text) : files ? gettext("📎 Attachment") : "";
  return { title, body };
}

/**
 * Which alerts were already shown, by key ("room:seq"), across a person's tabs: a bounded
 * list in the storage given (localStorage). `claim` is true for the first tab to ask.
 */
export class AlertLedger {
  constructor(storage, userId, keep = 200) {
    this.storage = storage;
    this.key = `linkup:alerted:${userId}`;
    this.keep = keep;
  }

  #read() {
    try {
      const list = JSON.parse(this.storage.getItem(this.key));
      return Array.isArray(list) ? list : [];
    } catch {
      return [];
    }
  }

  claim(key) {
    const list = this.#read();
    if (list.includes(key)) return false;
    list.push(key);
    try {
      this.storage.setItem(this.key, JSON.stringify(list.slice(-this.keep)));
    } catch {
      // storage off: this tab alone decides
    }
    return true;
  }
}
