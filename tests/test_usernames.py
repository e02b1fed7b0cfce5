"""A username that looks like an existing one is refused (issue 16, item 7): NFKC as Django
stores names, then Unicode TR39 skeletons (linkup.core.confusables.username_keys)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from linkup.actions.credentials import do_register, name_keys
from linkup.core.errors import Conflict
from linkup.models import Account
from tests.conftest import make_user

PASSWORD = "long enough 123"


def register(username: str) -> Any:
    return Client().post(
        "/api/v1/auth/register",
        {"username": username, "password": PASSWORD},
        content_type="application/json",
    )


@pytest.mark.django_db(transaction=True)
def test_look_alikes_of_a_name_are_refused_and_different_names_are_not() -> None:
    assert register("alice").status_code == 201
    for twin in ("\u0430lice", "aIice", "a1ice", "ALICE", "\uff41lice", "al\u0456ce"):
        response = register(twin)
        assert response.status_code == 409, (twin, response.content)
        assert "taken" in response.json()["error"]["detail"]
    assert get_user_model().objects.count() == 1
    # Names UTS #39 does not join stay free: "neil" and "nell", "ali" and "all".
    for name in ("alicia", "neil", "nell", "ali", "all"):
        assert register(name).status_code == 201, name


@pytest.mark.django_db(transaction=True)
def test_accounts_made_elsewhere_hold_their_keys_too() -> None:
    """An account the admin or createsuperuser made, or a renamed one, blocks look-alikes;
    of two look-alikes made that way, the older holds the keys."""
    paypal = make_user("paypal")
    twin = make_user("paypaI")  # the admin may; registration may not
    assert Account.objects.get(user=paypal).name_key == "paypal"
    assert Account.objects.get(user=twin).name_key == ""
    assert register("p\u0430yp\u0430l").status_code == 409
    paypal.username = "bank"
    paypal.save()
    assert Account.objects.get(user=paypal).name_key == "bank"
    assert register("b\u0430nk").status_code == 409


@pytest.mark.django_db(transaction=True)
def test_the_sign_up_page_says_why() -> None:
    make_user("carol")
    page = Client().post(
        "/sign-up/",
        {"username": "c\u0430rol", "password": PASSWORD, "password2": PASSWORD},
    )
    assert page.status_code == 400
    assert b"looks like one that is taken" in page.content


LETTERS = st.sampled_from(["a", "l", "I", "1", "i", "\u0430", "o", "0", "O", "\u03bf", "m", "rn"])


@pytest.mark.django_db(transaction=True)  # do_register closes its connection when done
@hsettings(max_examples=100, deadline=None)
@given(names=st.lists(st.lists(LETTERS, min_size=1, max_size=4).map("".join), max_size=8))
def test_registration_keeps_every_key_to_one_account(names: list[str]) -> None:
    """Whatever names people try, in any order: a name is refused exactly when an account's
    name equals it ignoring case or shares one of its keys, and no two accounts hold the
    same key."""
    get_user_model().objects.all().delete()
    taken: list[str] = []
    for name in names:
        looks, caseless = name_keys(name)
        clash = any(
            name.casefold() == other.casefold()
            or name_keys(other)[0] == looks
            or name_keys(other)[1] == caseless
            for other in taken
        )
        try:
            do_register(name, PASSWORD)
        except Conflict:
            assert clash, (name, taken)
        else:
            assert not clash, (name, taken)
            taken.append(name)
    keys = list(Account.objects.values_list("name_key", "name_key_caseless"))
    assert len(keys) == len(taken)
    for column in (0, 1):
        held = [row[column] for row in keys]
        assert "" not in held and len(set(held)) == len(held)
