//! Deposit attestations through real CometBFT validators: federation members sign fee-exempt
//! `MsgAttestDeposit` transactions; the chain mints at quorum, exactly once. (The relayers that
//! produce these attestations from Bitcoin and Ethereum are tested separately.)

mod common;

use common::{TestResult, WAIT, balance, serial, start_network};
use ferry_app::query::ReservesView;
use ferry_client::{FerryClient, Wallet};
use ferry_devnet::accounts::{member_key, user_key};
use ferry_types::deposit_record::{DepositRecord, DepositStatus};
use ferry_types::msg::MsgAttestDeposit;
use ferry_types::query::{DEPOSIT_PATH, PEG_PATH, PegView, RESERVES_PATH};
use ferry_types::{Address, Amount, Denom, DepositFacts, Msg, ParentChain, TxCode};

fn btc_deposit(recipient: Address) -> DepositFacts {
    DepositFacts {
        chain: ParentChain::Bitcoin,
        tx_id: "5e".repeat(32),
        index: 0,
        asset: Denom::sat(),
        amount: Amount::new(125_000),
        recipient,
        deposit_address: false,
        unattributed: None,
        peg_epoch: None,
    }
}

async fn attest(client: &FerryClient, member: usize, facts: &DepositFacts) -> TestResult<ferry_client::Inclusion> {
    let mut wallet = Wallet::load(client, member_key(member)?).await?;
    let msg = Msg::AttestDeposit(MsgAttestDeposit { attester: wallet.address(), facts: facts.clone() });
    Ok(client.broadcast_and_wait(wallet.sign_fee_exempt(&[msg])?, WAIT).await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn deposit_mints_once_at_quorum_of_identical_member_attestations() -> TestResult {
    let _serial = serial().await;
    let network = start_network("attest").await?;
    let client = network.client(0)?;
    let recipient = Address::from_bytes([0x5e; 20]);
    let facts = btc_deposit(recipient);
    let path = format!("{DEPOSIT_PATH}{}", facts.id());

    // The peg address is derived from the members' Bitcoin keys in genesis.
    let peg: PegView = client.query(PEG_PATH, None).await?.ok_or("no peg")?;
    assert!(peg.address.starts_with("bcrt1q") && peg.threshold == 3 && peg.keys.len() == 4, "{peg:?}");

    // A non-member cannot attest.
    let mut outsider = Wallet::load(&client, user_key(0)?).await?;
    let msg = Msg::AttestDeposit(MsgAttestDeposit { attester: outsider.address(), facts: facts.clone() });
    let refused = client.broadcast_sync(outsider.sign_fee_exempt(&[msg])?).await?;
    assert_eq!(refused.tx_code(), Some(TxCode::Unauthorized), "{}", refused.log);

    // Below quorum: attested, not minted — and repeating an attestation does not help.
    for member in [0, 1, 1] {
        let included = attest(&client, member, &facts).await?;
        assert_eq!(included.code, 0, "{}", included.log);
    }
    let record: DepositRecord = client.query(&path, None).await?.ok_or("no deposit record")?;
    assert_eq!((record.status, record.attestations.len()), (DepositStatus::Pending, 2));
    assert_eq!(balance(&client, &recipient, &Denom::sat()).await?, 0);

    // The third member's identical attestation mints.
    let expected = common::btc_minted(&client, 125_000).await?;
    let minted = attest(&client, 2, &facts).await?;
    assert!(minted.events.iter().any(|(kind, _)| kind == ferry_types::event::DEPOSIT_MINTED), "{:?}", minted.events);
    assert_eq!(balance(&client, &recipient, &Denom::sat()).await?, expected, "the amount less its prepaid spending");

    // A fourth attestation changes nothing: minted exactly once.
    attest(&client, 3, &facts).await?;
    let other = network.client(3)?;
    other.wait_for_height(client.latest_height().await?, WAIT).await?;
    assert_eq!(balance(&other, &recipient, &Denom::sat()).await?, expected);
    let reserves: ReservesView = other.query(RESERVES_PATH, None).await?.ok_or("no reserves")?;
    let utxo = reserves.bitcoin_utxos.first().ok_or("no reserve utxo")?;
    assert_eq!((utxo.txid.as_str(), utxo.vout, utxo.amount), (facts.tx_id.as_str(), 0, Amount::new(125_000)));
    let ledger = reserves.assets.get(&Denom::sat()).ok_or("no sat ledger")?;
    assert_eq!(ledger.reserves, Amount::new(125_000));
    Ok(())
}
