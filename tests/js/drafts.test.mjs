// drafts.js: a room's draft is what was last typed there, never another room's or another
// person's; blank text drops it; old drafts are forgotten; a failing storage loses nothing
// that is still in the box (checked over many seeded random sequences).
import assert from "node:assert/strict";
import { test } from "node:test";

import { random } from "./random.mjs";

import { DRAFT_MAX, DRAFT_TTL_MS, Drafts, MemoryStorage } from "../../linkup/static/linkup/drafts.js";

const TEXTS = ["", " ", "hello", "a\nb", "😀 emoji", "<b>x</b>", "   \n  ", "x".repeat(DRAFT_MAX + 5)];

test("each room's draft is the last text typed there, per person", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const next = random(seed);
    const storage = new MemoryStorage();
    storage.setItem("unrelated", "keep me");
    const people = [new Drafts(storage, 1), new Drafts(storage, 2)];
    const model = [new Map(), new Map()];
    for (let step = 0; step < 40; step++) {
      const who = Math.floor(next() * 2);
      const room = 1 + Math.floor(next() * 4);
      const roll = next();
      if (roll < 0.6) {
        const text = TEXTS[Math.floor(next() * TEXTS.length)];
        people[who].set(room, text);
        if (text.trim()) model[who].set(room, text.slice(0, DRAFT_MAX));
        else model[who].delete(room);
      } else if (roll < 0.8) {
        people[who].clear(room);
        model[who].delete(room);
      } else {
        const keep = new Set([1, 2, 3, 4].filter(() => next() < 0.5));
        people[who].prune(keep);
        for (const id of [...model[who].keys()]) if (!keep.has(id)) model[who].delete(id);
      }
      for (const i of [0, 1]) {
        for (const r of [1, 2, 3, 4]) {
          assert.equal(people[i].get(r), model[i].get(r) || "", `seed ${seed} step ${step}`);
        }
      }
    }
    assert.equal(storage.getItem("unrelated"), "keep me");
  }
});

test("a draft untouched for a week is forgotten; a newer one stays", () => {
  let now = 1_000_000;
  const drafts = new Drafts(new MemoryStorage(), 7, () => now);
  drafts.set(1, "old");
  now += DRAFT_TTL_MS - 1;
  drafts.set(2, "new");
  assert.equal(drafts.get(1), "old");
  now += 2;
  assert.equal(drafts.get(1), "");
  assert.equal(drafts.get(2), "new");
});

test("storage that refuses or holds garbage loses nothing and throws nothing", () => {
  const broken = {
    length: 1,
    key: () => "linkup:draft:1:5",
    getItem: () => "{not json",
    setItem: () => {
      throw new Error("QuotaExceededError");
    },
    removeItem: () => {
      throw new Error("SecurityError");
    },
  };
  const drafts = new Drafts(broken, 1);
  assert.equal(drafts.set(5, "text"), false);
  assert.equal(drafts.get(5), "");
  assert.equal(drafts.clear(5), false);
  const odd = new MemoryStorage();
  odd.setItem("linkup:draft:1:3", JSON.stringify({ text: 5, at: 0 }));
  assert.equal(new Drafts(odd, 1).get(3), "");
  // prune leaves keys that are not drafts of a room alone.
  odd.setItem("linkup:draft:1:x", JSON.stringify({ text: "no room", at: Date.now() }));
  new Drafts(odd, 1).prune(new Set());
  assert.equal(odd.getItem("linkup:draft:1:3"), null);
  assert.notEqual(odd.getItem("linkup:draft:1:x"), null);
});
