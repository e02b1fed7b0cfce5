// Moving between the room list and a room: opening one (its newest page of history first),
// older pages as the user scrolls up, and back to the list.

import { api } from "./api.js";
import { historyComplete, mayLoadOlder } from "./merge.js";
import { gettext } from "./i18n.js";
import { Segment } from "./model.js";
import { $, me } from "./page.js";
import { markVisibleRead } from "./receipts.js";
import { unreadDivider } from "./format.js";
import { render, renderMessages, scrollToBottom, scrollToDivider } from "./render.js";
import { stopTyping } from "./send.js";
import { current, drafts, rooms, setCurrent, takeMessages } from "./store.js";
import { sendFocus } from "./sync.js";

const HISTORY_FIRST = 50;
const HISTORY_MORE = 20;
// A room opens at its first unread message, its history loaded down to it: up to this many
// (past them, the newest this many, the older ones on scrolling up).
const HISTORY_UNREAD = 300;

export async function openRoom(id) {
  const room = rooms.get(id);
  if (!room) return;
  let readAt = null; // where I had read to, as the room opens (before this view reads more)
  if (current !== room) {
    if (current) current.divider = null; // the "new messages" line lasts while a room is open
    stopTyping();
    setCurrent(room);
    fillComposer(); // this room's draft, never the last room's text
    readAt = Math.max(room.read_seq, room.readSent);
    room.divider = null;
    room.opening = true; // nothing is marked read before the view is placed
  }
  $("app").dataset.view = "room";
  sendFocus();
  render();
  const unread = readAt == null ? 0 : Math.min(room.last_seq - readAt, HISTORY_UNREAD);
  const wanted = Math.max(HISTORY_FIRST, unread + 5);
  if (room.last_seq > 0 && !historyComplete(room, wanted)) {
    try {
      const page = await api("GET", `/rooms/${id}/messages?limit=${wanted}`);
      if (room.seg.hi != null && page.messages.length && page.messages[0].seq > room.seg.hi + 1) {
        room.seg = new Segment(); // far behind: show the newest, older pages load on scroll
      }
      takeMessages(room, page.messages);
      room.seg.prepend(page.messages);
    } catch (error) {
      $("history-state").textContent = gettext("Could not load the history.");
    }
  }
  if (current === room) {
    if (readAt != null) room.divider = unreadDivider(room.seg.list(), readAt, me.id);
    render();
    if (room.divider) scrollToDivider();
    else scrollToBottom();
    room.opening = false; // placed: what is in view now is read
    $("composer-input").focus();
    markVisibleRead();
    fillPane();
  }
}

/** The composer holds the shown room's draft (and nothing without a room). */
export function fillComposer() {
  $("composer-input").value = current ? drafts.get(current.id) : "";
}

/** While the messages do not fill the pane there is no scrolling up: load older ones. */
function fillPane() {
  const scroller = $("scroller");
  if (current && scroller.scrollHeight <= scroller.clientHeight + 10) {
    loadOlder().then((loaded) => {
      if (loaded) fillPane();
    });
  }
}

export function showList() {
  stopTyping();
  setCurrent(null);
  fillComposer();
  $("app").dataset.view = "list";
  sendFocus();
  render();
}

/** Load the page before the held run (`limit` messages: a jump far up takes bigger pages);
 * true if it brought messages. A load already under way is waited for, not doubled. */
export function loadOlder(limit = HISTORY_MORE) {
  const room = current;
  if (room && room.loadingOlder) return room.loadingOlder;
  if (!mayLoadOlder(room)) return Promise.resolve(false);
  room.loadingOlder = fetchOlder(room, limit);
  return room.loadingOlder;
}

async function fetchOlder(room, limit) {
  $("history-state").textContent = gettext("Loading earlier messages…");
  try {
    const page = await api(
      "GET",
      `/rooms/${room.id}/messages?before_seq=${room.seg.lo}&limit=${limit}`,
    );
    const scroller = $("scroller");
    const before = scroller.scrollHeight - scroller.scrollTop;
    room.seg.prepend(page.messages);
    if (current === room) {
      renderMessages();
      scroller.scrollTop = scroller.scrollHeight - before; // the user stays where they were
    }
    $("history-state").textContent = "";
    return page.messages.length > 0;
  } catch {
    $("history-state").textContent = gettext("Could not load earlier messages.");
    return false;
  } finally {
    room.loadingOlder = false; // a promise while a page is under way
  }
}
