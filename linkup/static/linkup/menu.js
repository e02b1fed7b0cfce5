// What a person does with a sent message: its menu (Reply, a row of reactions, Edit, Delete
// for me, Delete for everyone), opened by its button, a right-click or a long press, and
// driven by the keyboard; the composer's reply and edit modes; who reacted; and jumping to
// the message a reply quotes. The changes themselves go through the outbox (send.js).

import { api } from "./api.js";
import { takeTray } from "./attach.js";
import { menuActions, QUICK_EMOJI, quoteOf, roleIn, toggledState } from "./changes.js";
import { loadOlder } from "./navigate.js";
import { gettext } from "./i18n.js";
import { senderName } from "./model.js";
import { $, config, el, me } from "./page.js";
import { openMessageInfo } from "./info.js";
import { openReport } from "./safety.js";
import { shown, showNotice, titleChips } from "./render.js";
import { compose, queueChange } from "./send.js";
import { current, drafts, people } from "./store.js";

const LABELS = {
  reply: gettext("Reply"),
  edit: gettext("Edit"),
  "delete-me": gettext("Delete for me"),
  "delete-everyone": gettext("Delete for everyone"),
  report: gettext("Report…"),
  info: gettext("Info"),
};
const LONG_PRESS_MS = 500;
const JUMP_PAGES = 50; // older pages loaded at most to reach a quoted message

let open = null; // the menu shown: {li, button, menu}
let context = null; // the composer's mode: {mode: "reply" | "edit", room, seq, quote?}

// -- the menu ---------------------------------------------------------------------------------

/** Right-click and long press open a message's menu too. */
export function wireMessage(li, button) {
  li.addEventListener("contextmenu", (event) => {
    if (button.hidden) return;
    event.preventDefault();
    toggleMenu(li, button);
  });
  let timer = null;
  const cancel = () => clearTimeout(timer);
  li.addEventListener("pointerdown", (event) => {
    if (event.pointerType !== "touch" || button.hidden) return;
    timer = setTimeout(() => toggleMenu(li, button), LONG_PRESS_MS);
  });
  for (const type of ["pointerup", "pointermove", "pointercancel"]) li.addEventListener(type, cancel);
}

export function closeMenu(refocus = false) {
  if (!open) return;
  const { button, menu } = open;
  open = null;
  menu.remove();
  button.setAttribute("aria-expanded", "false");
  if (refocus) button.focus();
}

export function toggleMenu(li, button) {
  const reopen = !open || open.li !== li;
  closeMenu(!reopen);
  const message = shown.get(Number(li.dataset.seq));
  if (!reopen || !message || !current) return;
  const actions = menuActions(message, {
    meId: me.id,
    role: roleIn(current, me.id),
    now: Date.now(),
    editWindowS: config.edit_window_s,
    deleteWindowS: config.delete_window_s,
  });
  if (!actions.length) return;
  const menu = el("div", "menu");
  menu.setAttribute("role", "menu");
  menu.setAttribute("aria-label", gettext("Message actions"));
  for (const action of actions) {
    if (action === "react") {
      const row = el("div", "emoji-row");
      row.setAttribute("role", "group");
      row.setAttribute("aria-label", gettext("React"));
      for (const emoji of QUICK_EMOJI) {
        const item = menuItem(emoji, () => react(message.seq, emoji));
        item.classList.add("emoji");
        item.dataset.emoji = emoji;
        item.setAttribute("aria-label", gettext("React with %(emoji)s", { emoji }));
        row.append(item);
      }
      menu.append(row);
    } else {
      const item = menuItem(LABELS[action], () => act(action, message.seq));
      item.dataset.action = action;
      menu.append(item);
    }
  }
  menu.addEventListener("keydown", menuKeys);
  li.append(menu);
  button.setAttribute("aria-expanded", "true");
  open = { li, button, menu };
  menu.querySelector("button").focus();
}

function menuItem(text, run) {
  const item = el("button", "menu-item", text);
  item.type = "button";
  item.setAttribute("role", "menuitem");
  item.addEventListener("click", (event) => {
    event.stopPropagation();
    closeMenu();
    run();
  });
  return item;
}

/** Arrows move between the items, Home and End jump, Escape closes (focus back on ⌄). */
function menuKeys(event) {
  const items = [...open.menu.querySelectorAll("button")];
  const at = items.indexOf(document.activeElement);
  const move = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[event.key];
  if (move) items[(at + move + items.length) % items.length].focus();
  else if (event.key === "Home") items[0].focus();
  else if (event.key === "End") items[items.length - 1].focus();
  else if (event.key === "Escape" || event.key === "Tab") closeMenu(event.key === "Escape");
  else return;
  if (event.key !== "Tab") event.preventDefault();
}

