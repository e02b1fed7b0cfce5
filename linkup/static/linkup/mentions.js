// The @ autocomplete in the composer: typing "@" and the start of a name lists the room's
// members who match (richtext.js chooses them); arrows move, Enter or Tab picks, Escape
// closes, a click picks.

import { shownName } from "./model.js";
import { $, el, me } from "./page.js";
import { insertMention, mentionAt, mentionChoices } from "./richtext.js";
import { current, people } from "./store.js";

let open = null; // {start, choices, index} while the list shows

/** The composer changed (or its caret moved): show, update or hide the list. */
export function suggestMentions() {
  const input = $("composer-input");
  const at = current && input.selectionStart === input.selectionEnd
    ? mentionAt(input.value, input.selectionStart)
    : null;
  const members = (current ? current.members || [] : []).map((m) => ({
    ...m,
    display_name: (people.get(m.id) || m).display_name || "",
  }));
  const choices = at ? mentionChoices(members, at.query, me.id) : [];
  if (!choices.length) return closeMentions();
  const same = open && open.start === at.start;
  open = { start: at.start, choices, index: same ? Math.min(open.index, choices.length - 1) : 0 };
  drawList();
}

export function closeMentions() {
  open = null;
  const list = $("mention-list");
  list.hidden = true;
  list.replaceChildren();
  $("composer-input").removeAttribute("aria-activedescendant");
  $("composer-input").setAttribute("aria-expanded", "false");
}

/** A key in the composer: true if the list took it. */
export function mentionKey(event) {
  if (!open) return false;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    const step = event.key === "ArrowDown" ? 1 : -1;
    open.index = (open.index + step + open.choices.length) % open.choices.length;
    drawList();
  } else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
    pick(open.choices[open.index]);
  } else if (event.key === "Escape") {
    closeMentions();
  } else return false;
  event.preventDefault();
  return true;
}

function pick(member) {
  const input = $("composer-input");
  const done = insertMention(input.value, open.start, input.selectionStart, member.username);
  input.value = done.text;
  input.setSelectionRange(done.caret, done.caret);
  closeMentions();
  input.dispatchEvent(new Event("input")); // the draft and typing follow
  input.focus();
}

function drawList() {
  const list = $("mention-list");
  const input = $("composer-input");
  list.replaceChildren(
    ...open.choices.map((member, i) => {
      const item = el("li", "mention-choice");
      const name = shownName(member);
      if (name !== member.username) item.append(el("span", "mention-name", `${name} `));
      item.append(el("span", "mention-handle", `@${member.username}`));
      item.id = `mention-${i}`;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", String(i === open.index));
      // mousedown, not click: the composer keeps its focus and caret.
      item.addEventListener("mousedown", (event) => {
        event.preventDefault();
        pick(member);
      });
      return item;
    }),
  );
  list.hidden = false;
  input.setAttribute("aria-expanded", "true");
  input.setAttribute("aria-activedescendant", `mention-${open.index}`);
}
