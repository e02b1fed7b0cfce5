// Message search's pure part: a hit's snippet cut into plain and marked pieces, and the words
// a hit matched, to mark them again in the message once the conversation shows it. No DOM:
// the page builds text nodes and <mark> elements from these pieces (never markup from text).

/**
 * The snippet as pieces [{text, mark}], from the server's `highlights`: [start, end) ranges
 * in code points (not UTF-16 units: an emoji is one). Ranges out of order, overlapping or
 * out of bounds are clamped and merged, never thrown on.
 */
export function snippetParts(snippet, highlights) {
  const points = Array.from(snippet || "");
  const ranges = (highlights || [])
    .map(([start, end]) => [Math.max(0, start | 0), Math.min(points.length, end | 0)])
    .filter(([start, end]) => end > start)
    .sort((a, b) => a[0] - b[0]);
  const parts = [];
  let at = 0;
  for (const [start, end] of ranges) {
    const from = Math.max(start, at);
    if (end <= from) continue;
    if (from > at) parts.push({ text: points.slice(at, from).join(""), mark: false });
    parts.push({ text: points.slice(from, end).join(""), mark: true });
    at = end;
  }
  if (at < points.length) parts.push({ text: points.slice(at).join(""), mark: false });
  return parts;
}

/** The distinct words a hit matched (as its snippet shows them), lower-cased. */
export function matchedTerms(snippet, highlights) {
  const terms = new Set();
  for (const part of snippetParts(snippet, highlights)) {
    if (part.mark) {
      for (const word of part.text.toLocaleLowerCase().split(/\s+/)) if (word) terms.add(word);
    }
  }
  return [...terms];
}

/**
 * `text` as pieces [{text, mark}] with every occurrence of any of `terms` marked (case
 * ignored, the longest term first where two start at one place).
 */
export function markTerms(text, terms) {
  const wanted = [...new Set((terms || []).filter(Boolean).map((t) => t.toLocaleLowerCase()))];
  wanted.sort((a, b) => b.length - a.length);
  const lower = text.toLocaleLowerCase();
  const parts = [];
  let plain = 0;
  let i = 0;
  // toLocaleLowerCase can change a string's length (İ): mark only where lengths agree.
  const aligned = lower.length === text.length;
  while (aligned && wanted.length && i < text.length) {
    const term = wanted.find((t) => lower.startsWith(t, i));
    if (!term) {
      i += 1;
      continue;
    }
    if (i > plain) parts.push({ text: text.slice(plain, i), mark: false });
    parts.push({ text: text.slice(i, i + term.length), mark: true });
    i += term.length;
    plain = i;
  }
  if (plain < text.length) parts.push({ text: text.slice(plain), mark: false });
  return parts;
}
