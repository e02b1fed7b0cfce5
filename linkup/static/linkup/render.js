// Drawing: the room list, the shown room's header and its messages. Elements are kept by key
// and updated in place; user text goes in with textContent only.

import {
  byActivity,
  initial,
  messageItems,
  otherMember,
  roomPreview,
  roomStatus,
  tickTitle,
  typingNames,
} from "./format.js";
import { roomName, shortTime, shownBody, TICKS, tickStatus } from "./model.js";
import { openRoom } from "./navigate.js";
import { $, el, me } from "./page.js";
import { markVisibleRead } from "./receipts.js";
import { outbox, retry } from "./send.js";
import { current, people, rooms } from "./store.js";

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
    button.querySelector(".initial").textContent = initial(name);
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
    });
    last.textContent = preview.text;
    last.classList.toggle("typing", preview.typing);
    const badge = button.querySelector(".badge");
    badge.hidden = !(room.unread_count > 0);
    badge.textContent = room.unread_count > 0 ? String(room.unread_count) : "";
    badge.setAttribute("aria-label", `${room.unread_count} unread`);
    if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
  });
  for (const [id, li] of roomEls) {
    if (!rooms.has(id)) {
      li.remove();
      roomEls.delete(id);
    }
  }
}

export function renderConversation() {
  const room = current;
  $("composer").hidden = !room;
  $("placeholder").hidden = !!room;
  $("add-members").hidden = !room || room.kind !== "group";
  $("mute").hidden = !room;
  if (room) {
    $("mute").textContent = room.muted ? "Unmute" : "Mute";
    $("mute").setAttribute("aria-pressed", String(!!room.muted));
  }
  if (!room) {
    $("room-title").textContent = "Linkup";
    $("room-status").textContent = "";
    renderMessages();
    return;
  }
  $("room-title").textContent = roomName(room, me.id);
  $("room-status").textContent = roomStatus(room, {
    typing: typingNames(room, people),
    other: otherMember(room, people, me.id),
    meId: me.id,
  });
  renderMessages();
}

const messageEls = new Map(); // `${room}:${sender}:${client_id}` -> li

export function renderMessages() {
  const list = $("messages");
  const room = current;
  if (!room) {
    list.replaceChildren();
    messageEls.clear();
    return;
  }
  const scroller = $("scroller");
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const items = messageItems(room.seg.list(), outbox.forRoom(room.id), me);
  const keep = new Set();
  items.forEach((message, index) => {
    const key = `${room.id}:${message.sender.id}:${message.client_id}`;
    keep.add(key);
    let li = messageEls.get(key);
    const own = message.sender.id === me.id;
    if (!li) {
      li = el("li", own ? "msg own" : "msg");
      if (!own && room.kind === "group") li.append(el("span", "who", message.sender.username));
      li.append(el("span", "body"));
      const meta = el("span", "meta");
      meta.append(el("time", "at"));
      if (own) meta.append(el("span", "tick"));
      li.append(meta);
      messageEls.set(key, li);
    }
    const body = li.querySelector(".body");
    body.textContent = shownBody(message);
    body.classList.toggle("deleted", Boolean(message.deleted));
    li.classList.toggle("edited", Boolean(message.edited_at) && !message.deleted);
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
        retryButton = el("button", "retry", "Retry");
        retryButton.type = "button";
        retryButton.addEventListener("click", () => retry(message.client_id));
        li.querySelector(".meta").append(retryButton);
      } else if (status !== "failed" && retryButton) retryButton.remove();
    }
    if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
  });
  for (const [key, li] of messageEls) {
    if (!keep.has(key)) {
      li.remove();
      messageEls.delete(key);
    }
  }
  if (atBottom) scroller.scrollTop = scroller.scrollHeight;
  markVisibleRead();
}

export function scrollToBottom() {
  const scroller = $("scroller");
  requestAnimationFrame(() => {
    scroller.scrollTop = scroller.scrollHeight;
  });
  scroller.scrollTop = scroller.scrollHeight;
}
