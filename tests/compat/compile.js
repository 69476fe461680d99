// Compile the test contracts with the npm solc (standard JSON in, ABI and bytecode out).
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require(path.resolve(__dirname, "..", "..", "node_modules", "solc"));

const file = process.argv[2];
const input = {
  language: "Solidity",
  sources: { [path.basename(file)]: { content: fs.readFileSync(file, "utf8") } },
  settings: { evmVersion: "cancun", optimizer: { enabled: true, runs: 200 },
              outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  process.stderr.write(errors.map((e) => e.formattedMessage).join("\n"));
  process.exit(1);
}
const contracts = {};
for (const [, byName] of Object.entries(out.contracts)) {
  for (const [name, c] of Object.entries(byName)) {
    contracts[name] = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
  }
}
fs.writeSync(1, JSON.stringify(contracts));
