//! The federation's live parts over the real sidechain: dealer-free key generation among the
//! signer daemons, the hand-over to each new federation on both parent chains, and heartbeats
//! showing who is online.
//!
//! The whole system runs (`devnet::system`: 4 validators, 4 relayers, 4 signer daemons,
//! PostgreSQL, btcd, anvil). Each daemon registers its signer keys on its first round; three
//! members propose the next federation; the daemons run the DKG through the chain; the chain
//! drives the hand-over. Three sessions, one system:
//!
//! 1. **Honest**: all four take part (one daemon restarted between dealing and confirming); the
//!    key forms; each member's share — recomputed from the public transcript with that member's
//!    own encryption secret — is its public share of the group key, and a threshold of them signs
//!    for the group key; with one member's secret, no other member's share can be recovered from
//!    the transcript. **Hand-over**: the daemons sign the vault's rotation with the genesis key
//!    and the relayers deliver it to anvil (the vault then trusts the new key and epoch); they
//!    sign the migration of the Bitcoin reserves to the new peg and btcd mines it; the
//!    federation switches. Then a Bitcoin and an Ethereum withdrawal are paid with the new keys
//!    (the BLS shares nobody dealt), and the ledger matches btcd.
//! 2. **A lying dealer**: member 3's daemon is stopped and the test plays member 3, dealing
//!    member 1 a share off its polynomial. Member 1's daemon complains, the chain convicts member
//!    3, and the key forms from the other three daemons; the federation hands over to them.
//! 3. **A silent member**: member 3 stays stopped; it is dropped after the dealing phase's
//!    timeout and the key forms without it; the federation hands over again.
//!
//! Governance: two members' identical parameter proposals change nothing; the third schedules
//! the change, which takes effect at the stated height (here: counting a member live over more
//! rounds, which makes the stopped member 3 live again). `ferry federation` and
//! `ferry federation proposals` show all of it.
//!
//! Heartbeats: every daemon answers the chain's heartbeat rounds (all four are live at first,
//! and again with their new shares after the hand-over); once member 3's daemon is stopped it is
//! reported not live after its missed rounds — in `/federation/liveness`, the chain's gauges, and
//! both liveness alerts firing in Prometheus.

mod common;

use common::cli::User;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestResult, WAIT, metric, serial, wait_until};
use ferry_client::FerryClient;
use ferry_devnet::accounts;
use ferry_devnet::system::System;
use ferry_signer::dkg::encryption_key;
use ferry_signer::duty::post_duty;
use ferry_types::dkg::{self, Polynomial, Scalar};
use ferry_types::genesis::Federation;
use ferry_types::msg::federation::{MsgDkgDeal, MsgProposeFederation, MsgProposeParams};
use ferry_types::query::federation::{
    DKG_PATH, DkgDealings, DkgFaultKind, DkgPhase, DkgSession, HANDOVER_PATH, Handover, LIVENESS_PATH, LivenessView,
    PARAMS_PROPOSALS_PATH, ParamsProposals, SIGNER_KEYS_PATH, SignerKeys,
};
use ferry_types::query::{BatchRelease, BatchView, BtcExitStatus, EXIT_BTC_PATH, ExitStanding, WithdrawalStatus};
use ferry_types::release::bls;
use ferry_types::{Address, Denom, Msg};

/// Longest a session may take here (phases of 20 blocks of 300 ms, restarts included).
const SESSION_WAIT: Duration = Duration::from_secs(120);
/// How often the waits mine a block on each parent chain.
const PARENT_BLOCK: Duration = Duration::from_millis(400);
const ONE_ETH: u128 = 1_000_000_000_000_000_000;
/// EIP-55's own example address.
const ETH_DESTINATION: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

async fn session(chain: &FerryClient, number: u64) -> TestResult<Option<DkgSession>> {
    Ok(chain.query(&format!("{DKG_PATH}/{number}"), None).await?)
}

/// Waits until session `number` satisfies `done`, returning it.
async fn wait_for_session(
    chain: &FerryClient,
    number: u64,
    what: &str,
    done: impl Fn(&DkgSession) -> bool,
) -> TestResult<DkgSession> {
    let waited = wait_until(&format!("session {number}: {what}"), SESSION_WAIT, || async {
        Ok(session(chain, number).await?.filter(|found| done(found)))
    })
    .await;
    match waited {
        Ok(found) => Ok(found),
        Err(error) => Err(format!("{error}; last seen {:?}", session(chain, number).await?).into()),
    }
}

async fn propose(chain: &FerryClient, members: &[usize], threshold: u32) -> TestResult {
    let accounts_of: Vec<Address> =
        members.iter().map(|&i| accounts::member_key(i).map(|key| key.address())).collect::<Result<_, _>>()?;
    for proposer in 0..3 {
        let key = accounts::member_key(proposer)?;
        let msg = MsgProposeFederation { member: key.address(), members: accounts_of.clone(), threshold };
        post_duty(chain, &key, &Msg::ProposeFederation(msg)).await.map_err(|e| format!("proposal: {e}"))?;
    }
    Ok(())
}

