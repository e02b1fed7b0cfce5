// keys.js: which key press means which action, the next and previous chat, whom Alt+R
// replies to, and what a screen reader hears.
import assert from "node:assert/strict";
import { test } from "node:test";

import { random } from "./random.mjs";

import { announcement, neighbour, replyTarget, shortcut } from "../../linkup/static/linkup/keys.js";

const key = (k, mods = {}) => ({ key: k, code: "", ctrlKey: false, metaKey: false, altKey: false, ...mods });

test("the shortcuts, and what is left to the page", () => {
  assert.equal(shortcut(key("ArrowDown", { altKey: true })), "next-chat");
  assert.equal(shortcut(key("ArrowUp", { altKey: true }), { typing: true }), "previous-chat");
  assert.equal(shortcut(key("k", { ctrlKey: true }), { typing: true }), "search");
  assert.equal(shortcut(key("K", { metaKey: true })), "search");
  assert.equal(shortcut(key("/")), "search");
  assert.equal(shortcut(key("/"), { typing: true }), null); // a slash typed in a message
  assert.equal(shortcut(key("r", { altKey: true }), { inRoom: true }), "reply");
  assert.equal(shortcut(key("®", { altKey: true, code: "KeyR" }), { inRoom: true }), "reply");
  assert.equal(shortcut(key("r", { altKey: true })), null); // no chat open
  for (const plain of ["a", "ArrowDown", "Enter", "Escape", "k"]) assert.equal(shortcut(key(plain)), null);
  assert.equal(shortcut(key("ArrowDown", { altKey: true, ctrlKey: true })), null);
});

test("neighbour: every chat is reached going down, and going up, from anywhere", () => {
  for (let seed = 1; seed <= 100; seed++) {
    const next = random(seed);
    const ids = Array.from({ length: 1 + Math.floor(next() * 8) }, (_, i) => 10 + i * 3);
    for (const step of [1, -1]) {
      let at = next() < 0.3 ? null : ids[Math.floor(next() * ids.length)];
      const seen = new Set();
      for (let i = 0; i < ids.length; i++) {
        at = neighbour(ids, at, step);
        seen.add(at);
      }
      assert.equal(seen.size, ids.length, `seed ${seed}`);
    }
  }
  assert.equal(neighbour([], 5, 1), null);
  assert.equal(neighbour([1, 2, 3], null, -1), 3);
  assert.equal(neighbour([1, 2, 3], 3, 1), 1);
});

test("replyTarget and announcement", () => {
  const msgs = [
    { seq: 1, sender: { id: 2, username: "bob" } },
    { seq: 2, sender: { id: 2, username: "bob" }, deleted: "everyone" },
    { seq: 3, sender: { id: 1, username: "me" } },
    { seq: null, sender: { id: 2, username: "bob" } },
  ];
  assert.equal(replyTarget(msgs, 1).seq, 1);
  assert.equal(replyTarget(msgs.slice(2), 1), null);
  assert.equal(announcement(msgs[0], " hi \n there "), "bob: hi there");
  assert.equal(announcement(msgs[0], ""), "bob sent an attachment");
});
