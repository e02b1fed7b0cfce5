// Files into the composer: the attach button, pasting and dropping files, the tray of files
// that go with the next message, voice notes recorded in the page (MediaRecorder), and the
// viewer a photo opens in. Sending itself is send.js's (the files wait in IndexedDB).

import { checkFiles, clock, humanSize, voiceNoteName } from "./attachments.js";
import { gettext } from "./i18n.js";
import { $, config, el } from "./page.js";
import { showNotice } from "./render.js";
import { compose } from "./send.js";
import { current } from "./store.js";

let tray = []; // [{file, meta: {name, duration_s?}}] going with the next message
let trayRoom = null; // the room they were picked in: files never follow to another room

/** The tray's files, emptied: what the composer sends with its text. */
export function takeTray() {
  const taken = current && current.id === trayRoom ? tray : [];
  tray = [];
  drawTray();
  return { files: taken.map((t) => t.file), meta: taken.map((t) => t.meta) };
}

export function trayHolds() {
  return tray.length > 0 && !!current && current.id === trayRoom;
}

/** Another room was opened: the files picked for the last one are not offered there. */
export function leaveTray() {
  if (current && current.id === trayRoom) return;
  tray = [];
  trayRoom = null;
  drawTray();
  if (recording) stopRecording(false);
}

/** Offer files to the tray: what a message cannot take is refused at once, saying why. */
export function addFiles(list) {
  if (!current) return;
  const { taken, refused } = checkFiles([...list], tray.length, {
    maxBytes: config.upload_max_bytes,
    maxFiles: config.attachments_max,
  });
  if (trayRoom !== current.id) tray = [];
  trayRoom = current.id;
  for (const file of taken) tray.push({ file, meta: { name: file.name || "file" } });
  if (refused.length) {
    const lines = refused.map((r) =>
      gettext("%(name)s was not added: %(reason)s.", { name: r.name, reason: r.why }),
    );
    showNotice(lines.join(" "));
  }
  drawTray();
}

function drawTray() {
  const list = $("tray");
  list.hidden = tray.length === 0;
  list.replaceChildren(
    ...tray.map((entry, index) => {
      const item = el("li", "tray-file");
      item.append(el("span", "file-name", entry.meta.name));
      item.append(el("span", "file-detail", humanSize(entry.file.size)));
      const remove = el("button", "tray-remove", "✕");
      remove.type = "button";
      remove.setAttribute("aria-label", gettext("Remove %(name)s", { name: entry.meta.name }));
      remove.addEventListener("click", () => {
        tray.splice(index, 1);
        drawTray();
      });
      item.append(remove);
      return item;
    }),
  );
}

export function wireAttach() {
  const input = $("file-input");
  $("attach").addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = "";
  });
  $("composer-input").addEventListener("paste", (event) => {
    const files = event.clipboardData ? [...event.clipboardData.files] : [];
    if (files.length) {
      event.preventDefault();
      addFiles(files);
    }
  });
  const pane = $("conversation");
  pane.addEventListener("dragover", (event) => {
    if (!current || !event.dataTransfer || ![...event.dataTransfer.types].includes("Files")) return;
    event.preventDefault();
    pane.classList.add("dropping");
  });
  pane.addEventListener("dragleave", (event) => {
    if (event.target === pane || !pane.contains(event.relatedTarget)) pane.classList.remove("dropping");
  });
  pane.addEventListener("drop", (event) => {
    pane.classList.remove("dropping");
    if (!current || !event.dataTransfer || !event.dataTransfer.files.length) return;
    event.preventDefault();
    addFiles(event.dataTransfer.files);
  });
  $("record").addEventListener("click", startRecording);
  $("record-cancel").addEventListener("click", () => stopRecording(false));
  $("record-send").addEventListener("click", () => stopRecording(true));
  $("viewer-close").addEventListener("click", () => $("viewer").close());
}

// -- voice notes -----------------------------------------------------------------------------

let recording = null; // {recorder, stream, chunks, started, timer, send}

async function startRecording() {
  if (recording || !current) return;
  if (!navigator.mediaDevices || typeof MediaRecorder === "undefined") {
    showNotice(gettext("This browser cannot record voice notes."));
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch {
    showNotice(gettext("The microphone is not available (allow it in the browser to record)."));
    return;
  }
  const recorder = new MediaRecorder(stream);
  const state = {
    recorder,
    stream,
    chunks: [],
    started: performance.now(),
    timer: null,
    send: false,
    room: current.id, // a voice note goes to the room it was recorded in, or nowhere
  };
  recording = state;
  recorder.addEventListener("dataavailable", (event) => {
    if (event.data && event.data.size) state.chunks.push(event.data);
  });
  recorder.addEventListener("stop", () => finishRecording(state));
  recorder.start(250);
  $("recording").hidden = false;
  $("composer").classList.add("recording-on");
  const tick = () => {
    $("record-time").textContent = clock((performance.now() - state.started) / 1000);
  };
  tick();
  state.timer = setInterval(tick, 250);
}

function stopRecording(send) {
  if (!recording) return;
  recording.send = send;
  recording.recorder.stop();
}

function finishRecording(state) {
  clearInterval(state.timer);
  for (const track of state.stream.getTracks()) track.stop();
  recording = null;
  $("recording").hidden = true;
  $("composer").classList.remove("recording-on");
  if (!state.send || !state.chunks.length) return;
  if (!current || current.id !== state.room) return; // the room changed: not sent elsewhere
  const seconds = (performance.now() - state.started) / 1000;
  const type = state.recorder.mimeType || state.chunks[0].type || "audio/webm";
  const blob = new Blob(state.chunks, { type });
  compose("", null, [blob], [{ name: voiceNoteName(type), duration_s: Math.round(seconds * 10) / 10 }]);
}

// -- the viewer --------------------------------------------------------------------------------

/** Show a photo large, in a dialog (Escape or ✕ closes it). */
export function openViewer(src, label) {
  const image = $("viewer-image");
  image.src = src;
  image.alt = label;
  $("viewer-title").textContent = label;
  const dialog = $("viewer");
  if (!dialog.open) dialog.showModal();
}
