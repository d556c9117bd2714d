//! Release delivery end to end: a 4-validator network with the devnet federation
//! ([`accounts::federation_ceremony`]), anvil with a vault trusting it, btcd and PostgreSQL.
//! Withdrawals are batched and signed by members 0..3 (shares and signatures made here, as their
//! signers would); the relayers then carry each release to its parent chain, wait for its
//! confirmations, attest it, and the batch settles.
//!
//! Three tests drive the relayers' delivery loops in process, one poll at a time, so every step
//! is observed: an Ethereum release delivered once and attested by all; a Bitcoin release whose
//! block is reorganised away; two Ethereum wallets racing, then a reorg dropping the release.
//! The fourth runs the relayers as processes and kills them while a Bitcoin release goes out.
//! Every process is stopped when its handle drops, also when a test fails.

mod common;

use std::time::{Duration, Instant};

use bitcoin::{Amount as Sats, OutPoint, ScriptBuf, TxOut};
use common::{TestResult, WAIT, balance, serial, start_network, wait_for_balance};
use ferry_client::{FerryClient, Wallet as SideWallet};
use ferry_devnet::anvil::{Anvil, CHAIN_ID, DEV_PRIVATE_KEY, RELAYER_PRIVATE_KEYS, batch_address};
use ferry_devnet::btcd::{Btcd, RegtestWallet};
use ferry_devnet::postgres::{PgServer, ScratchDatabase};
use ferry_devnet::relayer::{RelayerProcess, RelayerSetup};
use ferry_devnet::system::TEST_BITCOIN_BUDGET;
use ferry_devnet::{Network, NetworkSpec, Tools, accounts};
use ferry_parent_chains::ethereum::vault::{VaultError, vault_error};
use ferry_parent_chains::ethereum::{EthAddress, EthereumError, TransactionState, U256, Wallet};
use ferry_relayer::attest::{AttestOutcome, Attester};
use ferry_relayer::confirmations::ConfirmationPolicy;
use ferry_relayer::delivery::{BitcoinDelivery, Delivery, EthereumDelivery};
use ferry_relayer::metrics::Metrics;
use ferry_relayer::service::{BitcoinWatch, Relayer, latest_proven};
use ferry_relayer::store::{ReleaseStatus, Store};
use ferry_types::msg::{MsgAttestDeposit, MsgSubmitSignatures, MsgWithdraw, ReleaseSignatures};
use ferry_types::peg::deposit_memo;
use ferry_types::query::{BATCH_PATH, BatchRelease, BatchStatus, BatchView, PENDING_BATCHES_PATH, PendingBatchesView};
use ferry_types::release::bls;
use ferry_types::{AccountKey, Address, Amount, Coin, Denom, DepositFacts, Msg, ParentChain};

/// Parent-chain confirmations every relayer waits for before attesting a release.
const CONFIRMATIONS: u32 = 2;

const ONE_ETH: u128 = 1_000_000_000_000_000_000;

async fn pending(client: &FerryClient) -> TestResult<Vec<BatchView>> {
    let page: PendingBatchesView = client.query(PENDING_BATCHES_PATH, None).await?.ok_or("no pending")?;
    Ok(page.batches)
}

