//! Deposits end to end: real btcd (regtest), anvil, PostgreSQL, a 4-validator Ferry network and
//! three federation relayers (the quorum) as processes. A deposit mints exactly once to the memo's
//! recipient after the configured confirmations, and not before.

mod common;

use std::time::{Duration, Instant};

use bitcoin::{Amount as Sats, TxOut};
use common::{TestResult, WAIT, balance, serial, start_network};
use ferry_client::FerryClient;
use ferry_devnet::anvil::Anvil;
use ferry_devnet::btcd::{Btcd, RegtestWallet};
use ferry_devnet::postgres::PgServer;
use ferry_devnet::relayer::{RelayerProcess, RelayerSetup};
use ferry_relayer::ethereum::U256;
use ferry_types::peg::deposit_memo;
use ferry_types::query::{PEG_PATH, PegView};
use ferry_types::{Address, Denom};

const CONFIRMATIONS: u32 = 3;
/// Long enough for every relayer to poll several times (they poll every 200 ms).
const SETTLE: Duration = Duration::from_secs(3);

async fn wait_for_balance(client: &FerryClient, who: &Address, denom: &Denom, want: u128) -> TestResult {
    let started = Instant::now();
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

#[tokio::test(flavor = "multi_thread")]
async fn deposits_from_bitcoin_and_ethereum_mint_exactly_once_after_the_confirmations() -> TestResult {
    let _serial = serial().await;
    let network = start_network("relay").await?;
    let client = network.client(0)?;
    let mut wallet = RegtestWallet::from_seed([7; 32])?;
    let btcd = Btcd::isolated("relay", wallet.address()).await?;
    btcd.mine(101).await?;
    let anvil = Anvil::start().await?;
    let postgres = PgServer::from_env_or_start(None).await?;

    let dir = ferry_devnet::tools::repo_root().join(format!("target/relayers/relay-{}", std::process::id()));
    let mut relayers = Vec::new();
    for member in 0..3 {
        let database_url = postgres.create_database(&format!("relayer_e2e_{member}_{}", std::process::id())).await?;
        relayers.push(RelayerProcess::start(RelayerSetup {
            dir: dir.join(format!("member{member}")),
            member,
            chain_rpc: network.validators().get(member).ok_or("validator")?.rpc_url(),
            database_url,
            bitcoin: Some((btcd.rpc_url(), btcd.rpc_user().to_owned(), btcd.rpc_password_file())),
            ethereum: Some((anvil.rpc_url().to_owned(), format!("{:#x}", anvil.vault()))),
            confirmations: CONFIRMATIONS,
            poll_interval: "200ms".to_owned(),
        })?);
    }

    // Bitcoin: pay the peg with the recipient in the memo.
    let peg: PegView = client.query(PEG_PATH, None).await?.ok_or("no peg")?;
    let peg_script = peg.address.parse::<bitcoin::Address<_>>()?.assume_checked().script_pubkey();
    let btc_recipient = Address::from_bytes([0xb1; 20]);
    wallet
        .pay(
            &btcd.rpc(),
            vec![
                TxOut { value: Sats::from_sat(150_000), script_pubkey: peg_script },
                TxOut { value: Sats::ZERO, script_pubkey: deposit_memo(&btc_recipient) },
            ],
        )
        .await?;
    // One and two confirmations: not yet.
    for _ in 1..CONFIRMATIONS {
        btcd.mine(1).await?;
        tokio::time::sleep(SETTLE).await;
        assert_eq!(
            balance(&client, &btc_recipient, &Denom::sat()).await?,
            0,
            "minted before {CONFIRMATIONS} confirmations"
        );
    }
    btcd.mine(1).await?;
    wait_for_balance(&client, &btc_recipient, &Denom::sat(), 150_000).await?;

    // Ethereum: ETH and an ERC-20.
    // (The token deposit mines its mint and approve transactions first, so it goes first: the
    // ETH deposit's block then gives it its second confirmation.)
    let eth_recipient = Address::from_bytes([0xe1; 20]);
    let token_denom: Denom = format!("erc20/{:#x}", anvil.token()).to_lowercase().parse()?;
    anvil.deposit_token(anvil.token(), U256::from(250_000_000u64), &eth_recipient).await?;
    anvil.deposit_eth(&eth_recipient, U256::from(2_000_000_000_000_000_000u128)).await?;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(balance(&client, &eth_recipient, &Denom::wei()).await?, 0, "minted before the confirmations");
    assert_eq!(balance(&client, &eth_recipient, &token_denom).await?, 0, "minted before the confirmations");
    anvil.mine(u64::from(CONFIRMATIONS)).await?;
    wait_for_balance(&client, &eth_recipient, &Denom::wei(), 2_000_000_000_000_000_000).await?;
    wait_for_balance(&client, &eth_recipient, &token_denom, 250_000_000).await?;

    // More blocks and more polls change nothing: each deposit minted exactly once.
    btcd.mine(3).await?;
    anvil.mine(3).await?;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(balance(&client, &btc_recipient, &Denom::sat()).await?, 150_000);
    assert_eq!(balance(&client, &eth_recipient, &Denom::wei()).await?, 2_000_000_000_000_000_000);
    assert_eq!(balance(&client, &eth_recipient, &token_denom).await?, 250_000_000);
    drop(relayers);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
