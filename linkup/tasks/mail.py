"""Email verification: a signed link, sent by the task worker (never on a request's path).

A digest goes to `user.email` only once the person followed a link sent there
(Account.verified_email), so nobody can have Linkup mail an address they typed for someone
else. The token signs the user id and the address with the site's SECRET_KEY (Django's
signing, its own salt) and expires after EMAIL_VERIFY_MAX_AGE_S; it stops working once the
account's address changes, since it names the address it was sent to.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import EmailMessage
from django.utils import translation
from django.utils.translation import gettext as _

try:  # Django 6 has the Tasks API built in; Django 5.2 takes the django-tasks backport.
    from django.tasks import task  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the Django version
    from django_tasks import task  # type: ignore[no-redef,unused-ignore]

from linkup.core.conf import setting
from linkup.core.log import log_event
from linkup.models import Account

SALT = "linkup.verify-email"


def verification_token(user_id: int, email: str) -> str:
    return signing.dumps({"u": user_id, "e": email.lower()}, salt=SALT, compress=True)


def read_verification_token(token: str) -> tuple[int, str] | None:
    """(user id, address) of a genuine, unexpired token; None otherwise."""
    try:
        data = signing.loads(token, salt=SALT, max_age=int(setting("EMAIL_VERIFY_MAX_AGE_S")))
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    user_id, email = data.get("u"), data.get("e")
    if type(user_id) is not int or not isinstance(email, str):
        return None
    return user_id, email


def is_verified(user: Any) -> bool:
    """Whether the user's current address is the one they verified."""
    if not user.email:
        return False
    verified = (
        Account.objects.filter(user_id=user.pk).values_list("verified_email", flat=True).first()
    )
    return bool(verified) and str(verified).lower() == user.email.lower()


def language_of(user_id: int) -> str:
    """The language a person reads Linkup in away from the page (emails, Web Push): their
    choice, else the site's (their browser's is not known here)."""
    chosen = Account.objects.filter(user_id=user_id).values_list("language", flat=True).first()
    return chosen or django_settings.LANGUAGE_CODE


@task()
def send_verification(user_id: int, email: str, verify_url: str) -> bool:
    """Email the link that verifies `email` for the user (if it is still their address)."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or user.email.lower() != email.lower():
        return False  # the address changed since: the newer one has its own link
    link = f"{verify_url}?{urlencode({'token': verification_token(user_id, email)})}"
    with translation.override(language_of(user_id)):
        lines = [
            _("Hello %(name)s,") % {"name": user.get_username()},
            "",
            _("Open this link to confirm that this address is yours; Linkup sends"),
            _("notifications to it only once you have:"),
            "",
            link,
            "",
            _("If you did not ask for this, ignore this email: nothing will be sent here."),
        ]
        subject = _("Confirm your email address for Linkup")
    message = EmailMessage(
        subject=subject,
        body="\n".join(lines),
        from_email=setting("NOTIFY_EMAIL_FROM"),
        to=[email],
    )
    message.send(fail_silently=False)
    log_event(logging.INFO, "delivery", "verification email sent", user_id=user_id)
    return True
