// attachments.js: sizes, what the composer takes, how an attachment is drawn, where an
// upload stands, and the room list's line for files.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  attachmentView,
  checkFiles,
  clock,
  filesLabel,
  humanSize,
  imageBox,
  kindOf,
  uploadStep,
  voiceNoteName,
} from "../../linkup/static/linkup/attachments.js";

test("humanSize reads like a file manager", () => {
  assert.equal(humanSize(0), "0 B");
  assert.equal(humanSize(1023), "1023 B");
  assert.equal(humanSize(1536), "1.5 KB");
  assert.equal(humanSize(25 * 1024 * 1024), "25 MB");
  assert.equal(humanSize(3.25 * 1024 ** 3), "3.3 GB");
});

test("checkFiles refuses the empty, the too large and the one too many, saying why", () => {
  const limits = { maxBytes: 1000, maxFiles: 3 };
  const files = [
    { name: "a", size: 10 },
    { name: "empty", size: 0 },
    { name: "big", size: 1001 },
    { name: "b", size: 1000 },
    { name: "c", size: 5 },
  ];
  const { taken, refused } = checkFiles(files, 1, limits);
  assert.deepEqual(taken.map((f) => f.name), ["a", "b"]);
  assert.deepEqual(refused, [
    { name: "empty", why: "it is empty" },
    { name: "big", why: "it is larger than 1000 B" },
    { name: "c", why: "a message takes at most 3 files" },
  ]);
});

test("checkFiles never takes more than the limit, whatever it is offered (500 runs)", () => {
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let run = 0; run < 500; run++) {
    const files = Array.from({ length: Math.floor(next() * 15) }, (_, i) => ({
      name: `f${i}`,
      size: Math.floor(next() * 2000),
    }));
    const held = Math.floor(next() * 5);
    const limits = { maxBytes: 1000, maxFiles: 1 + Math.floor(next() * 10) };
    const { taken, refused } = checkFiles(files, held, limits);
    assert.equal(taken.length + refused.length, files.length);
    assert.ok(held + taken.length <= Math.max(held, limits.maxFiles));
    for (const f of taken) assert.ok(f.size > 0 && f.size <= limits.maxBytes);
  }
});

test("an image's box keeps its shape inside 280 px and never grows", () => {
  assert.deepEqual(imageBox(1200, 800), { width: 280, height: 187 });
  assert.deepEqual(imageBox(800, 1200), { width: 187, height: 280 });
  assert.deepEqual(imageBox(100, 50), { width: 100, height: 50 });
  assert.deepEqual(imageBox(null, null), { width: 280, height: 280 });
  assert.deepEqual(imageBox(10000, 1), { width: 280, height: 1 });
});

test("attachmentView: a thumbnail over a placeholder, players, or a card", () => {
  const photo = {
    id: "p", name: "lake.jpg", size: 5000, content_type: "image/jpeg", kind: "image",
    url: "/a/p", thumbnail_url: "/a/p/thumbnail", width: 1200, height: 800, placeholder: "data:x",
  };
  assert.deepEqual(attachmentView(photo), {
    as: "image", src: "/a/p/thumbnail", full: "/a/p", box: { width: 280, height: 187 },
    placeholder: "data:x", label: "lake.jpg",
  });
  assert.equal(attachmentView({ ...photo, thumbnail_url: undefined }).src, "/a/p");
  const voice = { name: "voice-note.webm", kind: "audio", url: "/a/v", duration_s: 65.4 };
  assert.deepEqual(attachmentView(voice), { as: "audio", src: "/a/v", label: "voice-note.webm", length: "1:05" });
  assert.equal(attachmentView({ ...voice, duration_s: null }).length, "");
  const doc = { name: "plan.pdf", size: 1536, content_type: "application/pdf", kind: "file", url: "/a/d" };
  assert.deepEqual(attachmentView(doc), { as: "file", href: "/a/d", label: "plan.pdf", detail: "1.5 KB · PDF" });
  assert.equal(attachmentView({ ...doc, name: "README" }).detail, "1.5 KB · PDF");
});

test("uploadStep: the next file to upload, then the ids to send", () => {
  assert.deepEqual(uploadStep({ files: [{}, {}], uploads: [] }), { next: 0, attachments: null });
  assert.deepEqual(uploadStep({ files: [{}, {}], uploads: ["u1"] }), { next: 1, attachments: null });
  assert.deepEqual(uploadStep({ files: [{}, {}], uploads: ["u1", "u2"] }), {
    next: null, attachments: ["u1", "u2"],
  });
  assert.deepEqual(uploadStep({ body: "text only" }), { next: null, attachments: [] });
});

test("clock, kinds, labels and a voice note's name", () => {
  assert.equal(clock(0), "0:00");
  assert.equal(clock(7.4), "0:07");
  assert.equal(clock(3600), "1:00:00");
  assert.equal(kindOf("image/png"), "image");
  assert.equal(kindOf("image/svg+xml"), "file");
  assert.equal(kindOf("audio/webm"), "audio");
  assert.equal(kindOf(""), "file");
  assert.equal(filesLabel([{ kind: "image" }]), "📷 Photo");
  assert.equal(filesLabel([{ type: "audio/webm", name: "voice-note-1.webm" }]), "🎤 Voice note");
  assert.equal(filesLabel([{ kind: "file", name: "plan.pdf" }]), "📎 plan.pdf");
  assert.equal(filesLabel([{ kind: "file" }, { kind: "image" }]), "📎 2 files");
  assert.equal(filesLabel([]), "");
  const at = new Date(Date.UTC(2026, 11, 7, 9, 5, 3));
  assert.equal(voiceNoteName("audio/webm;codecs=opus", at), "voice-note-20261207-090503.webm");
  assert.equal(voiceNoteName("audio/ogg", at), "voice-note-20261207-090503.ogg");
  assert.equal(voiceNoteName("audio/mp4", at), "voice-note-20261207-090503.m4a");
});
