// The client's words in the page's language. The chat page carries the catalog (Django's
// JSONCatalog of the `djangojs` domain: msgid -> translation, or its plural forms), so the
// words are there offline and before the first frame. Strings are marked `gettext("…")` and
// `ngettext("…", "…", n)` (the names xgettext looks for: `makemessages -d djangojs`), with
// `%(name)s` placeholders as in Django.

let catalog = {};
let language = "en";
let plurals = new Intl.PluralRules("en");

/** Take the page's catalog and language (config.catalog, config.language). */
export function setCatalog(entries, lang = "en") {
  catalog = entries || {};
  language = lang || "en";
  try {
    plurals = new Intl.PluralRules(language);
  } catch {
    plurals = new Intl.PluralRules("en");
  }
}

/** The page's language, for dates and numbers (Intl, toLocaleDateString). */
export function currentLanguage() {
  return language;
}

/** `text` in the page's language, with `%(name)s` filled from `values`. */
export function gettext(text, values) {
  const found = catalog[text];
  return fill(typeof found === "string" && found ? found : text, values);
}

/** The form of `singular`/`plural` for `count`, with `%(name)s` filled (`count` among them). */
export function ngettext(singular, plural, count, values) {
  const category = plurals.select(count);
  const found = catalog[singular];
  let text = category === "one" ? singular : plural;
  if (Array.isArray(found) && found.length) {
    // The catalog's forms in its Plural-Forms order: [one, other], or [one, many, other]
    // (Spanish, French, Italian: "many" for whole millions).
    let index = found.length - 1;
    if (category === "one") index = 0;
    else if (category === "many" && found.length > 2) index = 1;
    if (found[index]) text = found[index];
  }
  return fill(text, { count, ...(values || {}) });
}

function fill(text, values) {
  if (!values) return text;
  return text.replace(/%\((\w+)\)s/g, (whole, name) =>
    Object.hasOwn(values, name) ? String(values[name]) : whole,
  );
}

// In the page, the catalog is there before any module uses a word: the config's script
// element comes first in the page, and this module is evaluated before those importing it.
const config = globalThis.document && globalThis.document.getElementById("linkup-config");
if (config) {
  const data = JSON.parse(config.textContent);
  setCatalog(data.catalog, data.language);
}
