//! Stock Cosmos clients against a real 4-validator network: the standard query paths answer in
//! protobuf and agree with Ferry's own JSON paths; a transaction built with cosmrs the way any
//! Cosmos wallet builds it (the SDK's `MsgSend`, no `ChainBinding`) is accepted, and one signed
//! for another chain id is refused; `Simulate` says the fee needed and changes nothing; and
//! cosmjs from npm reads, simulates and sends (devnet/tests/cosmjs/wallet.cjs).
//!
//! One network serves every part (they run in sequence inside one test) to keep `make test` short.

mod common;

use std::process::Stdio;

use common::{TestResult, WAIT, balance, serial, start_funded_network};
use cosmrs::proto::cosmos::auth::v1beta1::{BaseAccount, QueryAccountRequest, QueryAccountResponse};
use cosmrs::proto::cosmos::bank::v1beta1::{
    QueryAllBalancesRequest, QueryAllBalancesResponse, QueryBalanceRequest, QueryBalanceResponse,
    QueryDenomMetadataRequest, QueryDenomMetadataResponse, QuerySupplyOfRequest, QuerySupplyOfResponse,
    QueryTotalSupplyRequest, QueryTotalSupplyResponse,
};
use cosmrs::proto::cosmos::tx::v1beta1::{SimulateRequest, SimulateResponse, TxRaw};
use cosmrs::tx::{Body, Fee, ModeInfo, Msg as _, SignDoc, SignMode, SignerInfo};
use ferry_client::FerryClient;
use ferry_devnet::accounts::user_key;
use ferry_types::cosmos_api::{
    ACCOUNT_PATH, ALL_BALANCES_PATH, BALANCE_PATH, DENOM_METADATA_PATH, FEE_NEEDED_AMOUNT, FEE_NEEDED_EVENT,
    GAS_PER_TX, SIMULATE_PATH, SUPPLY_OF_PATH, TOTAL_SUPPLY_PATH, min_gas_price,
};
use ferry_types::query::{QUERY_BAD_REQUEST, QUERY_NOT_FOUND, RESERVES_PATH, ReservesView};
use ferry_types::{Address, Denom, TxCode};
use prost::Message;
use tendermint_rpc::Client;

/// A standard query: `request` encoded to `path`, the answer decoded as `T`.
async fn standard<T: Message + Default>(client: &FerryClient, path: &str, request: impl Message) -> TestResult<T> {
    let answer = client.rpc().abci_query(Some(path.to_owned()), request.encode_to_vec(), None, false).await?;
    if answer.code.value() != 0 {
        return Err(format!("{path}: code {}: {}", answer.code.value(), answer.log).into());
    }
    Ok(T::decode(answer.value.as_slice())?)
}

/// The code and log of a standard query that is meant to fail.
async fn standard_failure(client: &FerryClient, path: &str, request: impl Message) -> TestResult<(u32, String)> {
    let answer = client.rpc().abci_query(Some(path.to_owned()), request.encode_to_vec(), None, false).await?;
    Ok((answer.code.value(), answer.log))
}

/// The secret of devnet user `index` (devnet keys are `SHA256(seed)`; see `accounts::user_key`).
fn user_secret(index: usize) -> [u8; 32] {
    ferry_types::key::sha256(format!("ferry-devnet/user/{index}").as_bytes())
}

/// A stock wallet's transfer of `amount` sat, built with cosmrs alone: the SDK's `MsgSend`, a
/// fee of `fee` sat, SIGN_MODE_DIRECT for `chain_id`, no extension.
struct StockWallet {
    key: cosmrs::crypto::secp256k1::SigningKey,
    address: cosmrs::AccountId,
}

impl StockWallet {
    fn new(secret: &[u8; 32]) -> TestResult<Self> {
        let key = cosmrs::crypto::secp256k1::SigningKey::from_slice(secret)?;
        let address = key.public_key().account_id(ferry_types::BECH32_PREFIX)?;
        Ok(StockWallet { key, address })
    }

    fn body(&self, to: &Address, amount: u128) -> TestResult<Body> {
        let send = cosmrs::bank::MsgSend {
            from_address: self.address.clone(),
            to_address: to.to_string().parse()?,
            amount: vec![cosmrs::Coin { denom: "sat".parse()?, amount }],
        };
        Ok(Body::new(vec![send.to_any()?], "stock wallet", 0u32))
    }

    fn transfer(
        &self,
        to: &Address,
        amount: u128,
        fee: u128,
        (chain_id, account_number, sequence): (&str, u64, u64),
    ) -> TestResult<Vec<u8>> {
        let fee = Fee::from_amount_and_gas(cosmrs::Coin { denom: "sat".parse()?, amount: fee }, 200_000u64);
        let auth_info = SignerInfo::single_direct(Some(self.key.public_key()), sequence).auth_info(fee);
        let doc = SignDoc::new(&self.body(to, amount)?, &auth_info, &chain_id.parse()?, account_number)?;
        Ok(doc.sign(&self.key)?.to_bytes()?)
    }

