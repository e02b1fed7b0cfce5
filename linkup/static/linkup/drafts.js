// What a person has typed and not sent, per room: kept in the browser's storage (so it
// survives a reload and is shared by the person's tabs), put back when the room opens,
// dropped when it is sent. A draft belongs to one room and one person: the composer never
// carries text from one room into another.
//
// Pure apart from the storage it is given (localStorage in the page; a Map in the tests).

const PREFIX = "linkup:draft:";
// The composer's own limit: a draft is never longer than what could be sent.
export const DRAFT_MAX = 4000;
// A draft untouched this long is forgotten (a week, like the outbox).
export const DRAFT_TTL_MS = 7 * 24 * 3600 * 1000;

export class Drafts {
  /** `storage`: getItem, setItem, removeItem, key(i) and length, as Web Storage has them. */
  constructor(storage, userId, now = () => Date.now()) {
    this.storage = storage;
    this.prefix = `${PREFIX}${userId}:`;
    this.now = now;
  }

  /** The draft of a room, "" when there is none (or it is too old, or storage failed). */
  get(room) {
    const entry = this.#read(this.prefix + room);
    return entry ? entry.text : "";
  }

  /** Keep `text` as the room's draft; blank text drops it. False if storage refused it. */
  set(room, text) {
    const key = this.prefix + room;
    if (!text.trim()) return this.clear(room);
    try {
      this.storage.setItem(key, JSON.stringify({ text: text.slice(0, DRAFT_MAX), at: this.now() }));
      return true;
    } catch {
      return false; // full, or storage is off (private windows): the text stays in the box
    }
  }

  clear(room) {
    try {
      this.storage.removeItem(this.prefix + room);
      return true;
    } catch {
      return false;
    }
  }

  /** Forget the drafts of rooms not in `keep` (rooms left or removed). */
  prune(keep) {
    for (const key of this.#keys()) {
      if (keep.has(Number(key.slice(this.prefix.length)))) continue;
      try {
        this.storage.removeItem(key);
      } catch {
        // storage is off: nothing was kept
      }
    }
  }

  #keys() {
    const keys = [];
    try {
      for (let i = 0; i < this.storage.length; i++) {
        const key = this.storage.key(i);
        if (key && key.startsWith(this.prefix) && /^\d+$/.test(key.slice(this.prefix.length))) {
          keys.push(key);
        }
      }
    } catch {
      // storage is off: no drafts
    }
    return keys;
  }

  #read(key) {
    let entry;
    try {
      entry = JSON.parse(this.storage.getItem(key));
    } catch {
      entry = null;
    }
    if (!entry || typeof entry.text !== "string" || typeof entry.at !== "number") return null;
    if (this.now() - entry.at > DRAFT_TTL_MS) {
      try {
        this.storage.removeItem(key);
      } catch {
        // nothing to do
      }
      return null;
    }
    return entry;
  }
}

/** The page's localStorage, or a MemoryStorage where it is refused (some private modes). */
export function browserStorage() {
  try {
    const storage = globalThis.localStorage;
    if (storage) return storage;
  } catch {
    // SecurityError
  }
  return new MemoryStorage();
}

/** A Web Storage lookalike over a Map (for the tests, and where storage is missing). */
export class MemoryStorage {
  #items = new Map();
  get length() {
    return this.#items.size;
  }
  key(i) {
    return [...this.#items.keys()][i] ?? null;
  }
  getItem(key) {
    return this.#items.has(key) ? this.#items.get(key) : null;
  }
  setItem(key, value) {
    this.#items.set(key, String(value));
  }
  removeItem(key) {
    this.#items.delete(key);
  }
}
