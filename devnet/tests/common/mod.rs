//! Shared pieces of the end-to-end tests: one network at a time, started and waited for, and
//! bounded waits for conditions (never a fixed sleep before an exact assertion).
//! (Each test binary uses some of these helpers, so unused ones are not warnings here.)
#![allow(dead_code)]

pub mod cli;

use std::time::Duration;

use ferry_client::FerryClient;
use ferry_devnet::{Network, NetworkSpec, Tools, accounts};
use ferry_types::{Address, Denom};
use tokio::sync::{Mutex, MutexGuard};

/// Boxed error for tests.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// How long any single wait may take.
pub const WAIT: Duration = Duration::from_secs(60);

/// Held for the whole of each test that starts a network, a PostgreSQL cluster, anvil or btcd:
/// tests of one binary run on parallel threads, and the two-core CI machine takes one at a time.
pub async fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::const_new(());
    SERIAL.lock().await
}

/// Users in [`start_network`]'s genesis (empty accounts).
pub const USERS: usize = 8;

/// A fresh 4-validator network (a 4-member federation with quorum 3, [`USERS`] empty user
/// accounts) producing blocks.
pub async fn start_network(name: &str) -> TestResult<Network> {
    start_network_with(name, accounts::genesis(USERS, 4)?).await
}

/// As [`start_network`], the users opened by the federation's attestations of made-up deposits
/// ([`ferry_devnet::funding::attest_openings`]): for tests of the sidechain alone, which run no
/// relayer or signer (those reserves exist on no parent chain).
pub async fn start_funded_network(name: &str) -> TestResult<Network> {
    let network = start_network(name).await?;
    ferry_devnet::funding::attest_openings(&network, USERS).await?;
    Ok(network)
}

/// As [`start_network`] with `genesis`.
pub async fn start_network_with(name: &str, genesis: ferry_types::GenesisState) -> TestResult<Network> {
    start_spec(NetworkSpec::isolated(name, 4, genesis)?).await
}

/// The network `spec` describes, producing blocks.
pub async fn start_spec(spec: NetworkSpec) -> TestResult<Network> {
    let mut network = Network::create(spec, Tools::locate()?)?;
    network.start_all()?;
    network.wait_for_height(2, WAIT).await?;
    Ok(network)
}

/// The balance of `denom` held by `address` (0 when none).
pub async fn balance(client: &FerryClient, address: &Address, denom: &Denom) -> TestResult<u128> {
    let view = client.balances(address, None).await?;
    Ok(view.balances.iter().find(|c| &c.denom == denom).map_or(0, |c| c.amount.get()))
}

