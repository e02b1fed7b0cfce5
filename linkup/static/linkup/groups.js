// A group's info panel, its pure part (tested with node --test): who is listed first, how a
// role reads, and what I may do to each member, by the server's rules (which refuse the
// rest anyway): the owner and admins rename and describe the group, add and remove members
// and make admins; only the owner makes an admin a member again; the owner is never
// removed or demoted; anyone leaves.

import { gettext } from "./i18n.js";

const RANK = { owner: 0, admin: 1, member: 2 };

export const ROLE_LABELS = { owner: gettext("Owner"), admin: gettext("Admin"), member: "" };

/** Members in the panel's order: me first, then the owner, admins, members, by name. */
export function memberOrder(members, meId) {
  return [...members].sort(
    (a, b) =>
      (b.id === meId) - (a.id === meId) ||
      (RANK[a.role] ?? 3) - (RANK[b.role] ?? 3) ||
      a.username.localeCompare(b.username),
  );
}

/** Whether my role lets me manage the group (its name, members, admins). */
export function manages(myRole) {
  return myRole === "owner" || myRole === "admin";
}

/** What I may do to a member: "admin" (make admin), "member" (make a member again),
 * "remove"; none to myself (leaving is its own button). */
export function memberActions(myRole, member, meId) {
  if (member.id === meId || !manages(myRole) || member.role === "owner") return [];
  const actions = [];
  if (member.role === "member") actions.push("admin");
  if (member.role === "admin" && myRole === "owner") actions.push("member");
  actions.push("remove");
  return actions;
}
