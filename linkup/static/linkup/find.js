// Message search in the page: the box above the chats (all of them, or the open one after its
// Search button), the hits with their matched words marked, and a hit opening its chat at
// the message, the history down to it loaded, the words marked there too. search.js holds
// the pure part; everything here is built from text nodes and <mark> elements.

import { api } from "./api.js";
import { jumpTo } from "./menu.js";
import { gettext } from "./i18n.js";
import { roomName, senderName, shortTime } from "./model.js";
import { openRoom } from "./navigate.js";
import { $, el, markedPieces, me } from "./page.js";
import { matchedTerms, snippetParts } from "./search.js";
import { current, found, people, rooms } from "./store.js";

const MIN_CHARS = 2;
const WAIT_MS = 300; // typing pauses this long before a search goes
let timer = null;
let scope = null; // a room id, or null for every chat
let asked = 0; // the newest search: older answers arriving late are dropped
let next = null; // the cursor of the shown search's next page

function showScope() {
  const room = scope == null ? null : rooms.get(scope);
  $("find-scope").hidden = !room;
  if (room) $("find-scope-name").textContent = gettext("In %(chat)s", { chat: roomName(room, me.id) });
  $("find").placeholder = room ? gettext("Search this chat…") : gettext("Search messages…");
}

function say(text) {
  $("find-state").hidden = !text;
  $("find-state").textContent = text;
}

function hitItem(hit) {
  const li = el("li");
  const button = el("button", "hit");
  button.type = "button";
  const head = el("span", "hit-head");
  const room = rooms.get(hit.room);
  head.append(
    el("strong", "hit-room", room ? roomName(room, me.id) : gettext("A chat")),
    el("span", "hit-time", shortTime(hit.message.created_at)),
  );
  const sender =
    hit.message.sender.id === me.id ? gettext("You") : senderName(hit.message.sender, people);
  const snippet = el("span", "hit-snippet");
  snippet.append(
    el("span", "hit-sender", gettext("%(name)s: ", { name: sender })),
    ...markedPieces(snippetParts(hit.snippet, hit.highlights)),
  );
  button.append(head, snippet);
  button.addEventListener("click", () => openHit(hit));
  li.append(button);
  return li;
}

async function search(more = false) {
  const q = $("find").value.trim();
  const list = $("find-results");
  if (!more) {
    list.replaceChildren();
    next = null;
  }
  if (q.length < MIN_CHARS) {
    list.hidden = true;
    say(q ? gettext("Type at least %(count)s characters.", { count: MIN_CHARS }) : "");
    return;
  }
  const mine = ++asked;
  const params = new URLSearchParams({ q, limit: "20" });
  if (scope != null) params.set("room", String(scope));
  if (more && next) params.set("before", next);
  say(gettext("Searching…"));
  let answer;
  try {
    answer = await api("GET", `/search?${params}`);
  } catch (error) {
    if (mine === asked) {
      say(error.status === 429 ? gettext("Too many searches; wait a moment.") : gettext("Search failed."));
    }
    return;
  }
  if (mine !== asked) return;
  list.querySelector(".more")?.remove();
  list.hidden = false;
  for (const hit of answer.results) list.append(hitItem(hit));
  next = answer.next;
  if (next) {
    const li = el("li", "more");
    const button = el("button", "secondary", gettext("More results"));
    button.type = "button";
    button.addEventListener("click", () => search(true));
    li.append(button);
    list.append(li);
  }
  const shown = list.querySelectorAll(".hit").length;
  say(shown ? "" : gettext("No messages found."));
}

/** Open a hit's chat at its message, the words it matched marked in it (render.js marks
 * the message `found` names, however often it is drawn again). */
export async function openHit(hit) {
  Object.assign(found, {
    room: hit.room,
    seq: hit.seq,
    terms: matchedTerms(hit.snippet, hit.highlights),
  });
  await openRoom(hit.room);
  if (!current || current.id !== hit.room) return;
  await jumpTo(hit.seq, { pageSize: 100 });
}

export function wireFind() {
  const input = $("find");
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => search(), WAIT_MS);
  });
  $("find-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    search();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      input.value = "";
      search();
    }
  });
  $("find-scope-clear").addEventListener("click", () => {
    scope = null;
    showScope();
    search();
    input.focus();
  });
  $("search-room").addEventListener("click", () => {
    if (!current) return;
    scope = current.id;
    showScope();
    $("app").dataset.view = "list"; // on a phone the box is on the chats' side
    input.focus();
    if (input.value.trim()) search();
  });
  showScope();
}
