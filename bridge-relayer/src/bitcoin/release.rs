//! A signed Bitcoin batch, as the sidechain reports it, turned into the transaction a node
//! accepts. Pure: the delivery loop broadcasts the result.
//!
//! The chain stores the unsigned transaction, the plan it was built from, and each member's
//! verified DER signature per input (keyed by the member's sidechain address); a release the
//! chain replaced keeps its earlier signed versions, and the newest signed one is what goes out
//! ([`ferry_types::query::Batch::signed_bitcoin_version`]). Member `i` of the
//! federation holds Bitcoin key `i`, so an address's position among the members names the key.
//! [`signed_release`] rebuilds the sighashes from the plan and the federation's peg (refusing a
//! transaction that is not the plan's), and lets [`assemble_witness`] put `threshold` valid
//! signatures per input in the witness script's key order. Nothing here trusts the relayer's own
//! judgement of what should be paid: it carries exactly the transaction the chain built.

use std::collections::BTreeMap;

use bitcoin::Transaction;
use bitcoin::consensus::encode::deserialize_hex;
use ferry_types::Address;
use ferry_types::genesis::Federation;
use ferry_types::peg::{Peg, PegError};
use ferry_types::query::{Batch, BatchRelease};
use ferry_types::release::bitcoin::{BtcReleaseError, assemble_witness, sighashes};

/// Why a batch could not be turned into a signed transaction. Every variant names the batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseTxError {
    /// The batch is released on Ethereum.
    #[error("batch {batch} is not a Bitcoin release")]
    NotBitcoin {
        /// The batch.
        batch: u64,
    },
    /// No version of the release is fully signed yet.
    #[error("batch {batch}: no version of its release is signed yet")]
    NotSigned {
        /// The batch.
        batch: u64,
    },
    /// The federation has no Bitcoin keys.
    #[error("batch {batch}: the federation has no Bitcoin peg")]
    NoPeg {
        /// The batch.
        batch: u64,
    },
    /// The federation's Bitcoin keys do not make a peg.
    #[error("batch {batch}: the federation's peg is invalid: {source}")]
    Peg {
        /// The batch.
        batch: u64,
        /// What the peg refused.
        source: PegError,
    },
    /// The unsigned transaction does not decode.
    #[error("batch {batch}: the unsigned transaction does not decode: {reason}")]
    UnsignedTx {
        /// The batch.
        batch: u64,
        /// The decoder's complaint.
        reason: String,
    },
    /// The unsigned transaction's txid is not the one the batch names.
    #[error("batch {batch}: the unsigned transaction's txid is {got}, but the batch names {expected}")]
    TxidMismatch {
        /// The batch.
        batch: u64,
        /// The txid the batch names.
        expected: String,
        /// The txid of the transaction it carries.
        got: String,
    },
    /// A signature set comes from an address that is not a federation member.
    #[error("batch {batch}: signatures from {signer}, which is not a federation member")]
    UnknownSigner {
        /// The batch.
        batch: u64,
        /// The address.
        signer: Address,
    },
    /// A member's signature set does not have one signature per input.
    #[error("batch {batch}: member {signer} gave {given} signatures for {inputs} inputs")]
    SignatureCount {
        /// The batch.
        batch: u64,
        /// The member.
        signer: Address,
        /// Inputs of the transaction.
        inputs: usize,
        /// Signatures given.
        given: usize,
    },
    /// A signature is not hex.
    #[error("batch {batch}: member {signer}'s signature of input {input} is not hex: {reason}")]
    SignatureHex {
        /// The batch.
        batch: u64,
        /// The member.
        signer: Address,
        /// The input.
        input: usize,
        /// The decoder's complaint.
        reason: String,
    },
    /// The plan, transaction and signatures do not make a valid witness (not the plan's
    /// transaction, or fewer than `threshold` valid signatures on an input).
    #[error("batch {batch}: {source}")]
    Assemble {
        /// The batch.
        batch: u64,
        /// What the assembly refused.
        source: BtcReleaseError,
    },
}

