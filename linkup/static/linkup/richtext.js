// A message body as formatted text, WhatsApp's way: *bold*, _italic_, ~strike~, `code`,
// ```fenced blocks```, links made clickable and @mentions of the room's members. Pure: it
// returns a token tree and render.js builds DOM nodes from it (the body never goes through
// innerHTML, so no markup in a message can become markup on the page).
//
// The tree: {t: "text", text} | {t: "b" | "i" | "s", children} | {t: "code" | "pre", text} |
// {t: "link", href, text} | {t: "mention", name, text, me}. Nothing of the body is lost:
// `source(parse(body))` gives the body back, marker for marker.

const EMPHASIS = { "*": "b", _: "i", "~": "s" };
const MARKER = { b: "*", i: "_", s: "~" };

// A link: http(s)://… or www.…, up to a space or a character no URL has unescaped.
const LINK = /(?:https?:\/\/|(?<![\p{L}\p{N}_@.\/-])www\.)[^\s<>"]+/giu;
// "@name": Django's username characters, as the server reads mentions (notifications.py).
const MENTION = /(?<![\p{L}\p{N}_@.+-])@([\p{L}\p{N}_.@+-]{1,150})/gu;
// Characters a link does not end on (a sentence's punctuation after it, a closing marker).
const LINK_TAIL = /[.,!?;:'"*_~]+$/u;
const FENCE = /```([\s\S]+?)```/g;
const CODE = /`([^`\n]+)`/g;

const isSpace = (ch) => ch === undefined || /\s/u.test(ch);
const isWordChar = (ch) => ch !== undefined && /[\p{L}\p{N}]/u.test(ch);

/**
 * The body's token tree. `names`: the usernames a mention may name (the room's members);
 * `me`: my username (my mentions are marked as such).
 */
export function parse(body, { names = new Set(), me = null } = {}) {
  const nodes = [];
  let at = 0;
  for (const match of body.matchAll(FENCE)) {
    if (match.index > at) nodes.push(...inline(body.slice(at, match.index), names, me));
    nodes.push({ t: "pre", text: match[1] });
    at = match.index + match[0].length;
  }
  if (at < body.length) nodes.push(...inline(body.slice(at), names, me));
  return nodes;
}

/** Inline code first (nothing inside it is formatted), then links, mentions, emphasis. */
function inline(text, names, me) {
  const items = []; // one string per code point, or an atom node (code, link, mention)
  let at = 0;
  for (const match of text.matchAll(CODE)) {
    atoms(text.slice(at, match.index), names, me, items);
    items.push({ t: "code", text: match[1] });
    at = match.index + match[0].length;
  }
  atoms(text.slice(at), names, me, items);
  return merge(emphasis(items, 0, items.length));
}

function atoms(text, names, me, items) {
  const found = [];
  for (const match of text.matchAll(LINK)) {
    const link = linkAt(match[0]);
    if (link) found.push({ start: match.index, end: match.index + link.text.length, node: link });
  }
  for (const match of text.matchAll(MENTION)) {
    const start = match.index;
    if (found.some((f) => start < f.end && f.start < start + match[0].length)) continue;
    const name = mentioned(match[1], names);
    if (!name) continue;
    const node = { t: "mention", name, text: `@${name}`, me: name === me };
    found.push({ start, end: start + node.text.length, node });
  }
  found.sort((a, b) => a.start - b.start);
  let at = 0;
  for (const f of found) {
    if (f.start < at) continue;
    items.push(...Array.from(text.slice(at, f.start)));
    items.push(f.node);
    at = f.end;
  }
  items.push(...Array.from(text.slice(at)));
}

/** The link a match makes, its text trimmed of trailing punctuation (and of a closing
 * bracket it does not open); null unless it is a well-formed http(s) URL. */
function linkAt(raw) {
  let text = raw.replace(LINK_TAIL, "");
  while (text.endsWith(")") && count(text, "(") < count(text, ")")) {
    text = text.slice(0, -1).replace(LINK_TAIL, "");
  }
  const href = /^https?:\/\//i.test(text) ? text : `https://${text}`;
  let url;
  try {
    url = new URL(href);
  } catch {
    return null;
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname) return null;
  return { t: "link", href: url.href, text };
}

const count = (text, ch) => text.split(ch).length - 1;

