// search.js: a hit's snippet cut by its code-point highlights, and the matched words marked
// again in a message (checked over many seeded random cases, and on the awkward ones).
import assert from "node:assert/strict";
import { test } from "node:test";

import { random } from "./random.mjs";

import { markTerms, matchedTerms, snippetParts } from "../../linkup/static/linkup/search.js";


const ALPHABET = ["a", "b", "Z", " ", "é", "😀", "<", "&", "\n"];

test("snippet pieces rebuild the snippet and mark exactly the highlighted code points", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const next = random(seed);
    const points = Array.from({ length: Math.floor(next() * 20) }, () =>
      ALPHABET[Math.floor(next() * ALPHABET.length)],
    );
    const snippet = points.join("");
    const ranges = Array.from({ length: Math.floor(next() * 4) }, () => {
      const start = Math.floor(next() * (points.length + 3)) - 1;
      return [start, start + Math.floor(next() * 6)];
    });
    const parts = snippetParts(snippet, ranges);
    assert.equal(parts.map((p) => p.text).join(""), snippet, `seed ${seed}`);
    const marked = new Set();
    for (const [start, end] of ranges) {
      for (let i = Math.max(0, start); i < Math.min(points.length, end); i++) marked.add(i);
    }
    let at = 0;
    for (const part of parts) {
      for (const _ of Array.from(part.text)) {
        assert.equal(part.mark, marked.has(at), `seed ${seed} at ${at}`);
        at += 1;
      }
      assert.ok(part.text.length > 0, `seed ${seed}: no empty piece`);
    }
  }
});

test("an emoji is one code point of the highlights, not two", () => {
  assert.deepEqual(snippetParts("😀 running late", [[2, 9]]), [
    { text: "😀 ", mark: false },
    { text: "running", mark: true },
    { text: " late", mark: false },
  ]);
  assert.deepEqual(matchedTerms("😀 running late", [[2, 9]]), ["running"]);
});

test("terms are marked in a message, case ignored, text never lost", () => {
  assert.deepEqual(markTerms("Running, running!", ["running"]), [
    { text: "Running", mark: true },
    { text: ", ", mark: false },
    { text: "running", mark: true },
    { text: "!", mark: false },
  ]);
  assert.deepEqual(markTerms("nothing here", ["kab"]), [{ text: "nothing here", mark: false }]);
  assert.deepEqual(markTerms("x", []), [{ text: "x", mark: false }]);
  for (let seed = 1; seed <= 200; seed++) {
    const next = random(seed);
    const text = Array.from({ length: Math.floor(next() * 30) }, () =>
      ALPHABET[Math.floor(next() * ALPHABET.length)],
    ).join("");
    const terms = ["a", "ab", "Z b", "😀"].filter(() => next() < 0.5);
    const parts = markTerms(text, terms);
    assert.equal(parts.map((p) => p.text).join(""), text, `seed ${seed}`);
    for (const part of parts.filter((p) => p.mark)) {
      assert.ok(terms.some((t) => t.toLowerCase() === part.text.toLowerCase()), `seed ${seed}`);
    }
  }
});
