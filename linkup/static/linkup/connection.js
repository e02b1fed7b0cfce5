// The chat socket with its heartbeat, reconnects and fallback state.
//
// States: "connecting" (first try), "online" (hello received), "reconnecting" (the first
// retries (5 by default; backoff 2 s, 4 s, 8 s … with jitter)), "fallback" (retries exhausted:
// the app sends and polls over HTTP while the socket keeps retrying in the background),
// "offline" (the browser says the network is gone: wait for it to come back).

import { gettext } from "./i18n.js";
import { backoffDelay } from "./model.js";

const PONG_TIMEOUT_MS = 10000;
const HELLO_TIMEOUT_MS = 10000;
const UNAUTHORIZED = 4401;

export class Connection {
  constructor({ url, heartbeatS, firstS, attempts, onFrame, onState, onHello, onUnauthorized }) {
    this.url = url;
    this.heartbeatMs = (heartbeatS || 30) * 1000;
    this.firstMs = (firstS || 2) * 1000;
    this.maxAttempts = attempts || 5;
    this.helloTimer = null;
    this.onFrame = onFrame;
    this.onState = onState;
    this.onHello = onHello;
    this.onUnauthorized = onUnauthorized;
    this.ws = null;
    this.ready = false;
    this.attempt = 0;
    this.state = "connecting";
    this.timer = null;
    this.heartbeat = null;
    this.pongTimer = null;
    this.waiters = new Map(); // reply type -> [{resolve, reject}]
    window.addEventListener("offline", () => this.wentOffline());
    window.addEventListener("online", () => this.cameOnline());
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.onState(state);
  }

  /** Close for good (signing out): no reconnects. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.helloTimer);
    this.stopHeartbeat();
    if (this.ws) this.ws.close(1000);
  }

  start() {
    if (!navigator.onLine) {
      this.setState("offline");
      return;
    }
    this.open();
  }

  open() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}${this.url}`);
    this.ws = ws;
    ws.onmessage = (event) => this.received(ws, event.data);
    ws.onclose = (event) => this.closed(ws, event.code);
    ws.onerror = () => {}; // onclose follows and decides
    // A socket that opens but never says hello (a proxy that swallows it) is no socket.
    clearTimeout(this.helloTimer);
    this.helloTimer = setTimeout(() => {
      if (this.ws === ws && !this.ready) this.dead();
    }, HELLO_TIMEOUT_MS);
  }

  received(ws, raw) {
    if (ws !== this.ws) return;
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    clearTimeout(this.pongTimer); // any frame proves the socket alive
    if (frame.type === "hello") {
      clearTimeout(this.helloTimer);
      this.ready = true;
      this.attempt = 0;
      this.setState("online");
      this.startHeartbeat();
      this.onHello(frame);
      return;
    }
    const queue = this.waiters.get(frame.type);
    if (queue && queue.length) queue.shift().resolve(frame);
    if (frame.type === "error" && !frame.ref) {
      // An error without a ref answers a request (only `sync` is asked by request()):
      // fail the first one waiting rather than let it hang until its timeout.
      for (const waiting of this.waiters.values()) {
        if (waiting.length) {
          waiting.shift().reject(frame);
          break;
        }
      }
    }
    this.onFrame(frame);
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.ready = false;
    this.stopHeartbeat();
    for (const queue of this.waiters.values()) {
      for (const waiter of queue.splice(0)) waiter.reject(new Error(gettext("the connection closed")));
    }
    if (code === UNAUTHORIZED) {
      this.onUnauthorized();
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (this.timer || this.stopped) return;
    if (!navigator.onLine) {
      this.setState("offline");
      return;
    }
    const attempt = this.attempt++;
    this.setState(attempt < this.maxAttempts ? "reconnecting" : "fallback");
    const delay = backoffDelay(Math.min(attempt, 4), Math.random, this.firstMs);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.open();
    }, delay);
  }

  wentOffline() {
    this.setState("offline");
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) {
      const ws = this.ws;
      this.closed(ws, 1006); // the browser may never fire close after a network loss
      ws.close();
    }
  }

  cameOnline() {
    if (this.stopped) return;
    this.attempt = 0;
    if (!this.ws) {
      this.setState("reconnecting");
      this.open();
    }
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => {
      if (!this.send({ type: "ping" })) return;
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => this.dead(), PONG_TIMEOUT_MS);
    }, this.heartbeatMs);
  }

  stopHeartbeat() {
    clearInterval(this.heartbeat);
    clearTimeout(this.pongTimer);
    this.heartbeat = null;
  }

  /** No answer to a ping: the socket is dead even if the browser has not noticed. */
  dead() {
    if (!this.ws) return;
    const ws = this.ws;
    this.closed(ws, 1006);
    ws.close();
  }

  /** Send a frame if the socket is ready; false otherwise. */
  send(frame) {
    if (!this.ready || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Send a frame and resolve with the next frame of type `reply`. */
  request(frame, reply, timeoutMs = 15000) {
    return new Promise((resolve, reject) => {
      if (!this.send(frame)) {
        reject(new Error(gettext("not connected")));
        return;
      }
      if (!this.waiters.has(reply)) this.waiters.set(reply, []);
      const queue = this.waiters.get(reply);
      const waiter = {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        const at = queue.indexOf(waiter);
        if (at >= 0) queue.splice(at, 1);
        reject(new Error(gettext("no %(reply)s in time", { reply })));
      }, timeoutMs);
      queue.push(waiter);
    });
  }
}
