// outbox.js against a fake localStorage and window (what a browser gives it).
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { EXPIRY_MS, Outbox } from "../../linkup/static/linkup/outbox.js";

class FakeStorage {
  constructor() {
    this.map = new Map();
  }
  get length() {
    return this.map.size;
  }
  key(i) {
    return [...this.map.keys()][i] ?? null;
  }
  getItem(key) {
    return this.map.has(key) ? this.map.get(key) : null;
  }
  setItem(key, value) {
    this.map.set(key, String(value));
  }
  removeItem(key) {
    this.map.delete(key);
  }
}

let listeners;
let changes;

beforeEach(() => {
  listeners = [];
  changes = 0;
  globalThis.localStorage = new FakeStorage();
  globalThis.window = { addEventListener: (type, fn) => listeners.push({ type, fn }) };
});

const make = (user = 1) => new Outbox(user, () => changes++);

test("add keeps items per user, pending, oldest first, each under its own key", () => {
  const box = make();
  box.add({ client_id: "b", room: 1, body: "second", queued_at: 20 });
  box.add({ client_id: "a", room: 1, body: "first", queued_at: 10 });
  box.add({ client_id: "c", room: 2, body: "same time", queued_at: 20 });
  assert.equal(changes, 3);
  assert.deepEqual(box.all().map((i) => i.client_id), ["a", "b", "c"], "by time, then by order");
  assert.equal(box.get("a").state, "pending");
  assert.ok(localStorage.getItem("linkup:outbox:1:a"));
  assert.deepEqual(box.forRoom(2).map((i) => i.client_id), ["c"]);
  assert.deepEqual(make(2).all(), [], "another user's outbox is apart");
  // Another tab's item queued in the same millisecond but earlier: its order puts it first.
  const other = { client_id: "x", room: 1, body: "other tab", queued_at: 20, order: -1 };
  localStorage.setItem("linkup:outbox:1:x", JSON.stringify(other));
  assert.deepEqual(box.all().map((i) => i.client_id), ["a", "x", "b", "c"]);
});

test("update patches an item; remove drops it and says so only when it was there", () => {
  const box = make();
  box.add({ client_id: "a", room: 1, body: "x", queued_at: 1 });
  box.update("a", { state: "failed", error: "nope" });
  assert.deepEqual(
    { state: box.get("a").state, error: box.get("a").error, body: box.get("a").body },
    { state: "failed", error: "nope", body: "x" },
  );
  box.update("missing", { state: "failed" });
  assert.equal(box.get("missing"), undefined);
  const before = changes;
  box.remove("a");
  assert.equal(changes, before + 1);
  assert.equal(box.get("a"), undefined);
  box.remove("a");
  assert.equal(changes, before + 1, "removing what is gone changes nothing");
});

test("damaged entries are skipped, never fatal", () => {
  const box = make();
  localStorage.setItem("linkup:outbox:1:bad", "{not json");
  localStorage.setItem("linkup:outbox:1:empty", JSON.stringify({ body: "no client_id" }));
  box.add({ client_id: "ok", room: 1, body: "x", queued_at: 1 });
  assert.deepEqual(box.all().map((i) => i.client_id), ["ok"]);
  assert.equal(box.get("bad"), undefined);
});

test("expire fails pending items older than a week, and only those", () => {
  const box = make();
  const now = 10 * EXPIRY_MS;
  box.add({ client_id: "old", room: 1, body: "x", queued_at: now - EXPIRY_MS - 1 });
  box.add({ client_id: "edge", room: 1, body: "x", queued_at: now - EXPIRY_MS });
  box.add({ client_id: "new", room: 1, body: "x", queued_at: now - 1000 });
  box.add({ client_id: "gone", room: 1, body: "x", queued_at: 0, state: "failed" });
  assert.equal(box.expire(now), 1);
  assert.equal(box.get("old").state, "failed");
  assert.equal(box.get("old").error, "expired");
  assert.equal(box.get("edge").state, "pending");
  assert.equal(box.get("new").state, "pending");
  assert.equal(box.expire(now), 0);
});

test("another tab's write to this outbox (a storage event) is reported", () => {
  make();
  const storage = listeners.find((l) => l.type === "storage");
  assert.ok(storage);
  storage.fn({ key: "linkup:outbox:1:x" });
  assert.equal(changes, 1);
  storage.fn({ key: "linkup:outbox:2:x" });
  storage.fn({ key: "something-else" });
  assert.equal(changes, 1, "other keys are not ours");
  storage.fn({ key: null }); // localStorage.clear()
  assert.equal(changes, 2);
});

test("withLock runs under the Web Lock when there is one, directly otherwise", async () => {
  const box = make(5);
  const had = Object.getOwnPropertyDescriptor(globalThis, "navigator");
  const asked = [];
  Object.defineProperty(globalThis, "navigator", {
    value: { locks: { request: (name, fn) => (asked.push(name), fn()) } },
    configurable: true,
  });
  try {
    assert.equal(await box.withLock(async () => 42), 42);
    assert.deepEqual(asked, ["linkup:outbox-lock:5"]);
    Object.defineProperty(globalThis, "navigator", { value: {}, configurable: true });
    assert.equal(await box.withLock(async () => 7), 7);
    assert.equal(asked.length, 1);
  } finally {
    if (had) Object.defineProperty(globalThis, "navigator", had);
    else delete globalThis.navigator;
  }
});
