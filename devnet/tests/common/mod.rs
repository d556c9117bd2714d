//! Shared pieces of the end-to-end tests: one network at a time, started and waited for.
//! (Each test binary uses some of these helpers, so unused ones are not warnings here.)
#![allow(dead_code)]

use std::time::Duration;

use ferry_client::FerryClient;
use ferry_devnet::{Network, NetworkSpec, Tools, accounts};
use ferry_types::{Address, Denom};
use tokio::sync::{Mutex, MutexGuard};

/// Boxed error for tests.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// How long any single wait may take.
pub const WAIT: Duration = Duration::from_secs(60);

/// Held for the whole of each test: one network at a time on the two-core CI machine.
pub async fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::const_new(());
    SERIAL.lock().await
}

/// A fresh 4-validator network (8 funded users, a 4-member federation with quorum 3), producing blocks.
pub async fn start_network(name: &str) -> TestResult<Network> {
    let spec = NetworkSpec::isolated(name, 4, accounts::genesis(8, 4)?)?;
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
