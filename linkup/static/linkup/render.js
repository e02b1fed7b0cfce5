// Drawing: the room list, the shown room's header and its messages. Elements are kept by key
// and updated in place; user text goes in with textContent only.

import { drawCount } from "./alerts.js";
import { drawInfo } from "./info.js";
import { saveSoon } from "./offline.js";
import {
  byActivity,
  dayLabel,
  newMessagesText,
  timeline,
  initial,
  messageItems,
  otherMember,
  roomPreview,
  roomStatus,
  tickTitle,
  typingNames,
} from "./format.js";
import { attachmentView, humanSize } from "./attachments.js";
import { reactorsText, toggledState } from "./changes.js";
import { closeMenu, jumpTo, showContext, toggleMenu, whoReacted, wireMessage } from "./menu.js";
import { currentLanguage, gettext } from "./i18n.js";
import { roomName, senderName, shortTime, shownBody, TICKS, tickStatus } from "./model.js";
import { openRoom } from "./navigate.js";
import { $, drawAvatar, el, markedPieces, me } from "./page.js";
import { markVisibleRead } from "./receipts.js";
import { cancelSend, outbox, progress, queueChange, retry } from "./send.js";
import { leaveTray, openViewer } from "./attach.js";
import { drawSafety } from "./safety.js";
import { parse } from "./richtext.js";
import { markTerms } from "./search.js";
import { current, drafts, found, people, rooms } from "./store.js";

export function render() {
  renderRooms();
  renderConversation();
}

const roomEls = new Map();

export function renderRooms() {
  const list = $("rooms");
  const items = byActivity(rooms.values());
  $("no-rooms").hidden = items.length > 0;
  items.forEach((room, index) => {
    let li = roomEls.get(room.id);
    if (!li) {
      li = el("li");
      const button = el("button");
      button.type = "button";
      button.addEventListener("click", () => openRoom(room.id));
      const avatar = el("span", "avatar");
      avatar.append(el("span", "initial"), el("span", "dot"));
      button.append(avatar, el("span", "room-name"), el("span", "room-time"));
      button.append(el("span", "room-last"), el("span", "badge"));
      li.append(button);
      roomEls.set(room.id, li);
    }
    const button = li.firstChild;
    const name = roomName(room, me.id);
    const other = otherMember(room, people, me.id);
    button.dataset.room = room.id;
    button.setAttribute("aria-current", current === room ? "true" : "false");
    drawAvatar(button.querySelector(".avatar"), initial(name), other && other.avatar);
    const dot = button.querySelector(".dot");
    dot.hidden = !(other && other.status === "online");
    dot.title = dot.hidden ? "" : "online";
    button.querySelector(".room-name").textContent = name;
    button.querySelector(".room-time").textContent = shortTime(
      room.last_message ? room.last_message.created_at : null,
    );
    const last = button.querySelector(".room-last");
    const preview = roomPreview(room, {
      typing: typingNames(room, people),
      queued: outbox.forRoom(room.id),
      meId: me.id,
      draft: room === current ? "" : drafts.get(room.id),
      people,
    });
    if (preview.draft) {
      const label = el("span", "draft-label", gettext("Draft: "));
      last.replaceChildren(label, document.createTextNode(preview.text));
    } else last.textContent = preview.text;
    last.classList.toggle("typing", preview.typing);
    const badge = button.querySelector(".badge");
    badge.hidden = !(room.unread_count > 0);
    badge.textContent = room.unread_count > 0 ? String(room.unread_count) : "";
    badge.setAttribute("aria-label", gettext("%(count)s unread", { count: room.unread_count }));
    if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
  });
  for (const [id, li] of roomEls) {
    if (!rooms.has(id)) {
      li.remove();
      roomEls.delete(id);
    }
  }
  drawCount();
  saveSoon(rooms); // kept for opening offline
}

