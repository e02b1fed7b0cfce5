// Changes to sent messages (edits, deletes, reactions) and replies, as pure rules: which
// actions a message offers, the frames and REST calls a queued change becomes, and how a
// change still in the outbox shows on the message (optimistic, like a send's clock). No DOM,
// no network: send.js queues and sends, render.js draws, `node --test` checks these.

import { gettext, ngettext } from "./i18n.js";

export const QUICK_EMOJI = ["👍", "❤️", "😂", "😮", "😢", "🙏"];
export const PREVIEW_CHARS = 100; // a reply's quote: the original's first 100 code points
const MODERATORS = new Set(["owner", "admin"]);

// A queued change is an outbox item: {client_id, room, seq, queued_at, state: "pending",
// kind: "edit", body} | {kind: "delete", scope: "everyone" | "me"} | {kind: "reaction",
// emoji, react: "add" | "remove"} (`state` is the outbox's own: pending or failed).

/** Whether an outbox item is a message to send (not a change to one already sent). */
export function isSend(item) {
  return !item.kind || item.kind === "send";
}

/** The frame a queued change is sent as (its client_id makes a resend harmless). */
export function changeFrame(item) {
  const base = { room: item.room, seq: item.seq, client_id: item.client_id };
  if (item.kind === "edit") return { type: "message.edit", ...base, body: item.body };
  if (item.kind === "delete") return { type: "message.delete", ...base, scope: item.scope };
  if (item.kind === "reaction") {
    return { type: "reaction", ...base, emoji: item.emoji, state: item.react };
  }
  throw new Error(`not a change: ${item.kind}`);
}

/** The same change as a REST call, for when there is no live socket: {method, path, body}. */
export function changeRequest(item) {
  const path = `/rooms/${item.room}/messages/${item.seq}`;
  if (item.kind === "edit") {
    return { method: "PATCH", path, body: { body: item.body, client_id: item.client_id } };
  }
  if (item.kind === "delete") {
    return { method: "DELETE", path: `${path}?scope=${encodeURIComponent(item.scope)}` };
  }
  if (item.kind === "reaction") {
    const method = item.react === "add" ? "PUT" : "DELETE";
    return { method, path: `${path}/reactions/${encodeURIComponent(item.emoji)}` };
  }
  throw new Error(`not a change: ${item.kind}`);
}

function codePoints(text, n) {
  return Array.from(text).slice(0, n).join("");
}

/** The quote a reply carries, as the server would write it: empty once deleted. */
export function quoteOf(message) {
  return {
    seq: message.seq,
    sender: { id: message.sender.id, username: message.sender.username },
    preview: message.deleted ? "" : codePoints(message.body, PREVIEW_CHARS),
    deleted: Boolean(message.deleted),
  };
}

/** One reaction more or less of mine on a list of chips (a new list; order kept). */
function react(reactions, emoji, state) {
  const out = (reactions || []).map((r) => ({ ...r }));
  const chip = out.find((r) => r.emoji === emoji);
  if (state === "add") {
    if (!chip) out.push({ emoji, count: 1, me: true });
    else if (!chip.me) Object.assign(chip, { count: chip.count + 1, me: true });
  } else if (chip && chip.me) {
    chip.count -= 1;
    chip.me = false;
  }
  return out.filter((r) => r.count > 0);
}

/** What a tombstone keeps of a message. */
function tombstone(message, deleted) {
  return { ...message, body: "", deleted, reactions: [], reply_to: null, edited_at: null };
}

/**
 * A message as it will be once my queued changes to it (oldest first) are applied: the
 * optimistic view drawn until the server answers. `pending` says some are still queued.
 */
export function withPending(message, items) {
  if (!items.length) return message;
  let shown = { ...message, pending: true };
  for (const item of items) {
    if (shown.deleted === "me") break; // nothing shows through a delete for me
    if (item.kind === "delete") shown = tombstone(shown, item.scope === "me" ? "me" : "everyone");
    else if (shown.deleted) continue; // a deleted message takes no edit and no reaction
    else if (item.kind === "edit") {
      shown = { ...shown, body: item.body, edited_at: new Date(item.queued_at).toISOString() };
    } else if (item.kind === "reaction") {
      shown = { ...shown, reactions: react(shown.reactions, item.emoji, item.react) };
    }
  }
  return shown;
}

/** My role in a room ("owner", "admin", "member"), from its members. */
export function roleIn(room, meId) {
  const mine = (room.members || []).find((m) => m.id === meId);
  return mine ? mine.role || "member" : "member";
}

function within(seconds, createdAt, now) {
  return now - new Date(createdAt).getTime() <= seconds * 1000;
}

/**
 * The actions a message's menu offers me, in menu order: reply, react, edit, delete for me,
 * delete for everyone. The server has the last word (a window can pass while the menu is
 * open); the menu only leaves out what would certainly be refused.
 */
export function menuActions(message, { meId, role, now, editWindowS, deleteWindowS }) {
  if (message.seq == null || message.deleted === "me") return [];
  if (message.deleted) return ["delete-me"];
  const mine = message.sender.id === meId;
  const actions = ["reply", "react"];
  if (mine && within(editWindowS, message.created_at, now)) actions.push("edit");
  actions.push("delete-me");
  if (MODERATORS.has(role) || (mine && within(deleteWindowS, message.created_at, now))) {
    actions.push("delete-everyone");
  }
  if (mine) actions.push("info"); // who it was delivered to and read by, and when
  else actions.push("report"); // to the site's moderators
  return actions;
}

/** The state a click on a chip (or on an emoji of the menu) asks for: mine goes, else comes. */
export function toggledState(message, emoji) {
  const chip = (message.reactions || []).find((r) => r.emoji === emoji);
  return chip && chip.me ? "remove" : "add";
}

/**
 * A message changed (edited, deleted): the replies to it that a run holds show its current
 * text. Returns the replies whose quote changed (each replaced by a new object).
 */
export function refreshQuotes(seg, message) {
  const changed = [];
  const { preview, deleted } = quoteOf(message);
  for (const [seq, held] of seg.bySeq) {
    if (!held.reply_to || held.reply_to.seq !== message.seq) continue;
    if (held.reply_to.preview === preview && Boolean(held.reply_to.deleted) === deleted) continue;
    const reply = { ...held, reply_to: { ...held.reply_to, preview, deleted } };
    seg.bySeq.set(seq, reply);
    changed.push(reply);
  }
  return changed;
}

/** Who reacted with one emoji, as a chip's tooltip: "alice, bob and 3 others". */
export function reactorsText(users, meId, shown = 3, nameOf = (u) => u.username) {
  const names = users.map((u) => (u.id === meId ? gettext("You") : nameOf(u)));
  if (names.length <= shown) {
    if (names.length < 2) return names.join("");
    return gettext("%(names)s and %(last)s", {
      names: names.slice(0, -1).join(", "),
      last: names.at(-1),
    });
  }
  const rest = names.length - shown;
  return ngettext("%(names)s and %(count)s other", "%(names)s and %(count)s others", rest, {
    names: names.slice(0, shown).join(", "),
  });
}
