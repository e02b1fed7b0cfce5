// The files of messages waiting in the outbox, in IndexedDB (localStorage holds only text):
// kept across reloads and offline, shared by the user's tabs, dropped once the message is
// sent or cancelled. Keyed `<client_id>:<index>`.

const DB = "linkup-files";
const STORE = "files";

let opened = null;

function db() {
  if (!opened) {
    opened = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opened;
}

async function run(mode, work) {
  const store = (await db()).transaction(STORE, mode).objectStore(STORE);
  return new Promise((resolve, reject) => {
    const request = work(store);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Keep a message's files (Blobs or Files) until it is sent. */
export async function putFiles(clientId, files) {
  for (let i = 0; i < files.length; i++) {
    await run("readwrite", (store) => store.put(files[i], `${clientId}:${i}`));
  }
}

export function getFile(clientId, index) {
  return run("readonly", (store) => store.get(`${clientId}:${index}`));
}

/** Forget a message's files (sent, cancelled or refused). */
export function dropFiles(clientId) {
  const range = IDBKeyRange.bound(`${clientId}:`, `${clientId}:\uffff`);
  return run("readwrite", (store) => store.delete(range)).catch(() => {});
}

/** Forget every file no queued message names (a tab closed between a send and its drop). */
export async function sweepFiles(queuedIds) {
  const keep = new Set(queuedIds);
  const keys = await run("readonly", (store) => store.getAllKeys()).catch(() => []);
  for (const key of keys) {
    const clientId = String(key).split(":")[0];
    if (!keep.has(clientId)) await run("readwrite", (store) => store.delete(key)).catch(() => {});
  }
}
