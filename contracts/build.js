#!/usr/bin/env node
// Compile every Solidity source under contracts/ with the project's pinned solcjs and write the
// artifacts to contracts/out/.
//
//   node contracts/build.js           compile and (re)write contracts/out/
//   node contracts/build.js --check   compile in memory; exit 1 naming every artifact in
//                                     contracts/out/ that is missing, differs or is left over
//
// solc comes from .tools/npm/node_modules/solc (installed by deploy/setup.sh, pinned by
// SOLC_VERSION in deploy/versions.env); nothing else is required. Output is deterministic:
// sources are compiled under their paths relative to contracts/ (part of the metadata hash that
// ends the bytecode), in sorted order, and artifacts are written with a fixed key order, two-space
// indentation and a trailing newline. Warnings fail the build like errors.
//
// For each contract with bytecode (interfaces and abstract contracts are skipped):
//   out/<Name>.json      { contractName, abi, bytecode, deployedBytecode, immutableReferences,
//                          compiler, settings }
//   out/<Name>.abi.json  the ABI alone
// immutableReferences (solc's evm.deployedBytecode.immutableReferences: AST id -> [{start,
// length}] byte ranges) marks where the constructor writes immutables into the runtime code;
// deployedBytecode holds zeros there, so code read from a chain equals it outside those ranges.
"use strict";

const fs = require("fs");
const path = require("path");

const contractsDir = __dirname;
const repoRoot = path.resolve(contractsDir, "..");
const outDir = path.join(contractsDir, "out");
const rel = (p) => path.relative(repoRoot, p).split(path.sep).join("/");

// The EVM version compiled for: Prague (supported by solc 0.8.37 and by anvil 1.7.1, which the
// smoke test runs with `--hardfork prague`). Also the first fork with the EIP-2537 BLS12-381
// precompiles that FerryVault.release will use.
const SETTINGS = {
  evmVersion: "prague",
  optimizer: { enabled: true, runs: 200 },
};

function fail(msg) {
  process.stderr.write(`build.js: ${msg}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = { check: false };
  for (const a of argv) {
    if (a === "--check") args.check = true;
    else if (a === "-h" || a === "--help") {
      process.stdout.write("usage: node contracts/build.js [--check]\n");
      process.exit(0);
    } else {
      process.stderr.write(`build.js: unknown argument ${JSON.stringify(a)}\nusage: node contracts/build.js [--check]\n`);
      process.exit(2);
    }
  }
  return args;
}

function loadSolc() {
  const solcPath = path.join(repoRoot, ".tools/npm/node_modules/solc");
  let solc;
  try {
    solc = require(solcPath);
  } catch (e) {
    fail(`cannot load solc from ${rel(solcPath)} (${e.message}); run \`bash deploy/setup.sh\` first`);
  }
  const envFile = path.join(repoRoot, "deploy/versions.env");
  const pinned = /^SOLC_VERSION=(\S+)\s*$/m.exec(fs.readFileSync(envFile, "utf8"));
  if (!pinned) fail(`SOLC_VERSION is not set in ${rel(envFile)}`);
  const version = solc.version(); // e.g. "0.8.37+commit.f401782d.Emscripten.clang"
  if (version.split("+")[0] !== pinned[1]) {
    fail(`solc ${version} is installed but ${rel(envFile)} pins ${pinned[1]}; run \`bash deploy/setup.sh\``);
  }
  return { solc, version };
}

// Source unit names: paths relative to contracts/, '/'-separated, in code-unit order.
function findSources() {
  const found = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name.startsWith(".") || entry.name === "node_modules" || full === outDir) continue;
        walk(full);
      } else if (entry.isFile() && entry.name.endsWith(".sol")) {
        found.push(path.relative(contractsDir, full).split(path.sep).join("/"));
      }
    }
  };
  walk(contractsDir);
  found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (found.length === 0) fail("no .sol files under contracts/");
  return found;
}

// "contracts/<file>:<line>:<col>" for a solc source location (offsets are UTF-8 byte offsets).
function locate(sources, loc) {
  if (!loc || !loc.file) return "contracts";
  const src = sources[loc.file];
  if (!src || loc.start < 0) return `contracts/${loc.file}`;
  const before = Buffer.from(src.content, "utf8").subarray(0, loc.start).toString("utf8");
  const lines = before.split("\n");
  return `contracts/${loc.file}:${lines.length}:${lines[lines.length - 1].length + 1}`;
}

