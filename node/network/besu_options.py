"""Which Besu options (config.toml keys) and option values each Besu release accepts.

Besu refuses to start on an option it does not know (``Unknown option in TOML configuration
file``) or on a removed value (``Invalid value for option '--rpc-http-api': invalid entries found
[EEA, PRIV]``), which is how consortia broke when their pinned Besu was raised. Two sources:

- ``data/besu_options.json``: every option name and enum value of every Besu release from
  24.12.0, extracted from Besu's source at the release tags (``data/extract_besu_options.py``);
- ``REMOVALS``: the removals operators meet, each with its Besu release, reason and replacement,
  so a check can say what to do instead. A test holds the two against each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "besu_options.json"

Version = tuple[int, int, int]


class BesuVersionError(ValueError):
    """A Besu version this toolkit cannot target, with the versions it can."""


def parse_version(text: str) -> Version:
    parts = text.strip().removeprefix("v").split("-")[0].split(".")
    try:
        major, minor, patch = (int(p) for p in [*parts, "0", "0"][:3])
    except ValueError:
        raise BesuVersionError(f"Besu version {text!r} is not of the form 26.8.0") from None
    return major, minor, patch


def _v(text: str) -> Version:
    return parse_version(text)


@dataclass(frozen=True)
class Removal:
    """An option (or one value of an option) that Besu removed in ``removed_in``."""

    option: str
    removed_in: str
    why: str
    instead: str
    value: str | None = None
    """For an enum value removed from an option that stays (``EEA`` of ``rpc-http-api``)."""

    def applies_to(self, version: Version) -> bool:
        return version >= _v(self.removed_in)


_PRIVACY = "Tessera privacy was removed (Besu #8369)"
_ONCHAIN = "on-chain permissioning was removed (Besu #8597)"

REMOVALS: tuple[Removal, ...] = (
    Removal("host-whitelist", "25.1.0", "the deprecated spelling was removed", "host-allowlist"),
    Removal("nat-method", "25.3.0", "the Kubernetes NAT method was removed (Besu #8289)",
            "nat-method=\"NONE\" (or DOCKER) and advertise the pod address with p2p-host",
            value="KUBERNETES"),
    *(Removal(o, "25.6.0", _PRIVACY, "nothing: private transactions are gone; keep private data "
              "off chain") for o in (
        "privacy-enabled", "privacy-url", "privacy-public-key-file", "privacy-multi-tenancy-enabled",
        "privacy-marker-transaction-signing-key-file", "privacy-flexible-groups-enabled",
        "privacy-tls-enabled", "privacy-tls-keystore-file", "privacy-tls-keystore-password-file",
        "privacy-tls-known-enclave-file", "privacy-enable-database-migration",
        "privacy-nonce-always-increments")),
    *(Removal(o, "25.6.0", _ONCHAIN, "local permissioning (permissions-nodes-config-file) or a "
              "permissioning plugin") for o in (
        "permissions-nodes-contract-enabled", "permissions-nodes-contract-address",
        "permissions-nodes-contract-version", "permissions-accounts-contract-enabled",
        "permissions-accounts-contract-address")),
    Removal("rpc-http-api", "25.7.0", "the EEA and PRIV API groups were removed (Besu #8803)",
            "drop EEA from the list", value="EEA"),
    Removal("rpc-http-api", "25.7.0", "the EEA and PRIV API groups were removed (Besu #8803)",
            "drop PRIV from the list", value="PRIV"),
    Removal("rpc-ws-api", "25.7.0", "the EEA and PRIV API groups were removed (Besu #8803)",
            "drop EEA from the list", value="EEA"),
    Removal("rpc-ws-api", "25.7.0", "the EEA and PRIV API groups were removed (Besu #8803)",
            "drop PRIV from the list", value="PRIV"),
    Removal("Xsnapsync-bft-enabled", "25.7.0", "SNAP sync now works on BFT networks (Besu #8861)",
            "remove the option; sync-mode=\"SNAP\" works as is"),
    Removal("miner-enabled", "25.12.0", "proof-of-work options were removed (Besu #9486)",
            "remove it: QBFT validators produce blocks without it"),
    Removal("miner-coinbase", "25.12.0", "proof-of-work options were removed (Besu #9486)",
            "remove it; set qbft.miningbeneficiary in the genesis instead"),
    Removal("sync-mode", "26.2.0", "fast sync was removed (Besu #9814)",
            "sync-mode=\"FULL\" (or SNAP)", value="FAST"),
    Removal("fast-sync-min-peers", "26.2.0", "fast sync was removed (Besu #9814)",
            "sync-min-peers"),
    # Clique's removal was tagged 26.3.0-RC0, but 26.3.0 was never released: it shipped in 26.4.0.
    Removal("rpc-http-api", "26.4.0", "Clique was removed (Besu #9852)", "drop CLIQUE from the list",
            value="CLIQUE"),
    Removal("rpc-ws-api", "26.4.0", "Clique was removed (Besu #9852)", "drop CLIQUE from the list",
            value="CLIQUE"),
)

ENUM_OF = {"rpc-http-api": "rpc-api", "rpc-ws-api": "rpc-api", "nat-method": "nat-method",
           "sync-mode": "sync-mode"}


@cache
def _table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text())
    return data


def known_versions() -> list[str]:
    versions: list[str] = _table()["versions"]
    return versions


def _in(ranges: Iterable[list[str]], version: Version) -> bool:
    return any(_v(lo) <= version <= _v(hi) for lo, hi in ranges)


def reference_version(version: str) -> str:
    """The release whose option list stands for ``version``: the newest known one not after it.

    A version newer than the table is checked against the newest release in it (and the
    removals, which stay removed); one older than the table cannot be targeted.
    """
    v = parse_version(version)
    older = [k for k in known_versions() if _v(k) <= v]
    if not older:
        raise BesuVersionError(
            f"Besu {version} is older than {known_versions()[0]}, the oldest release this toolkit "
            "knows the options of; target a current Besu (besu_version in network.yaml)")
    return older[-1]


def options_for(version: str) -> frozenset[str]:
    ref = _v(reference_version(version))
    return frozenset(name for name, ranges in _table()["options"].items() if _in(ranges, ref))


def values_for(option: str, version: str) -> frozenset[str]:
    """Accepted enum values of ``option`` (an empty set for an option that takes free values)."""
    enum = ENUM_OF.get(option)
    if enum is None:
        return frozenset()
    ref = _v(reference_version(version))
    return frozenset(value for value, ranges in _table()["values"][enum].items() if _in(ranges, ref))


@dataclass(frozen=True)
class OptionProblem:
    option: str
    message: str


def _values_of(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        return [v.strip() for v in value.split(",")]
    return []


def check_config(config: Mapping[str, Any], version: str) -> list[OptionProblem]:
    """Every option in a Besu config.toml that Besu ``version`` would refuse, and the fix."""
    v = parse_version(version)
    known = options_for(version)
    problems: list[OptionProblem] = []
    for option, value in config.items():
        removal = next((r for r in REMOVALS if r.option == option and r.value is None
                        and r.applies_to(v)), None)
        if removal is not None:
            problems.append(OptionProblem(option, f"'{option}' was removed in Besu {removal.removed_in} "
                                                  f"({removal.why}); {removal.instead}"))
            continue
        if option not in known:
            problems.append(OptionProblem(option, f"Besu {version} has no option '{option}'; "
                                                  "remove it or correct its spelling"))
            continue
        allowed = values_for(option, version)
        if not allowed:
            continue
        for item in _values_of(value):
            if item.upper() in allowed:
                continue
            removal = next((r for r in REMOVALS if r.option == option and r.value == item.upper()
                            and r.applies_to(v)), None)
            if removal is not None:
                problems.append(OptionProblem(option, f"'{option}' value {item} was removed in Besu "
                                                      f"{removal.removed_in} ({removal.why}); "
                                                      f"{removal.instead}"))
            else:
                problems.append(OptionProblem(option, f"'{option}' value {item} is not accepted by "
                                                      f"Besu {version}; use one of "
                                                      f"{', '.join(sorted(allowed))}"))
    return problems
