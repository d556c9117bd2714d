#!/usr/bin/env node
// Smoke test of FerryVault's deposit side against a running anvil (see contracts/smoke.sh, which
// starts one and calls `node contracts/smoke.js <rpc-url>`).
//
// Uses nothing but Node's built-in fetch and Ethereum JSON-RPC: transactions are sent with
// eth_sendTransaction from anvil's unlocked dev account 0, keccak-256 comes from the node's
// web3_sha3, and ABI encoding and log decoding are done by hand, so this file doubles as a
// reference for the Rust end-to-end tests:
//
//   Deposited(uint256 indexed nonce, address indexed token, address indexed from,
//             bytes20 recipient, uint256 amount)
//   topics = [keccak256("Deposited(uint256,address,address,bytes20,uint256)"),
//             nonce (32-byte big-endian), token (address, left-padded), from (address, left-padded)]
//   data   = recipient (20 bytes, right-padded to 32) ‖ amount (32-byte big-endian)
"use strict";

const fs = require("fs");
const path = require("path");

const RPC = process.argv[2];
if (!RPC) {
  process.stderr.write("usage: node contracts/smoke.js <rpc-url>\n");
  process.exit(2);
}
const OUT = path.join(__dirname, "out");
const DEV0 = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"; // anvil dev account 0 (unlocked)
const ZERO_ADDRESS = "0x" + "00".repeat(20);
const ONE_ETH = 10n ** 18n;
const REVERT_GAS = "0x200000"; // explicit gas, so a reverting transaction is mined instead of refused

// --- JSON-RPC -----------------------------------------------------------------------------------

let rpcId = 0;
class RpcError extends Error {
  constructor(method, error) {
    super(`${method}: ${error.message} (code ${error.code})`);
    this.code = error.code;
    // Revert data: a hex string in `data` (anvil), sometimes nested as `data.data`.
    const d = error.data;
    this.revertData = typeof d === "string" ? d : d && typeof d.data === "string" ? d.data : null;
  }
}

async function rpc(method, params = []) {
  const res = await fetch(RPC, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcId, method, params }),
  });
  if (!res.ok) throw new Error(`${method}: HTTP ${res.status}`);
  const body = await res.json();
  if (body.error) throw new RpcError(method, body.error);
  return body.result;
}

async function keccak(text) {
  return rpc("web3_sha3", ["0x" + Buffer.from(text, "utf8").toString("hex")]);
}
const selectorCache = new Map();
async function selector(signature) {
  if (!selectorCache.has(signature)) selectorCache.set(signature, (await keccak(signature)).slice(0, 10));
  return selectorCache.get(signature);
}

// --- ABI encoding (static types, plus strings for the TestToken constructor) -------------------

const strip = (hex) => (hex.startsWith("0x") ? hex.slice(2) : hex).toLowerCase();
const uint = (n) => BigInt(n).toString(16).padStart(64, "0");
const address = (a) => strip(a).padStart(64, "0");
const bytes20 = (b) => strip(b).padEnd(64, "0"); // fixed-size bytes are left-aligned
function encodeString(s) {
  const hex = Buffer.from(s, "utf8").toString("hex");
  return uint(hex.length / 2) + hex.padEnd(Math.ceil(hex.length / 64) * 64, "0");
}
// Encode a tuple of already-encoded words; `{dynamic: tail}` entries go to the tail.
function encodeTuple(parts) {
  let head = "";
  let tail = "";
  const headSize = parts.length * 32;
  for (const p of parts) {
    if (typeof p === "string") head += p;
    else {
      head += uint(headSize + tail.length / 2);
      tail += p.dynamic;
    }
  }
  return head + tail;
}
async function calldata(signature, ...words) {
  return (await selector(signature)) + words.join("");
}

// --- transactions -------------------------------------------------------------------------------

