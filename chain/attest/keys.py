"""Keys: encrypted keystore v3 files (eth-account) and an in-memory signer behind ``Signer``.

A KMS or HSM signer implements ``chain.abc.Signer`` the same way and never exposes its key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from eth_account import Account

from chain.abc import Signer
from chain.qbft.seals import address_of, sign

PASSWORD_ENV = "SMARTTA_KEYSTORE_PASSWORD"


class KeystoreError(ValueError):
    """A keystore that cannot be read or opened, with what to do about it."""


class LocalSigner(Signer):
    """Signs with a private key held in this process (opened from a keystore, or a test key)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise KeystoreError(f"a secp256k1 private key is 32 bytes, got {len(secret)}")
        self._secret = secret
        self._address = address_of(secret)

    @property
    def address(self) -> bytes:
        return self._address

    def sign_digest(self, digest: bytes) -> bytes:
        return sign(self._secret, digest)

    def __repr__(self) -> str:  # never print the key
        return f"LocalSigner(0x{self._address.hex()})"


def encrypt_keystore(secret: bytes, password: str, *, scrypt_n: int | None = None) -> dict[str, Any]:
    """Keystore v3 JSON (scrypt); ``scrypt_n`` lowers the work factor for throwaway test keys."""
    if not password:
        raise KeystoreError("refusing to write a keystore with an empty password")
    keystore: dict[str, Any] = Account.encrypt(secret, password, kdf="scrypt", iterations=scrypt_n)
    return keystore


def write_keystore(path: Path, secret: bytes, password: str, *, scrypt_n: int | None = None) -> None:
    """Write a new keystore; never overwrites an existing key file."""
    if path.exists():
        raise KeystoreError(f"{path} already exists; refusing to overwrite a key")
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(encrypt_keystore(secret, password, scrypt_n=scrypt_n), indent=2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data + "\n")


def open_keystore(path: Path, password: str) -> LocalSigner:
    return LocalSigner(open_secret(path, password))


def open_secret(path: Path, password: str) -> bytes:
    """The private key in a keystore, for exporting it in another format (Besu's key file)."""
    try:
        raw = path.read_text()
    except FileNotFoundError:
        raise KeystoreError(f"keystore {path} does not exist") from None
    except OSError as exc:
        raise KeystoreError(f"keystore {path} cannot be read: {exc.strerror}") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise KeystoreError(f"keystore {path} is not JSON ({exc.msg}); the file is corrupt") from exc
    if not isinstance(data, dict) or "crypto" not in {k.lower() for k in data}:
        raise KeystoreError(f"keystore {path} is not a keystore v3 file (no 'crypto' section)")
    try:
        secret = bytes(Account.decrypt(data, password))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise KeystoreError(
                f"wrong password for keystore {path} (MAC mismatch); check {PASSWORD_ENV} "
                "or the password you typed"
            ) from None
        raise KeystoreError(f"keystore {path} is corrupt: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise KeystoreError(f"keystore {path} is corrupt: missing or bad field {exc}") from exc
    if len(secret) != 32:
        raise KeystoreError(f"keystore {path} holds a {len(secret)}-byte key, not a secp256k1 key")
    declared = data.get("address")
    if isinstance(declared, str) and bytes.fromhex(declared.removeprefix("0x")) != address_of(secret):
        raise KeystoreError(
            f"keystore {path} declares address {declared} but holds the key of "
            f"0x{address_of(secret).hex()}; the file was altered"
        )
    return secret


def password_from_env() -> str | None:
    return os.environ.get(PASSWORD_ENV)
