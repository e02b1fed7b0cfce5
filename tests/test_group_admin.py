"""Managing a group (issue 20): renaming it and its description, making admins and members
again, removing members and leaving, held against a model of the rules by a Hypothesis
property (any sequence of anyone's attempts: what the model allows happens, the rest is
refused with the model's reason and changes nothing; a group always has one owner); and
the REST calls."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from linkup.actions.rooms import (
    do_create_room,
    do_remove_member,
    do_set_role,
    do_update_room,
)
from linkup.core.errors import Forbidden, InvalidInput, NotFound
from linkup.models import Membership, Room
from tests.conftest import make_user
from tests.test_api import Api, assert_error

pytestmark = pytest.mark.django_db(transaction=True)

MANAGERS = ("owner", "admin")


def expected(action: str, actor: int, target: int, roles: dict[int, str]) -> type | None:
    """The refusal the rules give (an exception class), or None when the action happens."""
    if actor not in roles:
        return NotFound
    if action == "remove":
        if target != actor and roles[actor] not in MANAGERS:
            return Forbidden
        if target not in roles:
            return NotFound
        if roles[target] == "owner" and target != actor:
            return Forbidden
        return None
    if roles[actor] not in MANAGERS:
        return Forbidden
    if action == "rename":
        return None
    if target not in roles:
        return NotFound
    if roles[target] == "owner":
        return Forbidden
    if action == "demote" and roles[target] == "admin" and roles[actor] != "owner":
        return Forbidden
    return None


@pytest.fixture
def four(db: Any) -> tuple[list[Any], int]:
    """Four people and their group, made once for all of a property's examples (each puts
    the memberships back as they were)."""
    people = [make_user(f"g{uuid.uuid4().hex[:10]}") for _ in range(4)]
    room = int(do_create_room(people[0], "group", [p.pk for p in people[1:]], "g")[0]["id"])
    return people, room


START = {0: "owner", 1: "admin", 2: "admin", 3: "member"}  # two admins: every rule a step away


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["promote", "demote", "rename", "remove"]),
            st.integers(0, 3),
            st.integers(0, 3),
        ),
        min_size=1,
        max_size=15,
    )
)
def test_group_management_follows_the_rules_and_keeps_one_owner(
    four: tuple[list[Any], int], script: list[tuple[str, int, int]]
) -> None:
    people, room = four
    Membership.objects.filter(room_id=room).delete()
    start = timezone.now()
    for i, role in START.items():
        joined = start + dt.timedelta(seconds=i)
        Membership.objects.create(room_id=room, user=people[i], role=role, joined_at=joined)
    Room.objects.filter(pk=room).update(name="g", description="")
    roles = dict(START)
    joined = [0, 1, 2, 3]
    name = "g"
    for step, (action, a, b) in enumerate(script):
        want = expected(action, a, b, roles)
        try:
            if action == "promote":
                do_set_role(people[a], room, people[b].pk, "admin")
            elif action == "demote":
                do_set_role(people[a], room, people[b].pk, "member")
            elif action == "rename":
                do_update_room(people[a], room, name=f"name {step}", description=f"about {step}")
            else:
                do_remove_member(people[a], room, people[b].pk)
        except (Forbidden, NotFound) as exc:
            assert want is not None and isinstance(exc, want), (action, a, b, roles, exc)
        else:
            assert want is None, (action, a, b, roles)
            if action in ("promote", "demote"):
                roles[b] = "admin" if action == "promote" else "member"
            elif action == "rename":
                name = f"name {step}"
            else:
                gone = roles.pop(b)
                joined.remove(b)
                if gone == "owner" and joined:
                    roles[joined[0]] = "owner"
        held = dict(Membership.objects.filter(room_id=room).values_list("user_id", "role"))
        assert held == {people[i].pk: role for i, role in roles.items()}
        if roles:
            assert list(roles.values()).count("owner") == 1
        group = Room.objects.filter(pk=room).first()
        if group is not None:
            assert group.name == name


def test_the_rest_calls_and_what_members_are_told(alice: Any, bob: Any, carol: Any) -> None:
    room = (
        Api(alice)
        .post("/rooms", {"kind": "group", "name": "Walks", "members": [bob.pk, carol.pk]})
        .json()
    )
    path = f"/rooms/{room['id']}"
    changed = Api(alice).patch(path, {"name": " Sunday walks ", "description": "Hills\nand tea"})
    assert changed.status_code == 200
    assert changed.json()["name"] == "Sunday walks"
    assert changed.json()["description"] == "Hills\nand tea"
    assert Api(bob).get(path).json()["description"] == "Hills\nand tea"
    # bob may not, until alice makes him an admin; then he may, but may not demote.
    assert_error(Api(bob).patch(path, {"name": "mine"}), 403, "forbidden")
    promoted = Api(alice).put(f"{path}/members/{bob.pk}", {"role": "admin"})
    assert promoted.status_code == 200
    roles = {m["id"]: m["role"] for m in promoted.json()["members"]}
    assert roles == {alice.pk: "owner", bob.pk: "admin", carol.pk: "member"}
    assert Api(bob).patch(path, {"description": ""}).json()["description"] == ""
    assert Api(bob).put(f"{path}/members/{carol.pk}", {"role": "admin"}).status_code == 200
    assert_error(Api(bob).put(f"{path}/members/{carol.pk}", {"role": "member"}), 403, "forbidden")
    assert_error(Api(bob).put(f"{path}/members/{alice.pk}", {"role": "member"}), 403, "forbidden")
    # Bad input: a clear 400, nothing changed.
    for body in ({"role": "owner"}, {"role": "ADMIN"}, {}, {"role": 1}):
        assert_error(Api(alice).put(f"{path}/members/{carol.pk}", body), 400, "invalid_request")
    for body in (
        {},
        {"name": ""},
        {"name": "x" * 201},
        {"description": "y" * 501},
        {"name": "\x00"},
        {"nom": "x"},
    ):
        assert_error(Api(alice).patch(path, body), 400, "invalid_request")
    assert Api(carol).get(path).json()["name"] == "Sunday walks"
    # A direct room has neither; an outsider sees no room at all.
    direct = Api(alice).post("/rooms", {"kind": "direct", "members": [bob.pk]}).json()
    assert_error(Api(alice).patch(f"/rooms/{direct['id']}", {"name": "x"}), 403, "forbidden")
    dave = make_user("dave")
    assert_error(Api(dave).patch(path, {"name": "x"}), 404, "not_found")
    # Leaving: anyone, with their own id.
    assert Api(carol).delete(f"{path}/members/{carol.pk}").status_code == 200
    assert carol.pk not in {m["id"] for m in Api(alice).get(path).json()["members"]}


def test_a_description_is_checked(alice: Any, bob: Any) -> None:
    room = int(do_create_room(alice, "group", [bob.pk], "g")[0]["id"])
    for bad in (5, "\x07bell", "z" * 501):
        with pytest.raises(InvalidInput):
            do_update_room(alice, room, description=bad)
    with pytest.raises(InvalidInput):
        do_update_room(alice, room)
    assert Room.objects.get(pk=room).description == ""
