"""Rebuild ``besu_options.json``: the command-line options each Besu release accepts.

Run it against a clone of Besu's repository (any clone with the release tags)::

    python node/network/data/extract_besu_options.py /path/to/besu > node/network/data/besu_options.json

For each release tag it lists the ``"--option"`` string literals of Besu's option classes (the
``cli`` packages, without the ``subcommands`` ones, plus the RocksDB plugin's options) and the
members of the enums whose values we write: ``RpcApis`` (``rpc-http-api``/``rpc-ws-api``),
``NatMethod`` and ``SyncMode``. A config.toml key is an option name without its ``--``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

FIRST = (24, 12, 0)
ENUMS = {"rpc-api": "jsonrpc/RpcApis.java", "nat-method": "/NatMethod.java", "sync-mode": "/SyncMode.java"}


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


def releases(repo: str) -> list[str]:
    tags = [t for t in git(repo, "tag").split() if re.fullmatch(r"\d+\.\d+\.\d+", t)]
    out = sorted(tuple(int(x) for x in t.split(".")) for t in tags)
    return [".".join(map(str, v)) for v in out if v >= FIRST]


def options(repo: str, tag: str) -> set[str]:
    text = git(repo, "grep", "-h", "-o", "-E", r'"--[A-Za-z][A-Za-z0-9-]*"', tag, "--",
               "*/src/main/java/org/hyperledger/besu/cli/*", ":!*/cli/subcommands/*",
               "plugins/rocksdb/src/main/java")
    return {line.strip('"')[2:] for line in text.split()} - {"X"}


def enum_values(repo: str, tag: str, suffix: str) -> list[str]:
    path = next(p for p in git(repo, "ls-tree", "-r", "--name-only", tag).split() if p.endswith(suffix))
    body = git(repo, "show", f"{tag}:{path}")
    return re.findall(r"^\s+([A-Z][A-Z0-9_]*)\s*[,;(]", body, flags=re.M)


def ranges(present: list[bool], versions: list[str]) -> list[list[str]]:
    out: list[list[str]] = []
    for i, here in enumerate(present):
        if here and (i == 0 or not present[i - 1]):
            out.append([versions[i], versions[i]])
        elif here:
            out[-1][1] = versions[i]
    return out


def main(repo: str) -> None:
    versions = releases(repo)
    per_version = {v: options(repo, v) for v in versions}
    names = sorted(set().union(*per_version.values()))
    values: dict[str, dict[str, Any]] = {}
    for key, suffix in ENUMS.items():
        per = {v: set(enum_values(repo, v, suffix)) for v in versions}
        every = sorted(set().union(*per.values()))
        values[key] = {e: ranges([e in per[v] for v in versions], versions) for e in every}
    head = git(repo, "rev-parse", f"{versions[-1]}^{{commit}}").strip()
    out = {
        "source": f"Besu release tags {versions[0]}..{versions[-1]} (last at commit {head}), "
                  "extracted by node/network/data/extract_besu_options.py",
        "versions": versions,
        "options": {n: ranges([n in per_version[v] for v in versions], versions) for n in names},
        "values": values,
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
