//! Federation changes in the state machine: signer key registration, proposals by quorum, and the
//! dealer-free key generation with complaints judged in consensus, silent members dropped and a
//! cap on restarts. Members here are played by the test with the real DKG cryptography
//! (`ferry_types::dkg`); the signer daemons run the same steps in `devnet/tests/dkg_e2e.rs`.

mod driver;

use std::collections::BTreeMap;

use driver::{Chain, Signer, TestResult, events_of, federation_genesis, funded, key, sat};
use ferry_app::TxOutcome;
use ferry_types::dkg::{self, EncryptionKey, Polynomial, Run, Scalar};
use ferry_types::event as ev;
use ferry_types::genesis::Federation;
use ferry_types::msg::federation::{
    MsgDkgComplain, MsgDkgConfirm, MsgDkgDeal, MsgProposeFederation, MsgRegisterSignerKeys,
};
use ferry_types::query::federation::{DkgDealings, DkgFaultKind, DkgPhase, DkgSession, FederationProposals};
use ferry_types::release::bls;
use ferry_types::{Address, Msg, TxCode};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

const PHASE_BLOCKS: u64 = 20;
/// Blocks after a hand-over during which the old peg's deposits still mint.
const OLD_PEG_GRACE: u64 = 60;

struct Member {
    signer: Signer,
    encryption: EncryptionKey,
    bitcoin: secp256k1::SecretKey,
}

impl Member {
    fn address(&self) -> Address {
        self.signer.address
    }

    fn tx(&self, chain: &Chain, msg: Msg) -> TestResult<Vec<u8>> {
        let sequence = chain.account(&self.address())?.map_or(0, |account| account.sequence);
        self.signer.sign_fee_exempt(sequence, &[msg])
    }
}

struct Harness {
    chain: Chain,
    members: Vec<Member>,
    rng: ChaCha20Rng,
    /// The current federation's BLS key set and its shares (member `i` holds share `i`), on a
    /// keyed chain.
    dealer: Option<threshold_crypto::SecretKeySet>,
}

fn uniform(rng: &mut ChaCha20Rng) -> [u8; 64] {
    let mut bytes = [0u8; 64];
    rng.fill_bytes(&mut bytes);
    bytes
}

fn one(chain: &mut Chain, tx: Vec<u8>) -> TestResult<TxOutcome> {
    chain.execute_block(&[tx])?.pop().ok_or_else(|| "no outcome".into())
}

fn ok(outcome: &TxOutcome) -> TestResult {
    if outcome.code == TxCode::Ok { Ok(()) } else { Err(format!("refused {:?}: {}", outcome.code, outcome.log).into()) }
}

impl Harness {
    /// A chain whose federation is the first `current` of `count` funded accounts (quorum 3),
    /// every account with registered signer keys.
    fn new(count: usize, current: usize) -> TestResult<Harness> {
        Harness::build(count, current, false)
    }

    /// As [`Harness::new`], on a chain whose current federation (threshold 3) holds a BLS key set
    /// dealt by the test, a Bitcoin peg of its members' registered keys and an Ethereum vault;
    /// accounts hold only ether (Bitcoin reserves come from attested deposits, which prepay the
    /// fee pool).
    fn keyed(count: usize, current: usize) -> TestResult<Harness> {
        Harness::build(count, current, true)
    }

    /// As [`Harness::keyed`], with the Bitcoin exit on (a 20-block lock).
    fn keyed_with_exit(count: usize, current: usize) -> TestResult<Harness> {
        Harness::build_with(count, current, true, |genesis| {
            genesis.params.withdrawals.bitcoin_exit = Some(ferry_types::genesis::BitcoinExitParams {
                lock_blocks: 20,
                refresh_margin_blocks: 5,
                ..Default::default()
            });
        })
    }

    fn build(count: usize, current: usize, keyed: bool) -> TestResult<Harness> {
        Harness::build_with(count, current, keyed, |_| {})
    }

    fn build_with(
        count: usize,
        current: usize,
        keyed: bool,
        tweak: impl FnOnce(&mut ferry_types::genesis::GenesisState),
    ) -> TestResult<Harness> {
        use ferry_types::genesis::{BlsFederation, EthereumBridge};
        use ferry_types::peg::{BitcoinFederation, BitcoinNetwork};
        let keys: Vec<_> = (0..count).map(|i| key(&format!("member-{i}"))).collect::<Result<_, _>>()?;
        let funds = if keyed { driver::wei(1_000_000) } else { sat(1_000_000) };
        let holdings: Vec<_> = keys.iter().map(|k| funded(&k.address(), std::slice::from_ref(&funds))).collect();
        let members: Vec<Address> = keys.iter().take(current).map(|k| k.address()).collect();
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let mut secrets = Vec::new();
        for _ in &keys {
            let encryption = EncryptionKey::from_secret(dkg::scalar_from_uniform_bytes(&uniform(&mut rng)));
            let mut bitcoin = [0u8; 32];
            rng.fill_bytes(&mut bitcoin);
            secrets.push((encryption, secp256k1::SecretKey::from_slice(&bitcoin)?));
        }
        let mut genesis = federation_genesis(&holdings, &members, 3);
        genesis.params.dkg.phase_blocks = PHASE_BLOCKS;
        genesis.params.deposits.old_peg_grace_blocks = OLD_PEG_GRACE;
        let dealer = keyed.then(|| threshold_crypto::SecretKeySet::random(2, &mut ChaCha20Rng::seed_from_u64(5)));
        if let Some(dealer) = &dealer {
            genesis.federation.epoch = 1;
            genesis.federation.bls =
                Some(BlsFederation { public_key_set: bls::encode_public_key_set(&dealer.public_keys()) });
            genesis.federation.bitcoin = Some(BitcoinFederation {
                network: BitcoinNetwork::Regtest,
                threshold: 3,
                keys: secrets
                    .iter()
                    .take(current)
                    .map(|(_, bitcoin)| {
                        hex::encode(
                            secp256k1::PublicKey::from_secret_key(secp256k1::global::SECP256K1, bitcoin).serialize(),
                        )
                    })
                    .collect(),
            });
            genesis.params.withdrawals.ethereum = Some(EthereumBridge::new(31_337, vault()));
        }
        tweak(&mut genesis);
        let mut chain = Chain::start_funded(&genesis, &holdings)?;
        let mut all = Vec::new();
        for (account_key, (encryption, bitcoin)) in keys.iter().zip(secrets) {
            let member = Member { signer: chain.signer(account_key)?, encryption, bitcoin };
            let register = MsgRegisterSignerKeys::new(member.address(), &member.encryption, &member.bitcoin);
            let tx = member.tx(&chain, Msg::RegisterSignerKeys(register))?;
            ok(&one(&mut chain, tx)?)?;
            all.push(member);
        }
        Ok(Harness { chain, members: all, rng, dealer })
    }

    fn propose(&mut self, by: usize, members: &[usize], threshold: u32) -> TestResult<TxOutcome> {
        let proposal = MsgProposeFederation {
            member: self.members[by].address(),
            members: members.iter().map(|i| self.members[*i].address()).collect(),
            threshold,
        };
        let tx = self.members[by].tx(&self.chain, Msg::ProposeFederation(proposal))?;
        one(&mut self.chain, tx)
    }

    fn session(&self) -> TestResult<DkgSession> {
        self.chain.query_json("/dkg")?.ok_or_else(|| "no session".into())
    }

    fn member_index(&self, account: &Address) -> usize {
        self.members.iter().position(|m| m.address() == *account).unwrap_or(usize::MAX)
    }

    /// Member `who`'s dealing for the running attempt; its polynomial is returned too.
    fn dealing(&mut self, who: usize) -> TestResult<(MsgDkgDeal, Polynomial)> {
        let session = self.session()?;
        let position = session.position(&self.members[who].address()).ok_or("not a participant")?;
        let run = Run { session: session.session, attempt: session.attempt };
        let keys = session.encryption_keys()?;
        let random: Vec<[u8; 64]> = (0..session.threshold).map(|_| uniform(&mut self.rng)).collect();
        let polynomial = Polynomial::from_uniform_bytes(&random);
        let position = u32::try_from(position)?;
        let dealing = dkg::deal(&polynomial, run, position, &self.members[who].encryption, &keys);
        let msg = MsgDkgDeal {
            participant: self.members[who].address(),
            run,
            commitment: dealing.commitment,
            proof: dealing.proof,
            encrypted_shares: dealing.encrypted_shares,
        };
        Ok((msg, polynomial))
    }

    fn send(&mut self, who: usize, msg: Msg) -> TestResult<TxOutcome> {
        let tx = self.members[who].tx(&self.chain, msg)?;
        one(&mut self.chain, tx)
    }

    fn deal_all(&mut self, who: &[usize]) -> TestResult {
        for &member in who {
            let (msg, _) = self.dealing(member)?;
            ok(&self.send(member, Msg::DkgDeal(msg))?)?;
        }
        Ok(())
    }

