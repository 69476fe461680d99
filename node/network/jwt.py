"""The RPC tier's JWT key: Besu checks ES256 tokens against its public key
(``rpc-http-authentication-jwt-public-key-file``), and ``smartta network rpc-token`` mints them.

The private key stays under the network's git-ignored ``keys/rpc-jwt/``, encrypted with the
keystore password; only the public key goes into the generated Besu files.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

from Crypto.Hash import SHA256
from Crypto.PublicKey import ECC
from Crypto.Signature import DSS

from chain.attest.keys import KeystoreError

JWT_DIR = "rpc-jwt"
PRIVATE_FILE = "key.pem"
PUBLIC_FILE = "public.pem"


def key_dir(keys_dir: Path) -> Path:
    return keys_dir / JWT_DIR


def ensure_key(keys_dir: Path, password: str) -> str:
    """The public key PEM, creating the key pair if there is none (never replacing one: tokens
    already handed out must keep working)."""
    d = key_dir(keys_dir)
    public = d / PUBLIC_FILE
    if (d / PRIVATE_FILE).exists():
        return public.read_text()
    if not password:
        raise KeystoreError("refusing to write the RPC JWT key with an empty password")
    d.mkdir(parents=True, exist_ok=True)
    key = ECC.generate(curve="P-256")
    pem = key.export_key(format="PEM", passphrase=password,
                         protection="PBKDF2WithHMAC-SHA512AndAES256-CBC")
    fd = os.open(d / PRIVATE_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pem + "\n")
    text = key.public_key().export_key(format="PEM") + "\n"
    public.write_text(text)
    return text


def public_key(keys_dir: Path) -> str | None:
    path = key_dir(keys_dir) / PUBLIC_FILE
    return path.read_text() if path.exists() else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(keys_dir: Path, password: str, *, subject: str, ttl_seconds: int,
         permissions: list[str], now: int | None = None) -> str:
    """An ES256 JWT Besu accepts: ``permissions`` lists ``group:method`` (``eth:*``, ``*:*``)."""
    path = key_dir(keys_dir) / PRIVATE_FILE
    try:
        key = ECC.import_key(path.read_text(), passphrase=password)
    except FileNotFoundError:
        raise KeystoreError(f"{path} does not exist: the network has no RPC tier with JWT "
                            "authentication (run `smartta network init` after adding an rpc node)") from None
    except ValueError:
        raise KeystoreError(f"cannot open {path}: wrong password (check SMARTTA_KEYSTORE_PASSWORD)") from None
    issued = int(time.time()) if now is None else now
    header = {"alg": "ES256", "typ": "JWT"}
    claims = {"sub": subject, "iat": issued, "exp": issued + ttl_seconds, "permissions": permissions}
    signing_input = (_b64(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + _b64(json.dumps(claims, separators=(",", ":")).encode()))
    signature = DSS.new(key, "fips-186-3", encoding="binary").sign(SHA256.new(signing_input.encode()))
    return signing_input + "." + _b64(signature)


def verify(token: str, public_pem: str) -> dict[str, object]:
    """The claims of a token signed by the key, or ValueError (what Besu checks, for tests and
    for an operator who wants to know why a token is refused)."""
    try:
        head, body, sig = token.split(".")
        pad = "=" * (-len(sig) % 4)
        DSS.new(ECC.import_key(public_pem), "fips-186-3", encoding="binary").verify(
            SHA256.new(f"{head}.{body}".encode()), base64.urlsafe_b64decode(sig + pad))
    except ValueError as exc:
        raise ValueError(f"token is not signed by this key: {exc}") from None
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims
