// Linkup's service worker: shows the Web Push notifications the server sends (the payload is
// {title, body, count, ids, data}) and brings the chat forward when one is clicked. It
// caches nothing: the chat always comes from the server.

const HOME = new URL(self.location.href).searchParams.get("home") || "/";

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