async function receiptOf(hash) {
  for (let i = 0; i < 100; i++) {
    const r = await rpc("eth_getTransactionReceipt", [hash]);
    if (r) return r;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  throw new Error(`no receipt for ${hash}`);
}

async function send(tx) {
  const hash = await rpc("eth_sendTransaction", [{ from: DEV0, ...tx }]);
  const receipt = await receiptOf(hash);
  if (receipt.status !== "0x1") throw new Error(`transaction ${hash} reverted (status ${receipt.status})`);
  return receipt;
}

async function call(tx) {
  return rpc("eth_call", [{ from: DEV0, ...tx }, "latest"]);
}

// The runtime code with the byte ranges the constructor fills with immutables zeroed, as solc
// leaves them in deployedBytecode (ranges from the artifact's immutableReferences).
function maskImmutables(code, immutableReferences) {
  let hex = strip(code);
  for (const ranges of Object.values(immutableReferences || {})) {
    for (const { start, length } of ranges) {
      hex = hex.slice(0, 2 * start) + "00".repeat(length) + hex.slice(2 * (start + length));
    }
  }
  return hex;
}

async function deploy(name, ctorArgs = "") {
  const artifact = JSON.parse(fs.readFileSync(path.join(OUT, `${name}.json`), "utf8"));
  const receipt = await send({ data: artifact.bytecode + ctorArgs });
  // Exact comparison outside the immutables (FerryVault's federation key and epoch).
  const code = await rpc("eth_getCode", [receipt.contractAddress, "latest"]);
  if (maskImmutables(code, artifact.immutableReferences) !== strip(artifact.deployedBytecode)) {
    throw new Error(`${name}: code on chain differs from contracts/out/${name}.json deployedBytecode`);
  }
  console.log(`deployed ${name.padEnd(11)} at ${receipt.contractAddress} (gas ${BigInt(receipt.gasUsed)})`);
  return receipt.contractAddress;
}

// --- checks -------------------------------------------------------------------------------------

let checks = 0;
function expectEq(what, actual, expected) {
  const a = typeof actual === "string" ? actual.toLowerCase() : actual;
  const e = typeof expected === "string" ? expected.toLowerCase() : expected;
  if (a !== e) throw new Error(`${what}: expected ${expected}, got ${actual}`);
  checks++;
}

const word = (hex, i) => "0x" + strip(hex).slice(i * 64, (i + 1) * 64);
const wordAddress = (w) => "0x" + strip(w).slice(24);

// Decode the Deposited logs of a receipt (and insist there is exactly one).
function depositedLog(receipt, vault, topic0) {
  const logs = receipt.logs.filter((l) => l.address.toLowerCase() === vault.toLowerCase());
  expectEq("number of vault logs", logs.length, 1);
  const log = logs[0];
  expectEq("topic0", log.topics[0], topic0);
  expectEq("number of topics", log.topics.length, 4);
  expectEq("data length (bytes)", strip(log.data).length / 2, 64);
  const recipientWord = strip(word(log.data, 0));
  expectEq("recipient padding", recipientWord.slice(40), "0".repeat(24));
  return {
    nonce: BigInt(log.topics[1]),
    token: wordAddress(log.topics[2]),
    from: wordAddress(log.topics[3]),
    recipient: "0x" + recipientWord.slice(0, 40),
    amount: BigInt(word(log.data, 1)),
    logIndex: BigInt(log.logIndex),
  };
}

// Expect `tx` to revert with exactly `revertData` (a selector plus encoded arguments, or "0x" for
// a revert without data): first as eth_call, then mined with explicit gas (status 0, no logs).
async function expectRevert(what, tx, revertData) {
  try {
    await call(tx);
    throw new Error(`${what}: eth_call succeeded, expected a revert`);
  } catch (e) {
    if (!(e instanceof RpcError)) throw e;
    expectEq(`${what}: revert data`, e.revertData || "0x", revertData);
  }
  const hash = await rpc("eth_sendTransaction", [{ from: DEV0, gas: REVERT_GAS, ...tx }]);
  const receipt = await receiptOf(hash);
  expectEq(`${what}: mined status`, receipt.status, "0x0");
  expectEq(`${what}: logs`, receipt.logs.length, 0);
  console.log(`  reverts as expected: ${what} -> ${revertData === "0x" ? "(no data)" : revertData.slice(0, 10)}`);
}

async function readUint(to, signature, ...words) {
  return BigInt(await call({ to, data: await calldata(signature, ...words) }));
}

// --- the smoke test -----------------------------------------------------------------------------

async function main() {
  const accounts = await rpc("eth_accounts");
  expectEq("anvil dev account 0", accounts[0], DEV0);
  console.log(`anvil at ${RPC}, chain id ${BigInt(await rpc("eth_chainId"))}, ${await rpc("web3_clientVersion")}`);

  const topic0 = await keccak("Deposited(uint256,address,address,bytes20,uint256)");
  console.log(`topic0 = keccak256("Deposited(uint256,address,address,bytes20,uint256)") = ${topic0}`);

  const token = await deploy(
    "TestToken",
    encodeTuple([{ dynamic: encodeString("Ferry Test Dollar") }, { dynamic: encodeString("fUSD") }, uint(6)]),
  );
  // The deposit side does not use the federation key; the G1 generator (EIP-2537 encoding) is a
  // valid one. Its secret key is 1: never deploy a vault with it outside a throwaway chain.
  const G1_GENERATOR =
    "0".repeat(32) +
    "17f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb" +
    "0".repeat(32) +
    "08b3f481e3aaa0f1a09e30ed741d8ae4fcf5e095d5d00af600db18cb2c04b3edd03cc744a2888ae40caa232946c5e7e1";
  const quirky = await deploy("QuirkyToken");
  const unlisted = await deploy(
    "TestToken",
    encodeTuple([{ dynamic: encodeString("Unlisted") }, { dynamic: encodeString("NOPE") }, uint(6)]),
  );
  // Genesis tokens: the test token and the quirky one are listed; `unlisted` is not.
  const genesisTokens = { dynamic: uint(2) + address(token) + address(quirky) };
  // The vault's escapeDelay: 14 days, as parent-chains' VAULT_ESCAPE_DELAY_SECS (docs/exits.md).
  const ESCAPE_DELAY_SECS = 1_209_600;
  const vault = await deploy(
    "FerryVault",
    encodeTuple([{ dynamic: uint(128) + G1_GENERATOR }, uint(1), genesisTokens, uint(ESCAPE_DELAY_SECS)]),
  );
  expectEq("genesis token listed", await readUint(vault, "listed(address)", address(token)), 1n);
  expectEq("other token not listed", await readUint(vault, "listed(address)", address(unlisted)), 0n);
  expectEq("depositNonce before any deposit", await readUint(vault, "depositNonce()"), 0n);

  const err = async (sig, ...words) => calldata(sig, ...words);
  const recipient = "0x" + "a1".repeat(19) + "f0"; // a sidechain account id
  const recipient2 = "0x00112233445566778899aabbccddeeff00112233";

  // 1. ETH deposit.
  const ethReceipt = await send({ to: vault, value: "0x" + ONE_ETH.toString(16), data: await calldata("deposit(bytes20)", bytes20(recipient)) });
  const d1 = depositedLog(ethReceipt, vault, topic0);
  expectEq("ETH deposit nonce", d1.nonce, 1n);
  expectEq("ETH deposit token", d1.token, ZERO_ADDRESS);
  expectEq("ETH deposit from", d1.from, DEV0);
  expectEq("ETH deposit recipient", d1.recipient, recipient);
  expectEq("ETH deposit amount", d1.amount, ONE_ETH);
  expectEq("vault ETH balance", BigInt(await rpc("eth_getBalance", [vault, "latest"])), ONE_ETH);
  const depositGas = BigInt(ethReceipt.gasUsed);
  console.log(`deposit(bytes20) 1 ETH: nonce ${d1.nonce}, deposit id eth:${ethReceipt.transactionHash}:${d1.logIndex}, gas used ${depositGas}`);

  // 2. ERC-20 deposit: mint, approve, depositToken.
  const amount = 250n * 10n ** 6n;
  await send({ to: token, data: await calldata("mint(address,uint256)", address(DEV0), uint(1000n * 10n ** 6n)) });
  await send({ to: token, data: await calldata("approve(address,uint256)", address(vault), uint(amount)) });
  const tokenReceipt = await send({
    to: vault,
    data: await calldata("depositToken(address,uint256,bytes20)", address(token), uint(amount), bytes20(recipient2)),
  });
  const d2 = depositedLog(tokenReceipt, vault, topic0);
  expectEq("token deposit nonce", d2.nonce, 2n);
  expectEq("token deposit token", d2.token, token);
  expectEq("token deposit from", d2.from, DEV0);
  expectEq("token deposit recipient", d2.recipient, recipient2);
  expectEq("token deposit amount", d2.amount, amount);
  expectEq("vault token balance", await readUint(token, "balanceOf(address)", address(vault)), amount);
  expectEq("allowance spent", await readUint(token, "allowance(address,address)", address(DEV0), address(vault)), 0n);
  const depositTokenGas = BigInt(tokenReceipt.gasUsed);
  console.log(`depositToken(address,uint256,bytes20) 250 fUSD: nonce ${d2.nonce}, gas used ${depositTokenGas}`);

  // 3. Refusals (none may emit or move anything).
  await expectRevert("deposit with zero value", { to: vault, data: await calldata("deposit(bytes20)", bytes20(recipient)) }, await err("ZeroAmount()"));
  await expectRevert(
    "deposit to the zero recipient",
    { to: vault, value: "0x1", data: await calldata("deposit(bytes20)", bytes20(ZERO_ADDRESS)) },
    await err("ZeroRecipient()"),
  );
  await expectRevert("plain ETH transfer to the vault", { to: vault, value: "0x1" }, "0x");
  await expectRevert("ETH with unknown calldata", { to: vault, value: "0x1", data: "0xdeadbeef" }, "0x");
  await expectRevert(
    "depositToken with zero amount",
    { to: vault, data: await calldata("depositToken(address,uint256,bytes20)", address(token), uint(0), bytes20(recipient)) },
    await err("ZeroAmount()"),
  );
  await expectRevert(
    "depositToken to the zero recipient",
    { to: vault, data: await calldata("depositToken(address,uint256,bytes20)", address(token), uint(1), bytes20(ZERO_ADDRESS)) },
    await err("ZeroRecipient()"),
  );
  await expectRevert(
    "depositToken with the zero token",
    { to: vault, data: await calldata("depositToken(address,uint256,bytes20)", address(ZERO_ADDRESS), uint(1), bytes20(recipient)) },
    await err("ZeroToken()"),
  );
  await expectRevert(
    "depositToken of an account without code",
    { to: vault, data: await calldata("depositToken(address,uint256,bytes20)", address(accounts[1]), uint(1), bytes20(recipient)) },
    await err("TokenNotListed(address)", address(accounts[1])),
  );
  await send({ to: unlisted, data: await calldata("mint(address,uint256)", address(DEV0), uint(1000)) });
  await send({ to: unlisted, data: await calldata("approve(address,uint256)", address(vault), uint(1000)) });
  await expectRevert(
    "depositToken of a token the federation has not listed",
    { to: vault, data: await calldata("depositToken(address,uint256,bytes20)", address(unlisted), uint(1000), bytes20(recipient)) },
    await err("TokenNotListed(address)", address(unlisted)),
  );
  await expectRevert(
    "depositToken with ETH attached",
    { to: vault, value: "0x1", data: await calldata("depositToken(address,uint256,bytes20)", address(token), uint(1), bytes20(recipient)) },
    "0x",
  );
  await expectRevert(
    "depositToken beyond the allowance (token's reason passed on)",
    { to: vault, data: await calldata("depositToken(address,uint256,bytes20)", address(token), uint(1), bytes20(recipient)) },
    await err("InsufficientAllowance(address,address,uint256,uint256)", address(DEV0), address(vault), uint(0), uint(1)),
  );
  const tooMuch = 1n << 128n;
  await send({ to: token, data: await calldata("mint(address,uint256)", address(DEV0), uint(tooMuch)) });
  await send({ to: token, data: await calldata("approve(address,uint256)", address(vault), uint(tooMuch)) });
  await expectRevert(
    "depositToken of 2^128 (beyond the sidechain's u128)",
    { to: vault, data: await calldata("depositToken(address,uint256,bytes20)", address(token), uint(tooMuch), bytes20(recipient)) },
    await err("AmountTooLarge(uint256)", uint(tooMuch)),
  );

  // 4. Awkward tokens: no return value + 1% fee on transfer, then a token that re-enters.
  await send({ to: quirky, data: await calldata("mint(address,uint256)", address(DEV0), uint(10_000)) });
  await send({ to: quirky, data: await calldata("approve(address,uint256)", address(vault), uint(10_000)) });
  await send({ to: quirky, data: await calldata("setFee(uint256)", uint(100)) });
  const quirkyReceipt = await send({
    to: vault,
    data: await calldata("depositToken(address,uint256,bytes20)", address(quirky), uint(1000), bytes20(recipient)),
  });
  const d3 = depositedLog(quirkyReceipt, vault, topic0);
  expectEq("fee-on-transfer deposit nonce", d3.nonce, 3n);
  expectEq("fee-on-transfer deposit credits what arrived", d3.amount, 990n);
  expectEq("vault quirky balance", await readUint(quirky, "balanceOf(address)", address(vault)), 990n);
  console.log(`depositToken of a no-return-value, 1%-fee token: 1000 sent, ${d3.amount} credited, nonce ${d3.nonce}, gas used ${BigInt(quirkyReceipt.gasUsed)}`);
  await send({ to: quirky, data: await calldata("setReenter(address)", address(vault)) });
  await expectRevert(
    "depositToken whose token re-enters the vault",
    { to: vault, data: await calldata("depositToken(address,uint256,bytes20)", address(quirky), uint(1000), bytes20(recipient)) },
    await err("Reentrancy()"),
  );

  // 5. Nothing moved or counted by the refusals.
  expectEq("depositNonce after all", await readUint(vault, "depositNonce()"), 3n);
  expectEq("vault ETH balance after all", BigInt(await rpc("eth_getBalance", [vault, "latest"])), ONE_ETH);
  expectEq("vault token balance after all", await readUint(token, "balanceOf(address)", address(vault)), amount);

  console.log(`\nsmoke OK: ${checks} checks`);
  console.log(`gas used: deposit ${depositGas}, depositToken ${depositTokenGas}`);
}

main().catch((e) => {
  console.error(`smoke FAILED: ${e.message}`);
  process.exit(1);
});
