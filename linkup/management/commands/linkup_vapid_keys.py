"""Print a new VAPID key pair for Web Push, as the environment variables the server reads."""

from __future__ import annotations

import base64
from typing import Any

from django.core.management.base import BaseCommand


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Command(BaseCommand):
    help = "Generate a VAPID key pair (P-256) for Web Push; prints LINKUP_VAPID_* lines."

    def handle(self, *args: Any, **options: Any) -> None:
        # Deferred: cryptography comes with the optional `push` extra (pywebpush).
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        key = ec.generate_private_key(ec.SECP256R1())
        private = key.private_numbers().private_value.to_bytes(32, "big")
        public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        self.stdout.write(f"LINKUP_VAPID_PUBLIC_KEY={_b64(public)}")
        self.stdout.write(f"LINKUP_VAPID_PRIVATE_KEY={_b64(private)}")
        self.stdout.write("LINKUP_VAPID_SUBJECT=mailto:you@example.com")
