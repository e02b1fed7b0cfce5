from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class OwaspArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): ~20 ms a hash here.

    Django's default PBKDF2 costs ~225 ms a hash on these 2-core machines, which caps logins
    and registrations near 8 a second; this keeps a memory-hard hash at ~10x the rate."""

    algorithm = "argon2"
    time_cost = 2
    memory_cost = 19456
    parallelism = 1
