// A group's info panel (members with their roles and presence, the name and description,
// adding, removing, making admins, leaving) and a message's info (who it was delivered to
// and read by, and when). What is offered follows groups.js; the server decides.

import { api } from "./api.js";
import { roleIn } from "./changes.js";
import { manages, memberActions, memberOrder, ROLE_LABELS } from "./groups.js";
import { gettext, ngettext } from "./i18n.js";
import { initial } from "./format.js";
import { presenceText, roomName, shortTime, shownName } from "./model.js";
import { $, drawAvatar, el, me } from "./page.js";
import { openPeopleDialog } from "./people.js";
import { showNotice } from "./render.js";
import { current, people, rememberPerson, upsertRoom } from "./store.js";

const ACTION_LABELS = {
  admin: gettext("Make admin"),
  member: gettext("Make member"),
  remove: gettext("Remove"),
};

export function wireInfo() {
  $("room-info").addEventListener("click", () => openInfo());
  $("room-title").addEventListener("click", () => {
    const other = current && current.kind === "direct"
      ? (current.members || []).find((m) => m.id !== me.id)
      : null;
    if (other) openPerson(other.id);
    else if (current && current.kind === "group") openInfo();
  });
  $("info-save").addEventListener("click", saveInfo);
  $("info-add").addEventListener("click", () => {
    $("info-dialog").close();
    openPeopleDialog("add");
  });
  $("info-leave").addEventListener("click", leaveGroup);
}

export function openInfo() {
  const room = current;
  if (!room || room.kind !== "group") return;
  drawInfo(room);
  $("info-error").hidden = true;
  $("info-dialog").showModal();
}

/** Draw the panel for the room as it stands (again whenever the room changes while open). */
export function drawInfo(room = current) {
  if (!room || room.kind !== "group") return;
  const role = roleIn(room, me.id);
  const editable = manages(role);
  $("info-title").textContent = roomName(room, me.id);
  for (const id of ["info-name", "info-description"]) $(id).readOnly = !editable;
  if (document.activeElement !== $("info-name")) $("info-name").value = room.name || "";
  if (document.activeElement !== $("info-description")) {
    $("info-description").value = room.description || "";
  }
  $("info-save").hidden = !editable;
  $("info-add").hidden = !editable;
  const members = memberOrder(room.members || [], me.id);
  $("info-count").textContent = ngettext("%(count)s member", "%(count)s members", members.length);
  $("info-members").replaceChildren(
    ...members.map((member) => {
      const person = people.get(member.id) || member;
      const li = el("li", "member");
      li.dataset.user = member.id;
      const avatar = el("span", "avatar small");
      drawAvatar(avatar, initial(shownName(person)), person.avatar);
      const who = el("button", "member-who");
      who.type = "button";
      who.addEventListener("click", () => openPerson(member.id));
      who.append(
        el("span", "member-name", member.id === me.id ? gettext("You") : shownName(person)),
        el("span", "member-handle", `@${member.username}`),
      );
      const role = el("span", "member-role", ROLE_LABELS[member.role] || "");
      const seen = el("span", "member-seen", member.id === me.id ? "" : presenceText(person));
      li.append(avatar, who, role, seen);
      for (const action of memberActions(roleIn(room, me.id), member, me.id)) {
        const button = el("button", "secondary small", ACTION_LABELS[action]);
        button.type = "button";
        button.dataset.action = action;
        button.addEventListener("click", () => memberAction(room, member, action));
        li.append(button);
      }
      return li;
    }),
  );
}

async function memberAction(room, member, action) {
  try {
    if (action === "remove") {
      const question = gettext("Remove %(name)s from %(group)s?", {
        name: shownName(people.get(member.id) || member),
        group: roomName(room, me.id),
      });
      if (!confirm(question)) return;
      await api("DELETE", `/rooms/${room.id}/members/${member.id}`);
      room.members = room.members.filter((m) => m.id !== member.id);
    } else {
      upsertRoom(await api("PUT", `/rooms/${room.id}/members/${member.id}`, { role: action }));
    }
    drawInfo(room);
  } catch (error) {
    showError(error);
  }
}

async function saveInfo() {
  const room = current;
  if (!room) return;
  try {
    const body = { name: $("info-name").value, description: $("info-description").value };
    upsertRoom(await api("PATCH", `/rooms/${room.id}`, body));
    $("info-error").hidden = true;
    $("info-dialog").close();
  } catch (error) {
    showError(error);
  }
}

async function leaveGroup() {
  const room = current;
  if (!room) return;
  const question = gettext("Leave %(group)s? You will no longer get its messages.", {
    group: roomName(room, me.id),
  });
  if (!confirm(question)) return;
  try {
    await api("DELETE", `/rooms/${room.id}/members/${me.id}`);
    $("info-dialog").close();
    // The server's room.removed takes the room away, in every tab.
  } catch (error) {
    showError(error);
  }
}

function showError(error) {
  $("info-error").textContent = error.message || gettext("That did not work: try again.");
  $("info-error").hidden = false;
}

// -- a person's profile --------------------------------------------------------------------------

/** A person's profile: picture, name, username, about line and presence (GET /users/{id}),
 * drawn at once from what the page knows, then from the server's answer. */
export async function openPerson(userId) {
  drawPerson(people.get(userId) || { id: userId, username: "" });
  $("person-dialog").showModal();
  try {
    const person = await api("GET", `/users/${userId}`);
    rememberPerson(person);
    drawPerson(person);
  } catch (error) {
    $("person-about").textContent = error.message || gettext("That did not work: try again.");
  }
}

function drawPerson(person) {
  const name = person.id === me.id ? gettext("You") : shownName(person);
  drawAvatar($("person-avatar"), initial(shownName(person) || "?"), person.avatar);
  $("person-name").textContent = name;
  $("person-handle").textContent = person.username ? `@${person.username}` : "";
  $("person-about").textContent = person.about || "";
  $("person-seen").textContent = presenceText(person);
}

// -- a message's info --------------------------------------------------------------------------

/** Who my message was delivered to and read by, and when (the REST API's message info). */
export async function openMessageInfo(roomId, message) {
  const dialog = $("message-info");
  $("message-info-text").textContent = message.body || "📎";
  $("message-info-read").replaceChildren();
  $("message-info-delivered").replaceChildren();
  dialog.showModal();
  try {
    const info = await api("GET", `/rooms/${roomId}/messages/${message.seq}/info`);
    const line = (member, at) =>
      el(
        "li",
        "",
        `${shownName(people.get(member.user.id) || member.user)} · ${
          at ? shortTime(at) : gettext("not yet")
        }`,
      );
    $("message-info-read").replaceChildren(
      ...info.members.filter((m) => m.read_at).map((m) => line(m, m.read_at)),
    );
    $("message-info-delivered").replaceChildren(
      ...info.members.filter((m) => !m.read_at).map((m) => line(m, m.delivered_at)),
    );
  } catch (error) {
    dialog.close();
    showNotice(error.message || gettext("The message's info could not be loaded."));
  }
}
