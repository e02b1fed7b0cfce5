// Sending: what the user writes goes to the outbox first (localStorage, shared by tabs) and is
// drawn at once with a clock; the outbox is flushed in order, one tab at a time, over the
// socket or (in fallback) HTTP, and the ack, matched by client_id, turns it into the real
// message. Also the typing indicator I send.

import { ApiError, api } from "./api.js";
import { changeFrame, changeRequest, isSend } from "./changes.js";
import { applyAck } from "./merge.js";
import { httpSendOutcome, newClientId, socketSendOutcome } from "./model.js";
import { Outbox } from "./outbox.js";
import { $, me } from "./page.js";
import { render, renderMessages, renderRooms, scrollToBottom, showNotice } from "./render.js";
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

/** Send `body` to the shown room, as a reply when `quote` (the original's) is given. */
export function compose(body, quote = null) {
  if (!current) return;
  const item = { client_id: newClientId(), room: current.id, body, queued_at: Date.now() };
  if (quote) Object.assign(item, { reply_to: quote.seq, quote });
  outbox.add(item);
  stopTyping();
  scrollToBottom();
  flushOutbox();
}

/**
 * Change a sent message: {kind: "edit", body} | {kind: "delete", scope} | {kind: "reaction",
 * emoji, react: "add" | "remove"}. Queued like a send (shown at once, kept offline, sent in order), with a
 * client_id of its own so a resend is harmless.
 */
export function queueChange(room, seq, change) {
  outbox.add({ client_id: newClientId(), room, seq, queued_at: Date.now(), ...change });
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
          refused(item, error.detail || error.code);
          finish("done");
        } else finish(outcome);
      },
    });
    if (!connection.send(wireFrame(item))) finish("stop");
  });
}

function wireFrame(item) {
  if (!isSend(item)) return changeFrame(item);
  const frame = { type: "message.send", room: item.room, client_id: item.client_id, body: item.body };
  if (item.reply_to != null) frame.reply_to = item.reply_to;
  return frame;
}

/** Refused for good: a send stays with ✗ and Retry; a change is dropped and says why. */
function refused(item, why) {
  if (isSend(item)) {
    outbox.update(item.client_id, { state: "failed", error: why });
    return;
  }
  outbox.remove(item.client_id);
  const what = { edit: "edit", delete: "delete", reaction: "react to" }[item.kind];
  showNotice(`Could not ${what} the message: ${why}`);
}

/** A change acknowledged (over either transport): the message as I now see it. */
export function changeDone(clientId, message) {
  const room = rooms.get(message.room);
  if (room) applyAck(room, message);
  outbox.remove(clientId);
  const waiter = pendingAcks.get(clientId);
  if (waiter) waiter.resolve(message);
}

async function sendOverHttp(item) {
  try {
    if (!isSend(item)) {
      const { method, path, body } = changeRequest(item);
      changeDone(item.client_id, await api(method, path, body));
      render();
      return "done";
    }
    const body = { client_id: item.client_id, body: item.body };
    if (item.reply_to != null) body.reply_to = item.reply_to;
    const message = await api("POST", `/rooms/${item.room}/messages`, body);
    const room = rooms.get(item.room);
    if (room) takeMessages(room, [message]);
    else outbox.remove(item.client_id);
    render();
    return "done";
  } catch (error) {
    if (!(error instanceof ApiError)) return "stop"; // the network: try again later
    const outcome = httpSendOutcome(error.status, error.retryAfter);
    if (outcome !== "failed") return outcome;
    refused(item, error.message);
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
