"""Passphrase-encrypted files for exports that hold secrets (the full 1099-NEC report).

The file is JSON, so any tool can read its envelope; the content is AES-256-GCM with a key derived from
the passphrase by scrypt (n=2**15, r=8, p=1). Decrypt with `partnerpay tax decrypt FILE`, or in Python:

    import base64, json
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    env = json.load(open("1099-nec-2026.csv.enc.json"))
    b = lambda k: base64.b64decode(env[k])
    key = Scrypt(salt=b("salt"), length=32, n=env["n"], r=env["r"], p=env["p"]).derive(passphrase.encode())
    data = AESGCM(key).decrypt(b("nonce"), b("ciphertext"), env["filename"].encode())

The passphrase is never stored: whoever exports chooses it and hands it over separately.
"""

from __future__ import annotations

import base64
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from partnerpay.kit.errors import ValidationError

FORMAT = "partnerpay-sealed-file-v1"
MIN_PASSPHRASE = 12
_N, _R, _P = 2**15, 8, 1


def _key(passphrase: str, salt: bytes, n: int = _N, r: int = _R, p: int = _P) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise ValidationError(f"the passphrase needs at least {MIN_PASSPHRASE} characters", field="passphrase")


def seal(data: bytes, *, filename: str, passphrase: str) -> bytes:
    check_passphrase(passphrase)
    salt, nonce = os.urandom(16), os.urandom(12)
    # The file name is authenticated: a sealed file cannot be passed off as another export.
    ciphertext = AESGCM(_key(passphrase, salt)).encrypt(nonce, data, filename.encode())
    envelope = {
        "format": FORMAT,
        "filename": filename,
        "kdf": "scrypt",
        "n": _N,
        "r": _R,
        "p": _P,
        "cipher": "AES-256-GCM",
        "salt": base64.b64encode(salt).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    return json.dumps(envelope, indent=1).encode()


def unseal(sealed: bytes, *, passphrase: str) -> tuple[str, bytes]:
    """(original file name, content); a wrong passphrase or an altered file is a ValidationError."""
    try:
        env = json.loads(sealed)
        if env.get("format") != FORMAT:
            raise ValueError(env.get("format"))
        raw = {k: base64.b64decode(env[k]) for k in ("salt", "nonce", "ciphertext")}
        key = _key(passphrase, raw["salt"], int(env["n"]), int(env["r"]), int(env["p"]))
        return str(env["filename"]), AESGCM(key).decrypt(raw["nonce"], raw["ciphertext"], str(env["filename"]).encode())
    except InvalidTag as exc:
        raise ValidationError("wrong passphrase, or the file was altered", field="passphrase") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationError(f"not a {FORMAT} file", field="file") from exc
