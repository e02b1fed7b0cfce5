// alertrules.js: which messages alert (direct, @me; never mine, never muted), the counts in
// the title and icon, and the ledger that lets one tab alone alert for a message.
import assert from "node:assert/strict";
import { test } from "node:test";

import { random } from "./random.mjs";

import {
  AlertLedger,
  alertText,
  badgedIcon,
  titleText,
  unreadTotal,
  wouldAlert,
} from "../../linkup/static/linkup/alertrules.js";
import { MemoryStorage } from "../../linkup/static/linkup/drafts.js";

const ME = { id: 1, username: "ann" };
const BOB = { id: 2, username: "bob" };
const direct = { id: 5, kind: "direct", muted: false };
const group = { id: 6, kind: "group", muted: false };
const msg = (body, sender = BOB) => ({ seq: 1, body, sender });

test("what alerts: a direct message, a mention of me in a group; never mine or muted", () => {
  assert.equal(wouldAlert(direct, msg("hi"), ME), true);
  assert.equal(wouldAlert({ ...direct, muted: true }, msg("hi"), ME), false);
  assert.equal(wouldAlert(direct, msg("hi", ME), ME), false);
  assert.equal(wouldAlert(direct, { ...msg("hi"), deleted: "everyone" }, ME), false);
  assert.equal(wouldAlert(group, msg("hi all"), ME), false);
  assert.equal(wouldAlert(group, msg("hi @ann!"), ME), true);
  assert.equal(wouldAlert(group, msg("*@ann*"), ME), true);
  assert.equal(wouldAlert(group, msg("mail ann@ex.com or @annie or `@ann`"), ME), false);
  assert.equal(wouldAlert({ ...group, muted: true }, msg("@ann"), ME), false);
});

test("the counts: rooms not muted, the title's (n), the icon's badge", () => {
  const rooms = [
    { unread_count: 2, muted: false }, { unread_count: 5, muted: true },
    { unread_count: 0 }, { unread_count: 3 },
  ];
  assert.equal(unreadTotal(rooms), 5);
  assert.equal(titleText("Linkup", 0), "Linkup");
  assert.equal(titleText("Linkup", 3), "(3) Linkup");
  assert.equal(titleText("Linkup", 250), "(99+) Linkup");
  for (const [count, shown] of [[0, null], [4, "4"], [12, "9+"]]) {
    const svg = decodeURIComponent(badgedIcon(count).replace(/^data:image\/svg\+xml,/, ""));
    assert.ok(svg.startsWith("<svg"));
    const text = /<text[^>]*>([^<]*)<\/text>/.exec(svg);
    assert.equal(text ? text[1] : null, shown);
  }
});

test("alertText: who, where, and the text on one line, cut at 140", () => {
  assert.deepEqual(alertText(direct, msg("a\n b"), "bob"), { title: "bob", body: "a b" });
  const long = alertText({ ...group }, msg("x".repeat(300)), "Team");
  assert.equal(long.title, "bob in Team");
  assert.equal(long.body.length, 140);
  assert.equal(alertText(direct, { ...msg(""), attachments: [{}] }, "bob").body, "📎 Attachment");
});

test("the ledger: of tabs sharing storage, one alone claims each message", () => {
  for (let seed = 1; seed <= 100; seed++) {
    const next = random(seed);
    const storage = new MemoryStorage();
    const tabs = [new AlertLedger(storage, 1, 50), new AlertLedger(storage, 1, 50)];
    const claimed = new Map();
    for (let step = 0; step < 60; step++) {
      const key = `m:5:${Math.floor(next() * 30)}`;
      const tab = tabs[Math.floor(next() * 2)];
      const got = tab.claim(key);
      assert.equal(got, !claimed.has(key), `seed ${seed} step ${step}`);
      if (got) claimed.set(key, step);
    }
    assert.equal(new AlertLedger(storage, 2).claim("m:5:1"), true); // another person's own
  }
});
