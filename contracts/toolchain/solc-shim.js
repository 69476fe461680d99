#!/usr/bin/env node
// A solc command-line stand-in around the npm `solc` (solc-js) compiler, for py-solc-x and
// ape-solidity, which only ever call `--version` and `--standard-json [--base-path DIR]`.
// The stock `solcjs` CLI cannot stand in: it prints a notice before the JSON and, by calling
// process.exit() right after writing, truncates large outputs on a pipe.
"use strict";

const fs = require("fs");
const path = require("path");

function solcModule() {
  const where = process.env.SOLCJS_MODULE;
  if (where) return require(where);
  // The project's node_modules, two levels up from contracts/toolchain/.
  return require(path.resolve(__dirname, "..", "..", "node_modules", "solc"));
}

function usage(message) {
  process.stderr.write(
    `${message}\nThis solc is a shim around npm solc-js (contracts/toolchain/solc-shim.js); ` +
      "it supports only --version and --standard-json [--base-path DIR] [--include-path DIR] " +
      "[--allow-paths DIRS]. Install a native solc for anything else.\n"
  );
  process.exitCode = 2;
}

function main(argv) {
  if (argv.includes("--version")) {
    const solc = solcModule();
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return;
  }
  if (argv.includes("--help")) {
    usage("Usage: solc --standard-json [--base-path DIR] < input.json");
    process.exitCode = 0;
    return;
  }
  if (!argv.includes("--standard-json")) {
    usage(`unsupported arguments: ${argv.join(" ") || "(none)"}`);
    return;
  }
  const roots = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--base-path" || flag === "--include-path") {
      roots.push(argv[++i]);
    } else if (flag === "--allow-paths") {
      roots.push(...argv[++i].split(","));
    } else if (flag !== "--standard-json" && flag !== "-") {
      usage(`unsupported argument: ${flag}`);
      return;
    }
  }
  roots.push(process.cwd(), path.resolve(__dirname, "..", "..", "node_modules"));

  // ape inlines every source, so the callback only serves imports it did not foresee.
  function findImports(importPath) {
    for (const root of roots) {
      const candidate = path.resolve(root, importPath);
      if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(", ")})` };
  }

  const input = fs.readFileSync(0, "utf8");
  const solc = solcModule();
  const output = solc.compile(input, { import: findImports });
  // Set exitCode and let Node drain stdout itself: process.exit() would cut a piped output.
  process.stdout.write(output);
  process.exitCode = 0;
}

main(process.argv.slice(2));
