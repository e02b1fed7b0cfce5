// One file up to the server (POST /uploads), with progress and a way to stop it: fetch()
// reports no upload progress, so this is an XMLHttpRequest. Errors come as api.js's.

import { ApiError, csrfToken } from "./api.js";
import { gettext } from "./i18n.js";
import { config } from "./page.js";

/**
 * Upload `blob` as `name` (and, for a recorded voice note, its length); resolve with the
 * upload object. `onProgress(fraction)` as it goes; `signal` aborts it (rejects AbortError).
 */
export function uploadFile(blob, { name, duration_s: duration }, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", blob, name);
    if (duration != null) form.append("duration_s", String(duration));
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${config.api}/uploads`);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        // not JSON: an error from something in between
      }
      if (xhr.status === 201 && data && data.upload) {
        onProgress(1);
        resolve(data.upload);
        return;
      }
      const error = (data && data.error) || {};
      const retry = Number(xhr.getResponseHeader("Retry-After")) || null;
      reject(new ApiError(xhr.status, error.code, error.detail, retry));
    };
    xhr.onerror = () => reject(new TypeError(gettext("network error")));
    xhr.onabort = () => reject(new DOMException("cancelled", "AbortError"));
    if (signal) {
      if (signal.aborted) {
        reject(new DOMException("cancelled", "AbortError"));
        return;
      }
      signal.addEventListener("abort", () => xhr.abort(), { once: true });
    }
    xhr.send(form);
  });
}
