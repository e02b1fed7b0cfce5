// The offline outbox: messages written but not yet acknowledged, kept in localStorage so
// they survive a reload and are shared by every tab of the same user. Each keeps its
// client_id, so a resend (after a reload, a crash, or by another tab) is idempotent on the
// server. Only the tab holding the Web Lock sends, so two tabs never race each other.

export const EXPIRY_MS = 7 * 24 * 3600 * 1000;

export class Outbox {
  constructor(userId, onChange) {
    this.key = `linkup:outbox:${userId}`;
    this.lockName = `linkup:outbox-lock:${userId}`;
    this.onChange = onChange;
    window.addEventListener("storage", (event) => {
      if (event.key === this.key) this.onChange();
    });
  }

  all() {
    try {
      const items = JSON.parse(localStorage.getItem(this.key) || "[]");
      return Array.isArray(items) ? items : [];
    } catch {
      return [];
    }
  }

  save(items) {
    localStorage.setItem(this.key, JSON.stringify(items));
    this.onChange();
  }

  forRoom(room) {
    return this.all().filter((item) => item.room === room);
  }

  get(clientId) {
    return this.all().find((item) => item.client_id === clientId);
  }

  add(item) {
    this.save([...this.all(), { state: "pending", ...item }]);
  }

  remove(clientId) {
    const items = this.all();
    const kept = items.filter((item) => item.client_id !== clientId);
    if (kept.length !== items.length) this.save(kept);
  }

  update(clientId, patch) {
    this.save(this.all().map((item) => (item.client_id === clientId ? { ...item, ...patch } : item)));
  }

  /** Mark pending items older than EXPIRY_MS as failed; return how many. */
  expire(now = Date.now()) {
    let n = 0;
    const items = this.all().map((item) => {
      if (item.state === "pending" && now - item.queued_at > EXPIRY_MS) {
        n++;
        return { ...item, state: "failed", error: "expired" };
      }
      return item;
    });
    if (n) this.save(items);
    return n;
  }

  /** Run fn while holding this user's outbox lock (one sending tab at a time). */
  async withLock(fn) {
    if (navigator.locks && navigator.locks.request) {
      return navigator.locks.request(this.lockName, fn);
    }
    return fn();
  }
}