    /// The unsigned form wallets send to `Simulate`: no fee, SIGN_MODE_UNSPECIFIED, an empty
    /// signature.
    fn unsigned_transfer(&self, to: &Address, amount: u128, sequence: u64) -> TestResult<Vec<u8>> {
        let signer = SignerInfo {
            public_key: Some(self.key.public_key().into()),
            mode_info: ModeInfo::single(SignMode::Unspecified),
            sequence,
        };
        let fee = Fee { amount: Vec::new(), gas_limit: 0, payer: None, granter: None };
        let raw = TxRaw {
            body_bytes: self.body(to, amount)?.into_bytes()?,
            auth_info_bytes: signer.auth_info(fee).into_bytes()?,
            signatures: vec![Vec::new()],
        };
        Ok(raw.encode_to_vec())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_cosmos_clients_read_simulate_and_send() -> TestResult {
    let _serial = serial().await;
    let network = start_funded_network("cosmos-wallet").await?;
    let client = network.client(0)?;
    let chain_id = network.spec().chain_id.clone();
    let sat = Denom::sat();
    let alice = user_key(0)?.address();
    let bob = user_key(1)?.address();

    // --- The standard queries agree with Ferry's own paths.
    let view = client.account(&alice, None).await?.ok_or("alice has no account")?;
    let response: QueryAccountResponse =
        standard(&client, ACCOUNT_PATH, QueryAccountRequest { address: alice.to_string() }).await?;
    let any = response.account.ok_or("no account in the answer")?;
    assert_eq!(any.type_url, "/cosmos.auth.v1beta1.BaseAccount");
    let base = BaseAccount::decode(any.value.as_slice())?;
    assert_eq!(
        (base.address.as_str(), base.account_number, base.sequence),
        (alice.to_string().as_str(), view.account_number, view.sequence)
    );
    let stranger = Address::from_bytes([0x5e; 20]);
    let (code, log) =
        standard_failure(&client, ACCOUNT_PATH, QueryAccountRequest { address: stranger.to_string() }).await?;
    assert_eq!(code, QUERY_NOT_FOUND, "{log}");
    assert!(log.contains("rpc error: code = NotFound"), "{log}");
    let (code, log) = standard_failure(
        &client,
        BALANCE_PATH,
        QueryBalanceRequest { address: "ferry1nonsense".into(), denom: "sat".into() },
    )
    .await?;
    assert_eq!(code, QUERY_BAD_REQUEST, "{log}");
    assert!(log.contains("ferry1nonsense"), "{log}");

    let alice_sat = balance(&client, &alice, &sat).await?;
    let one: QueryBalanceResponse =
        standard(&client, BALANCE_PATH, QueryBalanceRequest { address: alice.to_string(), denom: "sat".into() })
            .await?;
    assert_eq!(one.balance.map(|coin| coin.amount), Some(alice_sat.to_string()));
    let all: QueryAllBalancesResponse = standard(
        &client,
        ALL_BALANCES_PATH,
        QueryAllBalancesRequest { address: alice.to_string(), ..Default::default() },
    )
    .await?;
    let ferry_view = client.balances(&alice, None).await?;
    let all_pairs: Vec<(String, String)> = all.balances.into_iter().map(|coin| (coin.denom, coin.amount)).collect();
    let ferry_pairs: Vec<(String, String)> =
        ferry_view.balances.iter().map(|coin| (coin.denom.to_string(), coin.amount.to_string())).collect();
    assert_eq!(all_pairs, ferry_pairs);

    let reserves: ReservesView = client.query(RESERVES_PATH, None).await?.ok_or("no reserves")?;
    let ledger_supply = |denom: &str| {
        reserves.assets.iter().find(|(known, _)| known.as_str() == denom).map(|(_, ledger)| ledger.supply.to_string())
    };
    let supply: QuerySupplyOfResponse =
        standard(&client, SUPPLY_OF_PATH, QuerySupplyOfRequest { denom: "sat".into() }).await?;
    assert_eq!(supply.amount.map(|coin| coin.amount), ledger_supply("sat"));
    let total: QueryTotalSupplyResponse =
        standard(&client, TOTAL_SUPPLY_PATH, QueryTotalSupplyRequest::default()).await?;
    assert!(total.supply.iter().any(|coin| coin.denom == "wei" && Some(coin.amount.clone()) == ledger_supply("wei")));
    let metadata: QueryDenomMetadataResponse =
        standard(&client, DENOM_METADATA_PATH, QueryDenomMetadataRequest { denom: "wei".into() }).await?;
    let metadata = metadata.metadata.ok_or("no metadata")?;
    assert_eq!((metadata.base.as_str(), metadata.display.as_str(), metadata.symbol.as_str()), ("wei", "eth", "fETH"));

    // --- A transaction built with cosmrs, no ChainBinding.
    let wallet = StockWallet::new(&user_secret(0))?;
    assert_eq!(wallet.address.to_string(), alice.to_string(), "cosmrs derives the same address");
    let this_chain = (chain_id.as_str(), view.account_number, view.sequence);

    // Signed for another chain id: without the extension only the signature can tell, and it does.
    let foreign = wallet.transfer(&bob, 5_000, 200, ("cosmoshub-4", view.account_number, view.sequence))?;
    let refused = client.broadcast_sync(foreign).await?;
    assert_eq!(refused.code, TxCode::InvalidSignature.value(), "{}", refused.log);
    assert!(refused.log.contains(&chain_id), "{}", refused.log);

    // Simulate: the fee needed, and no change of state.
    let height_before = client.rpc().latest_block().await?.block.header.height.value();
    let unsigned = wallet.unsigned_transfer(&bob, 5_000, view.sequence)?;
    let simulated: SimulateResponse =
        standard(&client, SIMULATE_PATH, SimulateRequest { tx_bytes: unsigned.clone(), ..Default::default() }).await?;
    let gas = simulated.gas_info.ok_or("no gas info")?;
    assert_eq!(gas.gas_used, GAS_PER_TX);
    let events = simulated.result.ok_or("no result")?.events;
    let fee_needed = events
        .iter()
        .find(|event| event.r#type == FEE_NEEDED_EVENT)
        .and_then(|event| event.attributes.iter().find(|attribute| attribute.key == FEE_NEEDED_AMOUNT))
        .map(|attribute| attribute.value.clone());
    let params = client.params().await?;
    let min_fee = params.min_fee(&sat).ok_or("sat pays no fee")?;
    assert_eq!(fee_needed, Some(format!("{min_fee}sat")));
    assert!(events.iter().any(|event| event.r#type == ferry_types::event::TRANSFER), "{events:?}");
    assert_eq!(min_gas_price(min_fee), "0.001", "the gas price the cosmjs part uses");
    // Too much: the simulation names why it would fail.
    let greedy = wallet.unsigned_transfer(&bob, alice_sat, view.sequence)?;
    let (code, log) =
        standard_failure(&client, SIMULATE_PATH, SimulateRequest { tx_bytes: greedy, ..Default::default() }).await?;
    assert_eq!(code, QUERY_BAD_REQUEST, "{log}");
    assert!(log.contains(&format!("code {}", TxCode::InsufficientFunds.value())), "{log}");
    // An unsigned transaction is refused by CheckTx.
    assert_eq!(client.broadcast_sync(unsigned).await?.code, TxCode::InvalidSignature.value());
    network.wait_for_height(height_before + 2, WAIT).await?;
    let after = client.account(&alice, None).await?.ok_or("alice vanished")?;
    assert_eq!(after.sequence, view.sequence, "simulation or refusals advanced the sequence");
    assert_eq!(balance(&client, &alice, &sat).await?, alice_sat, "simulation moved coins");

    // Signed for this chain: accepted and executed.
    let bob_sat = balance(&client, &bob, &sat).await?;
    let fee = min_fee.get();
    let checked = client.broadcast_sync(wallet.transfer(&bob, 5_000, fee, this_chain)?).await?;
    assert_eq!(checked.code, 0, "{}", checked.log);
    let included = client.wait_for_tx(checked.hash, WAIT).await?;
    assert_eq!(included.code, 0, "{}", included.log);
    network.wait_for_height(included.height, WAIT).await?;
    assert_eq!(balance(&client, &alice, &sat).await?, alice_sat - 5_000 - fee);
    assert_eq!(balance(&client, &bob, &sat).await?, bob_sat + 5_000);

    // --- cosmjs from npm: StargateClient reads, SigningStargateClient sends.
    let carol = user_key(2)?.address();
    let carol_before = balance(&client, &carol, &sat).await?;
    let sender_before = balance(&client, &bob, &sat).await?;
    let script = ferry_devnet::tools::repo_root().join("devnet/tests/cosmjs/wallet.cjs");
    let node_modules = ferry_devnet::tools::repo_root().join(".tools/npm/node_modules");
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .env("NODE_PATH", &node_modules)
        .env("FERRY_RPC", network.validators()[1].rpc_url())
        .env("FERRY_CHAIN_ID", &chain_id)
        .env("FERRY_SENDER_SECRET", hex::encode(user_secret(1)))
        .env("FERRY_RECIPIENT", carol.to_string())
        .env("FERRY_UNKNOWN_ACCOUNT", stranger.to_string())
        .env("FERRY_MIN_GAS_PRICE", min_gas_price(min_fee))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cosmjs test failed ({}):\n{stdout}\n{stderr}", output.status);
    let outcome: serde_json::Value = serde_json::from_str(stdout.trim())?;
    // Ferry's own view of the same balances.
    let recipient_after = balance(&client, &carol, &sat).await?;
    let sender_after = balance(&client, &bob, &sat).await?;
    assert_eq!(recipient_after, carol_before + 12_345 + 1_000, "{outcome}");
    let auto_fee: u128 = outcome["auto_fee_sat"].as_str().ok_or("no auto fee")?.parse()?;
    assert_eq!(sender_after, sender_before - 12_345 - 1_000 - 200 - auto_fee, "{outcome}");
    assert_eq!(outcome["recipient_sat"]["after"].as_str(), Some(recipient_after.to_string().as_str()));
    Ok(())
}