    /// Member `who`'s final share from the posted dealings (what its signer computes).
    fn final_share(&self, who: usize) -> TestResult<Scalar> {
        let session = self.session()?;
        let dealings: DkgDealings =
            self.chain.query_json(&format!("/dkg/{}/dealings", session.session))?.ok_or("no dealings")?;
        let me = u32::try_from(session.position(&self.members[who].address()).ok_or("not a participant")?)?;
        Ok(session.final_share(&dealings, me, &self.members[who].encryption)?.ok_or("a share is invalid")?)
    }

    fn confirm_all(&mut self, who: &[usize]) -> TestResult<BTreeMap<usize, Scalar>> {
        let session = self.session()?;
        let run = Run { session: session.session, attempt: session.attempt };
        let group = session.group_key()?.ok_or("no key set")?;
        let mut shares = BTreeMap::new();
        for &member in who {
            let share = self.final_share(member)?;
            let secret = dkg::secret_key_share(&share).ok_or("share conversion")?;
            let signature = dkg::sign_confirmation(&secret, run, &group);
            let msg = MsgDkgConfirm { participant: self.members[member].address(), run, signature };
            ok(&self.send(member, Msg::DkgConfirm(msg))?)?;
            shares.insert(member, share);
        }
        Ok(shares)
    }

    fn blocks_until_phase_end(&mut self) -> TestResult<Vec<ferry_app::Event>> {
        let ends = self.session()?.phase_ends;
        let mut events = Vec::new();
        while self.chain.height() < ends {
            events.extend(self.chain.empty_block()?.events);
        }
        Ok(events)
    }

    fn start(&mut self, members: &[usize]) -> TestResult {
        self.start_with(members, 3)
    }

    fn start_with(&mut self, members: &[usize], threshold: u32) -> TestResult {
        for by in 0..3 {
            ok(&self.propose(by, members, threshold)?)?;
        }
        Ok(())
    }
}

/// The key in `next`'s federation signs with any 3 of the members' final shares.
fn signs_with(next: &Federation, shares: &BTreeMap<usize, Scalar>, positions: &BTreeMap<usize, u64>) -> TestResult {
    let set = bls::decode_public_key_set(&next.bls.as_ref().ok_or("no bls key")?.public_key_set)?;
    let msg = b"release payload";
    let mut signature_shares = BTreeMap::new();
    for (member, share) in shares.iter().take(3) {
        let secret = dkg::secret_key_share(share).ok_or("share conversion")?;
        signature_shares.insert(positions[member], bls::sign_share(&secret, msg));
    }
    let signature = bls::combine(&set, &signature_shares, msg)?;
    assert!(bls::verify_signature(&set.public_key(), &signature, msg));
    Ok(())
}

#[test]
fn a_quorum_of_members_starts_a_key_generation_that_completes_with_a_working_key() -> TestResult {
    let mut h = Harness::new(5, 4)?;
    // Two proposals are below the quorum of 3; a different proposal does not count with them.
    ok(&h.propose(0, &[0, 1, 2, 3, 4], 3)?)?;
    ok(&h.propose(1, &[0, 1, 2, 3, 4], 4)?)?;
    ok(&h.propose(2, &[0, 1, 2, 3, 4], 3)?)?;
    assert!(h.chain.query_json::<DkgSession>("/dkg")?.is_none(), "no session below quorum");
    let open: FederationProposals = h.chain.query_json("/federation/proposals")?.ok_or("proposals")?;
    assert_eq!(open.proposals.len(), 3);
    // A candidate who is not a member cannot propose.
    let outcome = h.propose(4, &[0, 1, 2, 3, 4], 3)?;
    assert_eq!(outcome.code, TxCode::Unauthorized, "{}", outcome.log);
    ok(&h.propose(3, &[0, 1, 2, 3, 4], 3)?)?;
    let session = h.session()?;
    assert_eq!((session.session, session.attempt, session.epoch, session.threshold), (1, 1, 1, 3));
    assert_eq!(session.phase, DkgPhase::Dealing);
    assert_eq!(session.participants.len(), 5);

    // While it runs: no other proposal, no key change for a participant.
    let outcome = h.propose(0, &[0, 1, 2], 2)?;
    assert_eq!(outcome.code, TxCode::FederationChange, "{}", outcome.log);
    let again = MsgRegisterSignerKeys::new(
        h.members[1].address(),
        &h.members[1].encryption,
        &secp256k1::SecretKey::from_slice(&[7; 32])?,
    );
    let outcome = h.send(1, Msg::RegisterSignerKeys(again))?;
    assert_eq!(outcome.code, TxCode::FederationChange, "{}", outcome.log);

    h.deal_all(&[0, 1, 2, 3, 4])?;
    assert_eq!(h.session()?.phase, DkgPhase::Complaints, "everyone dealt: the complaints phase opens");
    let events = h.blocks_until_phase_end()?;
    assert_eq!(events_of(&events, ev::DKG_KEY_FORMED).len(), 1);
    let session = h.session()?;
    assert_eq!(session.phase, DkgPhase::Confirming);
    let shares = h.confirm_all(&[0, 1, 2, 3, 4])?;
    let session = h.session()?;
    assert_eq!(session.phase, DkgPhase::Complete);
    let next: Federation = h.chain.query_json("/federation/next")?.ok_or("no next federation")?;
    assert_eq!(next.epoch, 1);
    assert_eq!(next.members.len(), 5);
    assert_eq!(next.attest_quorum, 3);
    let positions = (0..5).map(|i| (i, i as u64)).collect();
    signs_with(&next, &shares, &positions)?;
    // The current federation is untouched until the hand-over.
    let current: Federation = h.chain.query_json("/federation")?.ok_or("federation")?;
    assert_eq!(current.epoch, 0);
    assert_eq!(current.members.len(), 4);
    Ok(())
}

#[test]
fn a_dealer_of_a_wrong_share_is_convicted_and_the_key_forms_without_it() -> TestResult {
    let mut h = Harness::new(4, 4)?;
    h.start(&[0, 1, 2, 3])?;
    h.deal_all(&[0, 1, 2])?;
    // Member 3 deals member 1 a share off its polynomial.
    let (mut msg, polynomial) = h.dealing(3)?;
    let run = msg.run;
    let victim_key = h.members[1].encryption.public();
    let pad = dkg::share_pad(run, 3, 1, &h.members[3].encryption.pairwise_key(&victim_key));
    let wrong = dkg::scalar_to_bytes(&(polynomial.share(1) + Scalar::one()));
    msg.encrypted_shares[1] = std::array::from_fn(|i| wrong[i] ^ pad[i]);
    ok(&h.send(3, Msg::DkgDeal(msg))?)?;

    // The victim sees its share does not match and complains, revealing the pairwise key.
    let dealer_key = h.members[3].encryption.public();
    let pairwise = h.members[1].encryption.pairwise_key(&dealer_key);
    let proof = h.members[1].encryption.prove_pairwise_key(&dealer_key, &pairwise, run);
    // A made-up key is refused outright.
    let made_up = h.members[2].encryption.pairwise_key(&dealer_key);
    let bad = MsgDkgComplain {
        participant: h.members[1].address(),
        run,
        dealer: h.members[3].address(),
        pairwise_key: made_up,
        proof,
    };
    let outcome = h.send(1, Msg::DkgComplain(bad))?;
    assert_eq!(outcome.code, TxCode::FederationChange, "{}", outcome.log);
    let complaint = MsgDkgComplain {
        participant: h.members[1].address(),
        run,
        dealer: h.members[3].address(),
        pairwise_key: pairwise,
        proof,
    };
    let outcome = h.send(1, Msg::DkgComplain(complaint))?;
    ok(&outcome)?;
    let faulty: Vec<_> = outcome
        .events
        .iter()
        .filter(|e| e.kind == ev::DKG_COMPLAINT)
        .flat_map(|e| e.attributes.iter())
        .filter(|(k, _)| *k == ev::FAULTY)
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(faulty, [h.members[3].address().to_string()]);

    let events = h.blocks_until_phase_end()?;
    assert_eq!(events_of(&events, ev::DKG_DROPPED).len(), 1);
    let session = h.session()?;
    assert_eq!(session.attempt, 2);
    assert_eq!(session.phase, DkgPhase::Dealing);
    assert_eq!(
        session.participants.iter().map(|p| p.account).collect::<Vec<_>>(),
        [0, 1, 2].map(|i| h.members[i].address())
    );
    assert!(
        matches!(&session.faults[0].fault, DkgFaultKind::WrongShare { victim } if *victim == h.members[1].address())
    );
    // The convicted dealer is out: its steps are refused.
    let outcome = h.dealing(3).map(|_| ());
    assert!(outcome.is_err(), "member 3 is no longer a participant");

    h.deal_all(&[0, 1, 2])?;
    h.blocks_until_phase_end()?;
    let shares = h.confirm_all(&[0, 1, 2])?;
    assert_eq!(h.session()?.phase, DkgPhase::Complete);
    let next: Federation = h.chain.query_json("/federation/next")?.ok_or("no next federation")?;
    assert_eq!(next.members, [0, 1, 2].map(|i| h.members[i].address()));
    signs_with(&next, &shares, &(0..3).map(|i| (i, i as u64)).collect())?;
    Ok(())
}

