// The offline outbox: messages written but not yet acknowledged, kept in localStorage so
// they survive a reload and are shared by every tab of the same user. Each keeps its
// client_id, so a resend (after a reload, a crash, or by another tab) is idempotent on the
// server. Only the tab holding the Web Lock sends, so two tabs never race each other.

export const EXPIRY_MS = 7 * 24 * 3600 * 1000;

// One localStorage key per item (`linkup:outbox:<user>:<client_id>`): two tabs writing at
// once touch different keys, so neither can overwrite what the other just queued.
export class Outbox {
  constructor(userId, onChange) {
    this.prefix = `linkup:outbox:${userId}:`;
    this.lockName = `linkup:outbox-lock:${userId}`;
    this.onChange = onChange;
    window.addEventListener("storage", (event) => {
      if (event.key === null || event.key.startsWith(this.prefix)) this.onChange();
    });
  }

  /** Every item, oldest first. */
  all() {
    const items = [];
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (!key || !key.startsWith(this.prefix)) continue;
      try {
        const item = JSON.parse(localStorage.getItem(key));
        if (item && item.client_id) items.push(item);
      } catch {
        // a damaged entry is skipped, never fatal
      }
    }
    return items.sort(
      (a, b) => a.queued_at - b.queued_at || (a.order || 0) - (b.order || 0),
    );
  }

  write(item) {
    localStorage.setItem(this.prefix + item.client_id, JSON.stringify(item));
    this.onChange();
  }

  forRoom(room) {
    return this.all().filter((item) => item.room === room);
  }

  get(clientId) {
    try {
      return JSON.parse(localStorage.getItem(this.prefix + clientId)) || undefined;
    } catch {
      return undefined;
    }
  }

  add(item) {
    Outbox.counter = (Outbox.counter || 0) + 1;
    this.write({ state: "pending", order: Outbox.counter, ...item });
  }

  remove(clientId) {
    if (localStorage.getItem(this.prefix + clientId) === null) return;
    localStorage.removeItem(this.prefix + clientId);
    this.onChange();
  }

  update(clientId, patch) {
    const item = this.get(clientId);
    if (item) this.write({ ...item, ...patch });
  }

  /**
   * Mark pending sends older than EXPIRY_MS as failed (they keep ✗ and Retry), and drop
   * changes as old (an edit or a reaction a week late would surprise everyone); return how
   * many.
   */
  expire(now = Date.now()) {
    let n = 0;
    for (const item of this.all()) {
      if (item.state === "pending" && now - item.queued_at > EXPIRY_MS) {
        n++;
        if (item.kind && item.kind !== "send") this.remove(item.client_id);
        else this.write({ ...item, state: "failed", error: "expired" });
      }
    }
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
