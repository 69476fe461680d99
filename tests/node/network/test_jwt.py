"""The RPC tier's JWT key: tokens minted by `smartta network rpc-token` verify against the public
key the generated Besu config points to; another key's tokens do not."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from chain.attest.keys import KeystoreError
from chain.cli import main
from node.network import jwt

from .netchain import PASSWORD


def test_a_minted_token_verifies_against_the_generated_public_key(net, monkeypatch):
    monkeypatch.setenv("SMARTTA_KEYSTORE_PASSWORD", PASSWORD)
    result = CliRunner().invoke(main, ["network", "rpc-token", "--dir", str(net),
                                       "--subject", "ledger-writer"])
    assert result.exit_code == 0, result.output
    claims = jwt.verify(result.output.strip(), (net / "besu" / "rpc-jwt-public.pem").read_text())
    assert claims["sub"] == "ledger-writer" and claims["permissions"] == ["eth:*", "net:*", "web3:*"]
    assert claims["exp"] - claims["iat"] == 86400


def test_a_token_from_another_key_or_altered_is_refused(net, tmp_path):
    other = jwt.ensure_key(tmp_path / "keys", "x")
    token = jwt.mint(net / "keys", PASSWORD, subject="a", ttl_seconds=60, permissions=["*:*"])
    with pytest.raises(ValueError, match="not signed by this key"):
        jwt.verify(token, other)
    head, body, sig = token.split(".")
    with pytest.raises(ValueError, match="not signed by this key"):
        jwt.verify(f"{head}.{body}x.{sig}", (net / "besu" / "rpc-jwt-public.pem").read_text())


def test_the_key_is_never_replaced_and_a_wrong_password_says_so(net):
    before = (net / "keys" / "rpc-jwt" / "key.pem").read_bytes()
    jwt.ensure_key(net / "keys", PASSWORD)
    assert (net / "keys" / "rpc-jwt" / "key.pem").read_bytes() == before
    with pytest.raises(KeystoreError, match="wrong password"):
        jwt.mint(net / "keys", "nope", subject="a", ttl_seconds=60, permissions=["*:*"])
