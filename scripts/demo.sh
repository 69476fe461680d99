#!/usr/bin/env bash
# `make demo`: the whole path of a subscription, on embedded defaults, from nothing.
#
#  1. chain/ alone: a genesis, sealed blocks and attested records, verified (smartta demo)
#  2. the 4-validator + observer devnet as OS processes (networks/local, seeded throwaway keys)
#  3. the CeFi Event Ledger and the ERC-3643 suite deployed with ape scripts
#  4. a subscription's events, each attested by its actor, appended by the TA's writer
#  5. the indexer projects the chain into PostgreSQL (pgserver) and ClickHouse (chdb)
#  6. a regulator verifies every block and record from the genesis alone and proves one record
#  7. the network goes down again
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
NET=networks/local
export SMARTTA_KEYSTORE_PASSWORD="${SMARTTA_KEYSTORE_PASSWORD:-devnet-demo}"
export APE_DATA_FOLDER="${APE_DATA_FOLDER:-$PWD/.ape-data}"
export SMARTTA_LOCAL_RPC_URL="${SMARTTA_LOCAL_RPC_URL:-http://127.0.0.1:8545}"
OBSERVER_RPC=http://127.0.0.1:8585
OUT=$(mktemp -d "${TMPDIR:-/tmp}/smartta-demo.XXXXXX")
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$OUT/runtime}"
mkdir -p -m 700 "$XDG_RUNTIME_DIR"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
address() { "$BIN/python" -c "import json,sys; print('0x'+json.load(open(sys.argv[1]))['address'].lower().removeprefix('0x'))" "$1"; }
API=
down() {
  [ -n "$API" ] && kill "$API" 2>/dev/null
  "$BIN/smartta" network down --dir "$NET" >/dev/null 2>&1 || true
  # The embedded PostgreSQL outlives the commands that start it (each reuses it); the demo stops
  # it, and the next `smartta indexer` or `smartta api` starts it again.
  if [ -f .smartta/pg/postmaster.pid ]; then
    "$BIN/python" - <<'PY' >/dev/null 2>&1 || true
import os
from pathlib import Path

from pgserver._commands import pg_ctl

pg_ctl(["-w", "stop"], pgdata=Path(".smartta/pg").resolve(),
       user="pgserver" if os.geteuid() == 0 else None)
PY
  fi
}
trap down EXIT

step "1. chain/: genesis, sealed blocks and attested records, verified"
"$BIN/smartta" demo --records 6 --out "$OUT/formats"

step "2. the devnet: 4 validators and an observer, each its own process"
"$BIN/smartta" network init --dir "$NET" >/dev/null
"$BIN/smartta" network up --dir "$NET"
for alias in deployer kyc-issuer writer ta fund-admin; do
  "$BIN/smartta" network account --dir "$NET" --alias "$alias"
done
WRITER=$(address "$NET/accounts/writer.json")
TA=$(address "$NET/accounts/ta.json")
ADMIN=$(address "$NET/accounts/fund-admin.json")
INVESTOR_WALLET=0x00000000000000000000000000000000000d3a11

step "3. contracts: the CeFi Event Ledger, roles, T-REX suite with our compliance modules, KYC"
# A devnet whose data was wiped has the same (seeded) genesis: forget what was deployed on it.
"$BIN/python" - "$NET" "$SMARTTA_LOCAL_RPC_URL" <<'PY'
import json, sys, pathlib
from node.network.local import rpc
path = pathlib.Path(sys.argv[1]) / "deployments.json"
if path.exists():
    ledger = json.loads(path.read_text()).get("contracts", {}).get("CeFiEventLedger")
    if ledger and rpc(sys.argv[2], "eth_getCode", [ledger["address"], "latest"]) in ("0x", None):
        path.unlink()
        print(f"{path}: the chain was reset, deploying afresh")
PY
ape_run() { "$BIN/ape" run "$1" --network ethereum:smartta-local "${@:2}" </dev/null; }
ape_run deploy_ledger
ape_run grant_writer --writer "$WRITER" --attester "$TA" --attester "$ADMIN"
ape_run deploy_trex
ape_run register_investor --wallet "$INVESTOR_WALLET" --country 442
LEDGER=$("$BIN/python" -c "import json; print(json.load(open('$NET/deployments.json'))['contracts']['CeFiEventLedger']['address'])")

step "4. a subscription, event by event, attested by the TA and the fund administrator"
ape_run record_events --story

step "5. the indexer: PostgreSQL (pgserver) and ClickHouse (chdb), verifying each record"
"$BIN/smartta" indexer run --rpc "$SMARTTA_LOCAL_RPC_URL" --ledger "$LEDGER" --chain-id 2026 --once --quiet
"$BIN/smartta" indexer status
TOKEN=$("$BIN/smartta" indexer credentials issue --org CSSF --role observer 2>/dev/null | tail -1)
"$BIN/smartta" api --port 8089 >"$OUT/api.log" 2>&1 &
API=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:8089/health >/dev/null && break; sleep 0.2; done
echo "the register of LU0000000009, as the regulator's credential reads it:"
curl -sf -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8089/v1/funds/LU0000000009/register
echo
echo "order ORD-1's history (every entry carries its proof fields):"
curl -sf -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8089/v1/orders/ORD-1 >"$OUT/order.json"
"$BIN/python" - "$OUT/order.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["data"]["ledgerRecords"]:
    print(f"  record {r['seq']:>3}  block {r['blockNumber']:>5}  {r['eventType']:<18} "
          f"recordHash {r['recordHash'][:18]}…")
PY
kill "$API"; wait "$API" 2>/dev/null || true; API=

step "6. the regulator: every block, seal and record from the genesis alone; one record proved"
"$BIN/smartta-observer" verify --rpc "$OBSERVER_RPC" --rpc "$SMARTTA_LOCAL_RPC_URL" \
  --genesis "$NET/genesis.json" --ledger "$LEDGER" --no-checkpoint --quiet
"$BIN/smartta-observer" prove --rpc "$OBSERVER_RPC" --genesis "$NET/genesis.json" \
  --ledger "$LEDGER" --record 3 --out "$OUT/record-3.proof.json"
"$BIN/smartta-observer" check-proof "$OUT/record-3.proof.json" --genesis "$NET/genesis.json"

step "7. done"
"$BIN/smartta" network status --dir "$NET"
echo "demo files in $OUT; the network stops now (restart it with: smartta network up --dir $NET)"
