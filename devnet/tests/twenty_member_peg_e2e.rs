//! A 20-member federation (threshold 14) pays a Bitcoin withdrawal on btcd run with
//! `--rejectnonstd`, the chain in the loop: the sidechain's own state machine (the node in
//! process, on its real store) mints a real payment to the 20-key peg on the members'
//! attestations, batches the user's withdrawal, prices and plans the release, verifies each of
//! the 14 members' per-input signatures as they arrive; the relayers' own assembly builds the
//! witness from the batch the chain answers; btcd relays and mines it and the user's address
//! receives the amount.
//!
//! The members are played by the test with their own keys (20 signer daemons would not fit the
//! 2-core machine); what they sign is the chain's sighashes, as `ferry-signer` signs them after
//! rebuilding the same transaction.

mod common;

use bitcoin::secp256k1::{SECP256K1, SecretKey};
use bitcoin::{Amount as Sats, TxOut};
use common::{TestResult, serial};
use ferry_chain::metrics::Metrics;
use ferry_chain::{Node, Store};
use ferry_client::Wallet;
use ferry_devnet::btcd::{Btcd, RegtestWallet};
use ferry_types::genesis::Federation;
use ferry_types::msg::{MsgAttestDeposit, MsgSubmitSignatures, MsgWithdraw, ReleaseSignatures};
use ferry_types::peg::{BitcoinFederation, BitcoinNetwork, Peg};
use ferry_types::query::{BatchRelease, BatchStatus, BatchView};
use ferry_types::release::bitcoin::sign_input;
use ferry_types::{AccountKey, Amount, Coin, Denom, DepositFacts, GenesisAccount, GenesisState, Msg, ParentChain};

const CHAIN_ID: &str = "ferry-twenty";
const MEMBERS: usize = 20;
const THRESHOLD: u32 = 14;
const RESERVE: u64 = 2_000_000;
const WITHDRAW: u128 = 500_000;

struct InProcessChain {
    node: Node,
    height: u64,
    _dir: tempfile::TempDir,
}

impl InProcessChain {
    /// Runs the next block; every transaction must succeed.
    fn block(&mut self, txs: &[Vec<u8>]) -> TestResult {
        self.height += 1;
        let response = self.node.finalize_block(ferry_chain::in_process::finalize_block(self.height, txs)?)?;
        self.node.commit()?;
        if let Some(failed) = response.tx_results.iter().find(|result| result.code.is_err()) {
            return Err(format!("a transaction at height {} failed: {}", self.height, failed.log).into());
        }
        Ok(())
    }

