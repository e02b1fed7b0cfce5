// Pure text and ordering for what is drawn: the room list's lines, the header, the bubbles
// still in the outbox, the bell's count. No DOM: render.js and bell.js put these on the page.

import { filesLabel } from "./attachments.js";
import { isSend, withPending } from "./changes.js";
import { gettext, ngettext } from "./i18n.js";
import { presenceText, senderName, shownBody, shownName, TICK_LABELS, typingText } from "./model.js";
import { parse, plain } from "./richtext.js";

const STATE_TEXT = {
  connecting: gettext("Connecting…"),
  online: gettext("Online"),
  reconnecting: gettext("Reconnecting…"),
  fallback: gettext("No live connection: using HTTP"),
  offline: gettext("Offline: messages will be sent later"),
};

/** The status line for a connection state. */
export function stateText(state) {
  return STATE_TEXT[state] || state;
}

/** The letter in a name's avatar. */
export function initial(name) {
  return name.slice(0, 1).toUpperCase();
}

/** Rooms by last activity, newest first. */
export function byActivity(rooms) {
  return [...rooms].sort((a, b) =>
    (b.last_activity_at || "").localeCompare(a.last_activity_at || ""),
  );
}

/** The other member of a direct room, as `people` knows them; null for a group. */
export function otherMember(room, people, meId) {
  if (room.kind !== "direct") return null;
  const other = (room.members || []).find((m) => m.id !== meId);
  return other ? people.get(other.id) || other : null;
}

/** The names of who is typing in a room. */
export function typingNames(room, people) {
  return [...room.typing.keys()].map((id) => shownName(people.get(id)) || gettext("Someone"));
}

/** What is typing, as a room shows it: "typing…" in a direct room, who in a group. */
function typingLine(room, typing) {
  return room.kind === "direct" ? gettext("typing…") : typingText(typing);
}

/**
 * The room list's second line: who is typing, else my unsent draft, else my newest queued
 * message, else the last message ("You: …", or the sender's name in a group), first line
 * only. {text, typing, draft}.
 */
export function roomPreview(room, { typing, queued, meId, draft = "", people = null }) {
  if (typing.length) return { text: typingLine(room, typing), typing: true, draft: false };
  if (draft.trim()) return { text: draft.trim().split("\n")[0], typing: false, draft: true };
  const sends = queued.filter(isSend);
  const last = sends[sends.length - 1];
  const message = last ? { body: last.body, attachments: last.files, mine: true } : room.last_message;
  if (!message) return { text: "", typing: false, draft: false };
  const mine = message.mine || (message.sender && message.sender.id === meId);
  const who = mine
    ? gettext("You: ")
    : room.kind === "group"
      ? gettext("%(name)s: ", { name: senderName(message.sender, people) })
      : "";
  const shown = shownBody(message);
  const text = message.deleted
    ? shown
    : (shown && plain(parse(shown))) || filesLabel(message.attachments);
  return { text: who + text.split("\n")[0], typing: false, draft: false };
}

/** The header's status: who is typing, else the other's presence, else the group's members. */
export function roomStatus(room, { typing, other, meId }) {
  if (typing.length) return typingLine(room, typing);
  if (room.kind === "direct") return presenceText(other);
  return (room.members || []).map((m) => (m.id === meId ? gettext("You") : shownName(m))).join(", ");
}

/**
 * The held messages as my queued changes will leave them, then my queued sends not held yet
 * (as bubbles without a seq).
 */
export function messageItems(confirmed, queued, me) {
  const changes = new Map(); // seq -> my queued changes to it, oldest first
  for (const item of queued) {
    if (isSend(item)) continue;
    if (!changes.has(item.seq)) changes.set(item.seq, []);
    changes.get(item.seq).push(item);
  }
  const shown = confirmed.map((m) => withPending(m, changes.get(m.seq) || []));
  const held = new Set(confirmed.filter((m) => m.sender.id === me.id).map((m) => m.client_id));
  const pending = queued
    .filter((item) => isSend(item) && !held.has(item.client_id))
    .map((item) => ({
      client_id: item.client_id,
      body: item.body,
      sender: { id: me.id, username: me.username },
      created_at: new Date(item.queued_at).toISOString(),
      seq: null,
      reply_to: item.quote || null,
      reactions: [],
      files: item.files || [],
      uploaded: (item.uploads || []).filter(Boolean).length >= (item.files || []).length,
      failed: item.state === "failed",
      error: item.error,
    }));
  return shown.concat(pending);
}

