// What the app keeps of recent conversations for opening offline: pure (tested with node
// --test); offline.js keeps it in IndexedDB.

// The fields of a room as the server describes it (the client's own are left behind).
const ROOM_FIELDS = [
  "id", "kind", "name", "members", "last_message", "last_seq", "unread_count", "read_seq",
  "delivered_seq", "first_seq", "watermark", "role", "muted", "created_at",
  "last_activity_at", "last_change",
];

/** The newest `rooms` rooms by activity, each with its newest `messages` held messages, as
 * plain data (a structured clone of it is what IndexedDB stores). A room this page holds no
 * messages of yet (not opened since the page loaded) keeps those of the `previous`
 * snapshot. */
export function snapshotOf(
  rooms,
  { at = Date.now(), keepRooms = 20, keepMessages = 50, previous = null } = {},
) {
  const before = new Map(((previous && previous.rooms) || []).map((r) => [r.room.id, r.messages]));
  const recent = [...rooms]
    .sort((a, b) => (b.last_activity_at || "").localeCompare(a.last_activity_at || ""))
    .slice(0, keepRooms);
  return {
    at,
    rooms: recent.map((room) => {
      const data = {};
      for (const field of ROOM_FIELDS) if (room[field] !== undefined) data[field] = room[field];
      const held = room.seg.list().slice(-keepMessages);
      return { room: data, messages: held.length ? held : before.get(room.id) || [] };
    }),
  };
}