/// The first pending batch in `status`, waited for.
async fn wait_batch(client: &FerryClient, status: BatchStatus) -> TestResult<BatchView> {
    let started = Instant::now();
    loop {
        if let Some(view) = pending(client).await?.into_iter().find(|view| view.batch.status == status) {
            return Ok(view);
        }
        if started.elapsed() > WAIT {
            return Err(format!("no batch {status:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn batch(client: &FerryClient, id: u64) -> TestResult<BatchView> {
    Ok(client.query(&format!("{BATCH_PATH}{id}"), None).await?.ok_or("no batch")?)
}

/// Batch `id` once released (the relayers' attestations are sent by their round; the settlement
/// lands with the block holding the quorum's last one), or as it stands after [`WAIT`].
async fn wait_released(client: &FerryClient, id: u64) -> TestResult<BatchView> {
    let started = Instant::now();
    loop {
        let view = batch(client, id).await?;
        if view.batch.status == BatchStatus::Released || started.elapsed() > WAIT {
            return Ok(view);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Signs `msg` with `key` (paying `fee`, or fee-exempt) and waits for it to be included and accepted.
async fn send(client: &FerryClient, key: AccountKey, msg: Msg, fee: Option<Coin>) -> TestResult {
    let Some(fee) = fee else {
        // A member's duty: its relayer signs with the same account, so sequence races are retried.
        return Ok(ferry_signer::duty::post_duty(client, &key, &msg).await.map(|_| ())?);
    };
    let mut wallet = SideWallet::load(client, key).await?;
    let tx = wallet.sign(&fee, &[msg])?;
    let included = client.broadcast_and_wait(tx, WAIT).await?;
    if included.code != 0 {
        return Err(format!("refused: {}", included.log).into());
    }
    Ok(())
}

/// Members 0..3 sign the batch as their signers would.
async fn sign_batch(client: &FerryClient, view: &BatchView) -> TestResult {
    let ceremony = accounts::federation_ceremony()?;
    for member in ceremony.members.iter().take(3) {
        let signatures = match &view.batch.release {
            BatchRelease::Ethereum(_)
            | BatchRelease::EthereumListing(_)
            | BatchRelease::EthereumRotation(_)
            | BatchRelease::EthereumHeartbeat(_) => {
                let message = view.batch.release.bls_message().unwrap_or_default();
                let share = bls::sign_share(member.bls_secret_key_share(), &message);
                ReleaseSignatures::Bls(bls::encode_signature_share(&share).to_vec())
            }
            BatchRelease::Bitcoin(_) | BatchRelease::BitcoinExit(_) => ReleaseSignatures::Bitcoin(
                view.batch
                    .release
                    .bitcoin_sighashes()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|hex_digest| {
                        let digest: [u8; 32] = hex::decode(hex_digest)?.as_slice().try_into()?;
                        Ok(ferry_types::release::bitcoin::sign_input(member.bitcoin_secret_key(), &digest))
                    })
                    .collect::<TestResult<Vec<_>>>()?,
            ),
        };
        let msg =
            Msg::SubmitSignatures(MsgSubmitSignatures { signer: member.account(), batch: view.batch.id, signatures });
        send(client, member.account_key().clone(), msg, None).await?;
    }
    Ok(())
}

/// User `user` withdraws `amount` of `asset` to `destination` (paying the minimum fee in the same
/// asset); members 0..3 sign the batch that carries it. Returns the batch as it was while signing.
async fn withdraw_and_sign(
    client: &FerryClient,
    user: usize,
    asset: Denom,
    amount: u128,
    destination: String,
) -> TestResult<BatchView> {
    let user = accounts::user_key(user)?;
    let fee = client.params().await?.min_fee(&asset).ok_or("no fee in the withdrawn asset")?;
    let fee = Coin::new(fee.get(), asset.clone());
    let max_fee = Amount::new(if asset == Denom::sat() { TEST_BITCOIN_BUDGET } else { 0 });
    let withdraw =
        Msg::Withdraw(MsgWithdraw { sender: user.address(), asset, amount: Amount::new(amount), destination, max_fee });
    send(client, user, withdraw, Some(fee)).await?;
    let signing = wait_batch(client, BatchStatus::Signing).await?;
    sign_batch(client, &signing).await?;
    Ok(signing)
}

/// Pays `sats` to the peg with a memo crediting `depositor`, and mines its confirmations.
async fn deposit_bitcoin(
    payer: &mut RegtestWallet,
    btcd: &Btcd,
    peg_script: &ScriptBuf,
    sats: u64,
    depositor: &Address,
) -> TestResult {
    let outputs = vec![
        TxOut { value: Sats::from_sat(sats), script_pubkey: peg_script.clone() },
        TxOut { value: Sats::ZERO, script_pubkey: deposit_memo(depositor) },
    ];
    payer.pay(&btcd.rpc(), outputs).await?;
    btcd.mine(CONFIRMATIONS).await?;
    Ok(())
}

/// Anvil with the vault trusting the devnet federation and holding user 0's 5 ETH deposit, and a
/// network whose genesis points Ethereum releases at that vault.
async fn start_with_vault(name: &str) -> TestResult<(Anvil, Network)> {
    let anvil = Anvil::start_with_federation(accounts::federation_vault_key()?).await?;
    let mut genesis = accounts::genesis(8, 4)?;
    accounts::with_ethereum(&mut genesis, CHAIN_ID, batch_address(anvil.vault()), &[]);
    let mut network = Network::create(NetworkSpec::isolated(name, 4, genesis)?, Tools::locate()?)?;
    network.start_all()?;
    network.wait_for_height(2, WAIT).await?;
    // The vault's ether comes from user 0's deposit the chain minted (a quorum of members attests
    // it here, no relayer running): releases are paid only out of the reserves the chain counts,
    // and user 0 withdraws from what it deposited.
    let recipient = accounts::user_key(0)?.address();
    let deposit = anvil.deposit_eth(&recipient, U256::from(5 * ONE_ETH)).await?;
    let facts = DepositFacts {
        chain: ParentChain::Ethereum,
        tx_id: deposit.tx_hash.to_string(),
        index: 0,
        asset: Denom::wei(),
        amount: Amount::new(5 * ONE_ETH),
        recipient,
        deposit_address: false,
        unattributed: None,
        peg_epoch: None,
    };
    for member in 0..3 {
        let attester = Attester::new(network.client(member)?, accounts::member_key(member)?);
        let msg = Msg::AttestDeposit(MsgAttestDeposit { attester: attester.address(), facts: facts.clone() });
        let outcome = attester.send(msg).await;
        assert!(matches!(outcome, AttestOutcome::Accepted { .. }), "member {member}: {outcome:?}");
    }
    wait_for_balance(&network.client(0)?, &recipient, &Denom::wei(), 5 * ONE_ETH).await?;
    Ok((anvil, network))
}

/// Members 0..3's delivery loops and attesters, in process, each with its own database.
#[derive(Default)]
struct Relayers {
    deliveries: Vec<Delivery>,
    attesters: Vec<Attester>,
    stores: Vec<Store>,
    /// Dropped last, after the stores' pools.
    databases: Vec<ScratchDatabase>,
}

impl Relayers {
    /// Ethereum delivery for members 0..3; member `m` pays for releases with `wallet_keys[m]`
    /// (None: it only finds and attests what others delivered).
    async fn ethereum(
        name: &str,
        network: &Network,
        anvil: &Anvil,
        postgres: &PgServer,
        wallet_keys: [Option<&str>; 3],
    ) -> TestResult<Relayers> {
        let mut relayers = Relayers::default();
        for (member, key) in wallet_keys.into_iter().enumerate() {
            let database = postgres.scratch_database(&format!("{name}_{member}")).await?;
            let store = Store::connect(database.url()).await?;
            relayers.databases.push(database);
            relayers.stores.push(store.clone());
            let wallet = key.map(|key| Wallet::connect(anvil.rpc_url(), key)).transpose()?;
            relayers.deliveries.push(Delivery {
                store,
                chain: network.client(member)?,
                verified: network.verified_reader(member)?,
                metrics: Metrics::new()?,
                bitcoin: None,
                ethereum: Some(EthereumDelivery {
                    watcher: anvil.watcher()?,
                    wallet,
                    policy: ConfirmationPolicy::flat(CONFIRMATIONS),
                    start_block: 0,
                    max_log_range: 1_000,
                }),
            });
            relayers.attesters.push(Attester::new(network.client(member)?, accounts::member_key(member)?));
        }
        Ok(relayers)
    }

    /// Waits until the state the test saw is provable on every member's node: delivery reads
    /// batches proven, in the state the latest header commits to (the block before it), and each
    /// member reads through its own node, which may be a block behind the one the test read.
    async fn wait_until_provable(&self) -> TestResult {
        let mut seen = 0;
        for delivery in &self.deliveries {
            seen = seen.max(delivery.chain.latest_height().await?);
        }
        for delivery in &self.deliveries {
            delivery.chain.wait_for_height(seen + 1, WAIT).await?;
        }
        Ok(())
    }

    /// One round of each member's delivery, on everything committed before it.
    async fn poll(&self) -> TestResult {
        self.wait_until_provable().await?;
        for (delivery, attester) in self.deliveries.iter().zip(&self.attesters) {
            delivery.poll(Some(attester)).await?;
        }
        Ok(())
    }

    async fn statuses(&self, batch: u64) -> TestResult<Vec<Option<ReleaseStatus>>> {
        let mut out = Vec::new();
        for store in &self.stores {
            out.push(store.release(batch).await?.map(|record| record.status));
        }
        Ok(out)
    }
}

/// The kinds of `store`'s audit entries about batch `id`, in order.
async fn audit_kinds(store: &Store, id: u64) -> TestResult<Vec<String>> {
    Ok(store.audit_entries(&format!("batch:{id}")).await?.into_iter().map(|entry| entry.kind).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn ethereum_release_is_delivered_once_confirmed_attested_and_settled() -> TestResult {
    let _serial = serial().await;
    let (anvil, network) = start_with_vault("deliv-eth").await?;
    let client = network.client(0)?;
    let recipient = EthAddress::from([0xab; 20]);
    let signing = withdraw_and_sign(&client, 0, Denom::wei(), ONE_ETH, batch_address(recipient).to_string()).await?;
    let id = signing.batch.id;
    wait_batch(&client, BatchStatus::Signed).await?;

    let postgres = PgServer::from_env_or_start(None).await?;
    // Only member 0 pays for transactions; the others attest what it delivered.
    let relayers =
        Relayers::ethereum("deliv_eth", &network, &anvil, &postgres, [Some(RELAYER_PRIVATE_KEYS[0]), None, None])
            .await?;

    // Round 1: member 0 delivers (anvil mines it at once); 1 and 2 find it, one confirmation.
    relayers.poll().await?;
    let statuses = relayers.statuses(id).await?;
    assert!(statuses.iter().all(|s| *s == Some(ReleaseStatus::Broadcast)), "{statuses:?}");
    let sent = relayers.stores[0].release(id).await?.ok_or("no record")?;
    assert_eq!(sent.attempts, 1);
    let parent_tx = sent.parent_tx.clone().ok_or("no tx")?;
    for store in &relayers.stores[1..] {
        let record = store.release(id).await?.ok_or("no record")?;
        assert_eq!(record.parent_tx.as_deref(), Some(parent_tx.as_str()), "another relayer found our tx");
        assert_eq!(record.attempts, 0);
    }
    assert_eq!(anvil.wallet().balance(recipient).await?, U256::from(ONE_ETH));
    // A second delivery is refused by the vault: AlreadyReleased.
    let BatchRelease::Ethereum(release) = &signing.batch.release else { return Err("not eth".into()) };
    let signed = batch(&client, id).await?;
    let BatchRelease::Ethereum(signed_release) = &signed.batch.release else { return Err("not eth".into()) };
    let signature = hex::decode(signed_release.signature.as_ref().ok_or("no signature")?)?;
    let again = Wallet::connect(anvil.rpc_url(), DEV_PRIVATE_KEY)?
        .sign_release(anvil.vault(), &release.batch, &signature)
        .await;
    let error = again.err().ok_or("second release accepted")?;
    assert!(matches!(vault_error(&error), Some(VaultError::AlreadyReleased(_))), "{error}");

    // Round 2: nothing new (one confirmation of two).
    relayers.poll().await?;
    assert!(relayers.statuses(id).await?.iter().all(|s| *s == Some(ReleaseStatus::Broadcast)));

    // One more block: confirmed and attested by all three, which settles the batch.
    anvil.mine(1).await?;
    relayers.poll().await?;
    let settled = wait_released(&client, id).await?;
    assert_eq!(settled.batch.status, BatchStatus::Released, "{settled:?}");
    assert_eq!(settled.batch.release_tx.as_deref(), Some(parent_tx.as_str()));
    relayers.poll().await?;
    let statuses = relayers.statuses(id).await?;
    assert!(statuses.iter().all(|s| *s == Some(ReleaseStatus::Settled)), "{statuses:?}");
    for (member, store) in relayers.stores.iter().enumerate() {
        assert!(store.verify().await?.is_intact());
        let kinds = audit_kinds(store, id).await?;
        eprintln!("member {member}: {kinds:?}");
        assert_eq!(kinds.contains(&"release.delivering".to_owned()), member == 0, "{kinds:?}");
        assert_eq!(kinds.last().map(String::as_str), Some("release.settled"), "{kinds:?}");
    }
    assert_eq!(anvil.wallet().balance(recipient).await?, U256::from(ONE_ETH), "paid once");
    let text = relayers.deliveries[0].metrics.render();
    assert!(text.contains(r#"ferry_relayer_releases{chain="eth",state="settled"} 1"#), "{text}");
    assert!(text.contains(r#"ferry_relayer_release_attestations_total{chain="eth",outcome="accepted"} 1"#), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bitcoin_release_survives_a_reorg_of_its_block_and_settles() -> TestResult {
    let _serial = serial().await;
    let network = start_network("deliv-btc").await?;
    let client = network.client(0)?;
    let mut payer = RegtestWallet::from_seed([9; 32])?;
    let btcd = Btcd::isolated("deliv-btc", payer.address()).await?;
    btcd.mine(101).await?;
    let postgres = PgServer::from_env_or_start(None).await?;

    let peg = ferry_relayer::service::peg(latest_proven(&client, &*network.verified_reader(0)?).await?).await?;
    let peg_script = peg.script_pubkey();
    let mut relayers = Relayers::default();
    let mut watchers = Vec::new();
    for member in 0..3 {
        let database = postgres.scratch_database(&format!("deliv_btc_{member}")).await?;
        let store = Store::connect(database.url()).await?;
        relayers.databases.push(database);
        relayers.stores.push(store.clone());
        relayers.deliveries.push(Delivery {
            store: store.clone(),
            chain: network.client(member)?,
            verified: network.verified_reader(member)?,
            metrics: Metrics::new()?,
            bitcoin: Some(BitcoinDelivery {
                rpc: btcd.rpc(),
                policy: ConfirmationPolicy::flat(CONFIRMATIONS),
                search_depth: 50,
            }),
            ethereum: None,
        });
        relayers.attesters.push(Attester::new(network.client(member)?, accounts::member_key(member)?));
        watchers.push(Relayer::new(
            store,
            (network.client(member)?, network.verified_reader(member)?),
            accounts::member_key(member)?,
            Metrics::new()?,
            Some(BitcoinWatch {
                rpc: btcd.rpc(),
                peg: peg.clone(),
                policy: ConfirmationPolicy::flat(CONFIRMATIONS),
                start_height: 1,
            }),
            None,
        ));
    }
    // User 1's deposit makes the reserves (and what it withdraws).
    let depositor = accounts::user_key(1)?.address();
    deposit_bitcoin(&mut payer, &btcd, &peg_script, 500_000, &depositor).await?;
    for watcher in &watchers {
        watcher.poll_bitcoin().await?;
    }
    // The quorum's attestations are sent; the mint lands with the block that holds the last.
    wait_for_balance(&client, &depositor, &Denom::sat(), common::btc_minted(&client, 500_000).await?).await?;

    // A withdrawal to the payer's address.
    let signing = withdraw_and_sign(&client, 1, Denom::sat(), 100_000, payer.address().to_string()).await?;
    let id = signing.batch.id;
    let BatchRelease::Bitcoin(release) = &signing.batch.release else { return Err("not btc".into()) };
    let txid = release.txid.clone();
    wait_batch(&client, BatchStatus::Signed).await?;

    // Member 0 broadcasts; 1 and 2 find it pending in the node's mempool and send nothing.
    relayers.poll().await?;
    let statuses = relayers.statuses(id).await?;
    assert_eq!(statuses, [Some(ReleaseStatus::Broadcast), None, None]);
    // Polled again: nobody re-sends.
    relayers.poll().await?;
    assert_eq!(relayers.stores[0].release(id).await?.ok_or("record")?.attempts, 1);
    // One block: included, one confirmation of two.
    let [block] = btcd.mine(1).await?[..] else { return Err("one block".into()) };
    relayers.poll().await?;
    let record = relayers.stores[0].release(id).await?.ok_or("record")?;
    assert_eq!(record.block.as_ref().map(|(_, hash)| hash.clone()), Some(block.to_string()));
    assert_eq!(record.parent_tx.as_deref(), Some(txid.as_str()));

    // The block is reorganised away; the release returns to btcd's mempool and is found pending.
    btcd.invalidate_block(&block).await?;
    relayers.poll().await?;
    let record = relayers.stores[0].release(id).await?.ok_or("record")?;
    assert_eq!(record.status, ReleaseStatus::Broadcast);
    assert_eq!(record.block, None, "reorged block still recorded");
    btcd.mine(CONFIRMATIONS).await?;
    relayers.poll().await?;
    relayers.poll().await?;
    let settled = wait_released(&client, id).await?;
    assert_eq!(settled.batch.status, BatchStatus::Released, "{:?}", relayers.statuses(id).await?);
    assert_eq!(settled.batch.release_tx.as_deref(), Some(txid.as_str()));
    relayers.poll().await?;
    for store in &relayers.stores {
        assert_eq!(store.release(id).await?.ok_or("record")?.status, ReleaseStatus::Settled);
        let kinds = audit_kinds(store, id).await?;
        eprintln!("{kinds:?}");
        assert!(kinds.contains(&"release.reorged".to_owned()), "{kinds:?}");
    }
    Ok(())
}

/// Turns anvil's automatic mining of each transaction on or off (`evm_setAutomine`).
async fn set_automine(rpc: &str, on: bool) -> TestResult {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "evm_setAutomine", "params": [on]});
    let answer: serde_json::Value = reqwest::Client::new().post(rpc).json(&body).send().await?.json().await?;
    if answer.get("error").is_some() {
        return Err(format!("evm_setAutomine: {answer}").into());
    }
    Ok(())
}

/// A JSON-RPC proxy in front of anvil that holds each `eth_sendRawTransaction` until another one
/// arrives (or [`WAIT`] passed), then forwards both: two wallets delivering through it each
/// simulate their release before the other's transaction reaches the node, as two relayers
/// polling at the same moment over a slower network would. Everything else passes straight on.
#[derive(Clone)]
struct SendsInPairs {
    upstream: String,
    http: reqwest::Client,
    pair: std::sync::Arc<tokio::sync::Barrier>,
}

async fn forward_in_pairs(
    axum::extract::State(proxy): axum::extract::State<SendsInPairs>,
    body: axum::body::Bytes,
) -> Result<([(axum::http::HeaderName, &'static str); 1], Vec<u8>), axum::http::StatusCode> {
    let method = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|request| request.get("method").and_then(serde_json::Value::as_str).map(str::to_owned));
    if method.as_deref() == Some("eth_sendRawTransaction") {
        // Timing out lets a lone send through: the test's assertions then say what went wrong.
        let _ = tokio::time::timeout(WAIT, proxy.pair.wait()).await;
    }
    let answer = common::forward_json_rpc(&proxy.http, &proxy.upstream, body).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], answer.to_vec()))
}

/// Serves [`SendsInPairs`] for `upstream` on a free loopback port until the task is aborted;
/// returns its URL.
async fn start_sends_in_pairs(upstream: &str) -> TestResult<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let proxy = SendsInPairs {
        upstream: upstream.to_owned(),
        http: reqwest::Client::new(),
        pair: std::sync::Arc::new(tokio::sync::Barrier::new(2)),
    };
    let app = axum::Router::new().route("/", axum::routing::post(forward_in_pairs)).with_state(proxy);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, task))
}

/// Polls members 0 and 1 at the same time (their wallets' sends meet at [`SendsInPairs`]), then
/// member 2.
async fn poll_racing(relayers: &Relayers) -> TestResult {
    relayers.wait_until_provable().await?;
    let (first, second) = tokio::join!(
        relayers.deliveries[0].poll(Some(&relayers.attesters[0])),
        relayers.deliveries[1].poll(Some(&relayers.attesters[1]))
    );
    first?;
    second?;
    relayers.deliveries[2].poll(Some(&relayers.attesters[2])).await?;
    Ok(())
}

/// The revert data (hex) with which the mined transaction `tx` failed, from anvil's call tracer;
/// `None` when it succeeded.
async fn revert_data(rpc: &str, tx: &str) -> TestResult<Option<String>> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "debug_traceTransaction", "params": [tx, {"tracer": "callTracer"}]
    });
    let answer: serde_json::Value = reqwest::Client::new().post(rpc).json(&body).send().await?.json().await?;
    let trace = answer.get("result").ok_or_else(|| format!("debug_traceTransaction {tx}: {answer}"))?;
    if trace.get("error").is_none() {
        return Ok(None);
    }
    let output = trace["output"].as_str().ok_or_else(|| format!("a failed call without output: {trace}"))?;
    Ok(Some(output.trim_start_matches("0x").to_lowercase()))
}

/// The revert data (hex) a refused call's error carries.
fn refusal_data(error: &EthereumError) -> Option<String> {
    match error {
        EthereumError::Rpc { source, .. } => source.as_error_resp()?.as_revert_data().map(hex::encode),
        _ => None,
    }
}

/// The transactions members 0 and 1 sent for batch `id`, each sent `attempts` times so far and
/// waiting in anvil's pool.
async fn both_pending(relayers: &Relayers, anvil: &Anvil, id: u64, attempts: u32) -> TestResult<[String; 2]> {
    let watcher = anvil.watcher()?;
    let mut sent = Vec::new();
    for store in &relayers.stores[..2] {
        let record = store.release(id).await?.ok_or("no record: a wallet did not deliver")?;
        assert_eq!((record.status, record.attempts), (ReleaseStatus::Broadcast, attempts), "{record:?}");
        let tx = record.parent_tx.ok_or("delivered without a transaction")?;
        assert_eq!(watcher.transaction_state(&tx).await?, TransactionState::Pending, "{tx}");
        sent.push(tx);
    }
    let [first, second] = <[String; 2]>::try_from(sent).map_err(|_| "two transactions")?;
    assert_ne!(first, second, "both wallets sent");
    Ok([first, second])
}

/// Mines one block holding both `sent` transactions: one pays the batch, the other reverts with
/// the vault's `AlreadyReleased(nonce)`, as replaying its call now shows. Returns the member whose
/// transaction paid and its hash.
async fn one_pays_one_reverts(
    anvil: &Anvil,
    release: &ferry_types::release::eth::EthBatch,
    signature: &[u8],
    sent: &[String; 2],
) -> TestResult<(usize, String)> {
    anvil.mine(1).await?;
    let watcher = anvil.watcher()?;
    let mut outcomes = Vec::new();
    for tx in sent {
        match watcher.transaction_state(tx).await? {
            TransactionState::Mined { block_number, succeeded } => outcomes.push((block_number, succeeded)),
            other => return Err(format!("{tx} not mined: {other:?}").into()),
        }
    }
    assert_eq!(outcomes[0].0, outcomes[1].0, "both in the same block: {outcomes:?}");
    let winner = match (outcomes[0].1, outcomes[1].1) {
        (true, false) => 0,
        (false, true) => 1,
        _ => return Err(format!("expected one payment and one revert: {outcomes:?}").into()),
    };
    let loser = 1 - winner;
    assert_eq!(revert_data(anvil.rpc_url(), &sent[winner]).await?, None);
    let reverted = revert_data(anvil.rpc_url(), &sent[loser]).await?.ok_or("the losing transaction succeeded")?;
    // The same call from the losing wallet, against the block both were mined in.
    let replay = Wallet::connect(anvil.rpc_url(), RELAYER_PRIVATE_KEYS[loser])?
        .simulate_release(anvil.vault(), release, signature, None)
        .await
        .err()
        .ok_or("the losing release would pay now")?;
    assert!(
        matches!(vault_error(&replay), Some(VaultError::AlreadyReleased(ref paid)) if paid.nonce == release.nonce),
        "{replay}"
    );
    assert_eq!(
        refusal_data(&replay).as_deref(),
        Some(reverted.as_str()),
        "mined with another refusal than AlreadyReleased"
    );
    Ok((winner, sent[winner].clone()))
}

/// Two relayers with wallets race (both transactions pending when each simulates), one payment
/// reverts; everyone attests the winner. Then the winner's block is reorganised away with every
/// transaction in it dropped: both deliver again, and the batch still pays exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn racing_ethereum_deliveries_pay_once_and_survive_a_reorg_that_drops_the_release() -> TestResult {
    let _serial = serial().await;
    let (anvil, network) = start_with_vault("deliv-race").await?;
    let client = network.client(0)?;
    let recipient = EthAddress::from([0xcd; 20]);
    let signing = withdraw_and_sign(&client, 0, Denom::wei(), ONE_ETH, batch_address(recipient).to_string()).await?;
    let id = signing.batch.id;
    wait_batch(&client, BatchStatus::Signed).await?;

    let postgres = PgServer::from_env_or_start(None).await?;
    let wallet_keys = [Some(RELAYER_PRIVATE_KEYS[0]), Some(RELAYER_PRIVATE_KEYS[1]), None];
    let mut relayers = Relayers::ethereum("deliv_race", &network, &anvil, &postgres, wallet_keys).await?;
    // Members 0 and 1 pay through the proxy that lets their transactions out in pairs.
    let (proxy, proxy_task) = start_sends_in_pairs(anvil.rpc_url()).await?;
    for (delivery, key) in relayers.deliveries.iter_mut().zip(&RELAYER_PRIVATE_KEYS[..2]) {
        let ethereum = delivery.ethereum.as_mut().ok_or("no ethereum delivery")?;
        ethereum.wallet = Some(Wallet::connect(&proxy, key)?);
    }
    let paid = || async { anvil.wallet().balance(recipient).await };

    let signed = batch(&client, id).await?;
    let BatchRelease::Ethereum(release) = &signed.batch.release else { return Err("not eth".into()) };
    let signature = hex::decode(release.signature.as_ref().ok_or("no signature")?)?;

    // No block is mined until the test mines one, and neither transaction reaches the node before
    // both wallets simulated theirs against a pool without the other: both send.
    set_automine(anvil.rpc_url(), false).await?;
    poll_racing(&relayers).await?;
    let statuses = relayers.statuses(id).await?;
    assert_eq!(statuses[2], None, "member 2 has no wallet");
    let sent = both_pending(&relayers, &anvil, id, 1).await?;
    // Polled again while pending: nobody sends a third.
    relayers.poll().await?;
    assert_eq!(both_pending(&relayers, &anvil, id, 1).await?, sent);
    let (winner, paying) = one_pays_one_reverts(&anvil, &release.batch, &signature, &sent).await?;
    eprintln!("member {winner}'s {paying} paid");
    relayers.poll().await?;
    for store in &relayers.stores {
        let record = store.release(id).await?.ok_or("no record")?;
        assert_eq!(record.parent_tx.as_deref(), Some(paying.as_str()), "everyone found the winner: {record:?}");
        assert!(record.block.is_some(), "{record:?}");
    }
    assert_eq!(paid().await?, U256::from(ONE_ETH), "paid once");

    // The block with both transactions is replaced by an empty one: the payment is undone.
    anvil.dev_node().reorg(1, &[]).await?;
    assert_eq!(paid().await?, U256::ZERO);
    poll_racing(&relayers).await?;
    let statuses = relayers.statuses(id).await?;
    assert!(statuses.iter().all(|s| *s == Some(ReleaseStatus::Broadcast)), "{statuses:?}");
    assert!(relayers.stores[2].release(id).await?.ok_or("record")?.block.is_none());
    // Both wallets delivered again, and race again.
    let resent = both_pending(&relayers, &anvil, id, 2).await?;
    let (winner, paying) = one_pays_one_reverts(&anvil, &release.batch, &signature, &resent).await?;
    eprintln!("after the reorg, member {winner}'s {paying} paid");
    relayers.poll().await?;
    anvil.mine(1).await?;
    relayers.poll().await?;
    relayers.poll().await?;
    let settled = wait_released(&client, id).await?;
    assert_eq!(settled.batch.status, BatchStatus::Released, "{:?}", relayers.statuses(id).await?);
    assert_eq!(paid().await?, U256::from(ONE_ETH), "paid exactly once");
    // One more round records the settlement in every store.
    relayers.poll().await?;
    assert_eq!(settled.batch.release_tx.as_deref(), Some(paying.as_str()));
    for (member, store) in relayers.stores.iter().enumerate() {
        let record = store.release(id).await?.ok_or("record")?;
        assert_eq!(record.status, ReleaseStatus::Settled);
        assert_eq!(record.parent_tx, settled.batch.release_tx);
        assert_eq!(record.attempts, if member < 2 { 2 } else { 0 }, "deliveries by member {member}");
        eprintln!("{} attempts: {:?}", record.attempts, audit_kinds(store, id).await?);
    }
    proxy_task.abort();
    Ok(())
}

/// The binary: three member relayers as processes (delivery on by default), killed and restarted
/// while a Bitcoin release is delivered and confirmed; the batch settles, the destination is paid
/// by the transaction the federation signed, and every store agrees.
#[tokio::test(flavor = "multi_thread")]
async fn relayer_processes_killed_during_delivery_still_settle_the_bitcoin_release() -> TestResult {
    let _serial = serial().await;
    let network = start_network("deliv-proc").await?;
    let client = network.client(0)?;
    let mut payer = RegtestWallet::from_seed([11; 32])?;
    let btcd = Btcd::isolated("deliv-proc", payer.address()).await?;
    btcd.mine(101).await?;
    let postgres = PgServer::from_env_or_start(None).await?;
    let dir = ferry_devnet::tools::repo_root().join(format!("target/relayers/deliv-proc-{}", std::process::id()));
    let mut databases = Vec::new();
    // Declared after the services and databases they use, so dropped (killed) before them.
    let mut processes = Vec::new();
    let mut urls = Vec::new();
    for member in 0..3 {
        let database = postgres.scratch_database(&format!("deliv_proc_{member}")).await?;
        let url = database.url().to_owned();
        databases.push(database);
        urls.push(url.clone());
        processes.push(RelayerProcess::start(RelayerSetup {
            dir: dir.join(format!("member{member}")),
            member,
            chain_rpc: network.validators()[member].rpc_url(),
            genesis_file: network.genesis_file(),
            endpoints: Vec::new(),
            database_url: url,
            bitcoin: Some((btcd.rpc_url(), btcd.rpc_user().to_owned(), btcd.rpc_password_file())),
            ethereum: None,
            confirmations: CONFIRMATIONS,
            bitcoin_tiers: Vec::new(),
            ethereum_finality: ferry_relayer::config::Finality::Depth,
            poll_interval: "200ms".to_owned(),
            ethereum_key: None,
        })?);
    }
    let peg_script = ferry_relayer::service::peg(latest_proven(&client, &*network.verified_reader(0)?).await?)
        .await?
        .script_pubkey();
    // User 2's deposit makes the reserves (and what it withdraws).
    let depositor = accounts::user_key(2)?.address();
    deposit_bitcoin(&mut payer, &btcd, &peg_script, 400_000, &depositor).await?;
    let started = Instant::now();
    let minted = common::btc_minted(&client, 400_000).await?;
    while balance(&client, &depositor, &Denom::sat()).await? != minted {
        if started.elapsed() > WAIT {
            return Err("deposit not minted".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let signing = withdraw_and_sign(&client, 2, Denom::sat(), 150_000, payer.address().to_string()).await?;
    let id = signing.batch.id;
    let BatchRelease::Bitcoin(release) = &signing.batch.release else { return Err("not btc".into()) };
    let txid = release.txid.clone();
    // Crash each relayer at a different moment while the release goes out and confirms.
    for (round, delay) in [50u64, 400, 900, 1500].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        processes[round % 3].restart()?;
        btcd.mine(1).await?;
    }
    let started = Instant::now();
    let settled = loop {
        let view = batch(&client, id).await?;
        if view.batch.status == BatchStatus::Released {
            break view;
        }
        if started.elapsed() > WAIT {
            return Err(format!("batch not settled: {view:?}").into());
        }
        btcd.mine(1).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(settled.batch.release_tx.as_deref(), Some(txid.as_str()));
    // The destination receives the amount less its share of the miner fee (all of it: it is alone).
    let BatchRelease::Bitcoin(release) = &settled.batch.release else { return Err("not a Bitcoin batch".into()) };
    let miner_fee = release.plan.fee().get();
    assert!(miner_fee > 0 && miner_fee <= TEST_BITCOIN_BUDGET, "fee {miner_fee} within the budget");
    let expected = Sats::from_sat(u64::try_from(150_000 - miner_fee)?);
    let paid = btcd.unspent_output(&OutPoint { txid: txid.parse()?, vout: 0 }).await?.ok_or("no payment output")?;
    assert_eq!((paid.value, paid.script_pubkey), (expected, payer.address().script_pubkey()));

    // Every relayer records the settlement and reports it.
    let settled_line = r#"ferry_relayer_releases{chain="btc",state="settled"} 1"#;
    for (process, url) in processes.iter().zip(&urls) {
        let store = Store::connect(url).await?;
        let started = Instant::now();
        loop {
            let record = store.release(id).await?;
            // The last restart may still be starting up: not serving yet is not a failure.
            let text = match reqwest::get(process.metrics_url()).await {
                Ok(response) => response.text().await?,
                Err(error) => format!("metrics not served: {error}"),
            };
            if record.as_ref().is_some_and(|record| record.status == ReleaseStatus::Settled)
                && text.lines().any(|line| line == settled_line)
            {
                break;
            }
            if started.elapsed() > WAIT {
                return Err(format!("{url}: not settled: {record:?}\n{text}").into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let record = store.release(id).await?.ok_or("record")?;
        eprintln!("{url}: {record:?}");
        assert_eq!(record.parent_tx.as_deref(), Some(txid.as_str()), "{url}");
        assert!(store.verify().await?.is_intact(), "{url}");
    }
    drop(processes);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
