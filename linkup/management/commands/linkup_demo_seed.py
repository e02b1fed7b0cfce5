"""Create the demo users alice, bob and carol, a direct room and a group (idempotent)."""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from linkup.actions.rooms import do_create_room
from linkup.models import Account, Room

DEMO_USERS = ("alice", "bob", "carol")
GROUP_NAME = "Weekend plans"


class Command(BaseCommand):
    help = "Create demo users (alice, bob, carol) with a direct room and a group; safe to re-run."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        password = os.environ.get("LINKUP_DEMO_PASSWORD", "linkup-demo")
        users = {}
        for name in DEMO_USERS:
            user, created = User.objects.get_or_create(username=name)
            if created or not user.check_password(password):
                user.set_password(password)
                user.save()
            if not user.email:  # the demo's email digests print on the console
                user.email = f"{name}@example.com"
                user.save(update_fields=["email"])
            if user.email == f"{name}@example.com":
                # The demo's own addresses count as verified (a real one gets a link).
                Account.objects.update_or_create(
                    user_id=user.pk, defaults={"verified_email": user.email}
                )
            users[name] = user
        alice, bob, carol = (users[n] for n in DEMO_USERS)
        do_create_room(alice, Room.Kind.DIRECT, [bob.pk])
        if not Room.objects.filter(
            kind=Room.Kind.GROUP, name=GROUP_NAME, created_by=alice
        ).exists():
            do_create_room(alice, Room.Kind.GROUP, [bob.pk, carol.pk], GROUP_NAME)
        self.stdout.write(
            "Demo users (password for each): " + ", ".join(f"{n} / {password}" for n in DEMO_USERS)
        )