/// The signed release transaction of `batch`, from the signatures the chain recorded and
/// `federation` (the chain's `/federation`). The txid is the batch's.
///
/// # Errors
/// [`ReleaseTxError`] naming the batch and what is wrong: not a Bitcoin batch, no or an invalid
/// peg, a transaction that does not decode or is not the plan's, signatures from a non-member,
/// of the wrong count or not hex, or an input with fewer than `threshold` valid signatures.
pub fn signed_release(record: &Batch, federation: &Federation) -> Result<Transaction, ReleaseTxError> {
    let batch = record.id;
    let BatchRelease::Bitcoin(_) = &record.release else {
        return Err(ReleaseTxError::NotBitcoin { batch });
    };
    let release = record.signed_bitcoin_version().ok_or(ReleaseTxError::NotSigned { batch })?;
    let keys = federation.bitcoin.as_ref().ok_or(ReleaseTxError::NoPeg { batch })?;
    let peg = Peg::new(keys).map_err(|source| ReleaseTxError::Peg { batch, source })?;
    let tx: Transaction = deserialize_hex(&release.unsigned_tx)
        .map_err(|error| ReleaseTxError::UnsignedTx { batch, reason: error.to_string() })?;
    let got = tx.compute_txid().to_string();
    if got != release.txid {
        return Err(ReleaseTxError::TxidMismatch { batch, expected: release.txid.clone(), got });
    }
    let digests = sighashes(&tx, &release.plan, &peg).map_err(|source| ReleaseTxError::Assemble { batch, source })?;
    let inputs = tx.input.len();
    let mut per_input: Vec<BTreeMap<usize, Vec<u8>>> = vec![BTreeMap::new(); inputs];
    for (signer, signatures) in &release.signatures {
        let member = federation.member_index(signer).ok_or(ReleaseTxError::UnknownSigner { batch, signer: *signer })?;
        if signatures.len() != inputs {
            return Err(ReleaseTxError::SignatureCount { batch, signer: *signer, inputs, given: signatures.len() });
        }
        for (input, (text, by_member)) in signatures.iter().zip(per_input.iter_mut()).enumerate() {
            let der = hex::decode(text).map_err(|error| ReleaseTxError::SignatureHex {
                batch,
                signer: *signer,
                input,
                reason: error.to_string(),
            })?;
            by_member.insert(member, der);
        }
    }
    assemble_witness(&tx, &release.plan, &peg, &digests, &per_input)
        .map_err(|source| ReleaseTxError::Assemble { batch, source })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bitcoin::consensus::encode::serialize_hex;
    use bitcoin::secp256k1::{SECP256K1, SecretKey};
    use ferry_types::peg::{BitcoinFederation, BitcoinNetwork};
    use ferry_types::query::{Batch, BatchItem, BatchStatus, BatchView, BitcoinRelease, WithdrawalId};
    use ferry_types::release::bitcoin::{ReleaseOutput, Utxo, plan_release, sign_input, unsigned_transaction};
    use ferry_types::{Amount, Denom};

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Key seeds in member order; the witness script sorts them as members 2, 3, 1, 0.
    const SEEDS: [u8; 4] = [0x31, 0x32, 0x33, 0x34];

    struct Setup {
        federation: Federation,
        secrets: Vec<SecretKey>,
        peg: Peg,
    }

    fn setup() -> Result<Setup, Box<dyn std::error::Error>> {
        let secrets = SEEDS.iter().map(|seed| SecretKey::from_slice(&[*seed; 32])).collect::<Result<Vec<_>, _>>()?;
        let keys = secrets.iter().map(|secret| secret.public_key(SECP256K1).to_string()).collect();
        let bitcoin = BitcoinFederation { network: BitcoinNetwork::Regtest, threshold: 3, keys };
        let peg = Peg::new(&bitcoin)?;
        let federation = Federation {
            members: (1..=4u8).map(|byte| Address::from_bytes([byte; 20])).collect(),
            attest_quorum: 3,
            bitcoin: Some(bitcoin),
            epoch: 0,
            bls: None,
        };
        Ok(Setup { federation, secrets, peg })
    }

    /// A signed two-input batch, signed by `signers` (member indexes).
    fn batch(setup: &Setup, signers: &[usize]) -> Result<BatchView, Box<dyn std::error::Error>> {
        let utxos = [
            Utxo { txid: "aa".repeat(32), vout: 0, amount: Amount::new(60_000), owner: None },
            Utxo { txid: "bb".repeat(32), vout: 1, amount: Amount::new(50_000), owner: None },
        ];
        let destination = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
        let outputs = [ReleaseOutput::new(destination, BitcoinNetwork::Regtest, Amount::new(100_000))?];
        let plan = plan_release(&utxos, &outputs, Amount::new(2_000), Amount::new(546))?;
        let tx = unsigned_transaction(&plan, &setup.peg);
        let digests = sighashes(&tx, &plan, &setup.peg)?;
        let mut signatures = BTreeMap::new();
        for &member in signers {
            let secret = setup.secrets.get(member).ok_or("no such member")?;
            let address = *setup.federation.members.get(member).ok_or("no such member")?;
            signatures.insert(address, digests.iter().map(|digest| hex::encode(sign_input(secret, digest))).collect());
        }
        let release = BitcoinRelease {
            unsigned_tx: serialize_hex(&tx),
            txid: tx.compute_txid().to_string(),
            sighashes: digests.iter().map(hex::encode).collect(),
            plan,
            fee_rate: ferry_types::release::fee::FeeRate::ONE_SAT_PER_VBYTE,
            signed_parent_height: None,
            version: 0,
            bump_parent_height: None,
            superseded: Vec::new(),
            bump_blocked: None,
            migration: None,
            sweep: None,
        };
        let item = BatchItem {
            withdrawal: WithdrawalId(1),
            destination: destination.to_owned(),
            amount: Amount::new(101_000),
            paid: Amount::new(100_000),
        };
        Ok(BatchView {
            batch: Batch {
                id: 7,
                asset: Denom::sat(),
                status: BatchStatus::Signed,
                items: vec![item],
                total: Amount::new(101_000),
                created_height: 10,
                signed_height: Some(12),
                released_height: None,
                release: BatchRelease::Bitcoin(release),
                signatures,
                release_attestations: BTreeMap::new(),
                release_heights: BTreeMap::new(),
                abort_votes: BTreeMap::new(),
                aborted: None,
                release_tx: None,
            },
            signature_count: u32::try_from(signers.len())?,
            threshold: 3,
            release_quorum: 3,
            awaits_exit: None,
        })
    }

    /// The witness items of input `input`: dummy, signatures (without the sighash byte), script.
    fn witness_signatures(tx: &Transaction, input: usize) -> Vec<Vec<u8>> {
        let items: Vec<Vec<u8>> = tx.input[input].witness.iter().map(<[u8]>::to_vec).collect();
        items[1..items.len() - 1].iter().map(|item| item[..item.len() - 1].to_vec()).collect()
    }

    #[test]
    fn all_four_signatures_give_the_batch_txid_with_three_in_script_order() -> TestResult {
        let setup = setup()?;
        let view = batch(&setup, &[0, 1, 2, 3])?;
        let signed = signed_release(&view.batch, &setup.federation)?;
        let BatchRelease::Bitcoin(release) = &view.batch.release else { return Err("not bitcoin".into()) };
        assert_eq!(signed.compute_txid().to_string(), release.txid);
        for input in 0..2 {
            let witness: Vec<Vec<u8>> = signed.input[input].witness.iter().map(<[u8]>::to_vec).collect();
            assert_eq!(witness.len(), 5, "dummy, three signatures, script");
            assert!(witness[0].is_empty());
            assert_eq!(witness[4], setup.peg.witness_script().as_bytes());
            assert!(witness[1..4].iter().all(|signature| signature.last() == Some(&0x01)), "SIGHASH_ALL appended");
            // Script order is members 2, 3, 1 (0 is last and not needed).
            let digest: [u8; 32] = hex::decode(&release.sighashes[input])?.as_slice().try_into()?;
            let expected: Vec<Vec<u8>> = [2, 3, 1].iter().map(|&m| sign_input(&setup.secrets[m], &digest)).collect();
            assert_eq!(witness_signatures(&signed, input), expected);
        }
        Ok(())
    }

    #[test]
    fn exactly_the_threshold_suffices_whichever_members_signed() -> TestResult {
        let setup = setup()?;
        for signers in [[0, 1, 2], [0, 1, 3], [1, 2, 3]] {
            let signed = signed_release(&batch(&setup, &signers)?.batch, &setup.federation)?;
            assert_eq!(signed.input[0].witness.len(), 5, "{signers:?}");
        }
        Ok(())
    }

    #[test]
    fn fewer_than_the_threshold_is_refused_naming_the_input() -> TestResult {
        let setup = setup()?;
        let error = signed_release(&batch(&setup, &[0, 3])?.batch, &setup.federation).err();
        assert!(
            matches!(
                &error,
                Some(ReleaseTxError::Assemble {
                    batch: 7,
                    source: BtcReleaseError::NotEnoughSignatures { input: 0, valid: 2, needed: 3, .. }
                })
            ),
            "{error:?}"
        );
        Ok(())
    }

    #[test]
    fn a_forged_signature_is_left_out_and_the_others_still_make_the_threshold() -> TestResult {
        let setup = setup()?;
        let mut view = batch(&setup, &[0, 1, 2, 3])?;
        let forger = setup.federation.members[1];
        // Member 1's slot carries member 0's signatures: they do not verify under member 1's key.
        let stolen = view.batch.signatures[&setup.federation.members[0]].clone();
        view.batch.signatures.insert(forger, stolen);
        let signed = signed_release(&view.batch, &setup.federation)?;
        let BatchRelease::Bitcoin(release) = &view.batch.release else { return Err("not bitcoin".into()) };
        let digest: [u8; 32] = hex::decode(&release.sighashes[0])?.as_slice().try_into()?;
        let expected: Vec<Vec<u8>> = [2, 3, 0].iter().map(|&m| sign_input(&setup.secrets[m], &digest)).collect();
        assert_eq!(witness_signatures(&signed, 0), expected);
        Ok(())
    }

    #[test]
    fn signatures_from_a_non_member_or_of_the_wrong_count_are_refused() -> TestResult {
        let setup = setup()?;
        let mut view = batch(&setup, &[0, 1, 2])?;
        let stranger = Address::from_bytes([9; 20]);
        view.batch.signatures.insert(stranger, vec!["00".to_owned(); 2]);
        assert!(matches!(
            signed_release(&view.batch, &setup.federation),
            Err(ReleaseTxError::UnknownSigner { batch: 7, signer }) if signer == stranger
        ));

        let mut view = batch(&setup, &[0, 1, 2])?;
        let member = setup.federation.members[2];
        view.batch.signatures.entry(member).or_default().pop();
        assert!(matches!(
            signed_release(&view.batch, &setup.federation),
            Err(ReleaseTxError::SignatureCount { inputs: 2, given: 1, .. })
        ));
        Ok(())
    }

    #[test]
    fn a_transaction_that_is_not_the_named_txid_or_the_plans_is_refused() -> TestResult {
        let setup = setup()?;
        let mut view = batch(&setup, &[0, 1, 2])?;
        if let BatchRelease::Bitcoin(release) = &mut view.batch.release {
            release.txid = "cc".repeat(32);
        }
        assert!(matches!(signed_release(&view.batch, &setup.federation), Err(ReleaseTxError::TxidMismatch { .. })));

        // Another federation's peg gives other sighashes: the stored transaction is not its plan's.
        let mut other = setup.federation.clone();
        if let Some(bitcoin) = &mut other.bitcoin {
            bitcoin.threshold = 2;
        }
        let view = batch(&setup, &[0, 1, 2])?;
        assert!(matches!(
            signed_release(&view.batch, &other),
            Err(ReleaseTxError::Assemble { source: BtcReleaseError::TransactionMismatch { .. }, .. })
        ));
        Ok(())
    }
}