export function renderConversation() {
  const room = current;
  $("composer").hidden = !room;
  $("placeholder").hidden = !!room;
  $("add-members").hidden = !room || room.kind !== "group";
  $("room-info").hidden = !room || room.kind !== "group";
  if (room && $("info-dialog").open) drawInfo(room);
  $("mute").hidden = !room;
  $("search-room").hidden = !room;
  showContext();
  leaveTray();
  if (room) {
    $("mute").textContent = room.muted ? gettext("Unmute") : gettext("Mute");
    $("mute").setAttribute("aria-pressed", String(!!room.muted));
  }
  if (!room) {
    $("room-title").textContent = "Linkup";
    $("room-status").textContent = "";
    renderMessages();
    drawSafety();
    return;
  }
  $("room-title").textContent = roomName(room, me.id);
  $("room-status").textContent = roomStatus(room, {
    typing: typingNames(room, people),
    other: otherMember(room, people, me.id),
    meId: me.id,
  });
  renderMessages();
  drawSafety(); // the Block button; a blocked chat's bar in the composer's place
}

const messageEls = new Map(); // `${room}:${sender}:${client_id}` -> li
export const shown = new Map(); // seq -> the shown room's message as drawn (changes applied)

export function renderMessages() {
  const list = $("messages");
  const room = current;
  if (!room) {
    list.replaceChildren();
    messageEls.clear();
    shown.clear();
    closeMenu();
    return;
  }
  const scroller = $("scroller");
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const items = messageItems(room.seg.list(), outbox.forRoom(room.id), me);
  const names = memberNames(room);
  const keep = new Set();
  shown.clear();
  let index = 0;
  for (const row of timeline(items, room.divider ? room.divider.seq : null)) {
    if (row.kind !== "message") {
      keep.add(row.key);
      const li = drawMarker(row, room);
      if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
      index++;
      continue;
    }
    const message = row.message;
    if (message.seq != null) shown.set(message.seq, message);
    const key = `${room.id}:${message.sender.id}:${message.client_id}`;
    keep.add(key);
    let li = messageEls.get(key);
    const own = message.sender.id === me.id;
    if (!li) {
      li = el("li", own ? "msg own" : "msg");
      if (!own && room.kind === "group") li.append(el("span", "who"));
      const quote = el("button", "quote");
      quote.type = "button";
      quote.append(el("span", "quote-who"), el("span", "quote-text"));
      quote.addEventListener("click", () => jumpTo(Number(quote.dataset.seq)));
      const files = el("div", "attachments");
      li.append(quote, files, el("span", "body"));
      const chips = el("ul", "reactions");
      chips.setAttribute("aria-label", gettext("Reactions"));
      li.append(chips);
      const meta = el("span", "meta");
      meta.append(el("time", "at"));
      if (own) meta.append(el("span", "tick"));
      const more = el("button", "more", "⌄");
      more.type = "button";
      more.setAttribute("aria-label", gettext("Message actions"));
      more.setAttribute("aria-haspopup", "menu");
      more.setAttribute("aria-expanded", "false");
      more.addEventListener("click", () => toggleMenu(li, more));
      li.append(meta, more);
      wireMessage(li, more);
      messageEls.set(key, li);
    }
    const who = li.querySelector(".who");
    if (who) who.textContent = senderName(message.sender, people); // a profile may change
    const body = li.querySelector(".body");
    const text = shownBody(message);
    const hit = found.room === room.id && found.seq === message.seq && !message.deleted;
    drawBody(body, message.deleted ? null : text, text, names, hit ? found.terms : null);
    li.classList.toggle("found", hit);
    body.hidden = !text; // a photo without a caption
    body.classList.toggle("deleted", Boolean(message.deleted));
    li.classList.toggle("edited", Boolean(message.edited_at) && !message.deleted);
    li.classList.toggle("changing", Boolean(message.pending));
    drawQuote(li.querySelector(".quote"), message.reply_to);
    if (message.seq != null) drawAttachments(li.querySelector(".attachments"), message);
    else drawUploads(li.querySelector(".attachments"), message);
    drawReactions(li.querySelector(".reactions"), message, room.id);
    li.querySelector(".more").hidden = message.seq == null || message.deleted === "me";
    if (message.seq != null) li.dataset.seq = message.seq;
    else delete li.dataset.seq;
    li.dataset.clientId = message.client_id;
    const at = li.querySelector("time");
    at.dateTime = message.created_at;
    at.textContent = shortTime(message.created_at);
    if (own) {
      const status = tickStatus(message, room.watermark);
      li.dataset.status = status;
      const tick = li.querySelector(".tick");
      tick.dataset.status = status;
      tick.textContent = TICKS[status];
      tick.title = tickTitle(status, message.error);
      tick.setAttribute("aria-label", tick.title);
      let retryButton = li.querySelector(".retry");
      if (status === "failed" && !retryButton) {
        retryButton = el("button", "retry", gettext("Retry"));
        retryButton.type = "button";
        retryButton.addEventListener("click", () => retry(message.client_id));
        const discard = el("button", "discard", gettext("Discard"));
        discard.type = "button";
        discard.addEventListener("click", () => cancelSend(message.client_id));
        li.querySelector(".meta").append(retryButton, discard);
      } else if (status !== "failed" && retryButton) {
        li.querySelectorAll(".retry, .discard").forEach((button) => button.remove());
      }
    }
    if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
    index++;
  }
  for (const [key, li] of messageEls) {
    if (!keep.has(key)) {
      li.remove();
      messageEls.delete(key);
    }
  }
  if (atBottom) scroller.scrollTop = scroller.scrollHeight;
  markVisibleRead();
  drawJump();
}

