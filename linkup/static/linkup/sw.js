// Linkup's service worker: keeps the app shell (the chat page and the client's files) so the
// installed app opens offline, and shows the Web Push notifications the server sends (the
// payload is {title, body, count, ids, data}), bringing the chat forward on a click.
//
// The server serves it at the chat's own level (linkup/web/appshell.py) with `self.LINKUP`
// set in front: {version, home, static, shell}. Everything is fetched from the network
// first and kept; the kept copy answers only when the network cannot, so a page online is
// never stale, and a deploy (a new version) drops the old copies. Loaded as a plain static
// file (an older version's registration), it shows pushes and keeps nothing.

const SETUP = self.LINKUP || null;
const HOME = SETUP ? SETUP.home : new URL(self.location.href).searchParams.get("home") || "/";
const PREFIX = "linkup-shell-";
const CACHE = SETUP ? PREFIX + SETUP.version : null;

self.addEventListener("install", (event) => {
  if (!CACHE) return;
  event.waitUntil(
    caches
      .open(CACHE)
      // One file that cannot be fetched must not keep the others from being kept; the chat
      // page of someone signed out (a redirect to the sign-in page) is not kept.
      .then((cache) => Promise.all(SETUP.shell.map((url) => keep(cache, url))))
      .then(() => self.skipWaiting()),
  );
});

async function keep(cache, url) {
  try {
    const response = await fetch(url, { credentials: "same-origin" });
    if (response.ok && !response.redirected) await cache.put(url, response);
  } catch (error) {
    // offline while installing: kept on the next visit instead
  }
}

self.addEventListener("activate", (event) => {
  if (!CACHE) return;
  event.waitUntil(
    caches
      .keys()
      .then((keys) => keys.filter((key) => key.startsWith(PREFIX) && key !== CACHE))
      .then((old) => Promise.all(old.map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  if (!CACHE || event.request.method !== "GET") return;
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin) return;
  const home = new URL(HOME, self.location.origin);
  if (event.request.mode === "navigate" && url.pathname === home.pathname) {
    event.respondWith(fromNetworkFirst(event.request, home.href));
  } else if (url.pathname.startsWith(SETUP.static)) {
    event.respondWith(fromNetworkFirst(event.request, url.href));
  }
});

async function fromNetworkFirst(request, key) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    // Only a page or file as it is (not a redirect to the sign-in page, not an error).
    if (response.ok && !response.redirected && response.type === "basic") {
      await cache.put(key, response.clone());
    }
    return response;
  } catch (error) {
    const kept = await cache.match(key);
    if (kept) return kept;
    throw error;
  }
}

// Signing out: nothing of this person stays behind.
self.addEventListener("message", (event) => {
  if (!event.data || event.data.type !== "forget") return;
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith(PREFIX)).map((k) => caches.delete(k)))),
  );
});

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (error) {
    data = {};
  }
  event.waitUntil(
    self.registration.showNotification(data.title || "Linkup", {
      body: data.body || "",
      tag: "linkup", // a newer batch replaces the one shown
      renotify: true,
      data: { home: HOME, room: data.data ? data.data.room : null },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const home = new URL(HOME, self.location.origin).href;
      const open = windows.find((w) => w.url.startsWith(home));
      return open ? open.focus() : self.clients.openWindow(home);
    }),
  );
});
