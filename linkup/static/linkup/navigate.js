// Moving between the room list and a room: opening one (its newest page of history first),
// older pages as the user scrolls up, and back to the list.

import { api } from "./api.js";
import { historyComplete, mayLoadOlder } from "./merge.js";
import { Segment } from "./model.js";
import { $ } from "./page.js";
import { markVisibleRead } from "./receipts.js";
import { render, renderMessages, scrollToBottom } from "./render.js";
import { stopTyping } from "./send.js";
import { current, rooms, setCurrent, takeMessages } from "./store.js";
import { sendFocus } from "./sync.js";

const HISTORY_FIRST = 50;
const HISTORY_MORE = 20;

export async function openRoom(id) {
  const room = rooms.get(id);
  if (!room) return;
  if (current !== room) stopTyping();
  setCurrent(room);
  $("app").dataset.view = "room";
  sendFocus();
  render();
  if (room.last_seq > 0 && !historyComplete(room, HISTORY_FIRST)) {
    try {
      const page = await api("GET", `/rooms/${id}/messages?limit=${HISTORY_FIRST}`);
      if (room.seg.hi != null && page.messages.length && page.messages[0].seq > room.seg.hi + 1) {
        room.seg = new Segment(); // far behind: show the newest, older pages load on scroll
      }
      takeMessages(room, page.messages);
      room.seg.prepend(page.messages);
    } catch (error) {
      $("history-state").textContent = "Could not load the history.";
    }
  }
  if (current === room) {
    render();
    scrollToBottom();
    $("composer-input").focus();
    markVisibleRead();
    fillPane();
  }
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
  $("history-state").textContent = "Loading earlier messages…";
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
    $("history-state").textContent = "Could not load earlier messages.";
    return false;
  } finally {
    room.loadingOlder = false; // a promise while a page is under way
  }
}
