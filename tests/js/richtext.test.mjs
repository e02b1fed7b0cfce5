// richtext.js: WhatsApp-style formatting parsed into a token tree. Over many seeded random
// bodies heavy in markers, links and mentions: the tree gives the body back exactly, links
// are only ever http(s) URLs, and the tree is well formed; then the cases people type.
import assert from "node:assert/strict";
import { test } from "node:test";

import { random } from "./random.mjs";

import { insertMention, mentionAt, mentionChoices, parse, plain, source } from "../../linkup/static/linkup/richtext.js";

const PIECES = [
  "a", "bo", " ", " ", "\n", "*", "_", "~", "`", "```", "@bob", "@al", "@bob.", "@nobody",
  "https://x.org/a_b", "http://ex.com/(x)", "www.ex.com", "javascript:alert(1)", ")", "(",
  ".", ",", "é", "😀", "<script>", "&amp;", "\"", "mail@bob.com", "data:text/html,x",
];
const TYPES = new Set(["text", "b", "i", "s", "code", "pre", "link", "mention"]);

function walk(nodes, visit) {
  for (const node of nodes) {
    visit(node);
    if (node.children) walk(node.children, visit);
  }
}

test("the tree gives the body back, and is well formed", () => {
  for (let seed = 1; seed <= 500; seed++) {
    const next = random(seed);
    const body = Array.from({ length: Math.floor(next() * 25) }, () =>
      PIECES[Math.floor(next() * PIECES.length)],
    ).join("");
    const tree = parse(body, { names: new Set(["bob", "al"]), me: "bob" });
    assert.equal(source(tree), body, `seed ${seed}: ${JSON.stringify(body)}`);
    walk(tree, (node) => {
      assert.ok(TYPES.has(node.t), `seed ${seed}`);
      if (node.t === "link") {
        assert.match(node.href, /^https?:\/\/[^\s]/, `seed ${seed}`);
        assert.doesNotThrow(() => new URL(node.href));
        assert.ok(!/\s/.test(node.text));
      }
      if (node.t === "mention") {
        assert.ok(["bob", "al"].includes(node.name));
        assert.equal(node.me, node.name === "bob");
      }
      if (node.children) assert.ok(node.children.length > 0, `seed ${seed}: empty ${node.t}`);
      if (node.t === "text") assert.ok(node.text.length > 0);
    });
    const siblings = (nodes) => {
      for (let i = 1; i < nodes.length; i++) {
        assert.ok(!(nodes[i].t === "text" && nodes[i - 1].t === "text"), `seed ${seed}`);
      }
      for (const node of nodes) if (node.children) siblings(node.children);
    };
    siblings(tree);
  }
});

const t = (text) => ({ t: "text", text });

test("the formatting people type", () => {
  assert.deepEqual(parse("*bold* _it_ ~gone~ `x*y*`"), [
    { t: "b", children: [t("bold")] }, t(" "), { t: "i", children: [t("it")] }, t(" "),
    { t: "s", children: [t("gone")] }, t(" "), { t: "code", text: "x*y*" },
  ]);
  assert.deepEqual(parse("*_both_*"), [{ t: "b", children: [{ t: "i", children: [t("both")] }] }]);
  // Markers inside words, around spaces or alone are text.
  for (const body of ["snake_case_name", "2*3*4", "* not *", "a * b", "**", "*\n*", "_a\nb_"]) {
    assert.deepEqual(parse(body), [t(body)], body);
  }
  assert.deepEqual(parse("(*yes*)!"), [t("("), { t: "b", children: [t("yes")] }, t(")!")]);
  assert.deepEqual(parse("```\nline *1*\n```"), [{ t: "pre", text: "\nline *1*\n" }]);
});

test("links: clickable, their punctuation and brackets left out, nothing but http(s)", () => {
  assert.deepEqual(parse("see https://ex.com/a_b_c."), [
    t("see "), { t: "link", href: "https://ex.com/a_b_c", text: "https://ex.com/a_b_c" }, t("."),
  ]);
  assert.deepEqual(parse("(www.ex.com/x)"), [
    t("("), { t: "link", href: "https://www.ex.com/x", text: "www.ex.com/x" }, t(")"),
  ]);
  assert.deepEqual(parse("https://en.wikipedia.org/wiki/Foo_(bar)"), [
    { t: "link", href: "https://en.wikipedia.org/wiki/Foo_(bar)", text: "https://en.wikipedia.org/wiki/Foo_(bar)" },
  ]);
  assert.deepEqual(parse("*https://ex.com*"), [
    { t: "b", children: [{ t: "link", href: "https://ex.com/", text: "https://ex.com" }] },
  ]);
  for (const body of ["javascript:alert(1)", "data:text/html,<b>", "mail@www.ex.com", "http://"]) {
    let links = 0;
    walk(parse(body), (node) => (links += node.t === "link" ? 1 : 0));
    assert.equal(links, 0, body);
  }
});

test("mentions: members only, mine marked, trailing punctuation left out", () => {
  const names = new Set(["bob", "al.x"]);
  assert.deepEqual(parse("hi @bob, @al.x. @eve bob@ex.com", { names, me: "bob" }), [
    t("hi "), { t: "mention", name: "bob", text: "@bob", me: true }, t(", "),
    { t: "mention", name: "al.x", text: "@al.x", me: false }, t(". @eve bob@ex.com"),
  ]);
  assert.equal(plain(parse("*hi* @bob `x`", { names })), "hi @bob x");
});

test("the @ autocomplete: what is being typed, who it may mean, and the text once chosen", () => {
  assert.deepEqual(mentionAt("hi @bo", 6), { start: 3, query: "bo" });
  assert.deepEqual(mentionAt("@", 1), { start: 0, query: "" });
  assert.equal(mentionAt("mail@bo", 7), null);
  assert.equal(mentionAt("hi @bo x", 8), null);
  assert.deepEqual(mentionAt("hi @bo x", 6), { start: 3, query: "bo" });
  const members = [
    { id: 1, username: "me" }, { id: 2, username: "Bob" }, { id: 3, username: "abby" },
    { id: 4, username: "bobby" }, { id: 5, username: "carol" },
  ];
  assert.deepEqual(mentionChoices(members, "b", 1).map((m) => m.username), ["Bob", "bobby", "abby"]);
  assert.deepEqual(mentionChoices(members, "", 1, 2).map((m) => m.username), ["abby", "Bob"]);
  assert.deepEqual(mentionChoices(members, "m", 1), []);
  assert.deepEqual(insertMention("hi @bo and", 3, 6, "bobby"), { text: "hi @bobby and", caret: 10 });
  assert.deepEqual(insertMention("@b", 0, 2, "bob"), { text: "@bob ", caret: 5 });
  // Whatever is chosen, the text parses back to a mention of that member.
  for (let seed = 1; seed <= 200; seed++) {
    const next = random(seed);
    const before = PIECES[Math.floor(next() * PIECES.length)];
    const text = `${before} @${"bobby".slice(0, Math.floor(next() * 5))}`;
    const at = mentionAt(text, text.length);
    if (!at) continue;
    const done = insertMention(text, at.start, text.length, "bobby");
    const mentions = [];
    walk(parse(done.text, { names: new Set(["bobby"]) }), (n) => n.t === "mention" && mentions.push(n.name));
    assert.ok(mentions.includes("bobby"), `seed ${seed}: ${JSON.stringify(done.text)}`);
  }
});