#[test]
fn a_false_complaint_convicts_the_accuser() -> TestResult {
    let mut h = Harness::new(4, 4)?;
    h.start(&[0, 1, 2, 3])?;
    h.deal_all(&[0, 1, 2, 3])?;
    let session = h.session()?;
    let run = Run { session: session.session, attempt: session.attempt };
    let dealer_key = h.members[0].encryption.public();
    let pairwise = h.members[2].encryption.pairwise_key(&dealer_key);
    let proof = h.members[2].encryption.prove_pairwise_key(&dealer_key, &pairwise, run);
    let complaint = MsgDkgComplain {
        participant: h.members[2].address(),
        run,
        dealer: h.members[0].address(),
        pairwise_key: pairwise,
        proof,
    };
    ok(&h.send(2, Msg::DkgComplain(complaint))?)?;
    let session = h.session()?;
    assert!(
        matches!(&session.faults[0].fault, DkgFaultKind::FalseComplaint { accused } if *accused == h.members[0].address())
    );
    assert_eq!(session.faults[0].account, h.members[2].address());
    h.blocks_until_phase_end()?;
    let session = h.session()?;
    assert_eq!(session.attempt, 2);
    assert_eq!(
        session.participants.iter().map(|p| p.account).collect::<Vec<_>>(),
        [0, 1, 3].map(|i| h.members[i].address())
    );
    Ok(())
}

#[test]
fn a_silent_member_is_dropped_after_the_timeout_and_the_rest_complete() -> TestResult {
    let mut h = Harness::new(4, 4)?;
    h.start(&[0, 1, 2, 3])?;
    h.deal_all(&[0, 1, 2])?;
    assert_eq!(h.session()?.phase, DkgPhase::Dealing, "one dealing missing");
    let events = h.blocks_until_phase_end()?;
    let dropped = events_of(&events, ev::DKG_DROPPED);
    assert_eq!(dropped.len(), 1);
    let session = h.session()?;
    assert_eq!(session.attempt, 2);
    assert!(matches!(&session.faults[0].fault, DkgFaultKind::Silent { phase } if phase == "dealing"));
    assert_eq!(session.faults[0].account, h.members[3].address());
    // A step for the old attempt is refused.
    let outcome = {
        let (mut msg, _) = h.dealing(0)?;
        msg.run.attempt = 1;
        h.send(0, Msg::DkgDeal(msg))?
    };
    assert_eq!(outcome.code, TxCode::FederationChange, "{}", outcome.log);
    h.deal_all(&[0, 1, 2])?;
    h.blocks_until_phase_end()?;
    // One silent in the confirming phase too would leave fewer than the threshold: the session fails.
    h.confirm_all(&[0, 1])?;
    let events = h.blocks_until_phase_end()?;
    assert_eq!(events_of(&events, ev::DKG_FAILED).len(), 1);
    let session = h.session()?;
    assert!(
        matches!(&session.phase, DkgPhase::Failed { reason } if reason.contains("2 participants remain")),
        "{:?}",
        session.phase
    );
    assert!(h.chain.query_json::<Federation>("/federation/next")?.is_none());
    // A failed session frees the way for a new proposal.
    ok(&h.propose(0, &[0, 1, 2], 2)?)?;
    Ok(())
}

#[test]
fn restarts_are_capped() -> TestResult {
    let mut h = Harness::new(7, 4)?;
    h.start_with(&[0, 1, 2, 3, 4, 5, 6], 4)?;
    // Each attempt loses one silent member; after the third, 4 remain (the threshold) but the
    // cap of 3 attempts is reached.
    for (attempt, silent) in [(1, 6), (2, 5), (3, 4)] {
        let session = h.session()?;
        assert_eq!(session.attempt, attempt);
        assert_eq!(session.phase, DkgPhase::Dealing);
        let active: Vec<usize> =
            session.participants.iter().map(|p| h.member_index(&p.account)).filter(|i| *i != silent).collect();
        h.deal_all(&active)?;
        h.blocks_until_phase_end()?;
    }
    let session = h.session()?;
    assert!(
        matches!(&session.phase, DkgPhase::Failed { reason } if reason.contains("attempt 3 of 3")),
        "{:?}",
        session.phase
    );
    assert_eq!(session.faults.len(), 3);
    Ok(())
}

#[test]
fn federation_changes_refuse_what_does_not_check() -> TestResult {
    let mut h = Harness::new(5, 4)?;
    // A proposed member without keys.
    let stranger = key("stranger")?.address();
    let proposal = MsgProposeFederation {
        member: h.members[0].address(),
        members: vec![h.members[0].address(), h.members[1].address(), stranger],
        threshold: 2,
    };
    let outcome = h.send(0, Msg::ProposeFederation(proposal))?;
    assert_eq!(outcome.code, TxCode::FederationChange);
    assert!(outcome.log.contains("no registered signer keys"), "{}", outcome.log);
    // A DKG step with no session running.
    let run = Run { session: 1, attempt: 1 };
    let fake = MsgDkgConfirm { participant: h.members[0].address(), run, signature: dummy_share() };
    let outcome = h.send(0, Msg::DkgConfirm(fake))?;
    assert_eq!(outcome.code, TxCode::Unauthorized, "{}", outcome.log);

    h.start(&[0, 1, 2, 3])?;
    // Member 4 is no participant.
    let (msg, _) = h.dealing(0)?;
    let outcome = h.send(4, Msg::DkgDeal(MsgDkgDeal { participant: h.members[4].address(), ..msg.clone() }))?;
    assert_eq!(outcome.code, TxCode::Unauthorized, "{}", outcome.log);
    // A dealing whose proof is for another position, or with too few shares, or a copied commitment.
    let (other, _) = h.dealing(1)?;
    let outcome = h.send(0, Msg::DkgDeal(MsgDkgDeal { proof: other.proof, ..msg.clone() }))?;
    assert_eq!(outcome.code, TxCode::FederationChange);
    assert!(outcome.log.contains("proof of knowledge"), "{}", outcome.log);
    let outcome =
        h.send(0, Msg::DkgDeal(MsgDkgDeal { encrypted_shares: msg.encrypted_shares[..3].to_vec(), ..msg.clone() }))?;
    assert_eq!(outcome.code, TxCode::FederationChange);
    let outcome = h.send(0, Msg::DkgDeal(MsgDkgDeal { commitment: other.commitment.clone(), ..msg.clone() }))?;
    assert_eq!(outcome.code, TxCode::FederationChange);
    ok(&h.send(0, Msg::DkgDeal(msg.clone()))?)?;
    let outcome = h.send(0, Msg::DkgDeal(msg))?;
    assert_eq!(outcome.code, TxCode::FederationChange, "a second dealing: {}", outcome.log);
    // A confirmation before the confirming phase.
    let session = h.session()?;
    let early = MsgDkgConfirm {
        participant: h.members[1].address(),
        run: Run { session: session.session, attempt: 1 },
        signature: dummy_share(),
    };
    let outcome = h.send(1, Msg::DkgConfirm(early))?;
    assert_eq!(outcome.code, TxCode::FederationChange);
    assert!(outcome.log.contains("phase dealing"), "{}", outcome.log);
    Ok(())
}

fn dummy_share() -> bls::SignatureShare {
    let set = threshold_crypto::SecretKeySet::random(1, &mut ChaCha20Rng::seed_from_u64(1));
    bls::sign_share(&set.secret_key_share(0u64), b"x")
}

/// A chain whose 4-member federation (quorum and thresholds 3) holds a BLS key set and a Bitcoin
/// peg, heartbeats every 10 blocks; the members' keys.
fn keyed_federation() -> TestResult<(Chain, Vec<Signer>, threshold_crypto::SecretKeySet, Vec<secp256k1::SecretKey>)> {
    use ferry_types::genesis::BlsFederation;
    use ferry_types::peg::{BitcoinFederation, BitcoinNetwork};
    let keys: Vec<_> = (0..4).map(|i| key(&format!("member-{i}"))).collect::<Result<_, _>>()?;
    let holdings: Vec<_> = keys.iter().map(|k| funded(&k.address(), &[sat(1_000_000)])).collect();
    let members: Vec<Address> = keys.iter().map(|k| k.address()).collect();
    let set = threshold_crypto::SecretKeySet::random(2, &mut ChaCha20Rng::seed_from_u64(4));
    let bitcoin: Vec<secp256k1::SecretKey> =
        (1..=4u8).map(|i| secp256k1::SecretKey::from_slice(&[i; 32])).collect::<Result<_, _>>()?;
    let mut genesis = federation_genesis(&holdings, &members, 3);
    genesis.federation.bitcoin = Some(BitcoinFederation {
        network: BitcoinNetwork::Regtest,
        threshold: 3,
        keys: bitcoin
            .iter()
            .map(|k| hex::encode(secp256k1::PublicKey::from_secret_key(secp256k1::global::SECP256K1, k).serialize()))
            .collect(),
    });
    genesis.federation.bls = Some(BlsFederation { public_key_set: bls::encode_public_key_set(&set.public_keys()) });
    genesis.params.liveness.heartbeat_interval = 10;
    genesis.params.liveness.live_rounds = 2;
    let chain = Chain::start_funded(&genesis, &holdings)?;
    let signers = keys.iter().map(|k| chain.signer(k)).collect::<Result<_, _>>()?;
    Ok((chain, signers, set, bitcoin))
}