/// Waits (up to [`WAIT`]) until `who` holds exactly `want` of `denom`.
pub async fn wait_for_balance(client: &FerryClient, who: &Address, denom: &Denom, want: u128) -> TestResult {
    let started = std::time::Instant::now();
    loop {
        let have = balance(client, who, denom).await?;
        if have == want {
            return Ok(());
        }
        if started.elapsed() > WAIT {
            return Err(format!("{who} holds {have}{denom}, expected {want}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `condition` every 200 ms until it answers `Some`, for at most `within`; the error names
/// `what`. A bounded wait for a condition, never a fixed sleep.
pub async fn wait_until<T, F, Fut>(what: &str, within: Duration, mut condition: F) -> TestResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = TestResult<Option<T>>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = condition().await? {
            return Ok(value);
        }
        if started.elapsed() > within {
            return Err(format!("{what}: not the case after {within:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value of the sample `series` (name and labels exactly as exported) in Prometheus `text`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Seconds since the Unix epoch, as the services' timestamp gauges count them.
fn now_seconds() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64())
}

/// Waits (up to [`WAIT`]) until the service serving `metrics_url` has finished the poll round under
/// way when called (between rounds: the next one), decisions included. `series` is its "last poll"
/// timestamp gauge, set as a round completes — and, by the relayer's parent-chain rounds, also
/// after scanning and before deciding — so two updates after now mean that round has ended (for
/// a service setting it once per round, a whole round even began and ended since).
pub async fn wait_for_a_finished_round(metrics_url: &str, series: &str) -> TestResult {
    let mut after = now_seconds();
    for update in ["first", "second"] {
        after = wait_until(&format!("{update} update of {series} at {metrics_url}"), WAIT, || async {
            let text = match reqwest::get(metrics_url).await {
                Ok(response) => response.text().await?,
                // A restarted process may not serve yet.
                Err(_) => return Ok(None),
            };
            Ok(metric(&text, series).filter(|&value| value > after))
        })
        .await?;
    }
    Ok(())
}

/// Forwards one JSON-RPC request `body` to `upstream` and returns the answer's bytes: the
/// plumbing of the tests' man-in-the-middle RPC proxies (a refused or broken upstream is
/// `502 Bad Gateway`).
pub async fn forward_json_rpc(
    http: &reqwest::Client,
    upstream: &str,
    body: axum::body::Bytes,
) -> Result<axum::body::Bytes, axum::http::StatusCode> {
    let bad_gateway = |_| axum::http::StatusCode::BAD_GATEWAY;
    http.post(upstream)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(bad_gateway)?
        .bytes()
        .await
        .map_err(bad_gateway)
}

/// Rewrites one ABCI query answer (its decoded JSON); `None` passes it on untouched.
pub type Rewrite = std::sync::Arc<dyn Fn(&serde_json::Value) -> Option<serde_json::Value> + Send + Sync>;

/// Rewrites one raw record answer of `/store` (the asked state key, the stored bytes); `None`
/// passes it on untouched.
pub type RawRewrite = std::sync::Arc<dyn Fn(&[u8], &[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// What a tampering proxy changes: JSON answers of Ferry's query paths, raw `/store` records, or both.
#[derive(Clone, Default)]
pub struct Tamper {
    /// Applied to every JSON answer.
    pub json: Option<Rewrite>,
    /// Applied to every `/store` answer.
    pub raw: Option<RawRewrite>,
}

#[derive(Clone)]
struct Tampering {
    upstream: String,
    tamper: Tamper,
    http: reqwest::Client,
}

/// The state key a JSON-RPC `abci_query` request asks `/store` for, if it is one.
fn store_key_asked(request: &[u8]) -> Option<Vec<u8>> {
    let request: serde_json::Value = serde_json::from_slice(request).ok()?;
    let params = request.get("params")?;
    (params.get("path")?.as_str()? == ferry_types::query::STORE_PATH)
        .then(|| hex::decode(params.get("data")?.as_str()?).ok())
        .flatten()
}

async fn tamper_forward(
    axum::extract::State(tampering): axum::extract::State<Tampering>,
    body: axum::body::Bytes,
) -> Result<Vec<u8>, axum::http::StatusCode> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as BASE64;
    let store_key = store_key_asked(&body);
    let answer = forward_json_rpc(&tampering.http, &tampering.upstream, body).await?;
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&answer) else { return Ok(answer.to_vec()) };
    let value = json.pointer("/result/response/value").and_then(serde_json::Value::as_str);
    let decoded = value.and_then(|value| BASE64.decode(value).ok());
    let tampered = match (&store_key, decoded) {
        (Some(key), Some(bytes)) => tampering.tamper.raw.as_ref().and_then(|raw| raw(key, &bytes)),
        (None, Some(bytes)) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|answer| tampering.tamper.json.as_ref().and_then(|rewrite| rewrite(&answer)))
            .map(|answer| answer.to_string().into_bytes()),
        (_, None) => None,
    };
    if let Some(tampered) = tampered
        && let Some(slot) = json.pointer_mut("/result/response/value")
    {
        *slot = serde_json::Value::String(BASE64.encode(tampered));
    }
    serde_json::to_vec(&json).map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// A compromised sidechain RPC endpoint on a free loopback port: it forwards every JSON-RPC call
/// to `upstream` and passes each ABCI query answer through `tamper`. Serves until the returned
/// task is aborted.
pub async fn start_tampering_proxy(
    upstream: String,
    tamper: Tamper,
) -> TestResult<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?;
    let tampering = Tampering { upstream, tamper, http: reqwest::Client::new() };
    let app = axum::Router::new().route("/", axum::routing::post(tamper_forward)).with_state(tampering);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((address, task))
}

/// What a Bitcoin deposit of `sats` mints on the chain `client` reads right now: the amount less
/// what it prepays for its own spending (the chain's fee rate on one peg input's size).
pub async fn btc_minted(client: &FerryClient, sats: u128) -> TestResult<u128> {
    btc_minted_to(client, sats, None).await
}

/// [`btc_minted`] for a payment to `owner`'s deposit address (`None`: to the peg with a memo),
/// whose input is larger to spend.
pub async fn btc_minted_to(client: &FerryClient, sats: u128, owner: Option<&ferry_types::Address>) -> TestResult<u128> {
    let fees: ferry_types::query::BitcoinFeesView =
        client.query(ferry_types::query::BITCOIN_FEES_PATH, None).await?.ok_or("no /bitcoin/fees")?;
    let federation: ferry_types::genesis::Federation =
        client.query("/federation", None).await?.ok_or("no federation")?;
    let peg = ferry_types::peg::Peg::new(&federation.bitcoin.ok_or("no peg")?)?;
    Ok(sats - ferry_types::release::bitcoin::input_spend_fee(&peg, owner, fees.fee_rate).get())
}

/// Checks that the chain's Bitcoin ledger balances
/// (`supply + unreleased + fee_pool + unattributed = reserves`)
/// and that its reserve UTXOs are exactly what btcd holds unspent for the peg, to the
/// satoshi. Returns the ledger and the reserves view for further checks.
pub async fn assert_bitcoin_reconciled(
    system: &ferry_devnet::system::System,
) -> TestResult<(ferry_app::bridge::AssetLedger, ferry_app::query::ReservesView)> {
    let client = system.client(0)?;
    let reserves: ferry_app::query::ReservesView = client.query("/reserves", None).await?.ok_or("no reserves")?;
    let ledger = reserves.assets.get(&Denom::sat()).ok_or("no sat ledger")?.clone();
    assert_eq!(
        ledger.supply.get() + ledger.unreleased.get() + ledger.fee_pool.get() + ledger.unattributed.get(),
        ledger.reserves.get(),
        "{ledger:?}"
    );
    let mut utxo_total = 0u128;
    for utxo in &reserves.bitcoin_utxos {
        let outpoint = bitcoin::OutPoint { txid: utxo.txid.parse()?, vout: utxo.vout };
        let output = system.parents.btcd.unspent_output(&outpoint).await?.ok_or("a reserve UTXO is spent on btcd")?;
        assert_eq!(u128::from(output.value.to_sat()), utxo.amount.get(), "{outpoint}");
        utxo_total += utxo.amount.get();
    }
    assert_eq!(utxo_total, ledger.reserves.get(), "peg UTXOs vs ledger");
    Ok((ledger, reserves))
}

/// The last `lines` lines of a service's log file, for a failing test's output (empty when it
/// cannot be read).
pub fn log_tail(path: &std::path::Path, lines: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits (up to [`WAIT`]) until the bridge is paused; returns its status. `after` names what
/// should have paused it, for the error.
pub async fn wait_for_pause(client: &FerryClient, after: &str) -> TestResult<ferry_types::query::BridgeStatus> {
    wait_until(&format!("the bridge paused after {after}"), WAIT, || async {
        let status: ferry_types::query::BridgeStatus =
            client.query(ferry_types::query::BRIDGE_PATH, None).await?.ok_or("no bridge status")?;
        Ok(status.paused.then_some(status))
    })
    .await
}

/// Whether Prometheus has `FerryReservesShort` firing for `asset`.
pub fn reserves_short_fires(alerts: &[ferry_devnet::prometheus::Alert], asset: &str) -> bool {
    alerts.iter().any(|alert| {
        alert.name() == "FerryReservesShort"
            && alert.is_firing()
            && alert.labels.get("asset").map(String::as_str) == Some(asset)
    })
}
