// People: finding someone to start a direct room with, and the dialog that creates a group or
// adds people to the shown one.

import { api } from "./api.js";
import { initial } from "./format.js";
import { gettext } from "./i18n.js";
import { presenceText, shownName } from "./model.js";
import { openRoom } from "./navigate.js";
import { $, drawAvatar, el } from "./page.js";
import { render, renderRooms } from "./render.js";
import { current, rememberPerson, upsertRoom } from "./store.js";

let searchTimer = null; // one for both search boxes: the newest typing wins
const SEARCH_MIN_CHARS = 3; // the server's SEARCH_MIN_CHARS default

async function searchPeople(query, target, onPick) {
  target.replaceChildren();
  if (!query.trim()) {
    target.hidden = true;
    return;
  }
  if (query.trim().length < SEARCH_MIN_CHARS) {
    // The server finds nobody for fewer: say so rather than show "Nobody found."
    target.hidden = false;
    const hint = gettext("Type at least %(count)s letters of a name.", { count: SEARCH_MIN_CHARS });
    target.append(el("li", "empty", hint));
    return;
  }
  const data = await api("GET", `/users?q=${encodeURIComponent(query.trim())}`);
  target.hidden = false;
  if (!data.users.length) target.append(el("li", "empty", gettext("Nobody found.")));
  for (const person of data.users) {
    rememberPerson(person);
    const li = el("li");
    onPick(li, person);
    target.append(li);
  }
}

/** A search result in the sidebar: a button that opens the direct room with them. */
function directChoice(li, person) {
  const button = el("button");
  button.type = "button";
  const avatar = el("span", "avatar");
  drawAvatar(avatar, initial(shownName(person)), person.avatar);
  button.append(avatar, el("span", "room-name", shownName(person)));
  const handle = `@${person.username}`;
  const status = presenceText(person);
  button.append(el("span", "room-last", status ? `${handle} · ${status}` : handle));
  button.addEventListener("click", () => startDirect(person));
  li.append(button);
}

async function startDirect(person) {
  const room = upsertRoom(await api("POST", "/rooms", { kind: "direct", members: [person.id] }));
  $("search").value = "";
  $("search-results").hidden = true;
  renderRooms();
  openRoom(room.id);
}

const picked = new Map(); // user id -> person, in the group dialog
let dialogMode = "create";

export function openPeopleDialog(mode) {
  dialogMode = mode;
  picked.clear();
  $("people-dialog-title").textContent =
    mode === "create" ? gettext("New group") : gettext("Add people");
  $("people-ok").textContent = mode === "create" ? gettext("Create") : gettext("Add");
  $("group-name").hidden = $("group-name-label").hidden = mode !== "create";
  $("group-name").value = "";
  $("people-search").value = "";
  $("people-choices").replaceChildren();
  $("people-error").hidden = true;
  $("people-dialog").showModal();
  (mode === "create" ? $("group-name") : $("people-search")).focus();
}

/** A search result in the dialog: a checkbox that picks them. */
function pickable(li, person) {
  const label = el("label");
  const box = el("input");
  box.type = "checkbox";
  box.checked = picked.has(person.id);
  box.addEventListener("change", () => {
    if (box.checked) picked.set(person.id, person);
    else picked.delete(person.id);
  });
  const shown = shownName(person);
  label.append(box, el("span", "", shown === person.username ? shown : `${shown} (@${person.username})`));
  li.append(label);
}

async function confirmPeopleDialog() {
  const ids = [...picked.keys()];
  try {
    if (dialogMode === "create") {
      const name = $("group-name").value.trim();
      if (!name) throw new Error(gettext("A group needs a name."));
      const room = upsertRoom(await api("POST", "/rooms", { kind: "group", name, members: ids }));
      $("people-dialog").close();
      renderRooms();
      openRoom(room.id);
    } else if (current) {
      if (!ids.length) throw new Error(gettext("Pick someone to add."));
      upsertRoom(await api("POST", `/rooms/${current.id}/members`, { user_ids: ids }));
      $("people-dialog").close();
      render();
    }
  } catch (error) {
    $("people-error").textContent = error.message;
    $("people-error").hidden = false;
  }
}

/** Search as the user types (after a pause), in the sidebar and in the dialog. */
function searchOnInput(input, target, onPick) {
  input.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      searchPeople(input.value, target, onPick).catch(() => {});
    }, 200);
  });
}

export function wirePeople() {
  $("search-form").addEventListener("submit", (event) => event.preventDefault());
  searchOnInput($("search"), $("search-results"), directChoice);
  $("new-group").addEventListener("click", () => openPeopleDialog("create"));
  $("add-members").addEventListener("click", () => openPeopleDialog("add"));
  searchOnInput($("people-search"), $("people-choices"), pickable);
  $("people-form").addEventListener("submit", (event) => {
    if (event.submitter && event.submitter.value === "ok") {
      event.preventDefault();
      confirmPeopleDialog();
    }
  });
}