fn heartbeat_of(
    chain: &Chain,
    member: usize,
    set: &threshold_crypto::SecretKeySet,
    bitcoin: &[secp256k1::SecretKey],
    signer: &Signer,
) -> TestResult<Msg> {
    use ferry_types::liveness;
    use ferry_types::msg::federation::MsgHeartbeat;
    use ferry_types::query::federation::LivenessView;
    let view: LivenessView = chain.query_json("/federation/liveness")?.ok_or("no liveness")?;
    let round = view.round.ok_or("no round open")?;
    let challenge: [u8; 32] = hex::decode(&round.challenge)?.try_into().map_err(|_| "challenge length")?;
    let message = liveness::heartbeat_message(chain.chain_id(), round.round, &challenge);
    Ok(Msg::Heartbeat(MsgHeartbeat {
        member: signer.address,
        round: round.round,
        bls_signature: Some(liveness::sign_share(&set.secret_key_share(member as u64), &message)),
        bitcoin_signature: Some(liveness::sign_bitcoin(&bitcoin[member], &message)),
    }))
}

#[test]
fn members_who_stop_answering_heartbeats_are_reported_not_live() -> TestResult {
    use ferry_types::query::federation::LivenessView;
    let (mut chain, signers, set, bitcoin) = keyed_federation()?;
    let liveness = |chain: &Chain| -> TestResult<LivenessView> {
        chain.query_json("/federation/liveness")?.ok_or_else(|| "no liveness".into())
    };
    assert!(liveness(&chain)?.round.is_none());
    assert_eq!(liveness(&chain)?.live, 4, "everyone counts as live before the first rounds");
    let send = |chain: &mut Chain, member: usize, msg: Msg| -> TestResult<TxOutcome> {
        let sequence = chain.account(&signers[member].address)?.map_or(0, |a| a.sequence);
        let tx = signers[member].sign_fee_exempt(sequence, &[msg])?;
        one(chain, tx)
    };
    // Three rounds; member 3 answers none of them, member 2 only the first.
    for round in 1..=3u64 {
        while liveness(&chain)?.round.as_ref().is_none_or(|r| r.round < round) {
            chain.empty_block()?;
        }
        for (member, signer) in signers.iter().enumerate().take(3) {
            if member == 2 && round > 1 {
                continue;
            }
            let msg = heartbeat_of(&chain, member, &set, &bitcoin, signer)?;
            ok(&send(&mut chain, member, msg)?)?;
        }
    }
    let view = liveness(&chain)?;
    assert_eq!(view.round.as_ref().map(|r| r.round), Some(3));
    let live: Vec<bool> = view.members.iter().map(|m| m.live).collect();
    assert_eq!(live, [true, true, false, false], "{view:?}");
    assert_eq!((view.live, view.threshold), (2, 3));
    assert_eq!(view.members[0].last_round, 3);
    assert_eq!(view.members[2].last_round, 1);

    // Wrong answers are refused, naming what is wrong.
    let right = heartbeat_of(&chain, 3, &set, &bitcoin, &signers[3])?;
    let Msg::Heartbeat(right) = right else { return Err("not a heartbeat".into()) };
    let mut stale = right.clone();
    stale.round = 2;
    let outcome = send(&mut chain, 3, Msg::Heartbeat(stale))?;
    assert_eq!(outcome.code, TxCode::FederationChange);
    assert!(outcome.log.contains("not the open heartbeat round"), "{}", outcome.log);
    let mut wrong_share = right.clone();
    wrong_share.bls_signature = Some(ferry_types::liveness::sign_share(&set.secret_key_share(0u64), b"other"));
    let outcome = send(&mut chain, 3, Msg::Heartbeat(wrong_share))?;
    assert!(outcome.log.contains("BLS share of member 3 does not verify"), "{}", outcome.log);
    let mut wrong_bitcoin = right.clone();
    wrong_bitcoin.bitcoin_signature = Some(ferry_types::liveness::sign_bitcoin(&bitcoin[0], b"other"));
    let outcome = send(&mut chain, 3, Msg::Heartbeat(wrong_bitcoin))?;
    assert!(outcome.log.contains("Bitcoin-key signature of member 3"), "{}", outcome.log);
    let mut no_bitcoin = right.clone();
    no_bitcoin.bitcoin_signature = None;
    assert_eq!(send(&mut chain, 3, Msg::Heartbeat(no_bitcoin))?.code, TxCode::FederationChange);
    // A release share over the heartbeat bytes is not a heartbeat.
    let view = liveness(&chain)?;
    let round = view.round.ok_or("round")?;
    let challenge: [u8; 32] = hex::decode(&round.challenge)?.try_into().map_err(|_| "len")?;
    let message = ferry_types::liveness::heartbeat_message(chain.chain_id(), round.round, &challenge);
    let mut release_share = right.clone();
    release_share.bls_signature = Some(bls::sign_share(&set.secret_key_share(3u64), &message));
    assert_eq!(send(&mut chain, 3, Msg::Heartbeat(release_share))?.code, TxCode::FederationChange);
    // The right answer makes member 3 live again.
    ok(&send(&mut chain, 3, Msg::Heartbeat(right))?)?;
    let view = liveness(&chain)?;
    assert!(view.members[3].live);
    assert_eq!(view.live, 3);
    Ok(())
}

#[test]
fn a_parameter_change_by_quorum_takes_effect_at_the_stated_height_and_not_below_quorum() -> TestResult {
    use ferry_types::Params;
    use ferry_types::msg::federation::MsgProposeParams;
    use ferry_types::query::federation::ParamsProposals;
    let mut h = Harness::new(4, 4)?;
    let current: Params = h.chain.query_json("/params")?.ok_or("no params")?;
    let delay = current.governance.delay_blocks;
    let mut next = current.clone();
    next.withdrawals.max_batch_items = current.withdrawals.max_batch_items + 7;
    next.liveness.live_rounds = 9;
    let propose = |h: &mut Harness, by: usize, params: &Params| -> TestResult<TxOutcome> {
        let msg = MsgProposeParams { member: h.members[by].address(), params: params.clone() };
        h.send(by, Msg::ProposeParams(msg))
    };
    // Two of four (quorum 3): nothing is scheduled, however long we wait.
    ok(&propose(&mut h, 0, &next)?)?;
    ok(&propose(&mut h, 1, &next)?)?;
    // A different proposal does not count with them.
    let mut other = next.clone();
    other.liveness.live_rounds = 8;
    ok(&propose(&mut h, 2, &other)?)?;
    for _ in 0..delay + 5 {
        h.chain.empty_block()?;
    }
    let record: ParamsProposals = h.chain.query_json("/params/proposals")?.ok_or("proposals")?;
    assert!(record.scheduled.is_none());
    assert_eq!(record.proposals.len(), 3);
    assert_eq!(h.chain.query_json::<Params>("/params")?.as_ref(), Some(&current));

    // Member 2 changes its mind: the third identical proposal schedules the change.
    let outcome = propose(&mut h, 2, &next)?;
    ok(&outcome)?;
    let accepted = h.chain.height();
    let record: ParamsProposals = h.chain.query_json("/params/proposals")?.ok_or("proposals")?;
    let scheduled = record.scheduled.ok_or("not scheduled")?;
    assert_eq!(scheduled.effective, accepted + delay);
    assert!(record.proposals.is_empty());
    while h.chain.height() < scheduled.effective - 2 {
        h.chain.empty_block()?;
    }
    assert_eq!(h.chain.query_json::<Params>("/params")?.as_ref(), Some(&current), "not before its height");
    let outcome = h.chain.empty_block()?;
    assert_eq!(h.chain.height(), scheduled.effective - 1);
    assert_eq!(events_of(&outcome.events, ev::PARAMS_CHANGED).len(), 1);
    // Written at the end of the block before, so the block at the stated height runs under it.
    assert_eq!(h.chain.query_json::<Params>("/params")?.as_ref(), Some(&next));
    let liveness: ferry_types::query::federation::LivenessView =
        h.chain.query_json("/federation/liveness")?.ok_or("liveness")?;
    assert_eq!(liveness.live_rounds, 9);

    // What a vote may not change.
    let mut vault = next.clone();
    vault.withdrawals.ethereum =
        Some(ferry_types::genesis::EthereumBridge::new(1, "0x00000000000000000000000000000000000000ff".parse()?));
    let outcome = propose(&mut h, 0, &vault)?;
    assert_eq!(outcome.code, TxCode::FederationChange);
    assert!(outcome.log.contains("vault binding"), "{}", outcome.log);
    // Invalid parameters do not even decode.
    let mut zero = next.clone();
    zero.reserves_interval = 0;
    let msg = Msg::ProposeParams(MsgProposeParams { member: h.members[0].address(), params: zero });
    let outcome = h.send(0, msg)?;
    assert_eq!(outcome.code, TxCode::InvalidMessage, "{}", outcome.log);
    assert!(outcome.log.contains("reserves_interval"), "{}", outcome.log);
    Ok(())
}

