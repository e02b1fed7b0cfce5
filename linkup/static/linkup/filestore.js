// The files of messages waiting in the outbox, in IndexedDB (localStorage holds only text):
// kept across reloads and offline, shared by the user's tabs, dropped once the message is
// sent or cancelled. Keyed `<user>:<client_id>:<index>`, each with the time it was kept, so
// one user's page never touches another's files on a shared browser.

import { objectStore } from "./idb.js";
import { me } from "./page.js";

const DB = "linkup-files";
const STORE = "files";
const SWEEP_AFTER_MS = 10 * 60 * 1000; // a file younger than this may be a send in progress

const run = objectStore(DB, STORE);

const prefix = (clientId) => `${me.id}:${clientId}:`;

/** Keep a message's files (Blobs or Files) until it is sent. */
export async function putFiles(clientId, files) {
  for (let i = 0; i < files.length; i++) {
    const entry = { file: files[i], at: Date.now() };
    await run("readwrite", (store) => store.put(entry, prefix(clientId) + i));
  }
}

export async function getFile(clientId, index) {
  const entry = await run("readonly", (store) => store.get(prefix(clientId) + index));
  return entry ? entry.file : undefined;
}

/** Forget a message's files (sent, cancelled or refused). */
export function dropFiles(clientId) {
  const range = IDBKeyRange.bound(prefix(clientId), `${prefix(clientId)}\uffff`);
  return run("readwrite", (store) => store.delete(range)).catch(() => {});
}

/** Forget this user's files that no queued message names (a tab closed between a send and
 * its drop), but none kept in the last minutes (another tab may be queueing it now). */
export async function sweepFiles(queuedIds, now = Date.now()) {
  const keep = new Set(queuedIds);
  const mine = IDBKeyRange.bound(`${me.id}:`, `${me.id}:\uffff`);
  const keys = await run("readonly", (store) => store.getAllKeys(mine)).catch(() => []);
  for (const key of keys) {
    const clientId = String(key).split(":")[1];
    if (keep.has(clientId)) continue;
    const entry = await run("readonly", (store) => store.get(key)).catch(() => null);
    if (entry && now - entry.at < SWEEP_AFTER_MS) continue;
    await run("readwrite", (store) => store.delete(key)).catch(() => {});
  }
}