/// Member `member`'s final share of `session`, from the transcript and its own secrets.
async fn share_of(chain: &FerryClient, session: &DkgSession, member: usize) -> TestResult<Option<Scalar>> {
    let dealings: DkgDealings =
        chain.query(&format!("{DKG_PATH}/{}/dealings", session.session), None).await?.ok_or("no dealings")?;
    let account = accounts::member_key(member)?.address();
    let position = u32::try_from(session.position(&account).ok_or("not a participant")?)?;
    let key = encryption_key(&accounts::member_secrets(member)?);
    Ok(session.final_share(&dealings, position, &key)?)
}

/// The completed `session`'s key: every participant's share matches its public share, a
/// threshold of them signs for the group key, and one member's secret opens no other's share.
async fn check_key(chain: &FerryClient, session: &DkgSession, members: &[usize]) -> TestResult {
    let set_text = session.public_key_set.clone().ok_or("the session formed no key")?;
    let set = bls::decode_public_key_set(&set_text)?;
    let expected: Vec<Address> =
        members.iter().map(|&i| accounts::member_key(i).map(|key| key.address())).collect::<Result<_, _>>()?;
    let participants: Vec<Address> = session.participants.iter().map(|p| p.account).collect();
    assert_eq!(participants, expected);
    let message = b"a release payload";
    let mut signature_shares = BTreeMap::new();
    for (position, &member) in members.iter().enumerate() {
        let share = share_of(chain, session, member).await?.ok_or("a member cannot compute its share")?;
        let secret = dkg::secret_key_share(&share).ok_or("share conversion")?;
        assert_eq!(secret.public_key_share(), set.public_key_share(position as u64), "member {member}'s share");
        signature_shares.insert(position as u64, bls::sign_share(&secret, message));
    }
    let signature = bls::combine(&set, &signature_shares, message)?;
    assert!(bls::verify_signature(&set.public_key(), &signature, message));
    // Member 0's secrets and the whole transcript give no other member's share.
    let dealings: DkgDealings =
        chain.query(&format!("{DKG_PATH}/{}/dealings", session.session), None).await?.ok_or("no dealings")?;
    let key0 = encryption_key(&accounts::member_secrets(members[0])?);
    for position in 1..members.len() {
        assert_eq!(session.final_share(&dealings, u32::try_from(position)?, &key0)?, None);
    }
    Ok(())
}

/// User 0 deposits 1,000,000 sat and one ether (reserves for a hand-over to move); returns its key.
async fn deposit_reserves(system: &mut System) -> TestResult<ferry_types::AccountKey> {
    let user_key = accounts::user_key(0)?;
    let user = user_key.address();
    let txid = system.deposit_btc(&user, 1_000_000).await?;
    system.wait_for_deposit(&txid, 0, PARENT_BLOCK, SESSION_WAIT).await?.minted_amount.ok_or("not minted")?;
    system.parents.anvil.deposit_eth(&user, ferry_parent_chains::ethereum::U256::from(ONE_ETH)).await?;
    system.wait_for_balance(&user, &Denom::wei(), ONE_ETH, PARENT_BLOCK, SESSION_WAIT).await?;
    Ok(user_key)
}

/// `from` sends 1,000 sat to `to` paying a 30,000 sat fee: collected fees pay what deposits did
/// not prepay of a migration (its transaction's overhead), as traffic on a live chain does.
async fn send_paying_a_generous_fee(chain: &FerryClient, from: &ferry_types::AccountKey, to: Address) -> TestResult {
    let mut wallet = ferry_client::Wallet::load(chain, from.clone()).await?;
    let send = Msg::Send(ferry_types::msg::MsgSend {
        from: from.address(),
        to,
        amount: vec![ferry_types::Coin::new(1_000, Denom::sat())],
    });
    let paid = wallet.submit(chain, &ferry_types::Coin::new(30_000, Denom::sat()), &[send], SESSION_WAIT).await?;
    assert_eq!(paid.code, 0, "{}", paid.log);
    Ok(())
}

/// Waits until the federation switched to `epoch` (the hand-over done on both parent chains),
/// mining a block on each parent chain meanwhile so the rotation and migrations confirm.
async fn wait_for_switch(system: &System, epoch: u64) -> TestResult<Handover> {
    let chain = system.client(0)?;
    let path = format!("{HANDOVER_PATH}/{epoch}");
    let waited = wait_until(&format!("the hand-over to epoch {epoch}"), SESSION_WAIT, || async {
        system.mine_parents(1).await?;
        tokio::time::sleep(PARENT_BLOCK).await;
        let handover: Option<Handover> = chain.query(&path, None).await?;
        Ok(handover.filter(|handover| handover.switched.is_some()))
    })
    .await;
    match waited {
        Ok(handover) => Ok(handover),
        Err(error) => {
            for (member, signer) in system.signers.iter().enumerate() {
                eprintln!("signer {member}:\n{}", common::log_tail(&signer.log_path(), 15));
            }
            for (member, relayer) in system.relayers.iter().enumerate() {
                eprintln!("relayer {member}:\n{}", common::log_tail(&relayer.dir().join("relayer.log"), 15));
            }
            Err(format!("{error}; last seen {:?}", chain.query::<Handover>(&path, None).await?).into())
        }
    }
}

