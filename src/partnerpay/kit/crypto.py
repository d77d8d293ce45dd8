"""Encryption at rest for secrets (bank numbers, tax ids, provider keys): AES-256-GCM.

The key is derived from PARTNERPAY_SECRET_KEY with HKDF-SHA256, so the secret key itself never
touches data. Each token names the key that sealed it (`pp1.<key id>.<nonce + ciphertext>`):
after a rotation the retired keys still open old tokens while new ones use the current key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "pp1"
_NONCE_BYTES = 12
_ENCRYPTION_INFO = b"partnerpay/secret-box/aes-256-gcm/v1"
_KEY_ID_INFO = b"partnerpay/secret-box/key-id/v1"
_FINGERPRINT_INFO = b"partnerpay/secret-box/fingerprint/v1"


class SecretBoxError(ValueError):
    """A token that cannot be opened: unknown key, tampered with, or not a token at all.

    The message never contains the token or anything derived from its content.
    """


def _derive(secret_key: str, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret_key.encode())


class _Key:
    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("a SecretBox needs a non-empty secret key")
        self.aead = AESGCM(_derive(secret_key, _ENCRYPTION_INFO))
        # Public: names the key in each token; one-way, so it tells nothing about the key.
        self.id = _derive(secret_key, _KEY_ID_INFO, 6).hex()
        self.fingerprint_key = _derive(secret_key, _FINGERPRINT_INFO)


class SecretBox:
    """Seal and open small JSON objects. `SecretBox(key).decrypt(SecretBox(key).encrypt(d)) == d`."""

    def __init__(self, secret_key: str, *, retired: Iterable[str] = ()) -> None:
        self._current = _Key(secret_key)
        self._keys = {self._current.id: self._current}
        for old in retired:
            key = _Key(old)
            self._keys.setdefault(key.id, key)

    @property
    def key_id(self) -> str:
        return self._current.id

    def encrypt(self, data: dict[str, Any]) -> str:
        """A fresh random nonce per call: the same data never gives the same token twice."""
        plaintext = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        header = f"{VERSION}.{self._current.id}"
        nonce = os.urandom(_NONCE_BYTES)
        # The header is authenticated too: a token cannot be relabelled to another key or version.
        sealed = self._current.aead.encrypt(nonce, plaintext, header.encode())
        return f"{header}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def decrypt(self, token: str) -> dict[str, Any]:
        version, key_id, body = self._split(token)
        key = self._keys.get(key_id)
        if key is None:
            raise SecretBoxError(f"the token was sealed with key {key_id}, which this installation does not have")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError) as exc:
            raise SecretBoxError("the token is not valid base64") from exc
        if len(raw) <= _NONCE_BYTES:
            raise SecretBoxError("the token is too short")
        try:
            plaintext = key.aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], f"{version}.{key_id}".encode())
        except InvalidTag as exc:
            raise SecretBoxError("the token was altered or sealed with another key of the same id") from exc
        value = json.loads(plaintext)
        if not isinstance(value, dict):
            raise SecretBoxError("the token does not hold an object")
        return value

    def needs_rotation(self, token: str) -> bool:
        """True when the token was sealed with a retired key: re-encrypt it with `rotate`."""
        return self._split(token)[1] != self._current.id

    def rotate(self, token: str) -> str:
        return self.encrypt(self.decrypt(token))

    def fingerprint(self, data: Any) -> str:
        """A keyed hash (HMAC-SHA256) of JSON data: compares requests without storing a guessable hash."""
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return hmac.new(self._current.fingerprint_key, text.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _split(token: str) -> tuple[str, str, str]:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != VERSION or not parts[1] or not parts[2]:
            raise SecretBoxError(f"not a {VERSION} secret token")
        return parts[0], parts[1], parts[2]
