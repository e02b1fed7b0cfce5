// groups.js: the info panel's order and what each role may do to each member, checked
// against the server's rules over every combination.
import assert from "node:assert/strict";
import { test } from "node:test";

import { manages, memberActions, memberOrder } from "../../linkup/static/linkup/groups.js";

const ROLES = ["owner", "admin", "member"];

test("what I may do to a member is what the server allows", () => {
  for (const mine of ROLES) {
    for (const theirs of ROLES) {
      for (const self of [false, true]) {
        const member = { id: self ? 1 : 2, role: theirs, username: "x" };
        const actions = memberActions(mine, member, 1);
        const manager = mine === "owner" || mine === "admin";
        // The server: managers act on others who are not the owner; promote members;
        // only the owner demotes admins; removing is for managers.
        const allowed = [];
        if (!self && manager && theirs !== "owner") {
          if (theirs === "member") allowed.push("admin");
          if (theirs === "admin" && mine === "owner") allowed.push("member");
          allowed.push("remove");
        }
        assert.deepEqual(actions, allowed, `${mine} on ${theirs}${self ? " (me)" : ""}`);
        assert.equal(manages(mine), manager);
      }
    }
  }
});

test("the panel lists me first, then the owner, admins and members by name", () => {
  const members = [
    { id: 5, username: "zed", role: "member" }, { id: 4, username: "amy", role: "member" },
    { id: 3, username: "bo", role: "admin" }, { id: 2, username: "cy", role: "owner" },
    { id: 1, username: "me", role: "member" },
  ];
  assert.deepEqual(memberOrder(members, 1).map((m) => m.username), ["me", "cy", "bo", "amy", "zed"]);
});