/// The Bitcoin exit through `handover`: the first migration moved every input of the disbursal
/// `before` (covering until then, now superseded) and was signed only after its own disbursal of
/// the migrated output, which the next federation's members signed at the next peg; that one
/// covered the reserve from the migration on, and its witnesses assemble (a relayer could
/// broadcast it).
async fn check_exit_through(system: &System, handover: &Handover, before: u64) -> TestResult {
    let chain = system.client(0)?;
    let batch = async |id: u64| -> TestResult<BatchView> {
        Ok(chain.query::<BatchView>(&format!("/batch/{id}"), None).await?.ok_or_else(|| format!("no batch {id}"))?)
    };
    let BatchRelease::BitcoinExit(old) = batch(before).await?.batch.release else {
        return Err("not a disbursal".into());
    };
    assert_eq!(old.standing, ExitStanding::Superseded, "the migration killed the disbursal of the old peg");
    let first = *handover.migration_batches.first().ok_or("no migration")?;
    let migration = batch(first).await?.batch;
    let BatchRelease::Bitcoin(release) = &migration.release else { return Err("not a Bitcoin batch".into()) };
    for input in &old.basis.inputs {
        let moved = release.plan.inputs().iter().any(|spent| spent.txid == input.txid && spent.vout == input.vout);
        assert!(moved, "the first migration moves {}:{}, which the old disbursal paid out", input.txid, input.vout);
    }
    let status: BtcExitStatus = chain.query(EXIT_BTC_PATH, None).await?.ok_or("no /exit/btc")?;
    // Derived with the migration (the next batch id), or with a replacement version of it.
    let mut own = None;
    for id in (first + 1)..=(first + 20) {
        if let Ok(view) = batch(id).await
            && let BatchRelease::BitcoinExit(exit) = &view.batch.release
            && exit.follows.batch == first
            && exit.standing != ExitStanding::Superseded
        {
            own = Some((view.batch.clone(), exit.clone()));
        }
    }
    let (own, exit) = own.ok_or_else(|| format!("no live disbursal follows migration {first}; {status:?}"))?;
    assert_eq!(exit.epoch, handover.epoch, "the next federation signs the migration's disbursal");
    let signed_at = own.signed_height.ok_or("the migration's disbursal is unsigned")?;
    assert!(signed_at <= migration.signed_height.ok_or("the migration is unsigned")?, "signed before the migration");
    let next: Federation = chain.query("/federation", None).await?.ok_or("no federation")?;
    assert_eq!(next.epoch, handover.epoch);
    assert!(own.signatures.keys().all(|signer| next.is_member(signer)), "only the next federation's members sign it");
    let disbursal = chain.signed_disbursal(own.id).await?;
    assert!(!disbursal.transactions.is_empty(), "it assembles with the next peg's witnesses");
    Ok(())
}

