// Recent conversations kept in IndexedDB (snapshot.js says what): saved a moment after they
// change, read back when the room list cannot be fetched (offline), so the app opens with
// the last messages of recent chats; dropped on signing out. Keyed by user: one person's
// never shows to another on a shared browser.

import { objectStore } from "./idb.js";
import { me } from "./page.js";
import { snapshotOf } from "./snapshot.js";

const DB = "linkup-snapshot";
const STORE = "snapshots";
const SAVE_AFTER_MS = 2000;

const run = objectStore(DB, STORE);
let timer = null;
let forgotten = false; // signing out: nothing more is kept

/** Save what the app holds soon: one write for the changes of the next moment (at most
 * one every SAVE_AFTER_MS, however busy the chats). */
export function saveSoon(rooms) {
  if (timer || forgotten) return;
  timer = setTimeout(async () => {
    timer = null;
    const previous = await readSnapshot();
    const snapshot = snapshotOf(rooms.values(), { previous });
    if (forgotten || !snapshot.rooms.length) return;
    run("readwrite", (store) => store.put(snapshot, me.id)).catch(() => {});
  }, SAVE_AFTER_MS);
}

/** The kept snapshot of this user's recent conversations, or null. */
export function readSnapshot() {
  return run("readonly", (store) => store.get(me.id)).catch(() => null);
}

/** Signing out: forget this user's snapshot and the app shell the worker keeps. */
export function forgetAll() {
  forgotten = true;
  clearTimeout(timer);
  timer = null;
  run("readwrite", (store) => store.delete(me.id)).catch(() => {});
  if ("serviceWorker" in navigator && navigator.serviceWorker.controller) {
    navigator.serviceWorker.controller.postMessage({ type: "forget" });
  }
}

/** Register the service worker (it keeps the app for offline use and shows Web Push), and
 * unregister an older version's, which lived under the static files and only pushed. */
export function registerWorker(config) {
  if (!("serviceWorker" in navigator) || !config.service_worker) return;
  navigator.serviceWorker
    .register(config.service_worker, { scope: config.service_worker_scope })
    .catch(() => {});
  navigator.serviceWorker
    .getRegistrations()
    .then((all) => {
      for (const registration of all) {
        const legacy = config.legacy_worker_scope;
        if (legacy && registration.scope.endsWith(legacy)) registration.unregister();
      }
    })
    .catch(() => {});
}
