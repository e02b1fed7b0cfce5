// Sending: what the user writes goes to the outbox first (localStorage, shared by tabs) and is
// drawn at once with a clock; the outbox is flushed in order, one tab at a time, over the
// socket or (in fallback) HTTP, and the ack, matched by client_id, turns it into the real
// message. Also the typing indicator I send.

import { ApiError, api } from "./api.js";
import { uploadStep } from "./attachments.js";
import { changeFrame, changeRequest, isSend } from "./changes.js";
import { dropFiles, getFile, putFiles } from "./filestore.js";
import { gettext } from "./i18n.js";
import { applyAck } from "./merge.js";
import { httpSendOutcome, newClientId, socketSendOutcome } from "./model.js";
import { Outbox } from "./outbox.js";
import { $, me } from "./page.js";
import { render, renderMessages, renderRooms, scrollToBottom, showNotice } from "./render.js";
import { current, rooms, takeMessages } from "./store.js";
import { connection } from "./sync.js";
import { uploadFile } from "./upload.js";

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

/**
 * Send `body` to the shown room, as a reply when `quote` (the original's) is given, with
 * `files` (Files or Blobs, each {name, duration_s?} in `meta`) kept in IndexedDB until sent.
 */
export async function compose(body, quote = null, files = [], meta = []) {
  if (!current) return;
  const item = { client_id: newClientId(), room: current.id, body, queued_at: Date.now() };
  if (quote) Object.assign(item, { reply_to: quote.seq, quote });
  if (files.length) {
    item.files = files.map((file, i) => ({
      name: (meta[i] && meta[i].name) || file.name || "file",
      size: file.size,
      type: file.type || "",
      ...(meta[i] && meta[i].duration_s != null ? { duration_s: meta[i].duration_s } : {}),
    }));
    item.uploads = [];
    try {
      await putFiles(item.client_id, files);
    } catch {
      showNotice(gettext("The files could not be kept on this device to send."));
      return;
    }
  }
  outbox.add(item);
  stopTyping();
  scrollToBottom();
  flushOutbox();
}

// -- files: uploaded before their message is sent ------------------------------------------

export const progress = new Map(); // client_id -> [fraction uploaded, per file]
const uploading = new Map(); // client_id -> AbortController of the upload under way

/** Stop a queued message with files (or drop a failed one): nothing of it is sent. */
export function cancelSend(clientId) {
  const controller = uploading.get(clientId);
  if (controller) controller.abort();
  outbox.remove(clientId);
  progress.delete(clientId);
  dropFiles(clientId);
}

let drawing = false;
function drawSoon() {
  if (drawing) return;
  drawing = true;
  requestAnimationFrame(() => {
    drawing = false;
    renderMessages();
  });
}

/** Upload a queued message's files not uploaded yet: "ready", "done" (refused or cancelled:
 * no send) or "stop" (no network: try again later). */
async function uploadFiles(item) {
  for (;;) {
    const fresh = outbox.get(item.client_id);
    if (!fresh) return "done"; // cancelled
    const { next } = uploadStep(fresh);
    if (next == null) return "ready";
    const blob = await getFile(fresh.client_id, next).catch(() => undefined);
    if (!blob) {
      refused(fresh, gettext("its file is no longer on this device"));
      return "done";
    }
    const controller = new AbortController();
    uploading.set(fresh.client_id, controller);
    try {
      const shares = progress.get(fresh.client_id) || fresh.files.map(() => 0);
      progress.set(fresh.client_id, shares);
      const upload = await uploadFile(blob, fresh.files[next], (fraction) => {
        shares[next] = fraction;
        drawSoon();
      }, controller.signal);
      const now = outbox.get(fresh.client_id);
      if (!now) return "done";
      const uploads = [...(now.uploads || [])];
      uploads[next] = upload.id;
      outbox.update(fresh.client_id, { uploads });
    } catch (error) {
      if (error && error.name === "AbortError") return "done";
      if (!(error instanceof ApiError)) return "stop";
      const outcome = httpSendOutcome(error.status, error.retryAfter);
      if (outcome === "failed") {
        refused(fresh, error.message);
        return "done";
      }
      if (outcome === "stop") return "stop";
      await sleep(outcome);
    } finally {
      uploading.delete(fresh.client_id);
    }
  }
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
          if (fresh.files && !outbox.get(fresh.client_id)) {
            progress.delete(fresh.client_id); // sent: its files are the server's now
            dropFiles(fresh.client_id);
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
async function sendOne(queued) {
  let item = queued;
  if (item.files && item.files.length) {
    if (!connection.ready && connection.state !== "fallback") return "stop";
    const state = await uploadFiles(item);
    if (state !== "ready") return state;
    item = outbox.get(item.client_id);
    if (!item) return "done";
  }
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
  const { attachments } = uploadStep(item);
  if (attachments && attachments.length) frame.attachments = attachments;
  return frame;
}

/** Refused for good: a send stays with ✗ and Retry; a change is dropped and says why. */
function refused(item, why) {
  if (isSend(item)) {
    // Its uploads may be what was refused (expired while it waited): Retry uploads again.
    const again = item.files && item.files.length ? { uploads: [] } : {};
    outbox.update(item.client_id, { state: "failed", error: why, ...again });
    return;
  }
  outbox.remove(item.client_id);
  const text = {
    edit: gettext("Could not edit the message: %(reason)s"),
    delete: gettext("Could not delete the message: %(reason)s"),
    reaction: gettext("Could not react to the message: %(reason)s"),
  }[item.kind];
  showNotice(text.replace("%(reason)s", why));
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
    const { attachments } = uploadStep(item);
    if (attachments && attachments.length) body.attachments = attachments;
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