impl Harness {
    /// Every participant checks the shares posted to it, as a signer daemon does, and complains
    /// about each one that does not match its dealer's commitment.
    fn complain_about_bad_shares(&mut self) -> TestResult {
        let session = self.session()?;
        let run = session.run();
        let dealings: DkgDealings =
            self.chain.query_json(&format!("/dkg/{}/dealings", session.session))?.ok_or("no dealings")?;
        let keys = session.encryption_keys()?;
        for (position, participant) in session.participants.iter().enumerate() {
            let me = self.member_index(&participant.account);
            let encryption = self.members[me].encryption.clone();
            let received = session.received(&dealings, u32::try_from(position)?, &encryption)?;
            let bad: Vec<u32> = received
                .into_iter()
                .filter(|(_, received)| *received == dkg::Received::Invalid)
                .map(|(dealer, _)| dealer)
                .collect();
            for dealer in bad {
                let dealer_key = &keys[dealer as usize];
                let pairwise_key = encryption.pairwise_key(dealer_key);
                let proof = encryption.prove_pairwise_key(dealer_key, &pairwise_key, run);
                let dealer = session.participants[dealer as usize].account;
                let msg = MsgDkgComplain { participant: participant.account, run, dealer, pairwise_key, proof };
                ok(&self.send(me, Msg::DkgComplain(msg))?)?;
            }
        }
        Ok(())
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 6, ..proptest::prelude::ProptestConfig::default() })]

    /// For any federation size, majority threshold, lying dealer and victim: the victim's
    /// complaint convicts exactly the liar, the session restarts without it, and the key that
    /// forms from the others signs with any threshold of their shares.
    #[test]
    fn any_lying_dealer_is_convicted_and_the_rest_form_a_working_key(
        n in 4usize..=8,
        extra in 0usize..=8,
        liar_seed in 0usize..64,
        victim_seed in 0usize..64,
    ) {
        let outcome = (|| -> TestResult {
            let threshold = n / 2 + 1 + extra % (n - n / 2);
            // The restarted session needs the threshold among the n − 1 honest members.
            let threshold = threshold.min(n - 1);
            let liar = liar_seed % n;
            let victim = (liar + 1 + victim_seed % (n - 1)) % n;
            let mut h = Harness::new(n, 4)?;
            let all: Vec<usize> = (0..n).collect();
            h.start_with(&all, u32::try_from(threshold)?)?;
            let honest: Vec<usize> = all.iter().copied().filter(|i| *i != liar).collect();
            h.deal_all(&honest)?;
            let (mut msg, polynomial) = h.dealing(liar)?;
            let pad = dkg::share_pad(
                msg.run,
                u32::try_from(liar)?,
                u32::try_from(victim)?,
                &h.members[liar].encryption.pairwise_key(&h.members[victim].encryption.public()),
            );
            let wrong = dkg::scalar_to_bytes(&(polynomial.share(u32::try_from(victim)?) + Scalar::one()));
            msg.encrypted_shares[victim] = std::array::from_fn(|i| wrong[i] ^ pad[i]);
            ok(&h.send(liar, Msg::DkgDeal(msg))?)?;
            h.complain_about_bad_shares()?;
            let session = h.session()?;
            if session.faults.len() != 1 || session.faults[0].account != h.members[liar].address() {
                return Err(format!("expected only the liar convicted: {:?}", session.faults).into());
            }
            h.blocks_until_phase_end()?;
            h.deal_all(&honest)?;
            h.complain_about_bad_shares()?;
            h.blocks_until_phase_end()?;
            let shares = h.confirm_all(&honest)?;
            let session = h.session()?;
            if session.phase != DkgPhase::Complete {
                return Err(format!("not complete: {:?}", session.phase).into());
            }
            let next: Federation = h.chain.query_json("/federation/next")?.ok_or("no next federation")?;
            let set = bls::decode_public_key_set(&next.bls.as_ref().ok_or("no key")?.public_key_set)?;
            let message = b"payload";
            let signature_shares: BTreeMap<u64, bls::SignatureShare> = shares
                .iter()
                .rev()
                .take(threshold)
                .map(|(member, share)| {
                    let position = honest.iter().position(|m| m == member).unwrap_or(usize::MAX) as u64;
                    let secret = dkg::secret_key_share(share).ok_or("share conversion")?;
                    Ok((position, bls::sign_share(&secret, message)))
                })
                .collect::<TestResult<_>>()?;
            let signature = bls::combine(&set, &signature_shares, message)?;
            if !bls::verify_signature(&set.public_key(), &signature, message) {
                return Err("the formed key does not verify".into());
            }
            Ok(())
        })();
        proptest::prop_assert!(outcome.is_ok(), "{:?}", outcome.err().map(|e| e.to_string()));
    }
}

fn vault() -> ferry_types::release::eth::EthAddress {
    ferry_types::release::eth::EthAddress::from_bytes([0x11; 20])
}

/// BIP 173's regtest P2WPKH example.
const BTC_DESTINATION: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
const ETH_DESTINATION: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

impl Harness {
    /// Members 0, 1 and 2 attest a deposit to `recipient`; it mints in one block.
    fn deposit(&mut self, recipient: &Address, chain: ferry_types::ParentChain, tx: u8, amount: u128) -> TestResult {
        for outcome in self.attest_deposit(recipient, chain, (tx, amount), None)? {
            ok(&outcome)?;
        }
        Ok(())
    }

    /// Members 0, 1 and 2 attest, in one block, a deposit of `amount` in transaction `tx` to
    /// `recipient`, paid to the peg of epoch `peg_epoch` (`None`: the current one's).
    fn attest_deposit(
        &mut self,
        recipient: &Address,
        chain: ferry_types::ParentChain,
        (tx, amount): (u8, u128),
        peg_epoch: Option<u64>,
    ) -> TestResult<Vec<TxOutcome>> {
        let (asset, tx_id) = match chain {
            ferry_types::ParentChain::Bitcoin => (ferry_types::Denom::sat(), hex::encode([tx; 32])),
            ferry_types::ParentChain::Ethereum => (ferry_types::Denom::wei(), format!("0x{}", hex::encode([tx; 32]))),
        };
        let facts = ferry_types::DepositFacts {
            chain,
            tx_id,
            index: 0,
            asset,
            amount: ferry_types::Amount::new(amount),
            recipient: *recipient,
            deposit_address: false,
            unattributed: None,
            peg_epoch,
        };
        let txs = (0..3)
            .map(|i| self.members[i].tx(&self.chain, driver::attestation(&self.members[i].address(), &facts)))
            .collect::<TestResult<Vec<_>>>()?;
        self.chain.execute_block(&txs)
    }

    /// Signatures of `signers` (member indices) for batch `id`: BLS shares from `shares` (member
    /// index → secret share, at position `positions[member]`), or Bitcoin input signatures with
    /// their registered keys.
    fn sign_batch(
        &mut self,
        id: u64,
        signers: &[usize],
        shares: &BTreeMap<usize, threshold_crypto::SecretKeyShare>,
    ) -> TestResult {
        use ferry_types::msg::{MsgSubmitSignatures, ReleaseSignatures};
        use ferry_types::query::{BatchRelease, BatchView};
        for &member in signers {
            let view: BatchView = self.chain.query_json(&format!("/batch/{id}"))?.ok_or("no batch")?;
            let signatures = match &view.batch.release {
                release @ (BatchRelease::Bitcoin(_) | BatchRelease::BitcoinExit(_)) => {
                    self.bitcoin_signatures(release, member)?
                }
                release => {
                    let message = release.bls_message().ok_or("no BLS message")?;
                    let share = bls::sign_share(shares.get(&member).ok_or("no share")?, &message);
                    ReleaseSignatures::Bls(bls::encode_signature_share(&share).to_vec())
                }
            };
            let msg = MsgSubmitSignatures { signer: self.members[member].address(), batch: id, signatures };
            ok(&self.send(member, Msg::SubmitSignatures(msg))?)?;
        }
        Ok(())
    }

    /// Member `member` submits its Bitcoin signatures for batch `id`; the outcome, unchecked.
    fn sign_unchecked(&mut self, id: u64, member: usize) -> TestResult<TxOutcome> {
        use ferry_types::msg::MsgSubmitSignatures;
        use ferry_types::query::BatchView;
        let view: BatchView = self.chain.query_json(&format!("/batch/{id}"))?.ok_or("no batch")?;
        let signatures = self.bitcoin_signatures(&view.batch.release, member)?;
        let msg = MsgSubmitSignatures { signer: self.members[member].address(), batch: id, signatures };
        self.send(member, Msg::SubmitSignatures(msg))
    }