// Recursively order object keys (arrays keep their order), so the ABI's layout never depends on
// how the compiler happened to emit it.
function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    const out = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys(value[k]);
    return out;
  }
  return value;
}

const render = (value) => JSON.stringify(value, null, 2) + "\n";

function compile(solc, version) {
  const names = findSources();
  const sources = {};
  for (const name of names) sources[name] = { content: fs.readFileSync(path.join(contractsDir, name), "utf8") };

  const input = {
    language: "Solidity",
    sources,
    settings: {
      ...SETTINGS,
      outputSelection: {
        "*": {
          "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences"],
        },
      },
    },
  };
  const findImports = (p) => ({ error: `import ${p} is not a source under contracts/` });
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

  const problems = (output.errors || []).filter((e) => e.severity !== "info");
  if (problems.length > 0) {
    const lines = problems.map((e) => {
      const kind = e.severity === "warning" ? "warning (treated as an error)" : `${e.type || "error"}`;
      return `${locate(sources, e.sourceLocation)}: ${kind}: ${e.message}`;
    });
    fail(`compilation failed:\n${lines.join("\n")}`);
  }

  // Artifact file name -> contents.
  const files = new Map();
  const origin = new Map();
  for (const name of names) {
    const contracts = (output.contracts || {})[name] || {};
    for (const contractName of Object.keys(contracts).sort()) {
      const c = contracts[contractName];
      const bytecode = c.evm.bytecode.object;
      if (!bytecode) continue; // interface or abstract contract: nothing to deploy
      if (origin.has(contractName)) {
        fail(`contract ${contractName} is defined in both contracts/${origin.get(contractName)} and contracts/${name}`);
      }
      origin.set(contractName, name);
      const abi = sortKeys(c.abi);
      const artifact = {
        contractName,
        abi,
        bytecode: "0x" + bytecode,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
        immutableReferences: sortKeys(c.evm.deployedBytecode.immutableReferences || {}),
        compiler: version,
        settings: sortKeys(SETTINGS),
      };
      files.set(`${contractName}.json`, render(artifact));
      files.set(`${contractName}.abi.json`, render(abi));
    }
  }
  return files;
}

function existingArtifacts() {
  if (!fs.existsSync(outDir)) return [];
  return fs
    .readdirSync(outDir)
    .filter((f) => f.endsWith(".json"))
    .sort();
}

function check(files) {
  const stale = [];
  for (const [file, text] of files) {
    const p = path.join(outDir, file);
    if (!fs.existsSync(p)) stale.push(`${rel(p)}: missing`);
    else if (fs.readFileSync(p, "utf8") !== text) stale.push(`${rel(p)}: differs from a fresh compile`);
  }
  for (const file of existingArtifacts()) {
    if (!files.has(file)) stale.push(`${rel(path.join(outDir, file))}: no contract produces it any more`);
  }
  if (stale.length > 0) {
    fail(`stale artifacts (run \`node contracts/build.js\` and commit contracts/out/):\n  ${stale.join("\n  ")}`);
  }
  process.stdout.write(`build.js: ${files.size} artifacts in ${rel(outDir)}/ match a fresh compile\n`);
}

function write(files) {
  fs.mkdirSync(outDir, { recursive: true });
  let changed = 0;
  for (const [file, text] of files) {
    const p = path.join(outDir, file);
    if (fs.existsSync(p) && fs.readFileSync(p, "utf8") === text) continue;
    fs.writeFileSync(p, text);
    changed++;
  }
  for (const file of existingArtifacts()) {
    if (!files.has(file)) {
      fs.unlinkSync(path.join(outDir, file));
      changed++;
    }
  }
  process.stdout.write(`build.js: ${files.size} artifacts in ${rel(outDir)}/ (${changed} updated)\n`);
}

const args = parseArgs(process.argv.slice(2));
const { solc, version } = loadSolc();
const files = compile(solc, version);
if (args.check) check(files);
else write(files);
