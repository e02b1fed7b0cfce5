// Pure functions of the client: no DOM, no network. The browser tests import them too.

import { currentLanguage, gettext, ngettext } from "./i18n.js";

/** Status of one of my messages from the room's watermark (the lowest markers of all members). */
export function tickStatus(message, watermark) {
  if (message.failed) return "failed";
  if (message.seq == null) return "pending";
  if (watermark && watermark.read_seq >= message.seq) return "read";
  if (watermark && watermark.delivered_seq >= message.seq) return "delivered";
  return "sent";
}

/**
 * Whether `message` should replace `held` (the same seq): a higher or equal `change`, and
 * never a copy from before a delete for me (that delete is for good).
 */
export function newer(message, held) {
  if ((message.change ?? 0) < (held.change ?? 0)) return false;
  return !(held.deleted === "me" && message.deleted !== "me");
}

/** The text shown for a message: its body, or what is left of a deleted one. */
export function shownBody(message) {
  if (message.deleted === "me") return gettext("You deleted this message");
  if (message.deleted) return gettext("This message was deleted");
  return message.body;
}

export const TICKS = { pending: "🕓", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "✗" };
export const TICK_LABELS = {
  pending: gettext("Sending"),
  sent: gettext("Sent"),
  delivered: gettext("Delivered"),
  read: gettext("Read"),
  failed: gettext("Not sent"),
};

/**
 * A room's messages held as one contiguous run of seqs [lo, hi].
 * merge() adds messages and reports whether they fit; a message beyond hi + 1 starts a
 * new run (the old one is dropped: the client refetches around what the user looks at).
 */
export class Segment {
  constructor() {
    this.bySeq = new Map();
    this.lo = null;
    this.hi = null;
    // Changes to messages not held yet, ahead of the run: a `message.updated` can come
    // before its `message.new` (the two lines are ordered each on its own).
    this.ahead = new Map();
  }

  get size() { return this.bySeq.size; }

  has(seq) { return this.bySeq.has(seq); }

  /** Messages in ascending seq order. */
  list() {
    const out = [];
    if (this.lo == null) return out;
    for (let s = this.lo; s <= this.hi; s++) out.push(this.bySeq.get(s));
    return out;
  }

  /** Add newer messages (ascending). Returns {added: [...], reset: bool}. */
  append(messages) {
    const added = [];
    let reset = false;
    for (const arriving of [...messages].sort((a, b) => a.seq - b.seq)) {
      const early = this.ahead.get(arriving.seq);
      this.ahead.delete(arriving.seq);
      const m = early && newer(early, arriving) ? early : arriving;
      if (this.lo == null) {
        this.lo = this.hi = m.seq;
        this.bySeq.set(m.seq, m);
        added.push(m);
      } else if (m.seq >= this.lo && m.seq <= this.hi) {
        continue; // held already: never shown twice
      } else if (m.seq === this.hi + 1) {
        this.hi = m.seq;
        this.bySeq.set(m.seq, m);
        added.push(m);
      } else if (m.seq > this.hi + 1) {
        this.bySeq.clear();
        this.lo = this.hi = m.seq;
        this.bySeq.set(m.seq, m);
        added.push(m);
        reset = true;
      }
      // older than lo - 1 is not contiguous: prepend() takes older pages
    }
    return { added, reset };
  }

  /**
   * A held message changed (edited, deleted, reacted to): take the newer object. The seq
   * line and the change line arrive each in its own order, so an older object (a lower
   * `change`) never replaces a newer one. Returns whether anything was replaced.
   */
  update(message) {
    const held = this.bySeq.get(message.seq);
    if (!held) {
      if (this.hi == null || message.seq > this.hi) {
        const early = this.ahead.get(message.seq);
        if (!early || newer(message, early)) this.ahead.set(message.seq, message);
      }
      return false;
    }
    if (!newer(message, held)) return false;
    this.bySeq.set(message.seq, message);
    return true;
  }