/** The "jump to latest" button: shown while the newest messages are out of sight, with how
 * many of them I have not read. */
export function drawJump() {
  const scroller = $("scroller");
  const room = current;
  const away = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
  const button = $("jump-latest");
  button.hidden = !room || away < Math.max(200, scroller.clientHeight / 2);
  const unread = room && !button.hidden ? room.unread_count || 0 : 0;
  const count = $("jump-count");
  count.hidden = unread === 0;
  count.textContent = unread > 99 ? "99+" : String(unread);
  button.setAttribute(
    "aria-label",
    unread
      ? gettext("Jump to the latest messages, %(count)s unread", { count: unread })
      : gettext("Jump to the latest messages"),
  );
}

/** A day's separator, or the "new messages" line (kept with the messages, by key). */
function drawMarker(row, room) {
  let li = messageEls.get(row.key);
  if (!li) {
    li = el("li", row.kind === "day" ? "day" : "unread-divider");
    li.append(el("span"));
    if (row.kind === "divider") li.setAttribute("role", "separator");
    messageEls.set(row.key, li);
  }
  li.firstChild.textContent =
    row.kind === "day"
      ? dayLabel(row.iso, new Date(), currentLanguage())
      : newMessagesText(room.divider.count);
  return li;
}

const drawn = new WeakMap(); // a bubble's body -> what it was drawn from

/** A message's text, formatted (richtext.js) with the search's words marked in it; a
 * deleted message's line (`source` null) as plain text. Drawn again only when it changed. */
function drawBody(body, source, text, names, terms) {
  const key = JSON.stringify([source, text, terms, names.version]);
  if (drawn.get(body) === key) return;
  drawn.set(body, key);
  if (source === null) body.textContent = text;
  else body.replaceChildren(...richNodes(parse(source, { names, me: me.username }), terms));
}

