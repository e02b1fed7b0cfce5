import assert from "node:assert/strict";
import test from "node:test";

import { random } from "./random.mjs";
import { currentLanguage, gettext, ngettext, setCatalog } from "../../linkup/static/linkup/i18n.js";

test("without a catalog the words are the English ones, placeholders filled", () => {
  setCatalog({}, "en");
  assert.equal(gettext("Sent"), "Sent");
  assert.equal(gettext("%(name)s is typing…", { name: "ana" }), "ana is typing…");
  assert.equal(ngettext("%(count)s member", "%(count)s members", 1), "1 member");
  assert.equal(ngettext("%(count)s member", "%(count)s members", 3), "3 members");
  assert.equal(currentLanguage(), "en");
});

test("a catalog's translation and plural forms are used, Spanish's three included", () => {
  setCatalog(
    {
      Sent: "Enviado",
      "%(name)s is typing…": "%(name)s está escribiendo…",
      "%(count)s member": ["%(count)s miembro", "%(count)s millón de miembros", "%(count)s miembros"],
    },
    "es",
  );
  assert.equal(gettext("Sent"), "Enviado");
  assert.equal(gettext("Read"), "Read"); // not in the catalog: English
  assert.equal(gettext("%(name)s is typing…", { name: "ana" }), "ana está escribiendo…");
  assert.equal(ngettext("%(count)s member", "%(count)s members", 1), "1 miembro");
  assert.equal(ngettext("%(count)s member", "%(count)s members", 0), "0 miembros");
  assert.equal(ngettext("%(count)s member", "%(count)s members", 2), "2 miembros");
  assert.equal(ngettext("%(count)s member", "%(count)s members", 1000000), "1000000 millón de miembros");
  setCatalog({}, "en");
});

test("filling never reads a value as a pattern and leaves unknown placeholders", () => {
  setCatalog({}, "en");
  const next = random(20261207);
  const alphabet = ["a", "%", "(", ")", "s", "$", "&", "'", "ñ", " ", "name", "%(name)s"];
  for (let run = 0; run < 300; run++) {
    const pick = () => Array.from({ length: Math.floor(next() * 8) }, () => alphabet[Math.floor(next() * alphabet.length)]).join("");
    const name = pick();
    const out = gettext("%(name)s and %(missing)s", { name, other: pick() });
    assert.equal(out, `${name} and %(missing)s`, `seed run ${run}`);
  }
});
