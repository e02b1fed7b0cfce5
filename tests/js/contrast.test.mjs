// The contrast audit of chat.css (WCAG 2.1 AA) in both themes: every pair of colours the
// page puts text on, read from the stylesheet's own variables, reaches 4.5:1 (3:1 for the
// large or non-text ones); and the two dark blocks (the system's choice, the person's
// choice) are the same.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const css = readFileSync(new URL("../../linkup/static/linkup/chat.css", import.meta.url), "utf8");

function variables(block) {
  const found = {};
  for (const [, name, value] of block.matchAll(/--([a-z0-9-]+):\s*(#[0-9a-fA-F]{3,8})\s*;/g)) {
    found[name] = value;
  }
  return found;
}

function blockAfter(selector) {
  const at = css.indexOf(selector);
  assert.ok(at >= 0, selector);
  const open = css.indexOf("{", at);
  return css.slice(open + 1, css.indexOf("}", open));
}

const light = variables(blockAfter(":root {"));
const darkSystem = variables(blockAfter(':root:not([data-theme="light"])'));
const darkChosen = variables(blockAfter(':root[data-theme="dark"]'));

function rgb(hex) {
  let h = hex.slice(1);
  if (h.length <= 4) h = [...h].map((c) => c + c).join("");
  const channels = [0, 2, 4, 6].map((i) => parseInt(h.slice(i, i + 2) || "ff", 16) / 255);
  return { r: channels[0], g: channels[1], b: channels[2], a: channels[3] };
}

/** A translucent colour over an opaque one. */
function over(top, under) {
  const t = rgb(top);
  const u = rgb(under);
  const mix = (x, y) => x * t.a + y * (1 - t.a);
  const hex = (v) => Math.round(v * 255).toString(16).padStart(2, "0");
  return `#${hex(mix(t.r, u.r))}${hex(mix(t.g, u.g))}${hex(mix(t.b, u.b))}`;
}

function luminance(hex) {
  const lin = (c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  const { r, g, b } = rgb(hex);
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

export function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

// [foreground, background, minimum]: text 4.5, large text and non-text marks 3.
const PAIRS = [
  ["text", "bg", 4.5], ["text", "surface", 4.5], ["text", "surface-2", 4.5],
  ["text", "bubble", 4.5], ["text", "bubble-own", 4.5], ["muted", "surface", 4.5],
  ["muted", "surface-2", 4.5], ["muted", "bubble", 4.5], ["muted-own", "bubble-own", 4.5],
  ["accent-text", "surface", 4.5], ["accent-text", "bubble", 4.5],
  ["accent-text", "accent-soft", 4.5], ["link", "bubble", 4.5], ["link-own", "bubble-own", 4.5],
  ["red", "surface", 4.5], ["red", "notice-bg", 4.5], ["on-bar", "bar", 4.5],
  ["mention-me-fg", "mention-me-bg", 4.5], ["text", "mark", 4.5], ["text", "mark-strong", 4.5],
  ["#ffffff", "primary", 4.5], ["#ffffff", "primary-hover", 4.5], ["#ffffff", "badge", 4.5],
  ["#ffffff", "danger", 4.5], ["blue", "bubble-own", 3], ["focus", "surface", 3],
];

for (const [name, theme] of [["light", light], ["dark", darkSystem]]) {
  test(`every text colour of the ${name} theme reaches WCAG AA on its backgrounds`, () => {
    const colour = (key) => (key.startsWith("#") ? key : theme[key]);
    const failures = [];
    for (const [fg, bg, minimum] of PAIRS) {
      assert.ok(colour(fg) && colour(bg), `${name}: --${fg} or --${bg} is missing`);
      const base = colour(bg).length > 7 ? over(colour(bg), theme.surface) : colour(bg);
      const ratio = contrast(colour(fg), base);
      if (ratio < minimum) failures.push(`${fg} on ${bg}: ${ratio.toFixed(2)} < ${minimum}`);
    }
    assert.deepEqual(failures, []);
  });
}

test("the dark theme is one palette: the system's and the chosen blocks are the same", () => {
  assert.deepEqual(darkSystem, darkChosen);
  assert.deepEqual(Object.keys(darkSystem).sort(), Object.keys(light).sort());
});

test("the contrast arithmetic itself", () => {
  assert.equal(contrast("#000000", "#ffffff").toFixed(1), "21.0");
  assert.equal(contrast("#ffffff", "#ffffff"), 1);
  assert.equal(contrast("#777777", "#ffffff").toFixed(2), "4.48");
  assert.equal(over("#00000080", "#ffffff"), "#7f7f7f");
});