/** DOM nodes for a token tree: elements made here, every text in a text node. */
function richNodes(nodes, terms) {
  return nodes.flatMap((node) => {
    if (node.t === "text") {
      return terms ? markedPieces(markTerms(node.text, terms)) : [document.createTextNode(node.text)];
    }
    if (node.t === "link") {
      const link = el("a", "link", node.text);
      link.href = node.href;
      link.target = "_blank";
      link.rel = "noopener noreferrer nofollow";
      return [link];
    }
    if (node.t === "mention") return [el("span", node.me ? "mention me" : "mention", node.text)];
    if (node.t === "code") return [el("code", "", node.text)];
    if (node.t === "pre") return [el("pre", "", node.text)];
    const tag = { b: "strong", i: "em", s: "del" }[node.t];
    const wrap = el(tag);
    wrap.append(...richNodes(node.children, terms));
    return [wrap];
  });
}

const memberSets = new WeakMap(); // a room -> its members' usernames, by their signature
let namesVersion = 0;

/** The usernames a mention in this room may name (a Set with a `version` for drawBody). */
function memberNames(room) {
  const list = (room.members || []).map((m) => m.username);
  const signature = list.join("\u0000");
  const known = memberSets.get(room);
  if (known && known.signature === signature) return known.names;
  const names = new Set(list);
  names.version = ++namesVersion;
  memberSets.set(room, { signature, names });
  return names;
}

/** A sent message's files: images in a box of their size over their placeholder (a click
 * opens the viewer), audio and video in place, anything else a card that downloads. */
function drawAttachments(box, message) {
  const list = message.deleted ? [] : message.attachments || [];
  const signature = JSON.stringify(list);
  if (box.dataset.signature === signature) return;
  box.dataset.signature = signature;
  box.hidden = list.length === 0;
  box.replaceChildren(...list.map((a) => drawAttachment(attachmentView(a), a)));
}

function drawAttachment(view, a) {
  if (view.as === "image") {
    const frame = el("button", "photo");
    frame.type = "button";
    frame.setAttribute("aria-label", gettext("Open the photo %(name)s", { name: view.label }));
    frame.dataset.id = a.id;
    if (view.placeholder) {
      const under = el("img", "placeholder");
      under.alt = "";
      under.src = view.placeholder;
      Object.assign(under, view.box);
      frame.append(under);
    }
    const img = el("img", "picture");
    img.alt = view.label;
    img.decoding = "async";
    img.loading = "lazy";
    Object.assign(img, view.box);
    img.addEventListener("load", () => frame.classList.add("loaded"));
    img.src = view.src;
    frame.append(img);
    frame.addEventListener("click", () => openViewer(view.full, view.label));
    return frame;
  }
  if (view.as === "audio" || view.as === "video") {
    const wrap = el("div", `media ${view.as}`);
    const player = el(view.as);
    player.controls = true;
    player.preload = "metadata";
    player.src = view.src;
    player.setAttribute("aria-label", view.label);
    wrap.append(player);
    if (view.length) wrap.append(el("span", "length", view.length));
    return wrap;
  }
  const card = el("a", "file-card");
  card.href = view.href;
  card.download = view.label;
  card.append(el("span", "file-icon", "📄"), el("span", "file-name", view.label));
  card.append(el("span", "file-detail", view.detail));
  return card;
}

/** A queued message's files: each with its upload's progress, and one cancel for all. */
function drawUploads(box, message) {
  const files = message.files || [];
  box.hidden = files.length === 0;
  if (!files.length) return;
  const shares = progress.get(message.client_id) || [];
  if (box.dataset.clientId !== message.client_id) {
    box.dataset.clientId = message.client_id;
    box.replaceChildren(
      ...files.map((file) => {
        const row = el("div", "upload");
        row.append(el("span", "file-name", file.name), el("span", "file-detail", humanSize(file.size)));
        const bar = el("progress");
        bar.max = 1;
        bar.setAttribute("aria-label", gettext("Uploading %(name)s", { name: file.name }));
        row.append(bar);
        return row;
      }),
    );
    const cancel = el("button", "cancel-upload", gettext("Cancel"));
    cancel.type = "button";
    cancel.addEventListener("click", () => cancelSend(message.client_id));
    box.append(cancel);
  }
  // Once every file is up the message itself is on its way: too late to take it back here.
  box.querySelector(".cancel-upload").hidden = Boolean(message.uploaded) && !message.failed;
  box.querySelectorAll("progress").forEach((bar, i) => {
    bar.value = shares[i] || 0;
  });
}