/** The member a mention names: the whole name, or without trailing punctuation. */
function mentioned(name, names) {
  if (names.has(name)) return name;
  const stripped = name.replace(/[.+@-]+$/u, "");
  return stripped && names.has(stripped) ? stripped : null;
}

/**
 * Emphasis over items[start, end): a marker opens where it follows a space, a line's start
 * or punctuation and comes before a non-space; it closes at the first same marker on the
 * line that follows a non-space and comes before a space, the end or punctuation. Markers
 * that do not pair are text.
 */
function emphasis(items, start, end) {
  const out = [];
  for (let i = start; i < end; i++) {
    const item = items[i];
    const kind = typeof item === "string" ? EMPHASIS[item] : undefined;
    if (kind && opens(items, i, start, end)) {
      const close = closer(items, i, end);
      if (close > 0) {
        out.push({ t: kind, children: merge(emphasis(items, i + 1, close)) });
        i = close;
        continue;
      }
    }
    out.push(item);
  }
  return out;
}

const charAt = (items, i) => (typeof items[i] === "string" ? items[i] : "x"); // atoms: a word

function opens(items, i, start, end) {
  const before = i > start ? charAt(items, i - 1) : undefined;
  const after = i + 1 < end ? charAt(items, i + 1) : undefined;
  return !isWordChar(before) && before !== items[i] && !isSpace(after) && after !== items[i];
}

function closer(items, i, end) {
  for (let j = i + 2; j < end; j++) {
    const ch = items[j];
    if (ch === "\n") return -1;
    if (ch !== items[i]) continue;
    const before = charAt(items, j - 1);
    const after = j + 1 < end ? charAt(items, j + 1) : undefined;
    if (!isSpace(before) && !isWordChar(after) && after !== ch) return j;
  }
  return -1;
}

/** Runs of characters as text nodes. */
function merge(items) {
  const nodes = [];
  for (const item of items) {
    if (typeof item !== "string") nodes.push(item);
    else if (nodes.length && nodes[nodes.length - 1].t === "text") nodes[nodes.length - 1].text += item;
    else nodes.push({ t: "text", text: item });
  }
  return nodes;
}

/** The body a tree was parsed from. */
export function source(nodes) {
  return nodes
    .map((node) => {
      if (node.t === "text" || node.t === "link" || node.t === "mention") return node.text;
      if (node.t === "code") return "`" + node.text + "`";
      if (node.t === "pre") return "```" + node.text + "```";
      return MARKER[node.t] + source(node.children) + MARKER[node.t];
    })
    .join("");
}

/** The text a reader sees (markers gone): for previews, notifications and search marks. */
export function plain(nodes) {
  return nodes.map((node) => (node.children ? plain(node.children) : node.text)).join("");
}

// -- the @ autocomplete -------------------------------------------------------------------

const TYPING_MENTION = /(?<![\p{L}\p{N}_@.+-])@([\p{L}\p{N}_.@+-]{0,150})$/u;

/** The mention being typed just before `caret`: {start, query}, `start` at its "@"; or null. */
export function mentionAt(text, caret) {
  const match = TYPING_MENTION.exec(text.slice(0, caret));
  return match ? { start: match.index, query: match[1] } : null;
}

/** The members a typed mention may mean, best first: names starting with the query, then
 * names containing it (case ignored), each run in name order; never me; at most `limit`. */
export function mentionChoices(members, query, meId, limit = 8) {
  const q = query.toLowerCase();
  const starts = [];
  const contains = [];
  for (const member of members) {
    if (member.id === meId) continue;
    const names = [member.username, member.display_name || ""].map((n) => n.toLowerCase());
    if (names.some((name) => name.startsWith(q))) starts.push(member);
    else if (names.some((name) => name.includes(q))) contains.push(member);
  }
  const byName = (a, b) => a.username.localeCompare(b.username);
  return [...starts.sort(byName), ...contains.sort(byName)].slice(0, limit);
}

/** The text with the mention typed at [start, caret) replaced by "@name ", and the caret
 * after it. */
export function insertMention(text, start, caret, username) {
  const inserted = `@${username} `;
  const rest = text.slice(caret).replace(/^[\p{L}\p{N}_.@+-]*/u, "").replace(/^ /, "");
  return { text: text.slice(0, start) + inserted + rest, caret: start + inserted.length };
}