    /// Member `member`'s signatures of every input of `release` (a Bitcoin release or
    /// disbursal), with its registered key.
    fn bitcoin_signatures(
        &self,
        release: &ferry_types::query::BatchRelease,
        member: usize,
    ) -> TestResult<ferry_types::msg::ReleaseSignatures> {
        let signatures = release
            .bitcoin_sighashes()
            .ok_or("not a Bitcoin batch")?
            .into_iter()
            .map(|sighash| {
                let sighash: [u8; 32] = hex::decode(sighash)?.try_into().map_err(|_| "sighash length")?;
                Ok(ferry_types::release::bitcoin::sign_input(&self.members[member].bitcoin, &sighash))
            })
            .collect::<TestResult<_>>()?;
        Ok(ferry_types::msg::ReleaseSignatures::Bitcoin(signatures))
    }

    fn attest_release(&mut self, id: u64, parent_tx: &str, attesters: &[usize]) -> TestResult {
        use ferry_types::msg::MsgAttestRelease;
        for &member in attesters {
            let attest = MsgAttestRelease {
                attester: self.members[member].address(),
                batch: id,
                parent_tx: parent_tx.to_owned(),
                parent_height: 0,
            };
            ok(&self.send(member, Msg::AttestRelease(attest))?)?;
        }
        Ok(())
    }

    /// Members 0 to 2 report Bitcoin at `height`: the quorum's clock.
    fn clock_to(&mut self, height: u64) -> TestResult {
        for member in 0..3 {
            let attester = self.members[member].address();
            let report =
                ferry_types::msg::MsgAttestParentHeight { attester, chain: ferry_types::ParentChain::Bitcoin, height };
            ok(&self.send(member, Msg::AttestParentHeight(report))?)?;
        }
        Ok(())
    }

    fn handover(&self) -> TestResult<ferry_types::query::federation::Handover> {
        self.chain.query_json("/federation/handover")?.ok_or_else(|| "no hand-over".into())
    }

    fn run_to_batch_height(&mut self) -> TestResult<Vec<ferry_app::Event>> {
        let interval = ferry_types::genesis::WithdrawalParams::default().batch_interval;
        let mut events = self.chain.empty_block()?.events;
        while !self.chain.height().is_multiple_of(interval) {
            events.extend(self.chain.empty_block()?.events);
        }
        Ok(events)
    }
}

