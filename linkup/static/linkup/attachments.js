// Attachments as pure rules: which files the composer takes (and why it refuses the rest),
// how a file's size reads, how an attachment is drawn (an image's box from its size, audio,
// video, or a card), and where an upload stands in the outbox. No DOM, no network:
// attach.js and send.js do those; `node --test` checks these.

import { gettext, ngettext } from "./i18n.js";

const UNITS = ["B", "KB", "MB", "GB"];
export const IMAGE_BOX = { width: 280, height: 280 }; // an image's box in a bubble at most

/** 1536 → "1.5 KB", 25 * 1024 * 1024 → "25 MB". */
export function humanSize(bytes) {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = unit === 0 || value >= 10 ? Math.round(value) : Math.round(value * 10) / 10;
  return `${shown} ${UNITS[unit]}`;
}

/**
 * Which of `files` ({name, size}) may join the `held` ones on one message: {taken,
 * refused: [{name, why}]}. The server decides types from content; this refuses only what
 * it would certainly refuse (empty, too large, too many) so nobody waits for an upload.
 */
export function checkFiles(files, held, { maxBytes, maxFiles }) {
  const taken = [];
  const refused = [];
  for (const file of files) {
    if (!file.size) refused.push({ name: file.name, why: gettext("it is empty") });
    else if (file.size > maxBytes) {
      const why = gettext("it is larger than %(size)s", { size: humanSize(maxBytes) });
      refused.push({ name: file.name, why });
    } else if (held + taken.length >= maxFiles) {
      const why = ngettext(
        "a message takes at most %(count)s file",
        "a message takes at most %(count)s files",
        maxFiles,
      );
      refused.push({ name: file.name, why });
    } else taken.push(file);
  }
  return { taken, refused };
}

/** What a browser-given type suggests a file is, before the server has looked at it. */
export function kindOf(type) {
  if (/^image\/(jpeg|png|gif|webp)$/.test(type || "")) return "image";
  if ((type || "").startsWith("audio/")) return "audio";
  if ((type || "").startsWith("video/")) return "video";
  return "file";
}

/** An image's box: its size scaled down to fit IMAGE_BOX, never up; square if unknown. */
export function imageBox(width, height, box = IMAGE_BOX) {
  if (!width || !height) return { width: box.width, height: box.height };
  const scale = Math.min(1, box.width / width, box.height / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** "0:07", "1:05", "1:00:00": a voice note's length. */
export function clock(seconds) {
  const s = Math.max(0, Math.round(seconds || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/**
 * How to draw one attachment of a message: {as: "image" | "audio" | "video" | "file", …}.
 * An image shows its thumbnail (else the file) in a box of its size over its placeholder;
 * audio and video play in place; anything else is a card that downloads.
 */
export function attachmentView(a) {
  if (a.kind === "image") {
    return {
      as: "image",
      src: a.thumbnail_url || a.url,
      full: a.url,
      box: imageBox(a.width, a.height),
      placeholder: a.placeholder || null,
      label: a.name,
    };
  }
  if (a.kind === "audio" || a.kind === "video") {
    const length = a.duration_s != null ? clock(a.duration_s) : "";
    return { as: a.kind, src: a.url, label: a.name, length };
  }
  return { as: "file", href: a.url, label: a.name, detail: `${humanSize(a.size)} · ${typeLabel(a)}` };
}

function typeLabel(a) {
  const dot = a.name.lastIndexOf(".");
  if (dot > 0 && a.name.length - dot <= 6) return a.name.slice(dot + 1).toUpperCase();
  return a.content_type.split("/").pop().toUpperCase();
}

/**
 * Where a queued message's files stand: the index of the next file to upload (null when
 * every file has its upload id), and the attachments list to send once none is left.
 */
export function uploadStep(item) {
  const files = item.files || [];
  const uploads = item.uploads || [];
  for (let i = 0; i < files.length; i++) if (!uploads[i]) return { next: i, attachments: null };
  return { next: null, attachments: uploads.slice(0, files.length) };
}

/** A line for the room list when a message is files without a caption. */
export function filesLabel(files) {
  if (!files || !files.length) return "";
  const kinds = files.map((f) => f.kind || kindOf(f.type || f.content_type));
  if (files.length > 1) return gettext("📎 %(count)s files", { count: files.length });
  if (kinds[0] === "image") return gettext("📷 Photo");
  if (kinds[0] === "audio") {
    return (files[0].name || "").startsWith("voice-note") ? gettext("🎤 Voice note") : gettext("🎵 Audio");
  }
  if (kinds[0] === "video") return gettext("🎬 Video");
  return `📎 ${files[0].name}`;
}

/** The name a recorded voice note goes up under. */
export function voiceNoteName(type, at = new Date()) {
  const ext = (type || "").includes("ogg") ? "ogg" : (type || "").includes("mp4") ? "m4a" : "webm";
  const stamp = at.toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-");
  return `voice-note-${stamp}.${ext}`;
}
