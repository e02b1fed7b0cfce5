// Alerting a person who is not looking: a desktop notification (Notification API) and an
// optional sound for a message that would alert (alertrules.js), the unread count in the
// title and on the icon. The person's tabs coordinate: each says over a BroadcastChannel
// whether it is being looked at, no tab alerts while one is, and of the tabs that are not,
// the first to claim a message alerts for it, once. The claim is an IndexedDB `add` of the
// message's key, which fails for every tab after the first: the browser runs the tabs'
// transactions one at a time, where localStorage (the fallback) reaches the other tabs'
// processes a moment later, so two tabs could both see a message unclaimed.

import {
  AlertLedger,
  alertText,
  badgedIcon,
  titleText,
  unreadTotal,
  wouldAlert,
} from "./alertrules.js";
import { browserStorage } from "./drafts.js";
import { gettext } from "./i18n.js";
import { objectStore } from "./idb.js";
import { roomName, senderName } from "./model.js";
import { openRoom } from "./navigate.js";
import { $, me } from "./page.js";
import { people, rooms } from "./store.js";

const TAB = Math.random().toString(36).slice(2);
const storage = browserStorage();
const ledger = new AlertLedger(storage, me.id);
const claims = "indexedDB" in window ? objectStore(`linkup-alerts-${me.id}`, "claimed") : null;
const CLAIMS_KEPT = 2000; // older claims are forgotten (a message is alerted for at once)
const SOUND_KEY = `linkup:sound:${me.id}`;
const others = new Map(); // another tab -> {looking, at}: whether it is looked at, and when it said so
const STALE_MS = 45_000; // tabs say it again every 20 s; one silent longer has gone
const channel = "BroadcastChannel" in window ? new BroadcastChannel(`linkup-tabs-${me.id}`) : null;
const baseTitle = document.title;
let icon = null; // the page's <link rel=icon> and its own href
let shownCount = -1;

/** Whether this tab is in front of the person: visible, and its window focused. */
export function looking() {
  return document.visibilityState === "visible" && document.hasFocus();
}

function tell(type) {
  if (channel) channel.postMessage({ type, tab: TAB, looking: type === "bye" ? false : looking() });
}

export function wireAlerts() {
  pruneClaims();
  if (channel) {
    channel.onmessage = ({ data }) => {
      if (!data || data.tab === TAB) return;
      if (data.type === "bye") others.delete(data.tab);
      else others.set(data.tab, { looking: Boolean(data.looking), at: Date.now() });
      if (data.type === "hello") tell("state"); // a new tab asks: everyone answers
    };
  }
  tell("hello");
  setInterval(() => tell("state"), 20_000);
  const changed = () => tell("state");
  document.addEventListener("visibilitychange", changed);
  window.addEventListener("focus", changed);
  window.addEventListener("blur", changed);
  window.addEventListener("pagehide", () => tell("bye"));
  const link = document.querySelector("link[rel~='icon']");
  icon = link ? { link, href: link.href } : null;
  drawSound();
  $("alerts-enable").addEventListener("click", () => askPermission());
  $("sound-toggle").addEventListener("click", () => {
    try {
      if (soundOn()) storage.removeItem(SOUND_KEY);
      else storage.setItem(SOUND_KEY, "1");
    } catch {
      // storage off: the sound stays as it was
    }
    drawSound();
  });
}

/** Ask for the permission to notify: only ever after something the person did (a click, or
 * sending a message), never on load. */
export function askPermission() {
  if (!("Notification" in window) || Notification.permission !== "default") return;
  Notification.requestPermission()
    .catch(() => "default")
    .then(drawSound);
}

function soundOn() {
  try {
    return storage.getItem(SOUND_KEY) === "1";
  } catch {
    return false;
  }
}

function drawSound() {
  const on = soundOn();
  const button = $("sound-toggle");
  button.setAttribute("aria-pressed", String(on));
  button.textContent = on ? gettext("Sound on") : gettext("Sound off");
  const ask = $("alerts-enable");
  ask.hidden = !("Notification" in window) || Notification.permission !== "default";
}

/** New messages came to a room: alert for those that would, unless someone is looking. */
export async function alertMessages(room, messages) {
  if (looking()) return; // the conversation itself shows them
  for (const message of messages) {
    if (!wouldAlert(room, message, me)) continue;
    const text = alertText(room, message, roomName(room, me.id), senderName(message.sender, people));
    await alertOnce(`m:${room.id}:${message.seq}`, text, room.id);
  }
}

/** I was added to a group. */
export async function alertAdded(room) {
  if (room.muted) return;
  const text = { title: roomName(room, me.id), body: gettext("You were added to the group") };
  await alertOnce(`r:${room.id}`, text, room.id);
}

async function alertOnce(key, text, roomId) {
  if (looking()) return; // the conversation itself shows it
  const run = async () => {
    const now = Date.now();
    if ([...others.values()].some((tab) => tab.looking && now - tab.at < STALE_MS)) return;
    if (!(await claim(key))) return; // another tab alerted for it
    if ("Notification" in window && Notification.permission === "granted") {
      const note = new Notification(text.title, {
        body: text.body,
        tag: `linkup-${key}`,
        icon: icon ? icon.href : undefined,
      });
      note.onclick = () => {
        window.focus();
        openRoom(roomId);
        note.close();
      };
    }
    if (soundOn()) ping();
  };
  if (navigator.locks) await navigator.locks.request(`linkup-alerts-${me.id}`, run);
  else await run();
}

/** Whether this tab is the first to claim `key` (then it alerts). */
async function claim(key) {
  if (!claims) return ledger.claim(key);
  try {
    await claims("readwrite", (store) => store.add(Date.now(), key));
    return true;
  } catch (error) {
    if (error && error.name === "ConstraintError") return false; // claimed before
    return ledger.claim(key); // IndexedDB refused (private mode, quota): the fallback
  }
}

/** Forget old claims now and then (the page's start): the store stays small. */
async function pruneClaims() {
  if (!claims) return;
  try {
    if ((await claims("readonly", (store) => store.count())) > CLAIMS_KEPT) {
      await claims("readwrite", (store) => store.clear());
    }
  } catch {
    // nothing kept, nothing to prune
  }
}

/** A short, soft tone (made here: no sound file to fetch). */
function ping() {
  try {
    const context = new AudioContext();
    const tone = context.createOscillator();
    const gain = context.createGain();
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.12, context.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, context.currentTime + 0.3);
    tone.connect(gain).connect(context.destination);
    tone.start();
    tone.stop(context.currentTime + 0.3);
    tone.onended = () => context.close();
  } catch {
    // no audio here
  }
}

/** The unread count in the title and on the icon (rooms not muted). */
export function drawCount() {
  const count = unreadTotal(rooms.values());
  if (count === shownCount) return;
  shownCount = count;
  document.title = titleText(baseTitle, count);
  if (icon) icon.link.href = count ? badgedIcon(count) : icon.href;
}
