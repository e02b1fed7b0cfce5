// Linkup's web client: the room list, one conversation, and the wire contract under them.
// This entry point wires the page's controls to the modules and starts the sockets.
//
// Truth lives on the server: every message has its room's seq, and the client only ever
// merges what it receives by seq, so nothing shows twice or out of order.
//
//   model.js, merge.js, format.js,  pure (no DOM, no network): unit-tested with node --test
//   changes.js, attachments.js
//   connection.js, outbox.js        a socket with reconnects; the localStorage outbox (tested too)
//   drafts.js                       per-room drafts in localStorage (tested)
//   richtext.js, mentions.js        formatting parsed to a token tree (tested); the @ list
//   page.js                         the config the server wrote into the page; DOM helpers
//   api.js                          the REST API (fetch, CSRF, signed out)
//   store.js                        rooms, people, the shown room; taking messages in
//   receipts.js                     my delivered and read markers
//   sync.js                         the chat socket: frames, catch-up, HTTP polling
//   send.js                         the outbox, sending, typing
//   render.js                       drawing the room list and the conversation
//   navigate.js                     opening a room, its history, back to the list
//   people.js                       search, direct rooms, the group dialog
//   menu.js                         a message's menu: reply, react, edit, delete
//   search.js, find.js              message search: pure pieces (tested); the box and hits
//   safety.js                       blocking the other person of a direct chat; reports
//   attach.js, upload.js, filestore.js  files: the tray, voice notes, the viewer; uploads
//                                   with progress; queued files kept in IndexedDB
//   alertrules.js, alerts.js        when to alert (tested); desktop notifications, sound, the
//                                   count in the title and icon, tabs agreeing on one alert
//   keys.js, keyboard.js            shortcuts: which key means what (tested); doing it, and the
//                                   screen reader's line for new messages
//   groups.js, info.js              a group's info panel: who may do what (tested); the panel,
//                                   and a message's info (delivered to, read by)
//   theme.js                        light or dark: the device's, or the person's (kept by the server)
//   snapshot.js, offline.js         recent conversations for opening offline: what (tested); kept
//                                   in IndexedDB; the service worker (sw.js) keeps the app shell
//   bell.js                         notifications and Web Push (sw.js: its service worker)
//
// The modules import one another's functions directly (a UI's calls go both ways: drawing
// wires clicks to actions, actions draw). That is safe because nothing runs while they load
// but the construction of the sockets and the outbox, which only keep their callbacks: this
// file, evaluated last, starts everything.

import { askPermission, wireAlerts } from "./alerts.js";
import { api, leave } from "./api.js";
import { notes, notifier, renderBell, wireBell } from "./bell.js";
import { loadOlder, showList } from "./navigate.js";
import { trayHolds, wireAttach } from "./attach.js";
import { sweepFiles } from "./filestore.js";
import { wireFind } from "./find.js";
import { cancelContext, composerKey, editing, submit } from "./menu.js";
import { wireInfo } from "./info.js";
import { wireKeyboard } from "./keyboard.js";
import { closeMentions, mentionKey, suggestMentions } from "./mentions.js";
import { forgetAll, registerWorker } from "./offline.js";
import { $, config } from "./page.js";
import { wirePeople } from "./people.js";
import { markVisibleRead } from "./receipts.js";
import { drawJump, render, scrollToBottom } from "./render.js";
import { loadBlocks, wireSafety } from "./safety.js";
import { outbox, typed } from "./send.js";
import { wireTheme } from "./theme.js";
import { current, drafts, loadRooms, people, restoreSnapshot, rooms } from "./store.js";
import { connection, sendFocus, stateChanged } from "./sync.js";

function wire() {
  const input = $("composer-input");
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = input.value.trim();
    if (!body && !trayHolds()) return;
    askPermission(); // a sensible moment: the person is writing to someone
    input.value = "";
    submit(body); // a message, a reply or an edit (menu.js knows the composer's mode)
  });
  input.addEventListener("keydown", (event) => {
    if (mentionKey(event)) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    } else composerKey(event);
  });
  $("context-cancel").addEventListener("click", cancelContext);
  input.addEventListener("input", () => {
    // The list shows other rooms' drafts: this one's shows once another room is open.
    if (current && !editing()) drafts.set(current.id, input.value);
    typed();
    suggestMentions();
  });
  input.addEventListener("click", suggestMentions);
  input.addEventListener("blur", () => setTimeout(closeMentions, 150));
  $("back").addEventListener("click", showList);
  $("sign-out").form.addEventListener("submit", () => {
    forgetAll(); // the kept conversations and app shell
    leave();
    connection.stop();
  });
  $("scroller").addEventListener("scroll", () => {
    if ($("scroller").scrollTop < 80) loadOlder();
    markVisibleRead();
    drawJump();
  });
  $("jump-latest").addEventListener("click", () => {
    scrollToBottom();
    $("composer-input").focus();
  });
  wirePeople();
  $("mute").addEventListener("click", async () => {
    const room = current;
    if (!room) return;
    const result = await api("POST", `/rooms/${room.id}/mute`, { muted: !room.muted }).catch(() => null);
    if (result && result.room === room.id) {
      room.muted = result.muted;
      render();
    }
  });
  document.addEventListener("visibilitychange", () => {
    sendFocus();
    markVisibleRead();
  });
  window.addEventListener("focus", markVisibleRead);
}

wire();
wireTheme();
wireInfo();
wireKeyboard();
wireAlerts();
wireAttach();
wireFind();
wireSafety();
wireBell();
renderBell();
notifier.start();
outbox.expire(); // a week-old item shows ✗ at once, even offline
sweepFiles(outbox.all().map((item) => item.client_id)).catch(() => {}); // files of sent ones
stateChanged("connecting");
loadRooms().catch(() => restoreSnapshot()); // offline: the conversations kept last time
registerWorker(config);
loadBlocks().catch(() => {});
connection.start();
render();

// For the browser tests and the curious: the live state, read-only by convention.
window.linkup = { rooms, people, outbox, connection, notes, notifier };