/// The whole hand-over on the state machine: a 4-member federation (threshold 3) with a vault and
/// a peg holding deposits hands over to a 5-member federation whose key nobody dealt. The vault's
/// rotation is signed by the old key and carries the new one; the reserves migrate to the new peg
/// (a deposit minted mid-way migrates in a second batch); releases wait meanwhile and afterwards
/// are signed by the new members — Bitcoin with their registered keys, Ethereum with their DKG
/// shares — and every satoshi is accounted for. A deposit to the old peg within its grace mints
/// and is swept to the new peg by the old federation; one after the grace is refused.
#[test]
fn a_hand_over_rotates_the_vault_migrates_every_reserve_utxo_then_the_new_federation_signs_and_sweeps_the_old_peg()
-> TestResult {
    use ferry_types::query::federation::Handover;
    use ferry_types::query::{BatchRelease, BatchStatus, BatchView, PendingBatchesView, WithdrawalStatus};
    use ferry_types::{Amount, Denom, ParentChain, peg::Peg};
    let mut h = Harness::keyed(5, 4)?;
    let dealer = h.dealer.clone().ok_or("keyed")?;
    let alice_key = key("alice")?;
    let alice = alice_key.address();
    for (tx, amount) in [(1u8, 400_000u128), (2, 300_000), (3, 200_000)] {
        h.deposit(&alice, ParentChain::Bitcoin, tx, amount)?;
    }
    h.deposit(&alice, ParentChain::Ethereum, 4, 2_000_000_000_000_000)?;
    let before = h.chain.reserves()?.assets.get(&Denom::sat()).cloned().ok_or("no sat ledger")?;
    assert_eq!(before.reserves.get(), 900_000);

    // The members elect the new set and run the key generation.
    h.start(&[0, 1, 2, 3, 4])?;
    h.deal_all(&[0, 1, 2, 3, 4])?;
    h.blocks_until_phase_end()?;
    let new_shares = h.confirm_all(&[0, 1, 2, 3, 4])?;
    let next: Federation = h.chain.query_json("/federation/next")?.ok_or("no next federation")?;
    let handover = h.handover()?;
    assert_eq!((handover.epoch, handover.switched), (2, None));
    let rotation_id = handover.rotation_batch.ok_or("no Ethereum batch was in flight: the rotation forms at once")?;
    // No new federation change while it runs.
    let outcome = h.propose(0, &[0, 1, 2], 2)?;
    assert_eq!(outcome.code, TxCode::FederationChange, "{}", outcome.log);
    assert!(outcome.log.contains("hand-over"), "{}", outcome.log);

    // A withdrawal waits, saying why.
    let alice_signer = h.chain.signer(&alice_key)?;
    let withdraw = |asset: Denom, amount: u128, destination: &str, max_fee: u128| {
        Msg::Withdraw(ferry_types::msg::MsgWithdraw {
            sender: alice,
            asset,
            amount: Amount::new(amount),
            destination: destination.to_owned(),
            max_fee: Amount::new(max_fee),
        })
    };
    let fee = |asset: &Denom| ferry_types::Coin {
        denom: asset.clone(),
        amount: Amount::new(ferry_types::Params::default().min_fee(asset).map_or(1, |fee| fee.get())),
    };
    // Alice pays a generous fee: collected satoshi pay what the deposits' prepaid fees do not
    // cover of the migration (its transaction's overhead).
    let generous = ferry_types::Coin { denom: Denom::sat(), amount: Amount::new(5_000) };
    let tx = alice_signer.sign(0, &generous, &[withdraw(Denom::sat(), 150_000, BTC_DESTINATION, 20_000)])?;
    let queued = one(&mut h.chain, tx)?;
    ok(&queued)?;
    let btc_withdrawal = queued.log.trim_start_matches("withdrawal ").trim_end_matches(" queued").to_owned();
    let tx = alice_signer.sign(
        1,
        &fee(&Denom::wei()),
        &[withdraw(Denom::wei(), 1_000_000_000_000_000, ETH_DESTINATION, 0)],
    )?;
    ok(&one(&mut h.chain, tx)?)?;
    h.run_to_batch_height()?;
    let waiting = h.chain.withdrawal(&btc_withdrawal)?;
    assert_eq!(waiting.status, WithdrawalStatus::Queued);
    assert!(waiting.withdrawal.waiting.as_deref().unwrap_or_default().contains("hands over to epoch 2"), "{waiting:?}");

    // The old key signs the rotation to the key the transcript made.
    let view: BatchView = h.chain.query_json(&format!("/batch/{rotation_id}"))?.ok_or("no rotation batch")?;
    let BatchRelease::EthereumRotation(rotation) = &view.batch.release else { return Err("not a rotation".into()) };
    let next_set = bls::decode_public_key_set(&next.bls.as_ref().ok_or("no next key")?.public_key_set)?;
    assert_eq!(rotation.rotation.new_key, hex::encode(bls::eip2537_g1(&next_set.public_key())));
    assert_eq!((rotation.rotation.epoch, rotation.rotation.new_epoch), (1, 2));
    let old_shares: BTreeMap<usize, _> = (0..4).map(|i| (i, dealer.secret_key_share(i as u64))).collect();
    h.sign_batch(rotation_id, &[0, 2, 3], &old_shares)?;
    let view: BatchView = h.chain.query_json(&format!("/batch/{rotation_id}"))?.ok_or("no rotation batch")?;
    assert_eq!(view.batch.status, BatchStatus::Signed);
    let BatchRelease::EthereumRotation(signed) = &view.batch.release else { return Err("not a rotation".into()) };
    let signature = bls::decode_signature(&hex::decode(signed.signature_compressed.as_ref().ok_or("unsigned")?)?)?;
    let payload = rotation.rotation.payload().ok_or("payload")?;
    assert!(bls::verify_signature(&dealer.public_keys().public_key(), &signature, &payload), "signed by the old key");
    h.attest_release(rotation_id, &format!("0x{}", hex::encode([0xab; 32])), &[0, 1, 2])?;
    assert!(h.handover()?.rotated.is_some());

    // At the next batching height the reserves migrate, in one transaction to the new peg.
    h.run_to_batch_height()?;
    let handover = h.handover()?;
    let first = *handover.migration_batches.first().ok_or("no migration formed")?;
    let view: BatchView = h.chain.query_json(&format!("/batch/{first}"))?.ok_or("no migration batch")?;
    let BatchRelease::Bitcoin(migration) = &view.batch.release else { return Err("not a Bitcoin batch".into()) };
    let next_peg = Peg::new(next.bitcoin.as_ref().ok_or("no next peg")?)?;
    assert_eq!(migration.migration, Some(2));
    assert_eq!(migration.plan.inputs().len(), 3);
    assert_eq!(migration.plan.outputs().len(), 1);
    assert_eq!(migration.plan.outputs()[0].script_pubkey, next_peg.script_pubkey());
    assert_eq!(migration.plan.change(), None);
    // A deposit minted now lands at the old peg and must not be stranded there.
    h.deposit(&alice, ParentChain::Bitcoin, 5, 250_000)?;
    h.sign_batch(first, &[1, 2, 3], &BTreeMap::new())?;
    let first_fee = migration.plan.fee().get();
    h.attest_release(first, &migration.txid, &[0, 1, 3])?;
    let handover = h.handover()?;
    assert_eq!(handover.migrated.len(), 1);
    assert_eq!(handover.switched, None, "a reserve UTXO is still at the old peg");

    h.run_to_batch_height()?;
    let second = *h.handover()?.migration_batches.get(1).ok_or("no second migration")?;
    let view: BatchView = h.chain.query_json(&format!("/batch/{second}"))?.ok_or("no migration batch")?;
    let BatchRelease::Bitcoin(migration) = &view.batch.release else { return Err("not a Bitcoin batch".into()) };
    assert_eq!(migration.plan.inputs().len(), 1);
    assert_eq!(migration.plan.inputs()[0].amount.get(), 250_000);
    let second_fee = migration.plan.fee().get();
    h.sign_batch(second, &[0, 1, 2], &BTreeMap::new())?;
    h.attest_release(second, &migration.txid, &[0, 1, 2])?;

    // Switched: the new federation, the migrated reserves, the old federation kept.
    let handover: Handover = h.chain.query_json("/federation/handover/2")?.ok_or("no hand-over record")?;
    assert!(handover.switched.is_some());
    let current: Federation = h.chain.query_json("/federation")?.ok_or("no federation")?;
    assert_eq!(current, next);
    let old: Federation = h.chain.query_json("/federation/epoch/1")?.ok_or("no retired federation")?;
    assert_eq!(old.members.len(), 4);
    assert!(h.chain.query_json::<Federation>("/federation/next")?.is_none());
    let reserves = h.chain.reserves()?;
    let utxos: Vec<(u128, bool)> =
        reserves.bitcoin_utxos.iter().map(|utxo| (utxo.amount.get(), utxo.locked_by.is_none())).collect();
    assert_eq!(utxos.len(), 2);
    let sat = reserves.assets.get(&Denom::sat()).ok_or("no sat ledger")?;
    let held: u128 = reserves.bitcoin_utxos.iter().map(|utxo| utxo.amount.get()).sum();
    assert_eq!(held, 1_150_000 - first_fee - second_fee, "every satoshi but the fees reached the new peg");
    assert_eq!(sat.reserves.get(), held);
    assert_eq!(sat.supply.get(), h.chain.committed().supply(&Denom::sat())?, "supply against balances");
    assert!(!h.chain.bridge_status()?.paused, "the reserves invariant holds");

    // The queued withdrawals now batch and the new federation signs them.
    let events = h.run_to_batch_height()?;
    let pending: PendingBatchesView = h.chain.query_json("/batches/pending")?.ok_or("no pending batches")?;
    assert_eq!(pending.batches.len(), 2, "{events:?}");
    let dkg_shares: BTreeMap<usize, threshold_crypto::SecretKeyShare> = new_shares
        .iter()
        .map(|(member, share)| Ok((*member, dkg::secret_key_share(share).ok_or("share conversion")?)))
        .collect::<TestResult<_>>()?;
    for view in &pending.batches {
        let id = view.batch.id;
        h.sign_batch(id, &[2, 3, 4], &dkg_shares)?;
        let signed: BatchView = h.chain.query_json(&format!("/batch/{id}"))?.ok_or("no batch")?;
        assert_eq!(signed.batch.status, BatchStatus::Signed, "batch {id} signed by members 2, 3 and the new member 4");
        if let BatchRelease::Ethereum(release) = &signed.batch.release {
            assert_eq!(release.batch.epoch, 2);
            let signature =
                bls::decode_signature(&hex::decode(release.signature_compressed.as_ref().ok_or("unsigned")?)?)?;
            assert!(bls::verify_signature(&next_set.public_key(), &signature, &release.batch.signing_message()));
        }
    }

    // A wallet pays the old peg it saved, within its grace: minted, held apart, swept.
    let alice_before = h.chain.balance(&alice, &Denom::sat())?;
    for outcome in h.attest_deposit(&alice, ParentChain::Bitcoin, (6, 120_000), Some(1))? {
        ok(&outcome)?;
    }
    assert!(h.chain.balance(&alice, &Denom::sat())? > alice_before, "minted within the grace");
    let late = h.chain.reserves()?.bitcoin_utxos.into_iter().find(|utxo| utxo.txid == hex::encode([6u8; 32]));
    assert_eq!(late.ok_or("the deposit is no reserve UTXO")?.retired_epoch, Some(1), "held at the old peg");
    // The next federation's peg is nothing yet, and no peg beyond it exists.
    let refused = h.attest_deposit(&alice, ParentChain::Bitcoin, (7, 120_000), Some(3))?;
    assert_eq!(refused[0].code, TxCode::InvalidMessage, "{}", refused[0].log);
    assert!(
        refused[0].log.contains("epoch 3") && refused[0].log.contains("not the federation's yet"),
        "{}",
        refused[0].log
    );

    h.run_to_batch_height()?;
    let pending: PendingBatchesView = h.chain.query_json("/batches/pending")?.ok_or("no pending batches")?;
    let sweep = pending
        .batches
        .iter()
        .find(|view| matches!(&view.batch.release, BatchRelease::Bitcoin(release) if release.sweep == Some(1)))
        .ok_or("no sweep formed")?;
    let sweep_id = sweep.batch.id;
    let BatchRelease::Bitcoin(release) = &sweep.batch.release else { return Err("not a Bitcoin batch".into()) };
    let old_peg = Peg::new(old.bitcoin.as_ref().ok_or("no old peg")?)?;
    let new_peg = Peg::new(current.bitcoin.as_ref().ok_or("no peg")?)?;
    assert_eq!(release.plan.inputs().len(), 1);
    assert_eq!(release.plan.outputs().len(), 1);
    assert_eq!(release.plan.outputs()[0].script_pubkey, new_peg.script_pubkey(), "it pays the current peg");
    assert_ne!(old_peg.script_pubkey(), new_peg.script_pubkey());
    let sweep_fee = release.plan.fee().get();
    let sweep_txid = release.txid.clone();
    // Signed by the retired federation (members 0 to 3), not by the new member 4.
    let mut refused = h.sign_unchecked(sweep_id, 4)?;
    assert_eq!(refused.code, TxCode::Unauthorized, "{}", refused.log);
    refused.log.make_ascii_lowercase();
    assert!(refused.log.contains("epoch 1"), "{}", refused.log);
    h.sign_batch(sweep_id, &[0, 1, 3], &BTreeMap::new())?;
    let signed: BatchView = h.chain.query_json(&format!("/batch/{sweep_id}"))?.ok_or("no sweep")?;
    assert_eq!(signed.batch.status, BatchStatus::Signed);
    h.attest_release(sweep_id, &sweep_txid, &[0, 1, 4])?;
    let reserves = h.chain.reserves()?;
    assert!(reserves.bitcoin_utxos.iter().all(|utxo| utxo.retired_epoch.is_none()), "nothing left at the old peg");
    let swept = reserves.bitcoin_utxos.iter().find(|utxo| utxo.txid == sweep_txid).ok_or("the sweep's output")?;
    assert_eq!(swept.amount.get(), 120_000 - sweep_fee);
    let sat = reserves.assets.get(&Denom::sat()).ok_or("no sat ledger")?;
    let held: u128 = reserves.bitcoin_utxos.iter().map(|utxo| utxo.amount.get()).sum();
    assert_eq!(sat.reserves.get(), held, "the ledger's reserves are the UTXOs, the sweep's fee paid");
    assert_eq!(sat.supply.get(), h.chain.committed().supply(&Denom::sat())?, "supply against balances");
    assert!(!h.chain.bridge_status()?.paused, "the reserves invariant holds");

    // After the grace, a payment to the old peg is not minted, and the chain says why.
    let switched = handover.switched.ok_or("not switched")?;
    while h.chain.height() <= switched + OLD_PEG_GRACE {
        h.chain.empty_block()?;
    }
    let late = h.attest_deposit(&alice, ParentChain::Bitcoin, (8, 120_000), Some(1))?;
    assert_eq!(late[0].code, TxCode::InvalidMessage, "{}", late[0].log);
    assert!(late[0].log.contains("grace ended"), "{}", late[0].log);
    Ok(())
}

