#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use ferry_types::query::federation::{DkgDealing, DkgFault, DkgFaultKind, DkgParticipant};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;

fn uniform(rng: &mut ChaCha20Rng) -> [u8; 64] {
    let mut bytes = [0u8; 64];
    rng.fill_bytes(&mut bytes);
    bytes
}

struct Fixture {
    keys: Vec<EncryptionKey>,
    polynomials: Vec<Polynomial>,
    session: DkgSession,
}

fn fixture(n: usize, threshold: u32) -> Fixture {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let keys: Vec<EncryptionKey> = (0..n).map(|i| EncryptionKey::derive(&[i as u8; 32])).collect();
    let polynomials = (0..n)
        .map(|_| Polynomial::from_uniform_bytes(&(0..threshold).map(|_| uniform(&mut rng)).collect::<Vec<_>>()))
        .collect();
    let participants = keys
        .iter()
        .enumerate()
        .map(|(i, key)| DkgParticipant {
            account: Address::from_bytes([i as u8 + 1; 20]),
            encryption_key: hex::encode(dkg::encode_point(&key.public())),
            bitcoin_key: String::new(),
            dealt: false,
            confirmed: false,
        })
        .collect();
    let session = DkgSession {
        session: 1,
        epoch: 1,
        threshold,
        proposed: Vec::new(),
        attempt: 1,
        max_attempts: 3,
        phase: DkgPhase::Dealing,
        phase_ends: 100,
        started: 1,
        attempt_started: 1,
        participants,
        faults: Vec::new(),
        public_key_set: None,
        finished: None,
    };
    Fixture { keys, polynomials, session }
}

impl Fixture {
    fn dealings(&self) -> DkgDealings {
        let run = self.session.run();
        let publics: Vec<G1Affine> = self.keys.iter().map(EncryptionKey::public).collect();
        let dealings = self
            .polynomials
            .iter()
            .zip(&self.keys)
            .zip(0u32..)
            .map(|((polynomial, key), dealer)| {
                let dealing = dkg::deal(polynomial, run, dealer, key, &publics);
                DkgDealing {
                    dealer,
                    commitment: dealing.commitment.iter().map(|p| hex::encode(dkg::encode_point(p))).collect(),
                    encrypted_shares: dealing.encrypted_shares.iter().map(hex::encode).collect(),
                }
            })
            .collect();
        DkgDealings { session: 1, attempt: 1, dealings }
    }

    fn account(&self, i: usize) -> Address {
        self.session.participants[i].account
    }
}

#[test]
fn a_participant_deals_then_waits_then_confirms_its_share() {
    let mut f = fixture(4, 3);
    assert_eq!(plan(&f.session, &DkgDealings::default(), &f.account(0), &f.keys[0]).unwrap(), Plan::Deal);
    assert_eq!(
        plan(&f.session, &DkgDealings::default(), &Address::from_bytes([9; 20]), &f.keys[0]).unwrap(),
        Plan::Idle
    );
    let dealings = f.dealings();
    for p in &mut f.session.participants {
        p.dealt = true;
    }
    f.session.phase = DkgPhase::Complaints;
    assert_eq!(plan(&f.session, &dealings, &f.account(0), &f.keys[0]).unwrap(), Plan::Idle, "every share is good");
    let group = dkg::group_commitment(
        f.polynomials.iter().map(Polynomial::commitment).collect::<Vec<_>>().iter().map(Vec::as_slice),
    );
    f.session.public_key_set = Some(dkg::encode_key_set(&group));
    f.session.phase = DkgPhase::Confirming;
    let Plan::Confirm { share, group: key } = plan(&f.session, &dealings, &f.account(2), &f.keys[2]).unwrap() else {
        panic!("expected a confirmation");
    };
    assert_eq!(key, group[0]);
    assert_eq!(dkg::commitment_at(&group, 2), G1Affine::from(G1Affine::generator() * share));
    // The share is the sum of what the dealers' polynomials give position 2, and nothing else.
    let expected = dkg::combine_shares(f.polynomials.iter().map(|p| p.share(2)));
    assert_eq!(share, expected);
    // With participant 2's key, no other participant's share comes out.
    let other = f.session.final_share(&dealings, 1, &f.keys[2]).unwrap();
    assert_eq!(other, None);
}

#[test]
fn a_bad_share_is_complained_about_once_until_convicted() {
    let mut f = fixture(4, 3);
    let mut dealings = f.dealings();
    // Dealer 3 corrupts participant 1's share.
    let mut bytes = hex::decode(&dealings.dealings[3].encrypted_shares[1]).unwrap();
    bytes[31] ^= 1;
    dealings.dealings[3].encrypted_shares[1] = hex::encode(bytes);
    for p in &mut f.session.participants {
        p.dealt = true;
    }
    f.session.phase = DkgPhase::Complaints;
    assert_eq!(plan(&f.session, &dealings, &f.account(1), &f.keys[1]).unwrap(), Plan::Complain(vec![3]));
    assert_eq!(plan(&f.session, &dealings, &f.account(0), &f.keys[0]).unwrap(), Plan::Idle);
    f.session.faults.push(DkgFault {
        account: f.account(3),
        attempt: 1,
        fault: DkgFaultKind::WrongShare { victim: f.account(1) },
        height: 5,
    });
    assert_eq!(plan(&f.session, &dealings, &f.account(1), &f.keys[1]).unwrap(), Plan::Idle, "already convicted");
    // Nor can participant 1 confirm a share built on a bad dealing.
    f.session.phase = DkgPhase::Confirming;
    f.session.public_key_set = Some(dkg::encode_key_set(&[G1Affine::generator()]));
    assert_eq!(plan(&f.session, &dealings, &f.account(1), &f.keys[1]).unwrap(), Plan::Idle);
}
