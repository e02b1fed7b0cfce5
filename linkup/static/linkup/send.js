// Sending: what the user writes goes to the outbox first (localStorage, shared by tabs) and is
// drawn at once with a clock; the outbox is flushed in order, one tab at a time, over the
// socket or (in fallback) HTTP, and the ack, matched by client_id, turns it into the real
// message. Also the typing indicator I send.

import { ApiError, api } from "./api.js";
import { httpSendOutcome, newClientId, socketSendOutcome } from "./model.js";
import { Outbox } from "./outbox.js";
import { $, me } from "./page.js";
import { render, renderMessages, renderRooms, scrollToBottom } from "./render.js";
import { current, rooms, takeMessages } from "./store.js";
import { connection } from "./sync.js";

const ACK_TIMEOUT_MS = 15000;
const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 1000;

export const pendingAcks = new Map(); // client_id -> {resolve, reject}
let flushing = false;
let flushAgain = false;

export const outbox = new Outbox(me.id, () => {
  renderRooms();
  renderMessages();
});

export function compose(body) {
  if (!current) return;
  outbox.add({ client_id: newClientId(), room: current.id, body, queued_at: Date.now() });
  stopTyping();
  scrollToBottom();
  flushOutbox();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Send what the outbox holds, in order, one tab at a time. */
export async function flushOutbox() {
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
        const outcome = socketSendOutcome(error);
        if (outcome === "failed") {
          outbox.update(item.client_id, { state: "failed", error: error.detail || error.code });
          finish("done");
        } else finish(outcome);
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
    const outcome = httpSendOutcome(error.status, error.retryAfter);
    if (outcome !== "failed") return outcome;
    outbox.update(item.client_id, { state: "failed", error: error.message });
    return "done";
  }
}

/** Send a failed message again (same client_id). */
export function retry(clientId) {
  outbox.update(clientId, { state: "pending", queued_at: Date.now(), error: undefined });
  flushOutbox();
}

// -- typing ----------------------------------------------------------------------------------

let typingRoom = null;
let typingSentAt = 0;
let typingIdle = null;

/** The composer changed: say I am typing (at most every few seconds), or that I stopped. */
export function typed() {
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

export function stopTyping() {
  clearTimeout(typingIdle);
  if (typingRoom !== null) connection.send({ type: "typing", room: typingRoom, state: "stop" });
  typingRoom = null;
  typingSentAt = 0;
}