/** A tick's title: why it failed when known, else the status in words. */
export function tickTitle(status, error) {
  return status === "failed" && error
    ? gettext("Not sent: %(reason)s", { reason: error })
    : TICK_LABELS[status];
}

/** The bell's badge: the count, "99+" past 99. */
export function bellCount(unread) {
  return unread > 99 ? "99+" : String(unread);
}

/** The bell's accessible name. */
export function bellLabel(unread) {
  return unread
    ? gettext("Notifications, %(count)s unread", { count: unread })
    : gettext("Notifications");
}

/** The notifications the panel lists: the newest 50 (highest ids first). */
export function recentNotes(notes) {
  return [...notes.values()].sort((a, b) => b.id - a.id).slice(0, 50);
}

/** A calendar day as the key of its separator: local YYYY-MM-DD. */
export function dayKey(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** A day separator's words: Today, Yesterday, the weekday within the last week, else the
 * date (with the year when it is not this year's). `words` translates Today and Yesterday. */
export function dayLabel(iso, now = new Date(), locale = undefined, words = {}) {
  const d = new Date(iso);
  const startOf = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate());
  const days = Math.round((startOf(now) - startOf(d)) / 86_400_000);
  if (days === 0) return words.today || gettext("Today");
  if (days === 1) return words.yesterday || gettext("Yesterday");
  if (days > 1 && days < 7) return d.toLocaleDateString(locale, { weekday: "long" });
  const options = { day: "numeric", month: "long" };
  if (d.getFullYear() !== now.getFullYear()) options.year = "numeric";
  return d.toLocaleDateString(locale, options);
}

/**
 * The conversation's rows in order: a day separator before the first message of each day
 * ({kind: "day", key, iso}), the "new messages" divider before the message with seq
 * `dividerSeq` ({kind: "divider", key: "divider"}), and each message ({kind: "message",
 * message}). Queued messages (no seq) count as today's.
 */
export function timeline(messages, dividerSeq = null) {
  const rows = [];
  let day = null;
  for (const message of messages) {
    const key = dayKey(message.created_at);
    if (key !== day) {
      rows.push({ kind: "day", key: `day:${key}`, iso: message.created_at });
      day = key;
    }
    if (dividerSeq != null && message.seq === dividerSeq) rows.push({ kind: "divider", key: "divider" });
    rows.push({ kind: "message", message });
  }
  return rows;
}

/** Where the "new messages" line goes when a room opens: before my first unread message
 * from someone else, with how many there are; null when nothing is unread. */
export function unreadDivider(messages, readSeq, meId) {
  const unread = messages.filter((m) => m.seq != null && m.seq > readSeq && m.sender.id !== meId);
  return unread.length ? { seq: unread[0].seq, count: unread.length } : null;
}

/** The "new messages" line. */
export function newMessagesText(count) {
  return ngettext("%(count)s new message", "%(count)s new messages", count);
}

/**
 * A notification's title in the page's language, from what it carries: the sender (or who
 * added or invited me) as the page names them now, and the group's name; the server's own
 * title (English) where something is missing. `groupName(id)` names a room I am in.
 */
export function noteTitle(note, people, groupName = () => null) {
  const data = note.data || {};
  const actor = data.sender || data.by;
  const name = actor ? senderName(actor, people) : null;
  const group = data.room_name || (data.room != null ? groupName(data.room) : null);
  if (!name) return note.title;
  if (note.kind === "message") return name;
  if (!group) return note.title;
  const values = { name, group };
  if (note.kind === "mention") return gettext("%(name)s mentioned you in %(group)s", values);
  if (note.kind === "added") return gettext("%(name)s added you to %(group)s", values);
  if (note.kind === "invited") return gettext("%(name)s invited you to %(group)s", values);
  return note.title;
}
