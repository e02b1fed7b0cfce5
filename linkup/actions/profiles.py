"""A person's profile as others see it: the name they are shown by, a line about them and their
picture. The username stays what identifies them (mentions, sign-in, `@name` under the
display name wherever two people could be confused).

A picture is decoded and drawn afresh (linkup.core.media.avatar): a square of AVATAR_PX a
side, WebP, no metadata, whatever was uploaded. It is stored under a name of its own content
(`linkup/avatars/<user>-<digest>.webp`, where the orphans report looks too), so its URL
changes with it; the one it replaces is deleted when the change commits. Whoever changes
their profile has their contacts' tabs told at once (`user.updated`, the public fields)."""

from __future__ import annotations

import hashlib
import io
import unicodedata
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.db import transaction

from linkup.actions import blocks, uploads
from linkup.actions.events import send_event_on_commit, user_group
from linkup.core import media
from linkup.core.conf import setting
from linkup.core.errors import InvalidInput, NotFound, TooLarge
from linkup.core.shapes import UserUpdatedEvent
from linkup.models import Account, Membership
from linkup.store import files
from linkup.store.views import account_of, person_dict, public_fields

DISPLAY_NAME_MAX = 64
ABOUT_MAX = 140
AVATAR_PX = 256
# Format characters that reorder or hide text (bidirectional overrides and isolates,
# invisible separators) are refused; the joiner that builds emoji sequences is allowed.
_ALLOWED_FORMAT = {"\u200d"}


def check_line(value: Any, what: str, limit: int) -> str:
    """A one-line text a person sets about themselves: trimmed, NFC, no control or
    reordering characters, at most `limit` characters; "" clears it."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} is a string")
    text = unicodedata.normalize("NFC", value).strip()
    if len(text) > limit:
        raise InvalidInput(f"{what} is at most {limit} characters")
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Co", "Cs", "Cn", "Zl", "Zp") or (
            category == "Cf" and char not in _ALLOWED_FORMAT
        ):
            raise InvalidInput(f"{what} may not hold control or invisible characters")
    return text


def profile_view(viewer: Any, user_id: int) -> dict[str, Any]:
    """`GET /users/{id}`: the person's profile as `viewer` may see it (with a block between
    them, either way, no picture and no about, as if none were set)."""
    user = (
        get_user_model()
        .objects.filter(pk=user_id, is_active=True)
        .select_related("linkup_account")
        .first()
    )
    if user is None:
        raise NotFound("no such user")
    account = account_of(user)
    person: dict[str, Any] = {**person_dict(user), "about": account.about if account else ""}
    if user.pk != viewer.pk and blocks.blocked_pairs([(user.pk, viewer.pk)]):
        person.update(avatar=None, about="")
    return person


def _announce(user: Any, account: Account) -> None:
    """Tell the person's own tabs and everyone who shares a room with them."""
    rooms = Membership.objects.filter(user_id=user.pk).values("room_id")
    contacts = set(Membership.objects.filter(room_id__in=rooms).values_list("user_id", flat=True))
    contacts.add(user.pk)
    event: UserUpdatedEvent = {
        "type": "user.updated",
        "user": {"id": user.pk, "username": user.get_username(), **public_fields(user.pk, account)},
    }
    for contact in sorted(contacts):
        send_event_on_commit(user_group(contact), event)


def do_update_profile(user: Any, *, display_name: Any = None, about: Any = None) -> dict[str, Any]:
    """Change the display name and/or the about line; the profile as it is after."""
    if display_name is None and about is None:
        raise InvalidInput("give display_name or about")
    fields: dict[str, str] = {}
    if display_name is not None:
        fields["display_name"] = check_line(display_name, "display_name", DISPLAY_NAME_MAX)
    if about is not None:
        fields["about"] = check_line(about, "about", ABOUT_MAX)
    with transaction.atomic():
        account, _ = Account.objects.select_for_update().get_or_create(user_id=user.pk)
        for name, value in fields.items():
            setattr(account, name, value)
        account.save(update_fields=list(fields))
        _announce(user, account)
    return profile_view(user, user.pk)


def do_set_avatar(user: Any, stream: IO[bytes], size: int) -> dict[str, Any]:
    """Make an uploaded image the person's picture (drawn afresh: see the module); the
    profile as it is after. The picture it replaces is deleted once this commits."""
    if size <= 0:
        raise InvalidInput("the file is empty")
    limit = int(setting("AVATAR_MAX_BYTES"))
    if size > limit:
        raise TooLarge(f"a picture may be at most {limit:,} bytes")
    stream.seek(0)
    sniffed = media.sniff(stream.read(media.SNIFF_BYTES))
    stream.seek(0)
    if sniffed is None or sniffed.kind != "image":
        raise InvalidInput("a picture is a JPEG, PNG, GIF or WebP image")
    data = media.avatar(stream, AVATAR_PX, int(setting("IMAGE_MAX_PIXELS")))
    digest = hashlib.sha256(data).hexdigest()[:16]
    stored = f"{files.PREFIX}/avatars/{user.pk}-{digest}.webp"
    current = Account.objects.filter(user_id=user.pk).values_list("avatar", flat=True).first()
    if current == stored:
        return profile_view(user, user.pk)  # the same picture again: nothing changes
    files.delete([stored])  # left by an attempt that failed after storing it: never current
    files.save(stored, io.BytesIO(data))
    try:
        with transaction.atomic():
            account, _ = Account.objects.select_for_update().get_or_create(user_id=user.pk)
            old, account.avatar = account.avatar, stored
            account.save(update_fields=["avatar"])
            if old and old != stored:
                uploads.delete_files_on_commit([old])
            _announce(user, account)
    except BaseException:
        files.delete([stored])
        raise
    return profile_view(user, user.pk)


def do_remove_avatar(user: Any) -> dict[str, Any]:
    """Take the person's picture away (their initial is shown again)."""
    with transaction.atomic():
        account, _ = Account.objects.select_for_update().get_or_create(user_id=user.pk)
        if account.avatar:
            uploads.delete_files_on_commit([account.avatar])
            account.avatar = ""
            account.save(update_fields=["avatar"])
            _announce(user, account)
    return profile_view(user, user.pk)


def avatar_for(viewer: Any, user_id: int) -> uploads.Fetch:
    """A person's picture as `viewer` may fetch it: anyone signed in, unless a block stands
    between them (either way). None set and a block get the same NotFound."""
    stored = (
        Account.objects.filter(user_id=user_id, user__is_active=True)
        .values_list("avatar", flat=True)
        .first()
    )
    if not stored or (user_id != viewer.pk and blocks.blocked_pairs([(user_id, viewer.pk)])):
        raise NotFound("no picture")
    return uploads.Fetch(stored, "avatar.webp", "image/webp", None, True)