/// With the Bitcoin exit on, a hand-over never leaves the reserve without a signed disbursal. A
/// release's disbursal covers the reserve; the migration moves every input it spends, and waits
/// for its own disbursal of the migrated output at the next peg, which only the next federation's
/// members sign (the new member among them; a member leaving is refused). Once the migration
/// confirms, that disbursal covers the reserve and the old one is superseded; after the switch the
/// new federation's first release kills it in turn, behind its own disbursal.
#[test]
fn with_the_bitcoin_exit_a_migration_waits_for_its_disbursal_signed_by_the_next_federation() -> TestResult {
    use ferry_types::query::{BatchRelease, BatchStatus, BatchView, BtcExitStatus, ExitStanding, PendingBatchesView};
    use ferry_types::{Amount, Denom, ParentChain, peg::Peg};
    let mut h = Harness::keyed_with_exit(5, 4)?;
    let dealer = h.dealer.clone().ok_or("keyed")?;
    let alice_key = key("alice")?;
    let alice = alice_key.address();
    h.clock_to(100)?;
    for (tx, amount) in [(1u8, 400_000u128), (2, 300_000), (3, 200_000)] {
        h.deposit(&alice, ParentChain::Bitcoin, tx, amount)?;
    }
    let exit_of = |h: &Harness, id: u64| -> TestResult<(BatchView, ferry_types::query::BitcoinExit)> {
        let view: BatchView = h.chain.query_json(&format!("/batch/{id}"))?.ok_or("no disbursal")?;
        match &view.batch.release {
            BatchRelease::BitcoinExit(exit) => Ok((view.clone(), exit.clone())),
            _ => Err(format!("batch {id} is no disbursal").into()),
        }
    };

    // Alice's `sequence`th transaction: a withdrawal of `amount` sat, paying `fee` sat.
    let withdraw = |h: &mut Harness, sequence: u64, amount: u128, fee: u128| -> TestResult {
        let withdraw = ferry_types::msg::MsgWithdraw {
            sender: alice,
            asset: Denom::sat(),
            amount: Amount::new(amount),
            destination: BTC_DESTINATION.to_owned(),
            max_fee: Amount::new(20_000),
        };
        let fee = ferry_types::Coin { denom: Denom::sat(), amount: Amount::new(fee) };
        let tx = h.chain.signer(&alice_key)?.sign(sequence, &fee, &[Msg::Withdraw(withdraw)])?;
        ok(&one(&mut h.chain, tx)?)
    };
    // A release (Alice's withdrawal, with a fee that pays later upkeep) and its disbursal.
    withdraw(&mut h, 0, 150_000, 8_000)?;
    // The deposits' refresh, then the release, each behind its disbursal (one at a time).
    let mut first_exit = None;
    for _ in 0..4 {
        h.run_to_batch_height()?;
        let pending: PendingBatchesView = h.chain.query_json("/batches/pending")?.ok_or("no pending batches")?;
        let Some(release) = pending.batches.iter().find(|view| matches!(view.batch.release, BatchRelease::Bitcoin(_)))
        else {
            break;
        };
        let BatchRelease::Bitcoin(paid) = release.batch.release.clone() else { return Err("not Bitcoin".into()) };
        let (release_id, exit) = (release.batch.id, release.awaits_exit.ok_or("the release waits for no disbursal")?);
        h.sign_batch(exit, &[0, 1, 2], &BTreeMap::new())?;
        h.sign_batch(release_id, &[0, 1, 2], &BTreeMap::new())?;
        h.attest_release(release_id, &paid.txid, &[0, 1, 2])?;
        first_exit = Some(exit);
    }
    let first_exit = first_exit.ok_or("no release formed")?;
    let (_, covering) = exit_of(&h, first_exit)?;
    assert_eq!((covering.epoch, covering.standing), (1, ExitStanding::Covering));

    // The federation changes: member 0 leaves, member 4 joins.
    h.start(&[1, 2, 3, 4])?;
    h.deal_all(&[1, 2, 3, 4])?;
    h.blocks_until_phase_end()?;
    h.confirm_all(&[1, 2, 3, 4])?;
    let next: Federation = h.chain.query_json("/federation/next")?.ok_or("no next federation")?;
    let next_peg = Peg::new(next.bitcoin.as_ref().ok_or("no next peg")?)?;
    let rotation_id = h.handover()?.rotation_batch.ok_or("no rotation")?;
    let old_shares: BTreeMap<usize, _> = (0..4).map(|i| (i, dealer.secret_key_share(i as u64))).collect();
    h.sign_batch(rotation_id, &[0, 1, 2], &old_shares)?;
    h.attest_release(rotation_id, &format!("0x{}", hex::encode([0xab; 32])), &[0, 1, 2])?;

    // The migration moves every input of the covering disbursal and waits for its own.
    h.run_to_batch_height()?;
    let handover = h.handover()?;
    let pending: serde_json::Value = h.chain.query_json("/batches/pending")?.unwrap_or_default();
    let migration_id =
        *handover.migration_batches.first().ok_or_else(|| format!("no migration formed: {handover:?} {pending}"))?;
    let view: BatchView = h.chain.query_json(&format!("/batch/{migration_id}"))?.ok_or("no migration")?;
    let BatchRelease::Bitcoin(migration) = view.batch.release.clone() else { return Err("not Bitcoin".into()) };
    for input in &covering.basis.inputs {
        assert!(
            migration.plan.inputs().iter().any(|spent| spent.txid == input.txid && spent.vout == input.vout),
            "the migration moves {}:{}, which the covering disbursal pays out",
            input.txid,
            input.vout
        );
    }
    let own = view.awaits_exit.ok_or("the migration waits for no disbursal")?;
    let (_, exit) = exit_of(&h, own)?;
    assert_eq!(exit.epoch, 2, "signed by the next federation");
    assert_eq!(exit.follows.batch, migration_id);
    assert_eq!(exit.basis.inputs.len(), 1);
    let moved = &migration.plan.outputs()[0];
    assert_eq!(moved.script_pubkey, next_peg.script_pubkey());
    assert_eq!((&exit.basis.inputs[0].txid, exit.basis.inputs[0].amount), (&migration.txid, moved.amount));
    let mut refused = h.sign_unchecked(migration_id, 0)?;
    assert_eq!(refused.code, TxCode::BadBatch, "{}", refused.log);
    assert!(refused.log.contains("exit disbursal"), "{}", refused.log);
    // The leaving member signs nothing of the next federation's.
    refused = h.sign_unchecked(own, 0)?;
    assert_eq!(refused.code, TxCode::Unauthorized, "{}", refused.log);
    assert!(refused.log.contains("epoch 2"), "{}", refused.log);
    h.sign_batch(own, &[1, 2, 4], &BTreeMap::new())?;
    assert_eq!(exit_of(&h, own)?.0.batch.status, BatchStatus::Signed, "members 1, 2 and the new member 4 signed it");

    // Now the current federation signs the migration; it confirms; the new disbursal covers.
    h.sign_batch(migration_id, &[0, 1, 2], &BTreeMap::new())?;
    h.attest_release(migration_id, &migration.txid, &[0, 1, 3])?;
    assert_eq!(exit_of(&h, first_exit)?.1.standing, ExitStanding::Superseded);
    assert_eq!(exit_of(&h, own)?.1.standing, ExitStanding::Covering);
    let status: BtcExitStatus = h.chain.query_json("/exit/btc")?.ok_or("no exit status")?;
    assert_eq!(status.covering, Some(own));
    let handover: ferry_types::query::federation::Handover =
        h.chain.query_json("/federation/handover/2")?.ok_or("no hand-over record")?;
    assert!(handover.switched.is_some(), "switched: nothing left at the old peg");

    // After the switch, the new federation's first release kills it behind its own disbursal.
    withdraw(&mut h, 1, 100_000, 1_000)?;
    h.run_to_batch_height()?;
    let pending: PendingBatchesView = h.chain.query_json("/batches/pending")?.ok_or("no pending batches")?;
    let release = pending
        .batches
        .iter()
        .find(|view| matches!(view.batch.release, BatchRelease::Bitcoin(_)))
        .ok_or("no release formed after the switch")?;
    let BatchRelease::Bitcoin(after) = release.batch.release.clone() else { return Err("not Bitcoin".into()) };
    assert!(after.plan.inputs().iter().any(|input| input.txid == migration.txid), "it spends the migrated output");
    let (release_id, last_exit) = (release.batch.id, release.awaits_exit.ok_or("no disbursal awaited")?);
    assert_eq!(exit_of(&h, last_exit)?.1.epoch, 2);
    h.sign_batch(last_exit, &[2, 3, 4], &BTreeMap::new())?;
    h.sign_batch(release_id, &[2, 3, 4], &BTreeMap::new())?;
    h.attest_release(release_id, &after.txid, &[1, 2, 3])?;
    assert_eq!(exit_of(&h, own)?.1.standing, ExitStanding::Superseded);
    assert_eq!(exit_of(&h, last_exit)?.1.standing, ExitStanding::Covering);
    let sat = h.chain.reserves()?.assets.get(&Denom::sat()).cloned().ok_or("no sat ledger")?;
    assert_eq!(sat.supply.get(), h.chain.committed().supply(&Denom::sat())?, "supply against balances");
    assert!(!h.chain.bridge_status()?.paused, "the reserves invariant holds");
    Ok(())
}
