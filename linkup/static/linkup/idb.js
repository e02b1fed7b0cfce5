// One object store in IndexedDB, opened once when first used: `run(mode, work)` runs
// `work(store)` (which makes one request) in a transaction and answers its result.

export function objectStore(name, store) {
  let opened = null;
  const db = () => {
    if (!opened) {
      opened = new Promise((resolve, reject) => {
        const request = indexedDB.open(name, 1);
        request.onupgradeneeded = () => {
          if (!request.result.objectStoreNames.contains(store)) request.result.createObjectStore(store);
        };
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    }
    return opened;
  };
  return async function run(mode, work) {
    const objects = (await db()).transaction(store, mode).objectStore(store);
    return new Promise((resolve, reject) => {
      const request = work(objects);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  };
}