  /** Add an older page (any order); only what joins on at lo - 1 downwards is kept. */
  prepend(messages) {
    let added = 0;
    for (const m of [...messages].sort((a, b) => b.seq - a.seq)) {
      if (this.lo == null) {
        this.lo = this.hi = m.seq;
        this.bySeq.set(m.seq, m);
        added++;
      } else if (m.seq === this.lo - 1) {
        this.lo = m.seq;
        this.bySeq.set(m.seq, m);
        added++;
      }
    }
    return added;
  }
}

/** "Bob is typing…", "Bob and Carol are typing…", "3 people are typing…", or "". */
export function typingText(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return gettext("%(name)s is typing…", { name: names[0] });
  if (names.length === 2) {
    return gettext("%(first)s and %(second)s are typing…", { first: names[0], second: names[1] });
  }
  return ngettext("%(count)s person is typing…", "%(count)s people are typing…", names.length);
}

/** Reconnect delay: 2 s, 4 s, 8 s … (capped), each scaled by a jitter in [0.5, 1.5). */
export function backoffDelay(attempt, random = Math.random, firstMs = 2000, capMs = 30000) {
  const base = Math.min(capMs, firstMs * 2 ** attempt);
  return Math.round(base * (0.5 + random()));
}

function hhmm(date) {
  return date.toLocaleTimeString(currentLanguage(), { hour: "2-digit", minute: "2-digit" });
}

/** A short time for a bubble or the room list: 14:05, or a date when not today. */
export function shortTime(iso, now = new Date()) {
  if (!iso) return "";
  const d = new Date(iso);
  if (d.toDateString() === now.toDateString()) return hhmm(d);
  return d.toLocaleDateString(currentLanguage(), { day: "numeric", month: "short" });
}

/** The header line for a person: "online", "last seen today at 14:05", or "". */
export function presenceText(person, now = new Date()) {
  if (!person) return "";
  if (person.status === "online") return gettext("online");
  if (!person.last_seen) return "";
  const d = new Date(person.last_seen);
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  const time = hhmm(d);
  if (d.toDateString() === now.toDateString()) {
    return gettext("last seen today at %(time)s", { time });
  }
  if (d.toDateString() === yesterday.toDateString()) {
    return gettext("last seen yesterday at %(time)s", { time });
  }
  const day = d.toLocaleDateString(currentLanguage(), { day: "numeric", month: "short" });
  return gettext("last seen %(day)s at %(time)s", { day, time });
}

/** The name a person is shown by: the one they chose, else their username. */
export function shownName(person) {
  if (!person) return "";
  return person.display_name || person.username || "";
}

/** A message's sender as shown: their name as `people` knows it now (a profile changes
 * after the message was sent), else the username the message carries. */
export function senderName(sender, people) {
  if (!sender) return "";
  if (sender.id == null) return gettext("Deleted user"); // the account is gone
  const known = people ? people.get(sender.id) : null;
  return (known && known.display_name) || sender.username;
}

/** The display name of a room: a group's name, or the other member of a direct room. */
export function roomName(room, me) {
  if (room.kind === "group") return room.name || gettext("Group");
  const other = (room.members || []).find((m) => m.id !== me);
  if (other) return shownName(other);
  // Only I am left: the other person deleted their account.
  if (room.members && room.members.length) return gettext("Deleted user");
  return room.name || gettext("Direct chat");
}

/** A new client_id (a UUID string). */
export function newClientId() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** How long to wait before resending when told to slow down: retry_after seconds, or 1 s. */
export function retryAfterMs(seconds) {
  return 1000 * (seconds || 1);
}

/**
 * What a socket send's error frame means: milliseconds to wait and resend (same client_id),
 * "failed" (refused for good), or "stop" (no answer: resent when a socket is back).
 */
export function socketSendOutcome(error) {
  if (error && (error.code === "rate_limited" || error.code === "unavailable")) {
    return retryAfterMs(error.retry_after_s);
  }
  if (error && error.code) return "failed";
  return "stop";
}

/** The same for an HTTP send refused with `status` (and a Retry-After in seconds, or null). */
export function httpSendOutcome(status, retryAfter) {
  if (status === 429 || status === 503) return retryAfterMs(retryAfter);
  if (status >= 500) return "stop";
  return "failed";
}

/** A VAPID public key (base64url) as the bytes PushManager.subscribe wants. */
export function vapidKey(base64url) {
  const padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}
