#!/usr/bin/env bash
# T-REX 4.1.6's own hardhat test suite (777 tests) against a JSON-RPC node: a yardstick for our
# devnet (or anvil). Needs a node with evm_snapshot, evm_revert, evm_mine/hardhat_mine and
# evm_setNextBlockTimestamp, and 10+ accounts it can sign for (eth_accounts) or, with
# TREX_MNEMONIC, funded (or free-gas) accounts from that mnemonic.
#
#   TREX_RPC_URL=http://127.0.0.1:8545 TREX_SRC=/path/to/T-REX make trex-suite
#
# TREX_SRC: a local checkout (or clone) of T-REX's git repository; TREX_GIT: its git URL, when
# this machine can reach it. The suite lives only in that repository (the npm package has no
# tests). It is checked out at tag 4.1.6 into .build/trex-suite/ (git-ignored), its npm
# dependencies come from the lockfile, and it compiles with npm solc 0.8.17 (solc-js), since
# hardhat's compiler download needs a host we cannot assume. network-helpers is raised to 1.0.12,
# the first that accepts a node other than Hardhat (anvil). If the node's web3_clientVersion is
# not one the helpers know, TREX_DEV_CLIENT=<its prefix> adds it to the helpers' list of
# development nodes in the throwaway checkout; the node keeps reporting its own name.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${TREX_WORK:-$ROOT/.build/trex-suite}"
TAG=4.1.6
COMMIT=a09cfd3
: "${TREX_RPC_URL:?set TREX_RPC_URL to the node to test, e.g. http://127.0.0.1:8545}"

die() { echo "trex-suite: $*" >&2; exit 1; }

mkdir -p "$WORK"
if [ ! -d "$WORK/src/.git" ]; then
  SOURCE="${TREX_SRC:-${TREX_GIT:-}}"
  [ -n "$SOURCE" ] || die "no T-REX checkout in $WORK/src: set TREX_SRC to a clone of T-REX's git repository (TokenySolutions/T-REX) or TREX_GIT to its URL"
  git clone --quiet "$SOURCE" "$WORK/src" || die "cannot clone $SOURCE"
fi
cd "$WORK/src"
git checkout --quiet "$TAG" 2>/dev/null || die "$WORK/src has no tag $TAG; fetch tags or point TREX_SRC at a full clone"
[ "$(git rev-parse --short=7 HEAD)" = "$COMMIT" ] || die "tag $TAG is not commit $COMMIT here; refusing an unknown T-REX"

if [ ! -f node_modules/.smartta-stamp ]; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  npm install --no-save --ignore-scripts --no-audit --no-fund --loglevel=error \
    @nomicfoundation/hardhat-network-helpers@1.0.12 solc@0.8.17
  touch node_modules/.smartta-stamp
fi
if [ -n "${TREX_DEV_CLIENT:-}" ]; then
  HELPERS=node_modules/@nomicfoundation/hardhat-network-helpers/dist/src/utils.js
  grep -q "startsWith(\"${TREX_DEV_CLIENT,,}\")" "$HELPERS" || \
    sed -i "s/version.toLowerCase().startsWith(\"anvil\")/version.toLowerCase().startsWith(\"anvil\") || version.toLowerCase().startsWith(\"${TREX_DEV_CLIENT,,}\")/" "$HELPERS"
fi

cat > hardhat.smartta.config.ts <<'TS'
// Written by SMART-TA Ledger's contracts/toolchain/trex-suite.sh: T-REX's own config, compiled
// with npm solc-js 0.8.17, plus an `ext` network for the node under test.
import path from 'path';
import { subtask } from 'hardhat/config';
import { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } from 'hardhat/builtin-tasks/task-names';
import base from './hardhat.config';

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args: { solcVersion: string }, _hre, runSuper) => {
  if (args.solcVersion === '0.8.17') {
    return {
      compilerPath: path.join(__dirname, 'node_modules', 'solc', 'soljson.js'),
      isSolcJs: true,
      version: args.solcVersion,
      longVersion: '0.8.17+commit.8df45f5f',
    };
  }
  return runSuper();
});

const mnemonic = process.env.TREX_MNEMONIC;
export default {
  ...base,
  gasReporter: { enabled: false },
  mocha: { timeout: Number(process.env.TREX_TIMEOUT_MS ?? 20000) },
  networks: {
    ext: {
      url: process.env.TREX_RPC_URL,
      accounts: mnemonic ? { mnemonic, count: 20 } : 'remote',
      timeout: 120000,
    },
  },
};
TS

LOG="$WORK/trex-suite.log"
set +e
npx hardhat test --config hardhat.smartta.config.ts --network ext > "$LOG" 2>&1
STATUS=$?
set -e
PASSING=$(grep -Eo '^ *[0-9]+ passing' "$LOG" | grep -Eo '[0-9]+' | tail -1 || true)
FAILING=$(grep -Eo '^ *[0-9]+ failing' "$LOG" | grep -Eo '[0-9]+' | tail -1 || true)
PENDING=$(grep -Eo '^ *[0-9]+ pending' "$LOG" | grep -Eo '[0-9]+' | tail -1 || true)
CLIENT=$(curl -s -X POST -H 'content-type: application/json' \
  --data '{"jsonrpc":"2.0","id":1,"method":"web3_clientVersion","params":[]}' "$TREX_RPC_URL" \
  | sed -n 's/.*"result":"\([^"]*\)".*/\1/p')
[ -n "$PASSING" ] || { tail -30 "$LOG" >&2; die "the suite did not run (hardhat exit $STATUS); log: $LOG"; }
echo "T-REX $TAG suite against $CLIENT: ${PASSING} passing, ${FAILING:-0} failing, ${PENDING:-0} pending (log: $LOG)"
if [ "${TREX_RECORD:-1}" = 1 ]; then
  (cd "$ROOT" && .venv/bin/python - "$CLIENT" "$PASSING" "${FAILING:-0}" "${PENDING:-0}" "$LOG" <<'PY'
import collections
import re
import sys
from pathlib import Path

sys.path.insert(0, "benchmarks")
from results import write_section

client, passing, failing, pending = sys.argv[1], *map(int, sys.argv[2:5])
# mocha's failure list repeats each failure's top-level describe: "  12) TREXGateway"
groups = collections.Counter(m.group(1) for m in re.finditer(
    r"^  \d+\) (.+)$", Path(sys.argv[5]).read_text(errors="replace"), re.M))
where = ", ".join(f"{g} {n}" for g, n in groups.most_common()) or "none"
# One section per client family (anvil, smartta, ...): a run against one keeps the others.
family = re.sub(r"[^a-z0-9]+", "-", client.split("/")[0].lower()).strip("-") or "node"
write_section(
    "trex-suite" if family == "anvil" else f"trex-suite-{family}",
    f"T-REX 4.1.6 test suite against {client.split('/')[0]} (`make trex-suite`)",
    f"`contracts/toolchain/trex-suite.sh`: T-REX's own hardhat suite (777 tests; all pass on "
    f"Hardhat's in-process network) run against `{client}` over JSON-RPC.\n\n"
    f"| node | passing | failing | pending |\n|---|---:|---:|---:|\n"
    f"| {client} | {passing} | {failing} | {pending} |\n\n"
    f"Failing, by suite: {where}.\n\n"
    "Failures against an external node are expected where the suite's harness assumes "
    "Hardhat: tests that fire hundreds of transactions at once with Promise.all (nonce races) "
    "and knock-on failures after them, so counts vary from run to run on the same node "
    "(shared/notes/erc3643.md measured 766/777 on anvil).")
PY
  )
fi
exit 0
