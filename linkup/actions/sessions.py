"""Credentials end everywhere at once: Django's own sign-out and user changes, wherever they
happen (Linkup's pages and API, the admin, `manage changepassword`), end the sockets opened
with those credentials on every process.

- A session begins (`user_logged_in`): it is recorded, so its person can list it and end it
  from another device.
- A session ends (`user_logged_out`): the sockets opened with its cookie, or with tickets it
  minted, close; those tickets die.
- An account is created or renamed: it holds its username's look-alike keys.
- A password is changed, or the account deactivated or deleted: every token and ticket of
  the user is deleted and every socket of theirs closes (their web sessions are refused by
  Django itself from then on).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_init, post_save, pre_delete

from linkup.actions.credentials import (
    do_end_all_sessions,
    do_end_session,
    do_record_session,
    keep_name_keys,
)
from linkup.actions.farewell import before_user_deleted


def _signed_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if user is not None and session is not None:
        agent = str(getattr(request, "META", {}).get("HTTP_USER_AGENT", ""))
        do_record_session(user.pk, session.session_key, agent)


def _signed_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if user is not None and session is not None:
        do_end_session(user.pk, session.session_key)


def _loaded(sender: Any, instance: Any, **kwargs: Any) -> None:
    instance._linkup_was_active = instance.is_active
    instance._linkup_was_named = instance.get_username()


def _saved(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    was_active = getattr(instance, "_linkup_was_active", True)
    instance._linkup_was_active = instance.is_active
    if raw:  # loading fixtures
        return
    if created or getattr(instance, "_linkup_was_named", None) != instance.get_username():
        # However the account came or was renamed (sign-up, the admin, createsuperuser),
        # it holds its username's look-alike keys, so a later look-alike is refused.
        keep_name_keys(instance)
        instance._linkup_was_named = instance.get_username()
    if created:
        return
    # `set_password` leaves the new password in `_password` until the save is done; the
    # hash upgrade Django makes at a login clears it first, so it ends nothing.
    changed_password = getattr(instance, "_password", None) is not None
    if changed_password or (was_active and not instance.is_active):
        do_end_all_sessions(instance.pk)


def _deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    do_end_all_sessions(instance.pk)
    before_user_deleted(instance)


def connect() -> None:
    """Connect the receivers (once, from the app's `ready`)."""
    user_model = get_user_model()
    user_logged_in.connect(_signed_in, dispatch_uid="linkup.signed_in")
    user_logged_out.connect(_signed_out, dispatch_uid="linkup.signed_out")
    post_init.connect(_loaded, sender=user_model, dispatch_uid="linkup.user_loaded")
    post_save.connect(_saved, sender=user_model, dispatch_uid="linkup.user_saved")
    pre_delete.connect(_deleted, sender=user_model, dispatch_uid="linkup.user_deleted")
