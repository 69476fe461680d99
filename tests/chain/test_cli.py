"""`smartta rlp` mirrors `besu rlp`; `smartta block inspect` recomputes Besu's hashes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from chain.cli import main

DATA = Path(__file__).parents[1] / "data" / "besu"
VECTORS = {v["name"]: v for v in json.loads((DATA / "qbft_extra_data.json").read_text())["vectors"]}
BLOCKS = json.loads((DATA / "blocks.json").read_text())["blocks"]


def test_rlp_encode_prints_the_same_hex_as_besu(tmp_path):
    v = VECTORS["besu rlp encode --type QBFT_EXTRA_DATA (input order kept, not sorted)"]
    # Besu's test writes the addresses without 0x; accept both.
    (tmp_path / "validators.json").write_text(json.dumps([a[2:] for a in v["fields"]["validators"]]))
    result = CliRunner().invoke(main, ["rlp", "encode", "--type", "QBFT_EXTRA_DATA",
                                       "--from", str(tmp_path / "validators.json")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == v["expected"]


def test_rlp_decode_prints_the_fields_as_json():
    v = VECTORS["besu rlp decode --type QBFT_EXTRA_DATA"]
    result = CliRunner().invoke(main, ["rlp", "decode", "--type", "QBFT_EXTRA_DATA", v["expected"]])
    assert result.exit_code == 0, result.output
    fields = json.loads(result.output)
    assert fields["validators"] == v["fields"]["validators"]
    assert fields["vote"] is None and fields["round"] == 0 and fields["seals"] == []


def test_rlp_decode_of_garbage_says_why():
    result = CliRunner().invoke(main, ["rlp", "decode", "0x80"])
    assert result.exit_code != 0
    assert "IBFT" in result.output or "list" in result.output


def test_block_inspect_recomputes_a_real_besu_block(tmp_path):
    blk = next(b for b in BLOCKS if "expected_committers" in b)
    path = tmp_path / "block.json"
    path.write_text(json.dumps({"jsonrpc": "2.0", "id": 1,
                                "result": {**blk["header"], "hash": blk["expected_hash"]}}))
    result = CliRunner().invoke(main, ["block", "inspect", "--from", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["hash"] == blk["expected_hash"] and report["hashMatches"] is True
    assert report["commitSealHash"] == blk["expected_commit_seal_hash"]
    assert report["committers"] == blk["expected_committers"] and report["round"] == 0


def test_block_inspect_exits_non_zero_on_a_hash_mismatch(tmp_path):
    blk = next(b for b in BLOCKS if "expected_committers" in b)
    path = tmp_path / "block.json"
    path.write_text(json.dumps({**blk["header"], "gasUsed": "0x1", "hash": blk["expected_hash"]}))
    result = CliRunner().invoke(main, ["block", "inspect", "--from", str(path)])
    assert result.exit_code == 1
    assert "differs" in result.output


def test_block_inspect_exits_non_zero_on_a_malformed_seal(tmp_path):
    blk = next(b for b in BLOCKS if "expected_committers" in b)
    extra = blk["header"]["extraData"]
    broken = extra[:-2] + "1b"  # recId 27: not a Besu seal
    path = tmp_path / "block.json"
    path.write_text(json.dumps({**blk["header"], "extraData": broken}))
    result = CliRunner().invoke(main, ["block", "inspect", "--from", str(path)])
    assert result.exit_code != 0
    assert "recId" in result.output


def test_console_scripts_are_installed_and_answer_help():
    bindir = Path(sys.executable).parent
    for script in ("smartta", "smartta-observer"):
        out = subprocess.run([str(bindir / script), "--help"], capture_output=True, text=True,
                             check=True).stdout
        assert "Usage" in out