/// After a switch: the vault on anvil trusts the federation's key and epoch, every reserve UTXO
/// is unspent on btcd at the federation's peg and the ledger matches them, and every running
/// signer daemon signs for the new epoch.
async fn check_handed_over(system: &System, running: &[usize]) -> TestResult<Federation> {
    let chain = system.client(0)?;
    let federation: Federation = chain.query("/federation", None).await?.ok_or("no federation")?;
    let set = bls::decode_public_key_set(&federation.bls.as_ref().ok_or("no BLS key")?.public_key_set)?;
    let (epoch, key) = system.parents.anvil.wallet().federation(system.parents.anvil.vault()).await?;
    assert_eq!(epoch, federation.epoch, "the vault's epoch");
    assert_eq!(key, bls::eip2537_g1(&set.public_key()).to_vec(), "the vault's key is the generated one");
    let (_, reserves) = common::assert_bitcoin_reconciled(system).await?;
    let peg = ferry_types::peg::Peg::new(federation.bitcoin.as_ref().ok_or("no peg")?)?;
    for utxo in &reserves.bitcoin_utxos {
        let outpoint = bitcoin::OutPoint { txid: utxo.txid.parse()?, vout: utxo.vout };
        let output = system.parents.btcd.unspent_output(&outpoint).await?.ok_or("a reserve UTXO is spent")?;
        assert_eq!(output.script_pubkey, peg.script_pubkey(), "{outpoint} is at the new peg");
    }
    for &member in running {
        let url = system.signers[member].metrics_url();
        let expected = federation.epoch as f64;
        wait_until(&format!("signer {member} signs for epoch {}", federation.epoch), SESSION_WAIT, || async {
            let text = reqwest::get(&url).await?.text().await?;
            Ok((metric(&text, "ferry_signer_signing_epoch") == Some(expected)).then_some(()))
        })
        .await?;
    }
    Ok(federation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signer_daemons_generate_the_federation_key_without_a_dealer() -> TestResult {
    let _serial = serial().await;
    let mut system = System::isolated("dkg", 1).await?;
    let chain = system.client(0)?;

    // Every daemon registers its keys on its first round.
    for member in 0..4 {
        let account = accounts::member_key(member)?.address();
        let path = format!("{SIGNER_KEYS_PATH}{account}");
        let keys: SignerKeys =
            wait_until(&format!("member {member}'s signer registers its keys"), SESSION_WAIT, || async {
                Ok(chain.query(&path, None).await?)
            })
            .await?;
        let expected = encryption_key(&accounts::member_secrets(member)?).public();
        assert_eq!(keys.encryption_key, hex::encode(dkg::encode_point(&expected)));
    }

    // Every daemon answers heartbeats.
    let all_answered = wait_until("every member answers a heartbeat round", SESSION_WAIT, || async {
        let view: Option<LivenessView> = chain.query(LIVENESS_PATH, None).await?;
        Ok(view.filter(|v| v.members.iter().all(|m| m.last_round >= 1 && m.live)))
    })
    .await?;
    assert_eq!((all_answered.live, all_answered.threshold), (4, 3));

    // Reserves to hand over: a Bitcoin and an ether deposit by a user.
    let user_key = deposit_reserves(&mut system).await?;
    // Fees the chain collects pay what deposits did not prepay of a migration (its transaction's
    // overhead): the user pays a generous one, as traffic on a live chain does.
    send_paying_a_generous_fee(&chain, &user_key, accounts::member_key(0)?.address()).await?;

    // 1. Honest: four daemons. Member 2's daemon is restarted once everyone dealt: it keeps
    //    nothing but its keystore, and finds its share again in the chain's transcript.
    propose(&chain, &[0, 1, 2, 3], 3).await?;
    wait_for_session(&chain, 1, "everyone dealt", |s| s.phase == DkgPhase::Complaints).await?;
    system.signers[2].restart()?;
    let honest = wait_for_session(&chain, 1, "completion", |s| !s.phase.is_running()).await?;
    assert_eq!(honest.phase, DkgPhase::Complete, "{honest:?}");
    eprintln!("clean session: {} blocks", honest.finished.unwrap_or(0) - honest.started);
    let current: Federation = chain.query("/federation", None).await?.ok_or("no federation")?;
    assert_eq!((honest.attempt, honest.epoch), (1, current.epoch + 1));
    assert!(honest.faults.is_empty(), "{:?}", honest.faults);
    check_key(&chain, &honest, &[0, 1, 2, 3]).await?;
    for signer in &system.signers {
        // Each daemon shows the completed session from its next round on.
        let url = signer.metrics_url();
        wait_until("a signer's metrics show its confirmation and the completed session", SESSION_WAIT, || async {
            let text = reqwest::get(&url).await?.text().await?;
            let confirmed = metric(&text, r#"ferry_signer_dkg_steps_total{outcome="posted",step="confirm"}"#);
            let complete = metric(&text, r#"ferry_signer_dkg_phase{phase="complete"}"#);
            Ok((confirmed == Some(1.0) && complete == Some(1.0)).then_some(()))
        })
        .await?;
    }

    // The hand-over: the vault rotated to the new key, the reserves migrated to the new peg, the
    // federation switched; every daemon signs with its new share.
    let handover = wait_for_switch(&system, honest.epoch).await?;
    assert!(handover.rotated.is_some() && !handover.migration_batches.is_empty(), "{handover:?}");
    eprintln!("hand-over: {} blocks", handover.switched.unwrap_or(0) - handover.started);
    let switched = check_handed_over(&system, &[0, 1, 2, 3]).await?;
    assert_eq!((switched.epoch, switched.members.len()), (honest.epoch, 4));
    // The keys nobody dealt pay: a Bitcoin and an Ethereum withdrawal.
    let btc_to = ferry_devnet::btcd::RegtestWallet::from_seed([0x5e; 32])?.address().to_string();
    let (btc, _) = system.withdraw(&user_key, &Denom::sat(), 200_000, &btc_to).await?;
    let (eth, _) = system.withdraw(&user_key, &Denom::wei(), ONE_ETH / 2, ETH_DESTINATION).await?;
    for id in [btc, eth] {
        system.wait_for_withdrawal(id, WithdrawalStatus::Released, PARENT_BLOCK, SESSION_WAIT).await?;
    }
    common::assert_bitcoin_reconciled(&system).await?;
    // Every daemon answers heartbeats with its new share.
    let round = chain.query::<LivenessView>(LIVENESS_PATH, None).await?.and_then(|v| v.round).map_or(0, |r| r.round);
    wait_until("every member answers a heartbeat with its new share", SESSION_WAIT, || async {
        let view: Option<LivenessView> = chain.query(LIVENESS_PATH, None).await?;
        Ok(view.filter(|v| v.members.iter().all(|m| m.last_round > round && m.live)))
    })
    .await?;

    // Member 3's daemon stops.
    system.signers[3].kill();
    // Member 3 stopped answering heartbeats when its daemon stopped: not live, and the alerts fire.
    let member3 = accounts::member_key(3)?.address();
    let view = wait_until("member 3 reported not live", SESSION_WAIT, || async {
        let view: Option<LivenessView> = chain.query(LIVENESS_PATH, None).await?;
        Ok(view.filter(|v| v.members.iter().any(|m| m.account == member3 && !m.live)))
    })
    .await?;
    assert_eq!(view.live, 3, "{view:?}");
    assert!(view.members.iter().filter(|m| m.account != member3).all(|m| m.live), "{view:?}");
    let text = reqwest::get(system.network.validators()[0].app_metrics_url()).await?.text().await?;
    assert_eq!(metric(&text, &format!(r#"ferry_chain_member_live{{account="{member3}"}}"#)), Some(0.0), "{text}");
    assert_eq!(metric(&text, "ferry_chain_members_live"), Some(3.0), "{text}");
    let alerts = system
        .prometheus
        .wait_for_alerts(SESSION_WAIT, |alerts| {
            let firing = |name: &str| alerts.iter().any(|a| a.name() == name && a.is_firing());
            firing("FerryFederationLivenessLow")
                && alerts.iter().any(|a| {
                    a.name() == "FerryMemberNotLive"
                        && a.is_firing()
                        && a.labels.get("account") == Some(&member3.to_string())
                })
        })
        .await?;
    assert!(
        !alerts
            .iter()
            .any(|a| a.name() == "FerryMemberNotLive" && a.labels.get("account") != Some(&member3.to_string())),
        "only member 3 is reported: {alerts:?}"
    );
    let home = tempfile::tempdir()?;
    let user = User::of_system(&system, home.path(), 2)?;
    let shown = user.json(&["federation"])?;
    let members = shown["liveness"]["members"].as_array().ok_or("no liveness in `ferry federation`")?;
    assert_eq!(members.iter().filter(|m| m["live"] == false).count(), 1, "{shown}");
    assert_eq!(shown["key_generation"]["session"], 1, "{shown}");
    assert_eq!(shown["handover"]["epoch"], honest.epoch, "the hand-over that made the federation: {shown}");
    assert!(shown["handover"]["switched"].is_u64(), "{shown}");

    // Governance: live over 1,000 rounds instead of 3. Two of four proposals change nothing.
    let current: ferry_types::Params = chain.query("/params", None).await?.ok_or("no params")?;
    let mut next = current.clone();
    next.liveness.live_rounds = 1_000;
    let propose_params = |member: usize| {
        let next = next.clone();
        let chain = &chain;
        async move {
            let key = accounts::member_key(member)?;
            let msg = MsgProposeParams { member: key.address(), params: next };
            post_duty(chain, &key, &Msg::ProposeParams(msg)).await.map_err(|e| format!("params proposal: {e}"))?;
            TestResult::Ok(())
        }
    };
    propose_params(0).await?;
    propose_params(1).await?;
    let below: ParamsProposals = chain.query(PARAMS_PROPOSALS_PATH, None).await?.ok_or("no proposals")?;
    assert!(below.scheduled.is_none() && below.proposals.len() == 2, "{below:?}");
    let listed = user.json(&["federation", "proposals"])?;
    assert_eq!(listed["params"]["proposals"].as_array().map(Vec::len), Some(2), "{listed}");
    propose_params(2).await?;
    let accepted: ParamsProposals = chain.query(PARAMS_PROPOSALS_PATH, None).await?.ok_or("no proposals")?;
    let scheduled = accepted.scheduled.ok_or("the quorum scheduled nothing")?;
    assert_eq!(scheduled.effective, scheduled.accepted_at + current.governance.delay_blocks);
    chain.wait_for_height(scheduled.effective - 1, SESSION_WAIT).await?;
    let before: ferry_types::Params =
        chain.query("/params", Some(scheduled.effective - 2)).await?.ok_or("no params")?;
    assert_eq!(before.liveness.live_rounds, 3, "not before the stated height");
    let at: ferry_types::Params = chain.query("/params", Some(scheduled.effective - 1)).await?.ok_or("no params")?;
    assert_eq!(at.liveness.live_rounds, 1_000, "written for the block at the stated height");
    let view = wait_until("member 3 live again under the new parameters", SESSION_WAIT, || async {
        let view: Option<LivenessView> = chain.query(LIVENESS_PATH, None).await?;
        Ok(view.filter(|v| v.live == 4))
    })
    .await?;
    assert_eq!(view.live_rounds, 1_000);

    // 2. Member 3 lies: the test plays it, dealing member 1 a wrong share.
    propose(&chain, &[0, 1, 2, 3], 3).await?;
    let dealing = wait_for_session(&chain, 2, "the dealing phase", |s| s.phase == DkgPhase::Dealing).await?;
    let run = dealing.run();
    let liar = accounts::member_secrets(3)?;
    let liar_key = encryption_key(&liar);
    let keys = dealing.encryption_keys()?;
    let polynomial = Polynomial::from_uniform_bytes(&[[7u8; 64], [8u8; 64], [9u8; 64]]);
    let mut dealt = dkg::deal(&polynomial, run, 3, &liar_key, &keys);
    let pad = dkg::share_pad(run, 3, 1, &liar_key.pairwise_key(&keys[1]));
    let wrong = dkg::scalar_to_bytes(&(polynomial.share(1) + Scalar::one()));
    dealt.encrypted_shares[1] = std::array::from_fn(|i| wrong[i] ^ pad[i]);
    let msg = MsgDkgDeal {
        participant: liar.account(),
        run,
        commitment: dealt.commitment,
        proof: dealt.proof,
        encrypted_shares: dealt.encrypted_shares,
    };
    post_duty(&chain, liar.account_key(), &Msg::DkgDeal(msg)).await.map_err(|e| format!("the lying dealing: {e}"))?;
    let lied = wait_for_session(&chain, 2, "completion", |s| !s.phase.is_running()).await?;
    assert_eq!(lied.phase, DkgPhase::Complete, "{lied:?}");
    assert_eq!(lied.attempt, 2);
    let victim = accounts::member_key(1)?.address();
    assert!(
        matches!(&lied.faults[..], [fault] if fault.account == liar.account()
            && matches!(&fault.fault, DkgFaultKind::WrongShare { victim: v } if *v == victim)),
        "{:?}",
        lied.faults
    );
    check_key(&chain, &lied, &[0, 1, 2]).await?;

    let handover = wait_for_switch(&system, lied.epoch).await?;
    assert!(handover.rotated.is_some(), "{handover:?}");
    let switched = check_handed_over(&system, &[0, 1, 2]).await?;
    assert_eq!(switched.members.len(), 3);

    // 3. Member 3 silent: dropped after the timeout.
    propose(&chain, &[0, 1, 2, 3], 3).await?;
    let silent = wait_for_session(&chain, 3, "completion", |s| !s.phase.is_running()).await?;
    assert_eq!(silent.phase, DkgPhase::Complete, "{silent:?}");
    eprintln!("session with a silent member: {} blocks", silent.finished.unwrap_or(0) - silent.started);
    assert!(
        matches!(&silent.faults[..], [fault] if fault.account == liar.account()
            && matches!(&fault.fault, DkgFaultKind::Silent { phase } if phase == "dealing")),
        "{:?}",
        silent.faults
    );
    check_key(&chain, &silent, &[0, 1, 2]).await?;

    wait_for_switch(&system, silent.epoch).await?;
    let switched = check_handed_over(&system, &[0, 1, 2]).await?;
    assert_eq!(switched.members.len(), 3);

    // The operator's view: `ferry-signer federation status` of member 0.
    let output = std::process::Command::new(ferry_devnet::signer::binary()?)
        .arg("--json")
        .arg("--config")
        .arg(system.signers[0].config_path())
        .args(["federation", "status"])
        .output()?;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let status: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(status["dkg"]["session"], 3, "{status}");
    assert_eq!(status["dkg"]["phase"], "complete", "{status}");
    assert_eq!(status["handover"]["session"], 3, "the last hand-over came from session 3: {status}");
    assert!(status["handover"]["switched"].is_u64(), "{status}");
    assert_eq!(status["liveness"]["live"], 3, "the federation of members 0, 1 and 2: {status}");
    assert!(status["params"]["scheduled"].is_null(), "the change was applied: {status}");
    Ok(())
}

/// A candidate joins: a fifth signer daemon, whose keystore is in no genesis manifest, registers
/// its keys once its account exists (any transfer opens it); the four members propose the five; the key generation and the hand-over run; with
/// two of the old members' daemons stopped, the remaining two and the new member pay a Bitcoin
/// and an Ethereum withdrawal — the new member's registered Bitcoin key and generated BLS share
/// are among the three that sign.
///
/// The Bitcoin exit is on throughout: a refresh covers the first deposit before the hand-over; the
/// migration moves what that disbursal covers and is signed only after its own disbursal, signed
/// by the next federation's members at the next peg ([`check_exit_through`]). At the end every
/// daemon stops, and the disbursal covering the reserve — signed by the new member among three —
/// pays the user on btcd once its lock height passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_joins_through_a_hand_over_and_signs_with_keys_nobody_dealt() -> TestResult {
    let _serial = serial().await;
    // With the Bitcoin exit on: the reserve must have a signed disbursal through the hand-over.
    let mut system = System::isolated_with("join", 1, |spec| {
        spec.bitcoin_exit = Some(ferry_types::genesis::BitcoinExitParams::default());
    })
    .await?;
    let chain = system.client(0)?;
    let user_key = deposit_reserves(&mut system).await?;
    // The deposit is in no disbursal: a refresh covers it before the hand-over starts.
    let before = wait_until("a disbursal covers the deposit", SESSION_WAIT, || async {
        system.mine_parents(1).await?;
        tokio::time::sleep(PARENT_BLOCK).await;
        let status: BtcExitStatus = chain.query(EXIT_BTC_PATH, None).await?.ok_or("no /exit/btc")?;
        Ok(status.covering)
    })
    .await?;
    // The candidate's account opens with a first transfer to it (the user pays a generous fee:
    // collected fees pay what deposits did not prepay of the migration).
    let candidate = system.start_candidate_signer(77).await?;
    send_paying_a_generous_fee(&chain, &user_key, candidate).await?;
    let path = format!("{SIGNER_KEYS_PATH}{candidate}");
    let registered = wait_until("the candidate's daemon registers its keys", WAIT, || async {
        Ok(chain.query::<SignerKeys>(&path, None).await?)
    })
    .await;
    if let Err(error) = registered {
        eprintln!("candidate:\n{}", common::log_tail(&system.signers[4].log_path(), 20));
        return Err(error);
    }
    let mut members: Vec<Address> =
        (0..4).map(|i| accounts::member_key(i).map(|key| key.address())).collect::<Result<_, _>>()?;
    members.push(candidate);
    let mut proposed_at = 0;
    for proposer in 0..3 {
        let key = accounts::member_key(proposer)?;
        let msg = MsgProposeFederation { member: key.address(), members: members.clone(), threshold: 3 };
        let (_, height) =
            post_duty(&chain, &key, &Msg::ProposeFederation(msg)).await.map_err(|e| format!("proposal: {e}"))?;
        proposed_at = proposed_at.max(height);
    }
    let session = wait_for_session(&chain, 1, "completion", |s| !s.phase.is_running()).await?;
    assert_eq!(session.phase, DkgPhase::Complete, "{session:?}");
    assert_eq!(session.participants.len(), 5);
    let handover = wait_for_switch(&system, session.epoch).await?;
    let switched_at = handover.switched.unwrap_or(0);
    eprintln!(
        "4 → 5: key generation {} blocks, hand-over {} blocks, proposal to both chains attested {} blocks",
        session.finished.unwrap_or(0) - session.started,
        switched_at - handover.started,
        switched_at - proposed_at
    );
    let switched = check_handed_over(&system, &[0, 1, 2, 3, 4]).await?;
    assert_eq!(switched.members, members);
    check_exit_through(&system, &handover, before).await?;

    // A wallet pays the old peg it saved, within its grace: minted, then swept to the new peg by
    // the retired federation's signers.
    let retired_epoch = session.epoch - 1;
    let retired: Federation =
        chain.query(&format!("/federation/epoch/{retired_epoch}"), None).await?.ok_or("no retired federation")?;
    let old_peg = ferry_types::peg::Peg::new(retired.bitcoin.as_ref().ok_or("no old peg")?)?;
    let user = user_key.address();
    let late = system.pay_pegs(&user, &[(&old_peg, 300_000)]).await?;
    let record = system.wait_for_deposit(&late, 0, PARENT_BLOCK, SESSION_WAIT).await?;
    assert!(record.minted_amount.is_some(), "a deposit to the old peg within its grace mints: {record:?}");
    let first_attested = record.first_attested_height;
    assert!(first_attested <= switched_at + ferry_types::Params::default().deposits.old_peg_grace_blocks);
    let swept = wait_until("the old peg's deposit swept to the new peg", SESSION_WAIT, || async {
        system.mine_parents(1).await?;
        let reserves: ferry_types::query::ReservesView = chain.query("/reserves", None).await?.ok_or("no reserves")?;
        let done =
            reserves.bitcoin_utxos.iter().all(|utxo| utxo.retired_epoch.is_none() && utxo.txid != late.to_string());
        Ok(done.then_some(reserves))
    })
    .await;
    if let Err(error) = swept {
        for (member, signer) in system.signers.iter().enumerate() {
            eprintln!("signer {member}:\n{}", common::log_tail(&signer.log_path(), 15));
        }
        let app_log = std::fs::read_to_string(system.network.validators()[0].home.join("app.log")).unwrap_or_default();
        let about: Vec<&str> =
            app_log.lines().filter(|line| line.contains("sweep") || line.contains("retired")).collect();
        eprintln!("validator 0 on sweeps:\n{}", about[about.len().saturating_sub(10)..].join("\n"));
        let pending: serde_json::Value = chain.query("/batches/pending", None).await?.unwrap_or_default();
        let reserves: serde_json::Value = chain.query("/reserves", None).await?.unwrap_or_default();
        eprintln!("pending: {pending}\nreserves: {reserves}");
        return Err(error);
    }
    check_handed_over(&system, &[0, 1, 2, 3, 4]).await?;

    // Only members 2, 3 and the new member 4 sign from here.
    system.signers[0].kill();
    system.signers[1].kill();
    let btc_to = ferry_devnet::btcd::RegtestWallet::from_seed([0x6e; 32])?.address().to_string();
    let (btc, _) = system.withdraw(&user_key, &Denom::sat(), 200_000, &btc_to).await?;
    let (eth, _) = system.withdraw(&user_key, &Denom::wei(), ONE_ETH / 4, ETH_DESTINATION).await?;
    for id in [btc, eth] {
        let view = system.wait_for_withdrawal(id, WithdrawalStatus::Released, PARENT_BLOCK, SESSION_WAIT).await?;
        let batch = view.withdrawal.batch.ok_or("no batch")?;
        let signed: ferry_types::query::BatchView =
            chain.query(&format!("/batch/{batch}"), None).await?.ok_or("no batch record")?;
        // The signatures of the version that paid (a Bitcoin release may have been replaced
        // after an earlier version confirmed).
        let released = signed.batch.release_tx.as_deref();
        let signers: Vec<Address> = match &signed.batch.release {
            ferry_types::query::BatchRelease::Bitcoin(release) if released != Some(release.txid.as_str()) => release
                .superseded
                .iter()
                .find(|version| Some(version.txid.as_str()) == released)
                .map(|version| version.signatures.keys().copied().collect())
                .unwrap_or_default(),
            _ => signed.batch.signatures.keys().copied().collect(),
        };
        assert!(signers.contains(&candidate), "the new member signed batch {batch}'s paying version: {signed:?}");
    }

    // After the grace a payment to the old peg is not minted; one to the new peg in the same
    // transaction is (relayers scan a transaction's outputs together, so once it minted the
    // old peg's was seen and refused).
    let grace_until = switched_at + ferry_types::Params::default().deposits.old_peg_grace_blocks;
    chain.wait_for_height(grace_until + 1, SESSION_WAIT).await?;
    let new_peg = ferry_types::peg::Peg::new(switched.bitcoin.as_ref().ok_or("no peg")?)?;
    let both = system.pay_pegs(&user, &[(&old_peg, 200_000), (&new_peg, 100_000)]).await?;
    let minted = system.wait_for_deposit(&both, 1, PARENT_BLOCK, SESSION_WAIT).await?;
    assert!(minted.minted_amount.is_some(), "{minted:?}");
    let refused: Option<ferry_types::deposit_record::DepositRecord> =
        chain.query(&format!("/deposit/btc:{both}:0"), None).await?;
    assert!(
        refused.as_ref().is_none_or(|record| record.minted_amount.is_none()),
        "not minted after the grace: {refused:?}"
    );
    common::assert_bitcoin_reconciled(&system).await?;

    // The federation disappears: the disbursal covering the reserve — signed by members 2, 3 and
    // the new member, the only ones running when it formed — pays the user on btcd from its lock.
    for signer in &mut system.signers {
        signer.kill();
    }
    let covering = wait_until("the reserve's last move settled", SESSION_WAIT, || async {
        system.mine_parents(1).await?;
        let pending: ferry_types::query::PendingBatchesView =
            chain.query("/batches/pending", None).await?.ok_or("no pending batches")?;
        let moving = pending.batches.iter().any(|view| view.batch.status != ferry_types::query::BatchStatus::Signing);
        let status: BtcExitStatus = chain.query(EXIT_BTC_PATH, None).await?.ok_or("no /exit/btc")?;
        Ok(status.covering.filter(|_| !moving))
    })
    .await?;
    let view: BatchView = chain.query(&format!("/batch/{covering}"), None).await?.ok_or("no disbursal")?;
    assert!(view.batch.signatures.contains_key(&candidate), "the new member signed the covering disbursal");
    let disbursal = chain.signed_disbursal(covering).await?;
    let payout = disbursal
        .payouts
        .iter()
        .find(|payout| payout.claimant == ferry_types::release::exit::Claimant::Holder(user))
        .ok_or("the user is not paid")?;
    let tip = system.parents.btcd.rpc().get_block_count().await?;
    system.parents.btcd.mine(u32::try_from(u64::from(disbursal.lock_height).saturating_sub(tip))?).await?;
    let outpoint = bitcoin::OutPoint { txid: payout.txid.parse()?, vout: payout.vout };
    let paid = wait_until("the disbursal pays the user", SESSION_WAIT, || async {
        // A relayer broadcasts it too; whichever copy arrives first counts.
        for tx in disbursal.decoded()? {
            let _ = system.parents.btcd.rpc().send_raw_transaction(&tx).await;
        }
        system.parents.btcd.mine(1).await?;
        Ok(system.parents.btcd.unspent_output(&outpoint).await?)
    })
    .await?;
    assert_eq!(u128::from(paid.value.to_sat()), payout.paid.get());
    assert_eq!(hex::encode(paid.script_pubkey.as_bytes()), payout.script, "paid to the user's own key");
    Ok(())
}