    fn query<T: serde::de::DeserializeOwned>(&self, path: &str) -> TestResult<T> {
        let answer = self.node.query(tendermint::v0_38::abci::request::Query {
            data: Default::default(),
            path: path.to_owned(),
            height: tendermint::block::Height::from(0u32),
            prove: false,
        })?;
        if answer.code.is_err() {
            return Err(format!("query {path}: {}", answer.log).into());
        }
        Ok(serde_json::from_slice(&answer.value)?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twenty_member_federation_pays_a_bitcoin_withdrawal_on_btcd() -> TestResult {
    let _serial = serial().await;
    let mut funder = RegtestWallet::from_seed([0x20; 32])?;
    let btcd = Btcd::isolated("twenty", funder.address()).await?;
    btcd.mine(101).await?;
    let rpc = btcd.rpc();

    // The federation: 20 members, each with its own account and Bitcoin key.
    let accounts: Vec<AccountKey> =
        (0..MEMBERS).map(|i| AccountKey::from_seed(&format!("ferry-twenty/member/{i}"))).collect::<Result<_, _>>()?;
    let bitcoin: Vec<SecretKey> = (0..MEMBERS)
        .map(|i| SecretKey::from_slice(&[u8::try_from(i)? + 1; 32]).map_err(Into::into))
        .collect::<TestResult<_>>()?;
    let peg_federation = BitcoinFederation {
        network: BitcoinNetwork::Regtest,
        threshold: THRESHOLD,
        keys: bitcoin.iter().map(|key| key.public_key(SECP256K1).to_string()).collect(),
    };
    let peg = Peg::new(&peg_federation)?;
    assert_eq!(peg.keys().len(), MEMBERS);
    let user_key = AccountKey::from_seed("ferry-twenty/user")?;
    let mut genesis = GenesisState {
        accounts: std::iter::once(user_key.address())
            .chain(accounts.iter().map(AccountKey::address))
            .map(|address| GenesisAccount { address })
            .collect(),
        federation: Federation {
            members: accounts.iter().map(AccountKey::address).collect(),
            attest_quorum: THRESHOLD,
            bitcoin: Some(peg_federation.clone()),
            epoch: 1,
            bls: None,
        },
        ..GenesisState::default()
    };
    genesis.params.withdrawals.batch_interval = 2;
    genesis.validate()?;
    let dir = tempfile::tempdir()?;
    let node = Node::new(Store::open(&dir.path().join("state.redb"))?, Metrics::new()?)?;
    node.init_chain(ferry_chain::in_process::init_chain(CHAIN_ID, serde_json::to_vec(&genesis)?)?)?;
    let mut chain = InProcessChain { node, height: 0, _dir: dir };
    let mut members: Vec<Wallet> = accounts
        .iter()
        .enumerate()
        .map(|(i, key)| Wallet::offline(key.clone(), CHAIN_ID, u64::try_from(i + 1).unwrap_or(u64::MAX), 0))
        .collect();
    let mut user = Wallet::offline(user_key.clone(), CHAIN_ID, 0, 0);

    // A real payment to the 20-key peg, attested by 14 members: minted once.
    let payment = TxOut { value: Sats::from_sat(RESERVE), script_pubkey: peg.script_pubkey() };
    let txid = funder.pay(&rpc, vec![payment]).await?;
    btcd.mine(1).await?;
    let facts = DepositFacts {
        chain: ParentChain::Bitcoin,
        tx_id: txid.to_string(),
        index: 0,
        asset: Denom::sat(),
        amount: Amount::new(u128::from(RESERVE)),
        recipient: user_key.address(),
        deposit_address: false,
        unattributed: None,
        peg_epoch: None,
    };
    let attestations = members
        .iter_mut()
        .take(THRESHOLD as usize)
        .map(|member| {
            let attest = Msg::AttestDeposit(MsgAttestDeposit { attester: member.address(), facts: facts.clone() });
            member.sign_fee_exempt(&[attest])
        })
        .collect::<Result<Vec<_>, _>>()?;
    chain.block(&attestations)?;
    let balances: ferry_types::query::BalancesView = chain.query(&format!("/balances/{}", user_key.address()))?;
    let minted = balances.balances.iter().find(|c| c.denom == Denom::sat()).map_or(0, |c| c.amount.get());
    // The deposit prepays the fee of spending its 20-key input later (into the fee pool).
    let prepaid = u128::from(RESERVE) - minted;
    assert!(minted < u128::from(RESERVE) && prepaid < 10_000, "minted {minted} of {RESERVE}");
    eprintln!("a 14-of-20 peg input's prepaid spending fee: {prepaid} sat");

    // The user withdraws to its own Bitcoin address.
    let destination = RegtestWallet::from_seed([0x21; 32])?;
    let withdraw = Msg::Withdraw(MsgWithdraw {
        sender: user_key.address(),
        asset: Denom::sat(),
        amount: Amount::new(WITHDRAW),
        destination: destination.address().to_string(),
        max_fee: Amount::new(50_000),
    });
    chain.block(&[user.sign(&Coin::new(100, Denom::sat()), &[withdraw])?])?;
    let mut batch: Option<BatchView> = None;
    for _ in 0..10 {
        chain.block(&[])?;
        if let Ok(view) = chain.query::<BatchView>("/batch/1") {
            batch = Some(view);
            break;
        }
    }
    let batch = batch.ok_or("no batch formed")?;
    let BatchRelease::Bitcoin(release) = &batch.batch.release else { return Err("not a Bitcoin batch".into()) };
    assert_eq!(batch.batch.status, BatchStatus::Signing);

    // 14 of the 20 members sign every input's sighash; the chain verifies each submission.
    let sighashes: Vec<[u8; 32]> = release
        .sighashes
        .iter()
        .map(|hex_text| Ok(hex::decode(hex_text)?.try_into().map_err(|_| "sighash length")?))
        .collect::<TestResult<_>>()?;
    let submissions = members
        .iter_mut()
        .zip(&bitcoin)
        .skip(MEMBERS - THRESHOLD as usize)
        .map(|(member, key)| {
            let ders = sighashes.iter().map(|sighash| sign_input(key, sighash)).collect();
            let submit = Msg::SubmitSignatures(MsgSubmitSignatures {
                signer: member.address(),
                batch: batch.batch.id,
                signatures: ReleaseSignatures::Bitcoin(ders),
            });
            member.sign_fee_exempt(&[submit])
        })
        .collect::<Result<Vec<_>, _>>()?;
    chain.block(&submissions)?;
    let signed: BatchView = chain.query("/batch/1")?;
    assert_eq!(signed.batch.status, BatchStatus::Signed);

    // The relayers' assembly; btcd (mainnet policy) relays and mines it.
    let federation: Federation = chain.query("/federation")?;
    let tx = ferry_relayer::bitcoin::release::signed_release(&signed.batch, &federation)?;
    let witness_script = tx.input[0].witness.last().ok_or("no witness")?;
    assert!(witness_script.len() > 16 * 34, "a 20-key script: {} bytes", witness_script.len());
    let sent = rpc.send_raw_transaction(&tx).await?;
    btcd.mine(1).await?;
    let confirmed = rpc.get_transaction_status(&sent).await?.ok_or("btcd does not know the release")?;
    assert!(confirmed.confirmations.unwrap_or(0) >= 1, "not mined: {:?}", confirmed.confirmations);
    let paid: u64 = tx
        .output
        .iter()
        .filter(|output| output.script_pubkey == destination.address().script_pubkey())
        .map(|output| output.value.to_sat())
        .sum();
    // The user pays its share of the release's miner fee, within the budget it gave.
    let fee_share = WITHDRAW - u128::from(paid);
    assert!(fee_share > 0 && fee_share <= 50_000, "paid {paid} of {WITHDRAW}");
    let inputs = RESERVE;
    let outputs: u64 = tx.output.iter().map(|output| output.value.to_sat()).sum();
    let change: u64 =
        tx.output.iter().filter(|output| output.script_pubkey == peg.script_pubkey()).map(|o| o.value.to_sat()).sum();
    eprintln!(
        "14-of-20 release: {} vB, miner fee {} sat, the user's share {fee_share} sat, change to the peg {change} sat",
        tx.vsize(),
        inputs - outputs
    );
    assert!(change > 0 && change < inputs, "the rest returns to the peg");
    Ok(())
}
