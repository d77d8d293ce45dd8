"""argon2id password hashing (argon2-cffi defaults follow the RFC 9106 recommendation)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from partnerpay.kit.errors import ValidationError

_hasher = PasswordHasher()
MIN_LENGTH = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise ValidationError(f"password must have at least {MIN_LENGTH} characters", field="password")
    return str(_hasher.hash(password))


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


# Verifying against this when the user does not exist keeps login timing the same either way.
DUMMY_HASH = _hasher.hash("not-a-real-password-ever")
