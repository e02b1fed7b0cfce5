// The notifications bell: its own socket (no HTTP fallback), the panel's list and unread
// count, and Web Push for when no tab is open.

import { api, signedOut } from "./api.js";
import { Connection } from "./connection.js";
import { bellCount, bellLabel, noteTitle, recentNotes } from "./format.js";
import { gettext } from "./i18n.js";
import { readNotes, unreadAfterLoad } from "./merge.js";
import { roomName, shortTime, vapidKey } from "./model.js";
import { openRoom } from "./navigate.js";
import { $, config, el, me } from "./page.js";
import { loadRooms, people, rooms } from "./store.js";

const PUSH_WAIT_MS = (config.push_wait_s || 15) * 1000;

export const notes = new Map(); // id -> notification, newest first when drawn
let unreadNotes = 0;
let arriving = null; // notifications that came while the list loads (they may be newer)
// Notifications that came while the tab was out of sight are not seen (the server leaves
// them to Web Push and email): loading the list once the tab is back in sight sees them.
let cameHidden = false;

export const notifier = new Connection({
  url: config.notifications_socket,
  heartbeatS: config.heartbeat_s,
  firstS: config.reconnect_first_s,
  attempts: 1000, // no HTTP fallback for the bell: it keeps retrying, and reloads on return
  onFrame: (frame) => {
    if (frame.type === "notification") {
      if (document.visibilityState !== "visible") cameHidden = true;
      const known = notes.get(frame.notification.id);
      takeNote(frame.notification);
      if (arriving) arriving.push(frame.notification);
      else if (!known && !frame.notification.read) unreadNotes += 1;
      renderBell();
    } else if (frame.type === "notification.read") {
      const fresh = readNotes(notes, frame.ids);
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

function takeNote(note) {
  notes.set(note.id, note);
}

function titleOf(note) {
  return noteTitle(note, people, (id) => (rooms.has(id) ? roomName(rooms.get(id), me.id) : null));
}

export function renderBell() {
  const count = $("bell-count");
  count.hidden = unreadNotes <= 0;
  count.textContent = bellCount(unreadNotes);
  $("bell").setAttribute("aria-label", bellLabel(unreadNotes));
  const list = $("notifications");
  list.replaceChildren();
  const sorted = recentNotes(notes);
  for (const note of sorted) {
    const li = el("li");
    li.dataset.id = String(note.id);
    li.dataset.read = String(note.read);
    li.append(
      el("span", "n-time", shortTime(note.created_at)),
      el("span", "n-title", titleOf(note)),
      el("span", "n-body", note.body),
    );
    li.addEventListener("click", () => openNote(note));
    list.append(li);
  }
  $("no-notifications").hidden = sorted.length > 0;
}

async function loadNotes() {
  arriving = arriving || [];
  const page = await api("GET", "/notifications?limit=50");
  for (const note of page.notifications) takeNote(note);
  // The count is the server's, plus what committed after it was read (higher ids).
  unreadNotes = unreadAfterLoad(page, arriving);
  arriving = null;
  renderBell();
}

async function acceptInvitation(note, room) {
  const listed = await api("GET", "/invitations").catch(() => null);
  const invitation = listed && listed.invitations.find((one) => one.room.id === room);
  if (!invitation) return false; // accepted or declined already, elsewhere
  const question = gettext("%(title)s. Join the group?", { title: titleOf(note) });
  if (!window.confirm(question)) return false;
  await api("POST", `/invitations/${invitation.id}/accept`);
  await loadRooms().catch(() => {});
  return true;
}

async function openNote(note) {
  if (!note.read) {
    notifier.send({ type: "notification.read", ids: [note.id] });
  }
  const room = note.data && note.data.room;
  if (note.kind === "invited" && room != null && !rooms.has(room)) {
    // An invitation (the person chose who may add them): joining is their decision.
    if (!(await acceptInvitation(note, room))) return;
  }
  if (room != null) {
    if (!rooms.has(room)) await loadRooms().catch(() => {});
    $("notifications-panel").hidden = true;
    $("bell").setAttribute("aria-expanded", "false");
    openRoom(room);
  }
}

// Web Push: the browser subscribes with the server's VAPID key; the service worker shows
// what arrives while no tab is open.
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
  status.textContent = gettext("Asking the browser…");
  try {
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
      throw new Error(gettext("this browser has no Web Push"));
    }
    if ((await Notification.requestPermission()) !== "granted") {
      throw new Error(gettext("notifications are blocked for this site"));
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
        const late = gettext("the browser's push service did not answer");
        setTimeout(() => reject(new Error(late)), PUSH_WAIT_MS);
      }),
    ]);
    await api("POST", "/push/subscriptions", subscription.toJSON());
    status.textContent = gettext("Done: you will be notified here while Linkup is closed.");
  } catch (error) {
    status.textContent = gettext("Push notifications are not available: %(reason)s", {
      reason: error.message || error,
    });
  }
}

export function wireBell() {
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible" || !cameHidden) return;
    cameHidden = false;
    loadNotes().catch(() => {});
  });
  $("push-row").hidden = !config.push_key;
  $("push-enable").addEventListener("click", () => enablePush());
  $("bell").addEventListener("click", () => {
    const panel = $("notifications-panel");
    panel.hidden = !panel.hidden;
    $("bell").setAttribute("aria-expanded", String(!panel.hidden));
  });
  $("read-all").addEventListener("click", async () => {
    const result = await api("POST", "/notifications/read-all").catch(() => null);
    if (result) {
      // Counted down by all the ids (the server's answer), not only those held here.
      readNotes(notes, result.ids);
      unreadNotes = Math.max(0, unreadNotes - result.ids.length);
      renderBell();
    }
  });
}
