"""A person's own settings: privacy (last seen, who may add them to groups), their email
address, which must be verified before any notification is emailed to it, and the web
client's colours."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from linkup.actions import presence, profiles, rooms
from linkup.core.errors import InvalidInput
from linkup.models import Account
from linkup.tasks import mail


def settings_of(user: Any) -> dict[str, Any]:
    """What `GET /me` adds to the user object."""
    return {
        **presence.privacy_of(user),
        "group_adds": rooms.group_adds_of([user.pk])[user.pk],
        "email": user.email,
        "email_verified": mail.is_verified(user),
        **appearance_of(user),
        **_own_profile(user),
    }


def _own_profile(user: Any) -> dict[str, Any]:
    view = profiles.profile_view(user, user.pk)
    return {key: view[key] for key in ("display_name", "about", "avatar")}


def appearance_of(user: Any) -> dict[str, str]:
    """The person's colours ("" the device's, "light" or "dark") and language ("" the
    browser's, or one of settings.LANGUAGES)."""
    found = Account.objects.filter(user_id=user.pk).values_list("theme", "language").first()
    theme, language = found or ("", "")
    return {"theme": theme or "", "language": language or ""}


def check_language(value: Any) -> str:
    if value == "":
        return ""
    codes = [code for code, _ in django_settings.LANGUAGES]
    if not isinstance(value, str) or value not in codes:
        raise InvalidInput(f'language is "" or one of {", ".join(codes)}')
    return value


def theme_of(user: Any) -> str:
    """The person's colours: "" (the device's choice), "light" or "dark"."""
    return appearance_of(user)["theme"]


def check_email(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput("email is a string")
    email = value.strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise InvalidInput("that is not an email address") from None
    return email


def do_update_settings(
    user: Any,
    *,
    hide_last_seen: bool | None = None,
    group_adds: str | None = None,
    email: str | None = None,
    theme: str | None = None,
    language: str | None = None,
    display_name: str | None = None,
    about: str | None = None,
) -> bool:
    """Change what was given; return whether the email address changed (to a new one that
    needs verifying)."""
    changed = False
    with transaction.atomic():
        if hide_last_seen is not None:
            presence.do_set_privacy(user, hide_last_seen)
        if group_adds is not None:
            rooms.do_set_group_adds(user, group_adds)
        if theme is not None:
            if theme not in Account.Theme.values:
                raise InvalidInput('theme is "", "light" or "dark"')
            Account.objects.update_or_create(user_id=user.pk, defaults={"theme": theme})
        if language is not None:
            language = check_language(language)
            Account.objects.update_or_create(user_id=user.pk, defaults={"language": language})
        if display_name is not None or about is not None:
            profiles.do_update_profile(user, display_name=display_name, about=about)
        if email is not None:
            email = check_email(email)
            if email.lower() != user.email.lower():
                user.email = email
                get_user_model().objects.filter(pk=user.pk).update(email=email)
                changed = bool(email)
    return changed


def request_verification(user: Any, verify_url: str) -> bool:
    """Have the task worker email a verification link to the user's address (none: False)."""
    if not user.email or mail.is_verified(user):
        return False
    mail.send_verification.enqueue(user.pk, user.email, verify_url)
    return True


def do_verify_email(token: Any) -> Any:
    """Mark the address a link was sent to as verified; return the user. InvalidInput for a
    forged, expired or superseded link (the account's address changed since)."""
    found = mail.read_verification_token(token) if isinstance(token, str) else None
    user = None
    if found is not None:
        user_id, email = found
        user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
        if user is not None and user.email.lower() != email:
            user = None
    if user is None:
        raise InvalidInput("this link is not valid or has expired: ask for a new one")
    Account.objects.update_or_create(user_id=user.pk, defaults={"verified_email": user.email})
    return user