document.addEventListener("click", (event) => {
  if (open && !open.menu.contains(event.target) && !open.button.contains(event.target)) closeMenu();
});

function react(seq, emoji) {
  const message = shown.get(seq);
  if (!message || !current) return;
  queueChange(current.id, seq, { kind: "reaction", emoji, react: toggledState(message, emoji) });
}

/** Reply to a message (the keyboard's Alt+R): the composer's reply mode, focused. */
export function replyTo(message) {
  if (!current || message.seq == null) return;
  startContext({ mode: "reply", room: current.id, seq: message.seq, quote: quoteOf(message) });
}

function act(action, seq) {
  const message = shown.get(seq);
  if (!message || !current) return;
  if (action === "reply") startContext({ mode: "reply", room: current.id, seq, quote: quoteOf(message) });
  else if (action === "edit") {
    startContext({ mode: "edit", room: current.id, seq });
    $("composer-input").value = message.body;
  } else if (action === "report") openReport(current.id, message);
  else if (action === "info") openMessageInfo(current.id, message);
  else {
    if (context && context.seq === seq) cancelContext();
    const scope = action === "delete-me" ? "me" : "everyone";
    queueChange(current.id, seq, { kind: "delete", scope });
  }
}

// -- the composer's reply and edit modes -----------------------------------------------------

/** True while the composer edits a sent message (its text is not the room's draft). */
export function editing() {
  return Boolean(context && context.mode === "edit");
}

/** Out of edit mode the composer holds the room's draft again. */
function restoreDraft() {
  $("composer-input").value = current ? drafts.get(current.id) : "";
}

function startContext(next) {
  if (editing()) restoreDraft();
  context = next;
  showContext();
  $("composer-input").focus();
}

export function cancelContext() {
  if (editing()) restoreDraft();
  context = null;
  showContext();
}

/** The bar above the composer: "Replying to bob" with the quote, or "Editing". */
export function showContext() {
  if (context && (!current || context.room !== current.id)) cancelContext(); // another room
  const bar = $("composer-context");
  bar.hidden = !context;
  if (!context) return;
  bar.dataset.mode = context.mode;
  if (context.mode === "reply") {
    const mine = context.quote.sender.id === me.id;
    $("context-title").textContent = mine
      ? gettext("Replying to yourself")
      : gettext("Replying to %(name)s", { name: senderName(context.quote.sender, people) });
    $("context-text").textContent = context.quote.preview;
  } else {
    $("context-title").textContent = gettext("Editing message");
    $("context-text").textContent = (shown.get(context.seq) || { body: "" }).body;
  }
}

/** The composer was submitted: a reply, an edit, or a plain message (with the tray's
 * files; an edit leaves them for the next message). */
export function submit(body) {
  const mode = context;
  context = null;
  showContext();
  if (mode && mode.mode === "edit") {
    const message = shown.get(mode.seq);
    if (body && message && message.body !== body) {
      queueChange(mode.room, mode.seq, { kind: "edit", body });
    }
    restoreDraft();
    return;
  }
  if (current) drafts.clear(current.id);
  const { files, meta } = takeTray();
  compose(body, mode ? mode.quote : null, files, meta);
}

/** Escape in the composer leaves reply or edit mode. */
export function composerKey(event) {
  if (event.key === "Escape" && context) {
    event.preventDefault();
    cancelContext();
  }
}

// -- who reacted, and the quoted message ------------------------------------------------------

const reactorsAsked = new Map(); // `${room}:${seq}` -> the reactions' signature asked for

/** Fetch who reacted to a message (once per state of its chips) into the chips' tooltips. */
export async function whoReacted(chips, roomId, seq) {
  const key = `${roomId}:${seq}`;
  if (reactorsAsked.get(key) === chips.dataset.signature) return;
  reactorsAsked.set(key, chips.dataset.signature);
  try {
    const answer = await api("GET", `/rooms/${roomId}/messages/${seq}/reactions`);
    titleChips(chips, answer.reactions);
  } catch {
    reactorsAsked.delete(key); // asked again on the next hover
  }
}

/** Show a message of the open room (the one a reply quotes, a search's hit), loading older
 * pages (of `pageSize`) until it is held; return its element, or null. */
export async function jumpTo(seq, { pageSize } = {}) {
  const room = current;
  for (let page = 0; page < JUMP_PAGES && room === current && room.seg.lo > seq; page++) {
    if (!(await loadOlder(pageSize))) break;
  }
  const li = document.querySelector(`#messages .msg[data-seq="${seq}"]`);
  if (!li) {
    showNotice(gettext("The original message is no longer in this chat."));
    return null;
  }
  li.scrollIntoView({ block: "center" });
  li.classList.add("flash");
  setTimeout(() => li.classList.remove("flash"), 1500);
  return li;
}
