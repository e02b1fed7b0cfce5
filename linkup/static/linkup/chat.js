// Linkup's web client: the room list, one conversation, and the wire contract under them.
//
// Truth lives on the server: every message has its room's seq, and the client only ever
// merges what it receives by seq (Segment), so nothing shows twice or out of order. What the
// user writes goes to the outbox first (localStorage, shared by tabs) and is drawn at once
// with a clock; the ack turns it into the real message, matched by client_id. User text is
// only ever set with textContent.

import { Connection } from "./connection.js";
import { Outbox } from "./outbox.js";
import {
  newClientId,
  presenceText,
  roomName,
  Segment,
  shortTime,
  TICK_LABELS,
  TICKS,
  tickStatus,
  typingText,
} from "./model.js";

const config = JSON.parse(document.getElementById("linkup-config").textContent);
const me = config.user;
const $ = (id) => document.getElementById(id);

const HISTORY_FIRST = 50;
const HISTORY_MORE = 20;
const POLL_MS = (config.poll_s || 3) * 1000;
const ACK_TIMEOUT_MS = 15000;
const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 1000;
const PUSH_WAIT_MS = (config.push_wait_s || 15) * 1000;
const TYPING_SHOWN_MS = 6000; // the server sends "stop" after 5 s; this only guards a lost one

const rooms = new Map(); // id -> room (the server's fields plus the client's own below)
const people = new Map(); // user id -> {id, username, status, last_seen}
let current = null; // the room shown
const pendingAcks = new Map(); // client_id -> {resolve}
const orphans = new Map(); // room id -> messages that came before the room did
let flushing = false;
let flushAgain = false;
let pollTimer = null;

// -- the server ----------------------------------------------------------------------------

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

