// connection.js: the socket's states, hello, request/reply, heartbeat and reconnects, against
// a fake WebSocket and mocked timers.
import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";

import { Connection } from "../../linkup/static/linkup/connection.js";

let sockets;
let windowListeners;

class FakeSocket {
  static OPEN = 1;
  constructor(url) {
    this.url = url;
    this.readyState = FakeSocket.OPEN;
    this.sent = [];
    sockets.push(this);
  }
  send(data) {
    this.sent.push(JSON.parse(data));
  }
  close(code) {
    this.closedWith = code;
    this.readyState = 3;
  }
  /** The server says something. */
  say(frame) {
    this.onmessage({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }
}

beforeEach(() => {
  sockets = [];
  windowListeners = {};
  globalThis.window = { addEventListener: (type, fn) => (windowListeners[type] = fn) };
  globalThis.WebSocket = FakeSocket;
  globalThis.location = { protocol: "https:", host: "chat.example" };
  Object.defineProperty(globalThis, "navigator", { value: { onLine: true }, configurable: true });
  mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
});

afterEach(() => {
  mock.timers.reset();
  mock.restoreAll();
  delete globalThis.navigator;
});

function connect(options = {}) {
  const seen = { states: [], frames: [], hellos: [], unauthorized: 0 };
  const connection = new Connection({
    url: "/ws/chat/",
    heartbeatS: 30,
    firstS: 2,
    attempts: 2,
    onFrame: (f) => seen.frames.push(f),
    onState: (s) => seen.states.push(s),
    onHello: (h) => seen.hellos.push(h),
    onUnauthorized: () => seen.unauthorized++,
    ...options,
  });
  return { connection, seen };
}

test("start opens the socket on the page's host; hello makes it online", () => {
  const { connection, seen } = connect();
  connection.start();
  assert.equal(sockets.length, 1);
  assert.equal(sockets[0].url, "wss://chat.example/ws/chat/");
  assert.equal(connection.send({ type: "x" }), false, "not ready before hello");
  sockets[0].say({ type: "hello", user: 1 });
  assert.deepEqual(seen.states, ["online"]);
  assert.deepEqual(seen.hellos, [{ type: "hello", user: 1 }]);
  assert.equal(connection.send({ type: "x" }), true);
  assert.deepEqual(sockets[0].sent, [{ type: "x" }]);
  sockets[0].say("not json");
  sockets[0].say({ type: "message.new", message: {} });
  assert.deepEqual(seen.frames.map((f) => f.type), ["message.new"], "bad JSON is dropped");
  connection.stop();
});

test("offline at start waits, and coming online opens", () => {
  navigator.onLine = false;
  const { connection, seen } = connect();
  connection.start();
  assert.deepEqual(seen.states, ["offline"]);
  assert.equal(sockets.length, 0);
  navigator.onLine = true;
  windowListeners.online();
  assert.deepEqual(seen.states, ["offline", "reconnecting"]);
  assert.equal(sockets.length, 1);
  connection.stop();
});

test("a closed socket is retried with backoff, then falls back to HTTP", () => {
  mock.method(Math, "random", () => 0.5); // no jitter: 2 s, 4 s, 8 s
  const { connection, seen } = connect({ attempts: 2 });
  connection.start();
  sockets[0].onclose({ code: 1006 });
  assert.deepEqual(seen.states, ["reconnecting"]);
  mock.timers.tick(1999);
  assert.equal(sockets.length, 1);
  mock.timers.tick(1);
  assert.equal(sockets.length, 2);
  sockets[1].onclose({ code: 1006 });
  mock.timers.tick(3999);
  assert.equal(sockets.length, 2);
  mock.timers.tick(1);
  assert.equal(sockets.length, 3);
  sockets[2].onclose({ code: 1006 });
  assert.deepEqual(seen.states, ["reconnecting", "fallback"], "after 2 attempts");
  mock.timers.tick(8000);
  assert.equal(sockets.length, 4, "the socket keeps retrying in the background");
  sockets[3].say({ type: "hello" });
  assert.deepEqual(seen.states, ["reconnecting", "fallback", "online"]);
  assert.equal(connection.attempt, 0);
  connection.stop();
});

test("4401 means signed out: no reconnect", () => {
  const { connection, seen } = connect();
  connection.start();
  sockets[0].onclose({ code: 4401 });
  assert.equal(seen.unauthorized, 1);
  mock.timers.tick(60000);
  assert.equal(sockets.length, 1);
  connection.stop();
});

test("a socket that never says hello is closed and retried", () => {
  const { connection, seen } = connect();
  connection.start();
  mock.timers.tick(10000);
  assert.equal(sockets[0].readyState, 3, "closed");
  assert.deepEqual(seen.states, ["reconnecting"]);
  mock.timers.tick(3000);
  assert.equal(sockets.length, 2);
  connection.stop();
});

test("the heartbeat pings; no answer in time makes the socket dead", () => {
  const { connection, seen } = connect({ heartbeatS: 30 });
  connection.start();
  sockets[0].say({ type: "hello" });
  mock.timers.tick(30000);
  assert.deepEqual(sockets[0].sent, [{ type: "ping" }]);
  sockets[0].say({ type: "pong" }); // alive
  mock.timers.tick(10000);
  assert.deepEqual(seen.states, ["online"]);
  mock.timers.tick(20000); // the next ping, and then silence
  assert.equal(sockets[0].sent.length, 2);
  mock.timers.tick(10000);
  assert.deepEqual(seen.states, ["online", "reconnecting"]);
  assert.equal(connection.ready, false);
  connection.stop();
});

test("request: the reply resolves it, an error without ref or a close rejects it", async () => {
  const { connection } = connect();
  connection.start();
  await assert.rejects(connection.request({ type: "sync" }, "sync.result"), /not connected/);
  sockets[0].say({ type: "hello" });
  const answered = connection.request({ type: "sync", cursors: {} }, "sync.result");
  sockets[0].say({ type: "sync.result", rooms: [] });
  assert.deepEqual(await answered, { type: "sync.result", rooms: [] });
  const refused = connection.request({ type: "sync" }, "sync.result");
  sockets[0].say({ type: "error", code: "bad_request" });
  mock.timers.tick(15000); // had the error not failed it, the timeout would (a different error)
  await assert.rejects(refused, (e) => e.code === "bad_request");
  const cut = connection.request({ type: "sync" }, "sync.result");
  sockets[0].onclose({ code: 1006 });
  await assert.rejects(cut, /connection closed/);
  connection.stop();
});

test("request times out when no reply comes", async () => {
  const { connection } = connect();
  connection.start();
  sockets[0].say({ type: "hello" });
  const late = connection.request({ type: "sync" }, "sync.result", 500);
  mock.timers.tick(500);
  await assert.rejects(late, /no sync.result in time/);
  assert.equal(connection.waiters.get("sync.result").length, 0);
  connection.stop();
});

test("going offline drops the socket and says so", () => {
  const { connection, seen } = connect();
  connection.start();
  sockets[0].say({ type: "hello" });
  navigator.onLine = false;
  windowListeners.offline();
  assert.equal(seen.states.at(-1), "offline");
  assert.equal(connection.ws, null);
  mock.timers.tick(60000);
  assert.equal(sockets.length, 1, "no retries while offline");
  connection.stop();
});
