// Light or dark: the device's choice (prefers-color-scheme) until the person picks one with
// the toggle, which the server keeps (`PATCH /me {"theme"}`) and writes into every page.

import { api } from "./api.js";
import { gettext } from "./i18n.js";
import { $ } from "./page.js";

const dark = window.matchMedia("(prefers-color-scheme: dark)");

/** The colours showing now: the person's choice, else the device's. */
export function shownTheme() {
  const chosen = document.documentElement.dataset.theme;
  if (chosen === "light" || chosen === "dark") return chosen;
  return dark.matches ? "dark" : "light";
}

function label() {
  const button = $("theme-toggle");
  const on = shownTheme() === "dark";
  button.setAttribute("aria-pressed", String(on));
  button.title = on
    ? gettext("Dark colours (switch to light)")
    : gettext("Light colours (switch to dark)");
}

export function wireTheme() {
  $("theme-toggle").addEventListener("click", () => {
    const next = shownTheme() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    label();
    api("PATCH", "/me", { theme: next }).catch(() => {});
  });
  dark.addEventListener("change", label);
  label();
}
