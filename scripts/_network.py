"""What every script needs from the network it runs on: its folder, its keystores, its record.

- The network folder is ``networks/NAME`` for the ape network ``smartta-NAME`` (or ``NAME``),
  or ``$SMARTTA_NETWORK_DIR``.
- Accounts come from encrypted keystore v3 files, ``networks/NAME/accounts/ALIAS.json`` (or
  ``$SMARTTA_KEYSTORE_DIR/ALIAS.json``), opened with ``$SMARTTA_KEYSTORE_PASSWORD``; nothing
  prompts, so the scripts run in CI.
- What the scripts deploy is recorded in ``networks/NAME/deployments.json``, keyed by the
  chain's genesis hash: a rerun finds it and skips what exists; a record from an earlier chain
  (a reset devnet) is set aside, never reused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from ape import chain, networks
from ape_accounts import KeyfileAccount

from chain.attest.keys import PASSWORD_ENV, KeystoreError, open_keystore

ROOT = Path(__file__).resolve().parents[1]
TEST_NETWORKS = {"local"}


class ScriptError(click.ClickException):
    """Stops a script with a message that says what to do (exit status 1, no traceback)."""


def _yaml_chain_id(path: Path) -> int | None:
    if not path.exists():
        return None
    import yaml

    spec = yaml.safe_load(path.read_text()) or {}
    for key in ("chain_id", "chainId", "chain-id"):
        value = spec.get(key) if isinstance(spec, dict) else None
        if value is None and isinstance(spec, dict) and isinstance(spec.get("network"), dict):
            value = spec["network"].get(key)
        if value is not None:
            return int(value)
    return None


def _accept_bft_headers(provider: Any) -> None:
    """QBFT (Besu and our node) and other BFT/PoA chains carry more than 32 bytes of extraData;
    web3.py needs its PoA middleware to read their blocks, and ape 0.8 fails to detect such a
    chain (its probe swallows web3's formatting error), so add the middleware ourselves."""
    from web3.middleware import ExtraDataToPOAMiddleware

    web3 = provider.web3
    if ExtraDataToPOAMiddleware not in web3.middleware_onion:
        web3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)


class Network:
    """The live network a script is connected to."""

    def __init__(self) -> None:
        provider = networks.provider
        self.name = provider.network.name
        if self.name in TEST_NETWORKS or provider.network.is_local:
            raise ScriptError(
                f"--network {provider.network.choice} is ape's throwaway test chain; deploy to "
                "ethereum:smartta-local (the devnet), ethereum:smartta-anvil or "
                "ethereum:besu-consortium (see ape-config.yaml)")
        _accept_bft_headers(provider)
        self.chain_id = provider.chain_id
        self.dir = Path(os.environ.get("SMARTTA_NETWORK_DIR")
                        or ROOT / "networks" / self.name.removeprefix("smartta-"))
        spec_id = _yaml_chain_id(self.dir / "network.yaml")
        if spec_id is not None and spec_id != self.chain_id:
            raise ScriptError(
                f"{self.dir}/network.yaml says chain id {spec_id} but the node at this network's "
                f"RPC answers {self.chain_id}: wrong RPC URL, or ape-config.yaml's chain_id for "
                f"{self.name} is stale")
        self.genesis = chain.blocks[0].hash.hex()
        self.deployments = Deployments(self.dir / "deployments.json", self.chain_id, self.genesis)

    def account(self, alias: str) -> KeyfileAccount:
        folder = Path(os.environ.get("SMARTTA_KEYSTORE_DIR") or self.dir / "accounts")
        path = folder / f"{alias}.json"
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            raise ScriptError(f"set {PASSWORD_ENV} to the password of {path}")
        if not path.exists():
            raise ScriptError(
                f"no keystore for account '{alias}' at {path}; put an encrypted keystore v3 file "
                "there (chain.attest.keys.write_keystore writes one) or point "
                "SMARTTA_KEYSTORE_DIR at the folder that has it")
        try:
            open_keystore(path, password)
        except KeystoreError as exc:
            raise ScriptError(str(exc)) from None
        account = KeyfileAccount(keyfile_path=path)
        account.set_autosign(True, passphrase=password)
        return account

    def require_funds(self, account: Any, gas: int) -> None:
        """Refuse early, with the numbers, when ``account`` cannot pay for ``gas``. Free-gas
        networks (gas price 0) need no balance at all."""
        price = networks.provider.gas_price
        need = price * gas
        balance = account.balance
        if need > balance:
            raise ScriptError(
                f"account {account.address} holds {balance} wei on chain {self.chain_id}; this "
                f"step needs about {gas:,} gas at {price} wei, {need} wei: fund the account, or "
                "run on a free-gas network (zeroBaseFee and min gas price 0)")

    def ledger(self, project: Any) -> Any:
        """The CeFiEventLedger that deployments.json records on this network, or ScriptError."""
        address = self.deployments.lookup("CeFiEventLedger")
        if address is None:
            raise ScriptError(f"no CeFiEventLedger recorded in {self.deployments.path}; "
                              "run `ape run deploy_ledger` on this network first")
        return project.CeFiEventLedger.at(address)

    def require_role(self, contract: Any, role: bytes, account: Any, role_name: str, why: str) -> None:
        if not contract.hasRole(role, account.address):
            raise ScriptError(
                f"{account.address} lacks {role_name} on {contract.address}, needed to {why}; "
                "run with --account set to an account that holds it")


class Deployments:
    """networks/NAME/deployments.json: what was deployed on this chain, by name."""

    def __init__(self, path: Path, chain_id: int, genesis: str) -> None:
        self.path = path
        self.data: dict[str, Any] = {"chain_id": chain_id, "genesis": genesis, "contracts": {},
                                     "funds": {}, "investors": {}}
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise ScriptError(f"{path} is not JSON ({exc.msg}); fix or move it away") from None
            if old.get("genesis") == genesis:
                self.data.update(old)
            else:
                aside = path.with_name(f"deployments.{str(old.get('genesis', 'unknown'))[:12]}.json")
                path.replace(aside)
                click.echo(f"{path} belonged to another chain (genesis {old.get('genesis')}); "
                           f"moved it to {aside.name} and starting afresh")

    def lookup(self, name: str) -> str | None:
        entry = self.data["contracts"].get(name)
        if entry is None:
            return None
        address = str(entry["address"])
        if not networks.provider.get_code(address):
            raise ScriptError(
                f"{self.path} records {name} at {address}, but there is no code there on this "
                "chain; the record is wrong: move the file away to deploy afresh")
        return address

    def record(self, name: str, instance: Any) -> None:
        receipt = getattr(instance, "receipt", None)
        self.data["contracts"][name] = {
            "address": instance.address,
            "tx": getattr(instance, "txn_hash", None),
            "block": getattr(receipt, "block_number", None),
        }
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.path)