/** A reply's quote of its original (who, and its text, or that it was deleted). */
function drawQuote(quote, replyTo) {
  quote.hidden = !replyTo;
  if (!replyTo) return;
  quote.dataset.seq = replyTo.seq;
  const who = replyTo.sender.id === me.id ? gettext("You") : senderName(replyTo.sender, people);
  quote.querySelector(".quote-who").textContent = who;
  const text = quote.querySelector(".quote-text");
  const gone = !replyTo.preview && replyTo.deleted !== false;
  text.textContent =
    replyTo.preview || (gone ? gettext("This message was deleted") : gettext("📎 Attachment"));
  text.classList.toggle("deleted", gone);
  quote.setAttribute(
    "aria-label",
    gettext("Reply to %(name)s: %(text)s. Show the message", { name: who, text: text.textContent }),
  );
}

/** Reaction chips: the emoji and its count, mine pressed; a click toggles mine. */
function drawReactions(chips, message, roomId) {
  const reactions = message.deleted ? [] : message.reactions || [];
  const signature = JSON.stringify(reactions);
  if (chips.dataset.signature === signature) return;
  chips.dataset.signature = signature;
  chips.hidden = reactions.length === 0;
  chips.replaceChildren(
    ...reactions.map((reaction) => {
      const item = el("li");
      const chip = el("button", reaction.me ? "chip mine" : "chip", `${reaction.emoji} ${reaction.count}`);
      chip.type = "button";
      chip.dataset.emoji = reaction.emoji;
      chip.setAttribute("aria-pressed", String(reaction.me));
      chip.setAttribute(
        "aria-label",
        reaction.me
          ? gettext("%(emoji)s %(count)s, you reacted", reaction)
          : `${reaction.emoji} ${reaction.count}`,
      );
      chip.addEventListener("click", () => {
        const now = shown.get(message.seq) || message;
        const react = toggledState(now, reaction.emoji);
        queueChange(roomId, message.seq, { kind: "reaction", emoji: reaction.emoji, react });
      });
      const explain = () => whoReacted(chips, roomId, message.seq);
      chip.addEventListener("mouseenter", explain);
      chip.addEventListener("focus", explain);
      item.append(chip);
      return item;
    }),
  );
}

/** Who reacted, as each chip's tooltip (fetched on hover: see menu.js). */
export function titleChips(chips, reactions) {
  for (const chip of chips.querySelectorAll(".chip")) {
    const entry = reactions.find((r) => r.emoji === chip.dataset.emoji);
    if (entry) chip.title = reactorsText(entry.users, me.id, 3, (u) => senderName(u, people));
  }
}

let noticeTimer = null;

/** A short message to the person (a change the server refused), gone after a while. */
export function showNotice(text) {
  const notice = $("notice");
  notice.textContent = text;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    notice.hidden = true;
  }, 6000);
}

/** The "new messages" line near the top of the pane (or the bottom, if all of it fits). */
export function scrollToDivider() {
  const place = () => {
    const line = $("messages").querySelector(".unread-divider");
    const scroller = $("scroller");
    if (!line) return;
    const offset = line.getBoundingClientRect().top - scroller.getBoundingClientRect().top;
    scroller.scrollTop += offset - 8;
  };
  place();
  requestAnimationFrame(place);
}

export function scrollToBottom() {
  const scroller = $("scroller");
  requestAnimationFrame(() => {
    scroller.scrollTop = scroller.scrollHeight;
  });
  scroller.scrollTop = scroller.scrollHeight;
}