class ApiError extends Error {
  constructor(status, code, detail, retryAfter) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

let leaving = false; // signing out: no more calls, no reconnects, no redirects of our own

async function api(method, path, body) {
  if (leaving) throw new ApiError(0, "leaving", "signing out");
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  const response = await fetch(config.api + path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    if (response.status === 401) signedOut();
    throw new ApiError(
      response.status,
      error.code,
      error.detail,
      Number(response.headers.get("Retry-After")) || null,
    );
  }
  return data;
}

function signedOut() {
  if (leaving) return;
  leaving = true;
  location.assign(`${config.sign_in}?next=${encodeURIComponent(location.pathname)}`);
}

const connection = new Connection({
  url: config.socket,
  heartbeatS: config.heartbeat_s,
  firstS: config.reconnect_first_s,
  attempts: config.reconnect_attempts,
  onFrame,
  onState: stateChanged,
  onHello: connected,
  onUnauthorized: signedOut,
});

const outbox = new Outbox(me.id, () => {
  renderRooms();
  renderMessages();
});

// -- rooms ----------------------------------------------------------------------------------

function upsertRoom(data) {
  let room = rooms.get(data.id);
  if (!room) {
    room = {
      seg: new Segment(),
      typing: new Map(), // user id -> timer
      countedSeq: data.last_seq, // unread_count already counts every seq up to here
      deliveredSent: 0,
      readSent: 0,
      parked: new Map(), // seq -> message that arrived ahead of the held run
      filling: false,
      loadingOlder: false,
    };
    rooms.set(data.id, room);
  } else {
    room.countedSeq = Math.max(room.countedSeq, data.last_seq);
  }
  const mine = { read: room.read_seq || 0, delivered: room.delivered_seq || 0 };
  const watermark = room.watermark;
  const newer = {
    last_seq: room.last_seq,
    last_message: room.last_message,
    last_activity_at: room.last_activity_at,
    unread_count: room.unread_count,
  };
  Object.assign(room, data);
  if (newer.last_seq != null && newer.last_seq > data.last_seq) {
    Object.assign(room, newer); // a snapshot older than what arrived live: keep the live view
  }
  // Markers only grow: a stale answer never takes a tick or a read state back.
  room.read_seq = Math.max(mine.read, data.read_seq || 0);
  room.delivered_seq = Math.max(mine.delivered, data.delivered_seq || 0);
  room.watermark = maxWatermark(watermark, data.watermark);
  // An answer computed before my latest read (another tab's, or this one's in flight) would
  // bring a badge back: count again from what this tab holds when it can.
  if (Math.max(room.read_seq, room.readSent) > (data.read_seq || 0)) recountUnread(room, false);
  for (const member of data.members || []) rememberPerson(member);
  return room;
}

/** Unread = others' messages after my read position, when the held run covers them all. */
function recountUnread(room, mayRefresh = true) {
  const readPos = Math.max(room.read_seq, room.readSent);
  if (readPos >= room.last_seq) {
    room.unread_count = 0;
  } else if (room.seg.lo != null && room.seg.lo <= readPos + 1 && room.seg.hi >= room.last_seq) {
    room.unread_count = room.seg
      .list()
      .filter((m) => m.seq > readPos && m.sender.id !== me.id).length;
  } else if (mayRefresh) {
    refreshRoomsSoon();
  }
}

function maxWatermark(a, b) {
  if (!a) return b || { delivered_seq: 0, read_seq: 0 };
  if (!b) return a;
  return {
    delivered_seq: Math.max(a.delivered_seq, b.delivered_seq),
    read_seq: Math.max(a.read_seq, b.read_seq),
  };
}

function rememberPerson(person) {
  // Only what is stated: a room pushed without presence must not wipe what we know of it.
  const known = people.get(person.id) || {};
  const stated = Object.fromEntries(Object.entries(person).filter(([, v]) => v !== undefined));
  if (!("status" in person) || person.status == null) {
    delete stated.status;
    delete stated.last_seen;
  }
  people.set(person.id, { ...known, ...stated });
}

async function loadRooms() {
  const data = await api("GET", "/rooms");
  const seen = new Set();
  for (const room of data.rooms) {
    upsertRoom(room);
    seen.add(room.id);
  }
  for (const id of [...rooms.keys()]) if (!seen.has(id)) dropRoom(id);
  for (const [id, messages] of orphans) {
    if (rooms.has(id)) takeMessages(rooms.get(id), messages);
  }
  orphans.clear();
  renderRooms();
  renderConversation();
}

let roomsRefresh = null;
function refreshRoomsSoon() {
  clearTimeout(roomsRefresh);
  roomsRefresh = setTimeout(() => loadRooms().catch(() => {}), 300);
}

function dropRoom(id) {
  rooms.delete(id);
  if (current && current.id === id) showList();
}

/** Add messages to a room (from any source); returns those that were new. */
function takeMessages(room, messages) {
  // In the shown room, a message beyond the held run waits while the gap is fetched (an
  // ack can overtake the doorbell of an earlier message): the run never skips a seq.
  let fitting = messages;
  if (room === current && room.seg.hi != null) {
    const ahead = messages.filter((m) => m.seq > room.seg.hi + 1);
    if (ahead.length) {
      for (const m of ahead) room.parked.set(m.seq, m);
      fitting = messages.filter((m) => m.seq <= room.seg.hi + 1);
      fillGap(room);
    }
  }
  const { added } = room.seg.append(fitting);
  let newest = null;
  for (const message of added) {
    room.parked.delete(message.seq);
    if (message.sender.id !== me.id) {
      stopShowingTyping(room, message.sender.id);
      if (message.seq > room.countedSeq && message.seq > room.read_seq) room.unread_count++;
    } else {
      // Sending moved my own markers to it (the contract): never receipt my own messages.
      room.read_seq = Math.max(room.read_seq, message.seq);
      room.delivered_seq = Math.max(room.delivered_seq, message.seq);
    }
    room.countedSeq = Math.max(room.countedSeq, message.seq);
    if (!newest || message.seq > newest.seq) newest = message;
  }
  for (const message of messages) {
    if (message.sender.id !== me.id) continue;
    // Committed, whichever path told us (ack, another tab's echo, sync, REST), and whether
    // or not it was held already: it leaves the outbox and its sender stops waiting.
    outbox.remove(message.client_id);
    const waiter = pendingAcks.get(message.client_id);
    if (waiter) waiter.resolve(message);
  }
  if (newest && newest.seq >= (room.last_message ? room.last_message.seq : 0)) {
    room.last_message = newest;
    room.last_activity_at = newest.created_at;
  }
  if (newest) room.last_seq = Math.max(room.last_seq, newest.seq);
  if (added.some((m) => m.sender.id !== me.id)) {
    receipt(room, "delivered", Math.max(...added.map((m) => m.seq)));
  }
  return added;
}

/** Fetch what lies between the held run and the parked messages, then take them in order. */
async function fillGap(room) {
  if (room.filling) return;
  room.filling = true;
  try {
    for (let page = 0; page < 5 && room.parked.size; page++) {
      const after = room.seg.hi;
      const got = await api("GET", `/rooms/${room.id}/messages?after_seq=${after}&limit=100`);
      takeMessages(room, got.messages.filter((m) => m.seq <= after + 100));
      const ready = [...room.parked.values()].filter((m) => m.seq <= room.seg.hi + 1);
      if (ready.length) takeMessages(room, ready);
      if (!got.messages.length) break;
    }
  } catch {
    // the next doorbell, ping or sync brings the rest
  } finally {
    room.filling = false;
    if (room.parked.size) {
      // Too far behind to page through: start again from the newest (history loads on scroll).
      const rest = [...room.parked.values()];
      room.parked.clear();
      room.seg.append(rest);
    }
    render();
  }
}

// -- receipts --------------------------------------------------------------------------------

const receiptTimers = new Map();

/** Move my marker, batched: one receipt up to the highest seq, not one per message. */
function receipt(room, kind, seq) {
  const sentKey = kind === "read" ? "readSent" : "deliveredSent";
  const markerKey = kind === "read" ? "read_seq" : "delivered_seq";
  if (seq <= room[markerKey] || seq <= room[sentKey]) return;
  room[sentKey] = seq;
  const key = `${room.id}:${kind}`;
  if (receiptTimers.has(key)) return;
  receiptTimers.set(
    key,
    setTimeout(() => {
      receiptTimers.delete(key);
      const upTo = room[sentKey];
      const frame = { type: "receipt", room: room.id, kind, seq: upTo };
      if (!connection.send(frame)) {
        api("POST", `/rooms/${room.id}/receipts`, { kind, seq: upTo })
          .then(() => {
            room[markerKey] = Math.max(room[markerKey], upTo);
          })
          .catch(() => {
            room[sentKey] = 0; // try again on the next occasion
          });
      }
    }, 50),
  );
}

function markVisibleRead() {
  const room = current;
  if (!room || document.visibilityState !== "visible" || !document.hasFocus()) return;
  const scroller = $("scroller");
  const box = scroller.getBoundingClientRect();
  const items = $("messages").children;
  for (let i = items.length - 1; i >= 0; i--) {
    const el = items[i];
    if (!el.dataset.seq || el.classList.contains("own")) continue;
    const rect = el.getBoundingClientRect();
    if (rect.top < box.bottom && rect.bottom > box.top) {
      const seq = Number(el.dataset.seq);
      if (seq > room.read_seq && seq > room.readSent) {
        receipt(room, "read", seq);
        recountUnread(room);
        renderRooms();
      }
      return;
    }
  }
}

// -- frames from the server ------------------------------------------------------------------

function onFrame(frame) {
  switch (frame.type) {
    case "message.new":
    case "message.ack": {
      const message = frame.message;
      const room = rooms.get(message.room);
      if (!room) {
        // A room this tab does not know yet (just joined): keep the message for when the
        // room list arrives, so it is delivered (and receipted) like any other.
        if (!orphans.has(message.room)) orphans.set(message.room, []);
        orphans.get(message.room).push(message);
        refreshRoomsSoon();
        return;
      }
      takeMessages(room, [message]);
      break;
    }
    case "receipt": {
      const room = rooms.get(frame.room);
      if (!room || frame.user !== me.id) return;
      if (frame.kind === "read") {
        room.read_seq = Math.max(room.read_seq, frame.seq);
        room.delivered_seq = Math.max(room.delivered_seq, frame.seq);
        recountUnread(room);
      } else {
        room.delivered_seq = Math.max(room.delivered_seq, frame.seq);
      }
      break;
    }
    case "watermark": {
      const room = rooms.get(frame.room);
      if (room) room.watermark = maxWatermark(room.watermark, frame);
      break;
    }
    case "typing": {
      const room = rooms.get(frame.room);
      if (!room || frame.user === me.id) return;
      if (frame.state === "start") {
        clearTimeout(room.typing.get(frame.user));
        room.typing.set(
          frame.user,
          setTimeout(() => {
            stopShowingTyping(room, frame.user);
            render();
          }, TYPING_SHOWN_MS),
        );
      } else stopShowingTyping(room, frame.user);
      break;
    }
    case "presence": {
      rememberPerson({ id: frame.user, status: frame.status, last_seen: frame.last_seen });
      for (const room of rooms.values()) {
        for (const member of room.members || []) {
          if (member.id === frame.user) Object.assign(member, people.get(frame.user));
        }
      }
      break;
    }
    case "room.updated":
      if (!rooms.has(frame.room.id)) refreshRoomsSoon(); // a new room: its members' presence
      upsertRoom(frame.room);
      break;
    case "room.removed":
      dropRoom(typeof frame.room === "object" ? frame.room.id : frame.room);
      break;
    case "error": {
      const waiter = frame.ref && pendingAcks.get(frame.ref);
      if (waiter) waiter.reject(frame);
      else console.warn("linkup:", frame.code, frame.detail);
      break;
    }
    default:
      return; // pong, sync.result (answered by request()), and types we do not know
  }
  render();
}

function stopShowingTyping(room, user) {
  clearTimeout(room.typing.get(user));
  room.typing.delete(user);
}

// -- connection ------------------------------------------------------------------------------

const STATE_TEXT = {
  connecting: "Connecting…",
  online: "Online",
  reconnecting: "Reconnecting…",
  fallback: "No live connection: using HTTP",
  offline: "Offline: messages will be sent later",
};

function stateChanged(state) {
  if (state !== "online") {
    // Sends in flight on a socket that is gone: resent (same client_id) when one is back.
    for (const waiter of [...pendingAcks.values()]) waiter.reject(null);
  }
  const el = $("conn");
  el.dataset.state = state;
  el.textContent = STATE_TEXT[state] || state;
  clearInterval(pollTimer);
  pollTimer = null;
  if (state === "fallback") {
    pollTimer = setInterval(() => pollOverHttp().catch(() => {}), POLL_MS);
    pollOverHttp().catch(() => {});
    flushOutbox();
  }
}

async function connected() {
  sendFocus();
  try {
    await loadRooms();
    await syncRooms();
  } catch (error) {
    console.warn("linkup: catch-up failed", error);
  }
  flushOutbox();
  // Receipts handed to a socket that then died may never have reached the server: start
  // again from the markers it confirmed.
  for (const room of rooms.values()) {
    room.readSent = room.read_seq;
    room.deliveredSent = room.delivered_seq;
    const others = room.seg.list().filter((m) => m.sender.id !== me.id);
    if (others.length) receipt(room, "delivered", others[others.length - 1].seq);
  }
  render();
}

function cursors() {
  const out = {};
  for (const [id, room] of rooms) out[id] = room.seg.hi != null ? room.seg.hi : room.delivered_seq;
  return out;
}

/** Catch up from the cursors held: the shown room to its end, the others one page each. */
async function syncRooms() {
  let wanted = cursors();
  for (let round = 0; round < 50 && Object.keys(wanted).length; round++) {
    const result = await connection.request({ type: "sync", cursors: wanted }, "sync.result");
    const more = applySync(result);
    wanted = {};
    if (current && more.includes(current.id)) wanted[current.id] = current.seg.hi;
  }
}

function applySync(result) {
  const more = [];
  const listed = new Set(result.room_ids);
  for (const id of rooms.keys()) if (!listed.has(id)) dropRoom(id);
  if (result.room_ids.some((id) => !rooms.has(id))) refreshRoomsSoon();
  for (const entry of result.rooms) {
    const room = rooms.get(entry.room);
    if (!room) continue;
    const mine = entry.markers && entry.markers[me.id];
    if (mine) {
      room.read_seq = Math.max(room.read_seq, mine.read_seq);
      room.delivered_seq = Math.max(room.delivered_seq, mine.delivered_seq);
    }
    room.watermark = maxWatermark(room.watermark, entry.watermark);
    if (entry.first_seq != null) room.first_seq = entry.first_seq;
    takeMessages(room, entry.messages);
    room.last_seq = Math.max(room.last_seq, entry.last_seq);
    if (entry.has_more && entry.messages.length) more.push(room.id);
  }
  render();
  return more;
}

async function pollOverHttp() {
  if (connection.state !== "fallback") return;
  const list = Object.entries(cursors()).map(([room, seq]) => `${room}:${seq}`);
  const result = await api("GET", `/sync?cursors=${encodeURIComponent(list.join(","))}`);
  applySync(result);
  flushOutbox();
}

function sendFocus() {
  const room = current && document.visibilityState === "visible" ? current.id : null;
  connection.send({ type: "focus", room });
}

// -- sending ---------------------------------------------------------------------------------

function compose(body) {
  if (!current) return;
  outbox.add({ client_id: newClientId(), room: current.id, body, queued_at: Date.now() });
  stopTyping();
  scrollToBottom();
  flushOutbox();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Send what the outbox holds, in order, one tab at a time. */
async function flushOutbox() {
  if (flushing) {
    flushAgain = true;
    return;
  }
  flushing = true;
  let stopped = false;
  try {
    do {
      flushAgain = false;
      stopped = false;
      await outbox.withLock(async () => {
        outbox.expire();
        for (const item of outbox.all()) {
          const fresh = outbox.get(item.client_id);
          if (!fresh || fresh.state !== "pending") continue; // sent meanwhile (another tab)
          if ((await sendOne(fresh)) === "stop") {
            stopped = true;
            return;
          }
        }
      });
    } while (flushAgain); // asked again meanwhile (say, the socket came back): go again
  } finally {
    flushing = false;
  }
  // Stopped on a live socket (an ack that never came): try again shortly, same client_ids.
  if (stopped && connection.ready) setTimeout(flushOutbox, 5000);
}

/** Send one outbox item until it is acknowledged or refused: "done", or "stop" (no transport). */
async function sendOne(item) {
  for (;;) {
    if (connection.ready) {
      const outcome = await sendOverSocket(item);
      if (outcome === "done" || outcome === "stop") return outcome;
      await sleep(outcome); // rate_limited or unavailable: wait as told, same client_id
    } else if (connection.state === "fallback") {
      const outcome = await sendOverHttp(item);
      if (outcome === "done" || outcome === "stop") return outcome;
      await sleep(outcome);
    } else {
      return "stop";
    }
  }
}

function sendOverSocket(item) {
  return new Promise((resolve) => {
    const finish = (outcome) => {
      clearTimeout(timer);
      pendingAcks.delete(item.client_id);
      resolve(outcome);
    };
    const timer = setTimeout(() => finish("stop"), ACK_TIMEOUT_MS); // resent on reconnect
    pendingAcks.set(item.client_id, {
      resolve: () => finish("done"),
      reject: (error) => {
        if (error && (error.code === "rate_limited" || error.code === "unavailable")) {
          finish(1000 * (error.retry_after_s || 1));
        } else if (error && error.code) {
          outbox.update(item.client_id, { state: "failed", error: error.detail || error.code });
          finish("done");
        } else finish("stop");
      },
    });
    const frame = { type: "message.send", room: item.room, client_id: item.client_id, body: item.body };
    if (!connection.send(frame)) finish("stop");
  });
}

async function sendOverHttp(item) {
  try {
    const message = await api("POST", `/rooms/${item.room}/messages`, {
      client_id: item.client_id,
      body: item.body,
    });
    const room = rooms.get(item.room);
    if (room) takeMessages(room, [message]);
    else outbox.remove(item.client_id);
    render();
    return "done";
  } catch (error) {
    if (!(error instanceof ApiError)) return "stop"; // the network: try again later
    if (error.status === 429 || error.status === 503) return 1000 * (error.retryAfter || 1);
    if (error.status >= 500) return "stop";
    outbox.update(item.client_id, { state: "failed", error: error.message });
    return "done";
  }
}

function retry(clientId) {
  outbox.update(clientId, { state: "pending", queued_at: Date.now(), error: undefined });
  flushOutbox();
}

// -- typing ----------------------------------------------------------------------------------

let typingRoom = null;
let typingSentAt = 0;
let typingIdle = null;

function typed() {
  if (!current) return;
  if ($("composer-input").value.trim() === "") {
    stopTyping();
    return;
  }
  const now = Date.now();
  if (typingRoom !== current.id || now - typingSentAt >= TYPING_REFRESH_MS) {
    if (typingRoom !== null && typingRoom !== current.id) stopTyping();
    if (connection.send({ type: "typing", room: current.id, state: "start" })) {
      typingRoom = current.id;
      typingSentAt = now;
    }
  }
  clearTimeout(typingIdle);
  typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(typingIdle);
  if (typingRoom !== null) connection.send({ type: "typing", room: typingRoom, state: "stop" });
  typingRoom = null;
  typingSentAt = 0;
}

// -- opening rooms and history ---------------------------------------------------------------

function firstSeq(room) {
  return Math.max(1, room.first_seq || 1);
}

async function openRoom(id) {
  const room = rooms.get(id);
  if (!room) return;
  if (current !== room) stopTyping();
  current = room;
  $("app").dataset.view = "room";
  sendFocus();
  render();
  const seg = room.seg;
  const complete = seg.hi === room.last_seq && (seg.size >= HISTORY_FIRST || seg.lo <= firstSeq(room));
  if (room.last_seq > 0 && !complete) {
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

function showList() {
  stopTyping();
  current = null;
  $("app").dataset.view = "list";
  sendFocus();
  render();
}

async function loadOlder() {
  const room = current;
  if (!room || room.loadingOlder || room.seg.lo == null || room.seg.lo <= firstSeq(room)) {
    return false;
  }
  room.loadingOlder = true;
  $("history-state").textContent = "Loading earlier messages…";
  try {
    const page = await api(
      "GET",
      `/rooms/${room.id}/messages?before_seq=${room.seg.lo}&limit=${HISTORY_MORE}`,
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
    room.loadingOlder = false;
  }
}

function scrollToBottom() {
  const scroller = $("scroller");
  requestAnimationFrame(() => {
    scroller.scrollTop = scroller.scrollHeight;
  });
  scroller.scrollTop = scroller.scrollHeight;
}

// -- drawing ---------------------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render() {
  renderRooms();
  renderConversation();
}

function otherMember(room) {
  if (room.kind !== "direct") return null;
  const other = (room.members || []).find((m) => m.id !== me.id);
  return other ? people.get(other.id) || other : null;
}

function typingNames(room) {
  return [...room.typing.keys()].map((id) => (people.get(id) || {}).username || "Someone");
}

function roomItems() {
  return [...rooms.values()].sort((a, b) =>
    (b.last_activity_at || "").localeCompare(a.last_activity_at || ""),
  );
}

const roomEls = new Map();

function renderRooms() {
  const list = $("rooms");
  const items = roomItems();
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
    const other = otherMember(room);
    button.dataset.room = room.id;
    button.setAttribute("aria-current", current === room ? "true" : "false");
    button.querySelector(".initial").textContent = name.slice(0, 1).toUpperCase();
    const dot = button.querySelector(".dot");
    dot.hidden = !(other && other.status === "online");
    dot.title = dot.hidden ? "" : "online";
    button.querySelector(".room-name").textContent = name;
    button.querySelector(".room-time").textContent = shortTime(
      room.last_message ? room.last_message.created_at : null,
    );
    const last = button.querySelector(".room-last");
    const typing = typingNames(room);
    const pending = outbox.forRoom(room.id);
    if (typing.length) {
      last.textContent = room.kind === "direct" ? "typing…" : typingText(typing);
      last.classList.add("typing");
    } else {
      last.classList.remove("typing");
      const message = pending.length ? { body: pending[pending.length - 1].body, mine: true } : room.last_message;
      if (!message) last.textContent = "";
      else {
        const mine = message.mine || (message.sender && message.sender.id === me.id);
        const who = mine ? "You: " : room.kind === "group" ? `${message.sender.username}: ` : "";
        last.textContent = who + message.body.split("\n")[0];
      }
    }
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

function renderConversation() {
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
  const typing = typingNames(room);
  let status;
  if (typing.length) status = room.kind === "direct" ? "typing…" : typingText(typing);
  else if (room.kind === "direct") status = presenceText(otherMember(room));
  else status = (room.members || []).map((m) => (m.id === me.id ? "You" : m.username)).join(", ");
  $("room-status").textContent = status;
  renderMessages();
}

const messageEls = new Map(); // `${sender}:${client_id}` -> li

function messageItems(room) {
  const confirmed = room.seg.list();
  const held = new Set(confirmed.filter((m) => m.sender.id === me.id).map((m) => m.client_id));
  const pending = outbox
    .forRoom(room.id)
    .filter((item) => !held.has(item.client_id))
    .map((item) => ({
      client_id: item.client_id,
      body: item.body,
      sender: { id: me.id, username: me.username },
      created_at: new Date(item.queued_at).toISOString(),
      seq: null,
      failed: item.state === "failed",
      error: item.error,
    }));
  return confirmed.concat(pending);
}

function renderMessages() {
  const list = $("messages");
  const room = current;
  if (!room) {
    list.replaceChildren();
    messageEls.clear();
    return;
  }
  const scroller = $("scroller");
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const items = messageItems(room);
  const keep = new Set();
  items.forEach((message, index) => {
    const key = `${room.id}:${message.sender.id}:${message.client_id}`;
    keep.add(key);
    let li = messageEls.get(key);
    const own = message.sender.id === me.id;
    if (!li) {
      li = el("li", own ? "msg own" : "msg");
      if (!own && room.kind === "group") li.append(el("span", "who", message.sender.username));
      li.append(el("span", "body", message.body));
      const meta = el("span", "meta");
      meta.append(el("time", "at"));
      if (own) meta.append(el("span", "tick"));
      li.append(meta);
      messageEls.set(key, li);
    }
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
      tick.title = status === "failed" && message.error ? `Not sent: ${message.error}` : TICK_LABELS[status];
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

// -- people, groups --------------------------------------------------------------------------

let searchTimer = null;

async function searchPeople(query, target, onPick) {
  target.replaceChildren();
  if (!query.trim()) {
    target.hidden = true;
    return;
  }
  const data = await api("GET", `/users?q=${encodeURIComponent(query.trim())}`);
  target.hidden = false;
  if (!data.users.length) target.append(el("li", "empty", "Nobody found."));
  for (const person of data.users) {
    rememberPerson(person);
    const li = el("li");
    onPick(li, person);
    target.append(li);
  }
}

async function startDirect(person) {
  const room = upsertRoom(await api("POST", "/rooms", { kind: "direct", members: [person.id] }));
  $("search").value = "";
  $("search-results").hidden = true;
  renderRooms();
  openRoom(room.id);
}

const picked = new Map(); // user id -> person, in the group dialog
let dialogMode = "create";

function openPeopleDialog(mode) {
  dialogMode = mode;
  picked.clear();
  $("people-dialog-title").textContent = mode === "create" ? "New group" : "Add people";
  $("people-ok").textContent = mode === "create" ? "Create" : "Add";
  $("group-name").hidden = $("group-name-label").hidden = mode !== "create";
  $("group-name").value = "";
  $("people-search").value = "";
  $("people-choices").replaceChildren();
  $("people-error").hidden = true;
  $("people-dialog").showModal();
  (mode === "create" ? $("group-name") : $("people-search")).focus();
}

function pickable(li, person) {
  const label = el("label");
  const box = el("input");
  box.type = "checkbox";
  box.checked = picked.has(person.id);
  box.addEventListener("change", () => {
    if (box.checked) picked.set(person.id, person);
    else picked.delete(person.id);
  });
  label.append(box, el("span", "", person.username));
  li.append(label);
}

async function confirmPeopleDialog() {
  const ids = [...picked.keys()];
  try {
    if (dialogMode === "create") {
      const name = $("group-name").value.trim();
      if (!name) throw new Error("A group needs a name.");
      const room = upsertRoom(await api("POST", "/rooms", { kind: "group", name, members: ids }));
      $("people-dialog").close();
      renderRooms();
      openRoom(room.id);
    } else if (current) {
      if (!ids.length) throw new Error("Pick someone to add.");
      upsertRoom(await api("POST", `/rooms/${current.id}/members`, { user_ids: ids }));
      $("people-dialog").close();
      render();
    }
  } catch (error) {
    $("people-error").textContent = error.message;
    $("people-error").hidden = false;
  }
}

// -- wiring ----------------------------------------------------------------------------------

function wire() {
  const input = $("composer-input");
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = input.value.trim();
    if (!body) return;
    input.value = "";
    compose(body);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  input.addEventListener("input", typed);
  $("back").addEventListener("click", showList);
  $("sign-out").form.addEventListener("submit", () => {
    leaving = true;
    connection.stop();
  });
  $("scroller").addEventListener("scroll", () => {
    if ($("scroller").scrollTop < 80) loadOlder();
    markVisibleRead();
  });
  $("search-form").addEventListener("submit", (event) => event.preventDefault());
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      searchPeople($("search").value, $("search-results"), (li, person) => {
        const button = el("button");
        button.type = "button";
        const avatar = el("span", "avatar");
        avatar.append(el("span", "initial", person.username.slice(0, 1).toUpperCase()));
        button.append(avatar, el("span", "room-name", person.username));
        button.append(el("span", "room-last", presenceText(person)));
        button.addEventListener("click", () => startDirect(person));
        li.append(button);
      }).catch(() => {});
    }, 200);
  });
  $("new-group").addEventListener("click", () => openPeopleDialog("create"));
  $("add-members").addEventListener("click", () => openPeopleDialog("add"));
  $("mute").addEventListener("click", async () => {
    const room = current;
    if (!room) return;
    const result = await api("POST", `/rooms/${room.id}/mute`, { muted: !room.muted }).catch(() => null);
    if (result && result.room === room.id) {
      room.muted = result.muted;
      render();
    }
  });
  $("people-search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      searchPeople($("people-search").value, $("people-choices"), pickable).catch(() => {});
    }, 200);
  });
  $("people-form").addEventListener("submit", (event) => {
    if (event.submitter && event.submitter.value === "ok") {
      event.preventDefault();
      confirmPeopleDialog();
    }
  });
  document.addEventListener("visibilitychange", () => {
    sendFocus();
    markVisibleRead();
  });
  window.addEventListener("focus", markVisibleRead);
}

// -- notifications (the bell) -----------------------------------------------------------------

const notes = new Map(); // id -> notification, newest first when drawn
let unreadNotes = 0;

function takeNote(note) {
  notes.set(note.id, note);
}

function renderBell() {
  const count = $("bell-count");
  count.hidden = unreadNotes <= 0;
  count.textContent = unreadNotes > 99 ? "99+" : String(unreadNotes);
  $("bell").setAttribute("aria-label", unreadNotes ? `Notifications, ${unreadNotes} unread` : "Notifications");
  const list = $("notifications");
  list.replaceChildren();
  const sorted = [...notes.values()].sort((a, b) => b.id - a.id).slice(0, 50);
  for (const note of sorted) {
    const li = document.createElement("li");
    li.dataset.id = String(note.id);
    li.dataset.read = String(note.read);
    const time = document.createElement("span");
    time.className = "n-time";
    time.textContent = shortTime(note.created_at);
    const title = document.createElement("span");
    title.className = "n-title";
    title.textContent = note.title;
    const body = document.createElement("span");
    body.className = "n-body";
    body.textContent = note.body;
    li.append(time, title, body);
    li.addEventListener("click", () => openNote(note));
    list.append(li);
  }
  $("no-notifications").hidden = sorted.length > 0;
}

function notesRead(ids) {
  for (const id of ids) {
    const note = notes.get(id);
    if (note && !note.read) note.read = true;
  }
  unreadNotes = Math.max(0, unreadNotes - ids.length);
  renderBell();
}

let arriving = null; // notifications that came while the list loads (they may be newer)

async function loadNotes() {
  arriving = arriving || [];
  const page = await api("GET", "/notifications?limit=50");
  for (const note of page.notifications) takeNote(note);
  // The count is the server's, plus what committed after it was read (higher ids).
  const newest = Math.max(0, ...page.notifications.map((n) => n.id));
  const later = (arriving || []).filter((n) => !n.read && n.id > newest);
  unreadNotes = page.unread_count + new Set(later.map((n) => n.id)).size;
  arriving = null;
  renderBell();
}

async function openNote(note) {
  if (!note.read) {
    notifier.send({ type: "notification.read", ids: [note.id] });
  }
  const room = note.data && note.data.room;
  if (room != null) {
    if (!rooms.has(room)) await loadRooms().catch(() => {});
    $("notifications-panel").hidden = true;
    $("bell").setAttribute("aria-expanded", "false");
    openRoom(room);
  }
}

const notifier = new Connection({
  url: config.notifications_socket,
  heartbeatS: config.heartbeat_s,
  firstS: config.reconnect_first_s,
  attempts: 1000, // no HTTP fallback for the bell: it keeps retrying, and reloads on return
  onFrame: (frame) => {
    if (frame.type === "notification") {
      const known = notes.get(frame.notification.id);
      takeNote(frame.notification);
      if (arriving) arriving.push(frame.notification);
      else if (!known && !frame.notification.read) unreadNotes += 1;
      renderBell();
    } else if (frame.type === "notification.read") {
      const fresh = frame.ids.filter((id) => !(notes.get(id) || {}).read);
      for (const id of frame.ids) {
        const note = notes.get(id);
        if (note) note.read = true;
      }
      unreadNotes = Math.max(0, unreadNotes - fresh.length);
      if (!fresh.length) return;
      renderBell();
      if (fresh.some((id) => !notes.has(id))) loadNotes().catch(() => {});
    }
  },
  onState: () => {},
  onHello: (hello) => {
    unreadNotes = hello.unread_count;
    loadNotes().catch(() => {
      arriving = null;
    });
  },
  onUnauthorized: signedOut,
});

// Web Push: the browser subscribes with the server's VAPID key; the service worker shows
// what arrives while no tab is open.
function vapidKey(base64url) {
  const padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

async function activeWorker(registration) {
  const worker = registration.installing || registration.waiting || registration.active;
  if (!worker || worker.state === "activated") return;
  await new Promise((resolve) => {
    worker.addEventListener("statechange", () => {
      if (worker.state === "activated") resolve();
    });
  });
}

async function enablePush() {
  const status = $("push-status");
  status.textContent = "Asking the browser…";
  try {
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
      throw new Error("this browser has no Web Push");
    }
    if ((await Notification.requestPermission()) !== "granted") {
      throw new Error("notifications are blocked for this site");
    }
    const registration = await navigator.serviceWorker.register(config.service_worker, {
      scope: config.service_worker_scope,
    });
    await activeWorker(registration);
    // A browser whose push service cannot be reached may never answer: give up plainly.
    const subscription = await Promise.race([
      registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: vapidKey(config.push_key),
      }),
      new Promise((_, reject) => {
        setTimeout(() => reject(new Error("the browser's push service did not answer")), PUSH_WAIT_MS);
      }),
    ]);
    await api("POST", "/push/subscriptions", subscription.toJSON());
    status.textContent = "Done: you will be notified here while Linkup is closed.";
  } catch (error) {
    status.textContent = `Push notifications are not available: ${error.message || error}`;
  }
}

function wireBell() {
  $("push-row").hidden = !config.push_key;
  $("push-enable").addEventListener("click", () => enablePush());
  $("bell").addEventListener("click", () => {
    const panel = $("notifications-panel");
    panel.hidden = !panel.hidden;
    $("bell").setAttribute("aria-expanded", String(!panel.hidden));
  });
  $("read-all").addEventListener("click", async () => {
    const result = await api("POST", "/notifications/read-all").catch(() => null);
    if (result) notesRead(result.ids);
  });
}

wire();
wireBell();
renderBell();
notifier.start();
outbox.expire(); // a week-old item shows ✗ at once, even offline
stateChanged("connecting");
loadRooms().catch(() => {});
connection.start();
render();

// For the browser tests and the curious: the live state, read-only by convention.
window.linkup = { rooms, people, outbox, connection, notes, notifier };
