"""Prepare the offline Solidity toolchain; run by ``make setup`` after ``npm ci``, idempotent.

1. Installs ``solc-v<version>`` where py-solc-x looks for compilers (``$SOLCX_BINARY_PATH`` or
   ``~/.solcx``): a launcher for ``solc-shim.js`` around the npm ``solc`` package, so that
   ``ape compile`` never downloads a compiler. A native compiler already there is left alone.
2. Converts the prebuilt T-REX and ONCHAINID hardhat artifacts from ``node_modules`` into ape
   contract types in ``contracts/trex/`` (git-ignored: third-party bytecode is never committed),
   keeping both the deployment and the runtime bytecode, so ``project.Token`` and friends are
   ordinary project contracts.
3. Lays out the OpenZeppelin sources our contracts import (``access/``, ``utils/``,
   ``interfaces/`` of the npm package) in ``.ape-deps/openzeppelin/`` (git-ignored), ape's
   dependency for them. The whole npm package (500+ files) would be unpacked by ape into
   ``contracts/.cache/``, and ape 0.8 lists at most 500 files under ``contracts/``: our own
   sources and the T-REX contract types would silently fall off that list.

Standard library only: it runs before anything else is known to work.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIM = Path(__file__).resolve().with_name("solc-shim.js")
MARKER = "# smartta solc-js shim"
TREX = ROOT / "node_modules" / "@tokenysolutions" / "t-rex" / "artifacts"
ONCHAINID = ROOT / "node_modules" / "@onchain-id" / "solidity" / "artifacts"
OUT = ROOT / "contracts" / "trex"
OPENZEPPELIN = ROOT / "node_modules" / "@openzeppelin" / "contracts"
OZ_OUT = ROOT / ".ape-deps" / "openzeppelin"
OZ_PARTS = ("access", "utils", "interfaces")

# name -> artifact path. T-REX does not ship IdFactory or IdentityProxy, so the ONCHAINID
# stack comes from its own package (as T-REX's fixtures do); ClaimIssuer and Identity too, so
# the identity contracts are all one build.
ARTIFACTS: dict[str, Path] = {
    **{name: TREX / "contracts" / sub / f"{name}.sol" / f"{name}.json" for name, sub in [
        ("Token", "token"),
        ("ClaimTopicsRegistry", "registry/implementation"),
        ("TrustedIssuersRegistry", "registry/implementation"),
        ("IdentityRegistryStorage", "registry/implementation"),
        ("IdentityRegistry", "registry/implementation"),
        ("ModularCompliance", "compliance/modular"),
        ("TREXImplementationAuthority", "proxy/authority"),
        ("IAFactory", "proxy/authority"),
        ("TREXFactory", "factory"),
        ("TokenProxy", "proxy"),
        ("ClaimTopicsRegistryProxy", "proxy"),
        ("TrustedIssuersRegistryProxy", "proxy"),
        ("IdentityRegistryStorageProxy", "proxy"),
        ("IdentityRegistryProxy", "proxy"),
        ("ModularComplianceProxy", "proxy"),
    ]},
    **{name: ONCHAINID / "contracts" / sub / f"{name}.sol" / f"{name}.json" for name, sub in [
        ("Identity", ""),
        ("ClaimIssuer", ""),
        ("IdentityProxy", "proxy"),
        ("ImplementationAuthority", "proxy"),
        ("IdFactory", "factory"),
    ]},
}


class PrepareError(RuntimeError):
    pass


def solc_version() -> str:
    try:
        out = subprocess.run(["node", str(SHIM), "--version"], check=True, capture_output=True,
                             text=True, timeout=120).stdout
    except FileNotFoundError:
        raise PrepareError("node is not on PATH; install Node.js 18+ and re-run make setup") from None
    except subprocess.CalledProcessError as exc:
        raise PrepareError(f"the npm solc package does not load ({exc.stderr.strip()}); "
                           "run `npm ci` in the repository root") from exc
    full = out.strip().splitlines()[-1].removeprefix("Version: ").strip()
    return full


def install_shim() -> Path:
    full = solc_version()
    semver = full.split("+", 1)[0]
    folder = Path(os.environ.get("SOLCX_BINARY_PATH") or Path.home() / ".solcx")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"solc-v{semver}"
    if target.exists() and MARKER not in target.read_bytes()[:200].decode("utf-8", "replace"):
        print(f"solc: keeping the native compiler already at {target}")
        return target
    node = shutil.which("node") or "node"
    # --version is answered without starting node: py-solc-x asks it several times per compile.
    script = (
        "#!/bin/sh\n"
        f"{MARKER} (contracts/toolchain/prepare.py); re-run `make setup` if the repository moves\n"
        'if [ "$1" = "--version" ]; then\n'
        "  printf 'solc, the solidity compiler commandline interface\\nVersion: %s\\n' "
        f"'{full}'\n"
        "  exit 0\n"
        "fi\n"
        f'exec "{node}" "{SHIM}" "$@"\n'
    )
    if not target.exists() or target.read_text() != script:
        tmp = target.with_suffix(".tmp")
        tmp.write_text(script)
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        tmp.replace(target)
        print(f"solc: installed the solc-js {full} shim as {target}")
    return target


def contract_type(name: str, artifact: Path) -> dict[str, object]:
    try:
        data = json.loads(artifact.read_text())
    except FileNotFoundError:
        raise PrepareError(f"{artifact} is missing; run `npm ci` (package.json pins "
                           "@tokenysolutions/t-rex and @onchain-id/solidity)") from None
    return {
        "contractName": name,
        "sourceId": f"{data['sourceName']} ({artifact.relative_to(ROOT / 'node_modules').parts[0]}"
                    f"/{artifact.relative_to(ROOT / 'node_modules').parts[1]})",
        "abi": data["abi"],
        "deploymentBytecode": {"bytecode": data["bytecode"]},
        "runtimeBytecode": {"bytecode": data["deployedBytecode"]},
    }


def convert_artifacts() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, artifact in ARTIFACTS.items():
        text = json.dumps(contract_type(name, artifact), separators=(",", ":"), sort_keys=True)
        target = OUT / f"{name}.json"
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            written += 1
    print(f"artifacts: {len(ARTIFACTS)} T-REX/ONCHAINID contract types in {OUT.relative_to(ROOT)} "
          f"({written} updated)")
    return written


def layout_openzeppelin() -> None:
    if not OPENZEPPELIN.is_dir():
        raise PrepareError(f"{OPENZEPPELIN} is missing: run `npm ci` (make setup does)")
    version = json.loads((OPENZEPPELIN / "package.json").read_text())["version"]
    stamp = OZ_OUT / ".version"
    if stamp.exists() and stamp.read_text() == version:
        return
    if OZ_OUT.exists():
        shutil.rmtree(OZ_OUT)
    for part in OZ_PARTS:
        shutil.copytree(OPENZEPPELIN / part, OZ_OUT / part)
    stamp.write_text(version)
    # ape's unpacked copy of the previous layout, if any, must not linger in contracts/.
    shutil.rmtree(ROOT / "contracts" / ".cache", ignore_errors=True)
    print(f"openzeppelin: {', '.join(OZ_PARTS)} of @openzeppelin/contracts {version} in "
          f"{OZ_OUT.relative_to(ROOT)}")


def main() -> int:
    try:
        install_shim()
        convert_artifacts()
        layout_openzeppelin()
    except PrepareError as exc:
        print(f"contracts/toolchain/prepare.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
