// Safety in the page: blocking the other person of a direct chat (its header's Block button;
// while blocked the composer gives way to a line saying so, and Unblock), and reporting a
// message to the site's moderators (the message menu's Report…, a reason asked in a dialog).
// Whom I blocked comes from GET /blocks, then from `block.updated` frames (all my tabs).

import { api } from "./api.js";
import { gettext } from "./i18n.js";
import { roomName, senderName } from "./model.js";
import { $, me } from "./page.js";
import { render } from "./render.js";
import { current, people } from "./store.js";

export const blocked = new Set(); // the ids of the people I blocked

let reporting = null; // {room, seq} of the message the dialog reports

/** The other person of a direct room (their id), or null. */
function otherId(room) {
  if (!room || room.kind !== "direct") return null;
  const other = (room.members || []).find((m) => m.id !== me.id);
  return other ? other.id : null;
}

/** A block made or lifted, here or in another tab. */
export function blockChanged(userId, isBlocked) {
  if (isBlocked) blocked.add(userId);
  else blocked.delete(userId);
}

export async function loadBlocks() {
  const answer = await api("GET", "/blocks");
  blocked.clear();
  for (const block of answer.blocks) blocked.add(block.user.id);
  render();
}

/** The header's Block button and the composer's place, for the shown room. */
export function drawSafety() {
  const other = otherId(current);
  const button = $("block");
  button.hidden = other == null;
  $("report-person").hidden = other == null;
  const isBlocked = other != null && blocked.has(other);
  button.textContent = isBlocked ? gettext("Unblock") : gettext("Block");
  button.setAttribute("aria-pressed", String(isBlocked));
  $("blocked-bar").hidden = !isBlocked;
  if (isBlocked) {
    $("blocked-text").textContent = gettext("You blocked %(name)s.", { name: roomName(current, me.id) });
    $("composer").hidden = true;
  }
}

async function toggleBlock() {
  const other = otherId(current);
  if (other == null) return;
  const name = roomName(current, me.id);
  try {
    if (blocked.has(other)) {
      await api("DELETE", `/blocks/${other}`);
      blockChanged(other, false);
    } else {
      const sure = window.confirm(
        gettext(
          "Block %(name)s? They will not be able to message you or see when you are online, " +
            "and you will not get their messages here. They are not told.",
          { name },
        ),
      );
      if (!sure) return;
      await api("POST", "/blocks", { user_id: other });
      blockChanged(other, true);
    }
  } catch (error) {
    $("notice").hidden = false;
    $("notice").textContent = gettext("Could not change the block: %(reason)s", {
      reason: error.message,
    });
  }
  render();
}

/** The message menu's Report… (a message), or the direct chat's (its other person): ask
 * why, then send it to the moderators. */
export function openReport(roomId, message) {
  reporting = { room: roomId, seq: message.seq };
  const who = senderName(message.sender, people);
  $("report-title").textContent = gettext("Report a message");
  $("report-what").textContent = `${who}: ${message.body.slice(0, 140)}`;
  showReport();
}

function reportPerson() {
  const other = otherId(current);
  if (other == null) return;
  reporting = { user_id: other };
  $("report-title").textContent = gettext("Report %(name)s", { name: roomName(current, me.id) });
  $("report-what").textContent = "";
  showReport();
}

function showReport() {
  $("report-reason").value = "";
  $("report-error").hidden = true;
  $("report-dialog").showModal();
  $("report-reason").focus();
}

async function sendReport(event) {
  if (event.submitter && event.submitter.value === "cancel") return;
  event.preventDefault();
  const reason = $("report-reason").value.trim();
  if (!reason) {
    $("report-error").hidden = false;
    $("report-error").textContent = gettext("Say what is wrong with it.");
    return;
  }
  try {
    await api("POST", "/reports", { ...reporting, reason });
  } catch (error) {
    $("report-error").hidden = false;
    $("report-error").textContent = error.message;
    return;
  }
  $("report-dialog").close();
  $("notice").hidden = false;
  $("notice").textContent = gettext("Reported. Thank you: the site's moderators will look at it.");
}

export function wireSafety() {
  $("block").addEventListener("click", toggleBlock);
  $("unblock").addEventListener("click", toggleBlock);
  $("report-person").addEventListener("click", reportPerson);
  $("report-form").addEventListener("submit", sendReport);
}
