// A stock Cosmos client against a running Ferry network: cosmjs (@cosmjs/stargate and
// @cosmjs/proto-signing, pinned in deploy/versions.env, installed by `make setup` into
// .tools/npm) reads the account and balances through StargateClient, simulates, and sends two
// standard /cosmos.bank.v1beta1.MsgSend transfers with SigningStargateClient: one with an
// explicit fee in sat, one with the fee cosmjs computes from Simulate ("auto").
//
// Run by devnet/tests/cosmos_wallet_e2e.rs, which starts the network and checks the outcome on
// Ferry's own query paths too. Input (environment): FERRY_RPC, FERRY_CHAIN_ID,
// FERRY_SENDER_SECRET (32 bytes hex, a funded account), FERRY_RECIPIENT (bech32),
// FERRY_UNKNOWN_ACCOUNT (bech32, an account the chain has never seen), FERRY_MIN_GAS_PRICE (the sat gas price, e.g. "0.001"). Output: one JSON line on stdout.
// Any mismatch throws: the process exits non-zero with the reason on stderr.
"use strict";

const { StargateClient, SigningStargateClient, GasPrice, calculateFee } = require("@cosmjs/stargate");
const { DirectSecp256k1Wallet } = require("@cosmjs/proto-signing");
const { fromHex } = require("@cosmjs/encoding");

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

const SAT = "sat";
const SEND_TYPE_URL = "/cosmos.bank.v1beta1.MsgSend";

async function satOf(client, address) {
  return BigInt((await client.getBalance(address, SAT)).amount);
}

async function main() {
  const rpc = need("FERRY_RPC");
  const chainId = need("FERRY_CHAIN_ID");
  const recipient = need("FERRY_RECIPIENT");
  const gasPrice = GasPrice.fromString(`${need("FERRY_MIN_GAS_PRICE")}${SAT}`);
  const wallet = await DirectSecp256k1Wallet.fromKey(fromHex(need("FERRY_SENDER_SECRET")), "ferry");
  const [{ address: sender }] = await wallet.getAccounts();

  // Reads, as any wallet does first.
  const reader = await StargateClient.connect(rpc);
  check((await reader.getChainId()) === chainId, `chain id ${await reader.getChainId()} is ${chainId}`);
  const account = await reader.getAccount(sender);
  check(account !== null && account.address === sender, `account ${sender} is found`);
  check(typeof account.accountNumber === "bigint" && Number.isInteger(account.sequence), "account number and sequence");
  const stranger = need("FERRY_UNKNOWN_ACCOUNT");
  check((await reader.getAccount(stranger)) === null, "an unknown account reads as null");
  const senderBefore = await satOf(reader, sender);
  const recipientBefore = await satOf(reader, recipient);
  const all = await reader.getAllBalances(sender);
  check(all.some((coin) => coin.denom === SAT && BigInt(coin.amount) === senderBefore), "getAllBalances lists the sat balance");
  check(senderBefore > 100000n, `sender holds sat (${senderBefore})`);
  const queries = reader.forceGetQueryClient();
  const metadata = await queries.bank.denomMetadata(SAT);
  check(metadata.display === "btc" && metadata.denomUnits.some((u) => u.denom === "btc" && u.exponent === 8), "sat displays as btc");
  const supply = await queries.bank.supplyOf(SAT);
  check(BigInt(supply.amount) >= senderBefore, "the sat supply covers the sender's balance");

  // Sign and broadcast.
  const signer = await SigningStargateClient.connectWithSigner(rpc, wallet, { gasPrice });
  const send = (amount) => ({
    typeUrl: SEND_TYPE_URL,
    value: { fromAddress: sender, toAddress: recipient, amount: [{ denom: SAT, amount: amount.toString() }] },
  });
  const simulatedGas = await signer.simulate(sender, [send(12345n)], "");
  check(simulatedGas > 0, `simulate reports gas (${simulatedGas})`);
  check((await satOf(reader, sender)) === senderBefore, "simulate changed no balance");

  const explicitFee = { amount: [{ denom: SAT, amount: "200" }], gas: "200000" };
  const first = await signer.signAndBroadcast(sender, [send(12345n)], explicitFee, "cosmjs: explicit fee");
  check(first.code === 0, `explicit-fee transfer committed with code 0 (code ${first.code}: ${first.rawLog})`);

  // "auto": cosmjs simulates and pays gas_used × 1.4 at the gas price.
  const autoFee = calculateFee(Math.round(simulatedGas * 1.4), gasPrice);
  const second = await signer.sendTokens(sender, recipient, [{ denom: SAT, amount: "1000" }], "auto", "cosmjs: auto fee");
  check(second.code === 0, `auto-fee transfer committed with code 0 (code ${second.code}: ${second.rawLog})`);

  const paid = 200n + BigInt(autoFee.amount[0].amount);
  const senderAfter = await satOf(reader, sender);
  const recipientAfter = await satOf(reader, recipient);
  check(senderAfter === senderBefore - 12345n - 1000n - paid, `sender ${senderBefore} → ${senderAfter}, paid ${paid} in fees`);
  check(recipientAfter === recipientBefore + 12345n + 1000n, `recipient ${recipientBefore} → ${recipientAfter}`);
  const signed = await reader.getAccount(sender);
  check(signed.sequence === account.sequence + 2, "the sequence advanced by two");
  check(signed.pubkey !== null && signed.pubkey.type === "tendermint/PubKeySecp256k1", "the account's public key is known once it signed");

  console.log(
    JSON.stringify({
      sender,
      recipient,
      simulated_gas: simulatedGas,
      auto_fee_sat: autoFee.amount[0].amount,
      heights: [first.height, second.height],
      sender_sat: { before: senderBefore.toString(), after: senderAfter.toString() },
      recipient_sat: { before: recipientBefore.toString(), after: recipientAfter.toString() },
    }),
  );
  reader.disconnect();
  signer.disconnect();
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});
