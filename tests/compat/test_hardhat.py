"""A Hardhat test run (mocha + ethers v6 through hardhat-ethers) pointed at the node: deploy,
transact, events, a revert reason, fee data, and the dev controls Hardhat suites rely on
(evm_snapshot/evm_revert, evm_increaseTime, evm_mine, hardhat_mine).

Hardhat is installed from npm into a temporary directory when the test starts (about 40 s and
300 MB), never into the repository; hence ``slow``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PACKAGES = ["hardhat@2.29.1", "@nomicfoundation/hardhat-ethers@3.1.3", "ethers@6.17.0", "chai@4.5.0"]

TEST_JS = textwrap.dedent("""
    const { expect } = require("chai");
    const { ethers, network } = require("hardhat");
    const artifact = require("../Recorder.json");

    describe("Recorder on a SMART-TA node", function () {
      let owner, recorder;

      before(async function () {
        [owner] = await ethers.getSigners();
        const factory = new ethers.ContractFactory(artifact.abi, artifact.bytecode, owner);
        recorder = await factory.deploy();
        await recorder.waitForDeployment();
      });

      it("transacts, calls and reads events", async function () {
        const receipt = await (await recorder.record("from hardhat")).wait();
        expect(receipt.status).to.equal(1);
        expect(await recorder.count()).to.equal(1n);
        expect(await recorder.lastNote(owner.address)).to.equal("from hardhat");
        const events = await recorder.queryFilter(recorder.filters.Recorded(), receipt.blockNumber);
        expect(events.map((e) => e.args.note)).to.deep.equal(["from hardhat"]);
        const block = await ethers.provider.getBlock(receipt.blockNumber, true);
        expect(block.hash).to.equal(receipt.blockHash);
      });

      it("surfaces the revert reason", async function () {
        let message = "";
        try {
          await recorder.refuse();
        } catch (err) {
          message = String(err.reason || err.message);
        }
        expect(message).to.contain("not allowed");
      });

      it("reads fee data on a free-gas network", async function () {
        const fees = await ethers.provider.getFeeData();
        expect(fees.gasPrice).to.equal(0n);
      });

      it("snapshots, moves time, mines and reverts", async function () {
        const snapshot = await network.provider.send("evm_snapshot", []);
        const start = await ethers.provider.getBlock("latest");
        await network.provider.send("evm_increaseTime", [3600]);
        await network.provider.send("evm_mine", []);
        const later = await ethers.provider.getBlock("latest");
        expect(later.number).to.equal(start.number + 1);
        // the node's clock moved an hour ahead of the wall clock
        expect(later.timestamp - Math.floor(Date.now() / 1000)).to.be.at.least(3590);
        await network.provider.send("hardhat_mine", ["0x3"]);
        expect(await ethers.provider.getBlockNumber()).to.equal(start.number + 4);
        await recorder.record("to be undone");
        expect(await recorder.count()).to.equal(2n);
        expect(await network.provider.send("evm_revert", [snapshot])).to.equal(true);
        expect(await ethers.provider.getBlockNumber()).to.equal(start.number);
        expect(await recorder.count()).to.equal(1n);
      });
    });
""")


def test_hardhat_test_suite_passes_against_the_node(devnet, recorder, tmp_path):
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    (tmp_path / "package.json").write_text(json.dumps({"name": "smartta-compat", "private": True}))
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES],
                   cwd=tmp_path, check=True, timeout=600)
    keys = [f"0x{key.hex()}" for _, key in devnet.accounts[:3]]
    (tmp_path / "hardhat.config.js").write_text(textwrap.dedent(f"""
        require("@nomicfoundation/hardhat-ethers");
        module.exports = {{
          networks: {{
            smartta: {{ url: "{devnet.url}", chainId: {devnet.chain_id}, accounts: {json.dumps(keys)} }},
          }},
          mocha: {{ timeout: 120000 }},
        }};
    """))
    (tmp_path / "Recorder.json").write_text(json.dumps(recorder))
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "recorder.test.js").write_text(TEST_JS)
    env = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true", "CI": "true"}
    out = subprocess.run([npm, "exec", "--", "hardhat", "test", "--network", "smartta", "--no-compile"],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "4 passing" in out.stdout
