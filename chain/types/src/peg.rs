//! The Bitcoin peg: the federation's t-of-n P2WSH multisig address, the OP_RETURN memo that
//! names a deposit's sidechain recipient (`FERRY1` ‖ 20-byte account id), and each account's own
//! deposit address (`<account id> OP_DROP` ‖ the peg's multisig, P2WSH), which any wallet can pay
//! without a memo.

use std::fmt;
use std::str::FromStr;

use bitcoin::opcodes::all::{OP_CHECKMULTISIG, OP_DROP, OP_RETURN};
use bitcoin::script::{Builder, Instruction, PushBytesBuf};
use bitcoin::{Network, PublicKey, Script, ScriptBuf};
use serde::{Deserialize, Serialize};

use crate::address::Address;

/// The memo tag that marks a Ferry deposit's OP_RETURN output.
pub const MEMO_TAG: &[u8; 6] = b"FERRY1";
/// Length of the memo payload: tag + account id.
pub const MEMO_LEN: usize = 26;

/// Which Bitcoin network the peg lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BitcoinNetwork {
    /// Mainnet.
    Bitcoin,
    /// Testnet3.
    Testnet,
    /// Signet.
    Signet,
    /// Regtest (devnet and tests).
    Regtest,
}

impl BitcoinNetwork {
    /// The `bitcoin` crate's network.
    pub fn network(self) -> Network {
        match self {
            BitcoinNetwork::Bitcoin => Network::Bitcoin,
            BitcoinNetwork::Testnet => Network::Testnet,
            BitcoinNetwork::Signet => Network::Signet,
            BitcoinNetwork::Regtest => Network::Regtest,
        }
    }
}

/// The federation's Bitcoin keys, as configured at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitcoinFederation {
    /// Network of the peg address.
    pub network: BitcoinNetwork,
    /// Signatures needed to spend from the peg.
    pub threshold: u32,
    /// Members' compressed secp256k1 public keys, hex, in member order.
    pub keys: Vec<String>,
}

/// Why a peg could not be built or a memo read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PegError {
    /// A key is not a compressed secp256k1 public key.
    #[error("bitcoin key {index} (`{key}`) is not a compressed secp256k1 public key")]
    BadKey {
        /// Position in the list.
        index: usize,
        /// The text given.
        key: String,
    },
    /// A key appears twice.
    #[error("bitcoin key `{0}` is listed twice")]
    DuplicateKey(String),
    /// The threshold cannot be met, or the key count exceeds what CHECKMULTISIG takes (20).
    #[error("threshold {threshold} of {keys} keys: need 1 <= threshold <= keys <= 20")]
    BadThreshold {
        /// The threshold.
        threshold: u32,
        /// The key count.
        keys: usize,
    },
    /// The script is not a Ferry memo.
    #[error("not a Ferry deposit memo: {0}")]
    BadMemo(String),
}

/// The peg: its witness script and address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peg {
    network: BitcoinNetwork,
    threshold: u32,
    /// BIP 67 order (the witness script's).
    keys: Vec<PublicKey>,
    /// Member order (the federation's, as configured).
    member_keys: Vec<PublicKey>,
    witness_script: ScriptBuf,
}

/// Most keys a peg holds: CHECKMULTISIG's consensus limit (`MAX_PUBKEYS_PER_MULTISIG`). Up to 16
/// the key count and threshold are pushed as `OP_1`…`OP_16`; 17 to 20 as one-byte data pushes
/// (minimal, so standard). The spend stays within the P2WSH policy limits at 20 keys: a script of at
/// most 685 bytes (limit 3,600) and at most 21 stack items (limit 100), which
/// [`crate::release::standardness`] checks for every release. Beyond 20 needs another script
/// (a CHECKSIG/ADD chain, up to about 67 keys) or a Taproot FROST key; see docs/design.md.
pub const MAX_PEG_KEYS: usize = 20;

impl Peg {
    /// Builds the `threshold`-of-n P2WSH multisig over the keys sorted by their serialization
    /// (BIP 67), so every party derives the same script from the same set of keys.
    ///
    /// # Errors
    /// A malformed or repeated key, or an impossible threshold.
    pub fn new(federation: &BitcoinFederation) -> Result<Peg, PegError> {
        let member_keys = federation
            .keys
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let bad = || PegError::BadKey { index, key: text.clone() };
                let bytes = hex::decode(text).map_err(|_| bad())?;
                let key = PublicKey::from_slice(&bytes).map_err(|_| bad())?;
                if key.compressed { Ok(key) } else { Err(bad()) }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut keys = member_keys.clone();
        keys.sort_by_key(|key| key.to_bytes());
        if let Some(pair) = keys.windows(2).find(|pair| pair.first() == pair.get(1)) {
            return Err(PegError::DuplicateKey(pair.first().map(|k| k.to_string()).unwrap_or_default()));
        }
        let count = keys.len();
        let threshold = usize::try_from(federation.threshold).unwrap_or(usize::MAX);
        if threshold == 0 || threshold > count || count > MAX_PEG_KEYS {
            return Err(PegError::BadThreshold { threshold: federation.threshold, keys: count });
        }
        let mut builder = Builder::new().push_int(i64::from(federation.threshold));
        for key in &keys {
            builder = builder.push_key(key);
        }
        let witness_script =
            builder.push_int(i64::try_from(count).unwrap_or(20)).push_opcode(OP_CHECKMULTISIG).into_script();
        Ok(Peg { network: federation.network, threshold: federation.threshold, keys, member_keys, witness_script })
    }

    /// The peg's address (bech32 P2WSH).
    pub fn address(&self) -> bitcoin::Address {
        bitcoin::Address::p2wsh(&self.witness_script, self.network.network())
    }

    /// The output script deposits pay to.
    pub fn script_pubkey(&self) -> ScriptBuf {
        ScriptBuf::new_p2wsh(&self.witness_script.wscript_hash())
    }

    /// The multisig witness script.
    pub fn witness_script(&self) -> &Script {
        &self.witness_script
    }

    /// Signatures needed.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// The keys, in script order.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The network the peg lives on.
    pub fn network(&self) -> BitcoinNetwork {
        self.network
    }

    /// The keys in member order (as [`BitcoinFederation::keys`] lists them).
    pub fn member_keys(&self) -> &[PublicKey] {
        &self.member_keys
    }

    /// The witness script of `account`'s deposit address: `<account id> OP_DROP` then the peg's
    /// multisig. The push commits the address to the account (a payment to it can only mint to
    /// that account); `OP_DROP` removes it, so the same `threshold` signatures spend it as they
    /// spend the peg. 22 bytes longer than the peg's script.
    pub fn deposit_witness_script(&self, account: &Address) -> ScriptBuf {
        let mut script = Builder::new().push_slice(account.as_bytes()).push_opcode(OP_DROP).into_script().into_bytes();
        script.extend_from_slice(self.witness_script.as_bytes());
        ScriptBuf::from_bytes(script)
    }

    /// `account`'s deposit address (bech32 P2WSH of [`Peg::deposit_witness_script`]).
    pub fn deposit_address(&self, account: &Address) -> bitcoin::Address {
        bitcoin::Address::p2wsh(&self.deposit_witness_script(account), self.network.network())
    }

    /// The output script of `account`'s deposit address.
    pub fn deposit_script_pubkey(&self, account: &Address) -> ScriptBuf {
        ScriptBuf::new_p2wsh(&self.deposit_witness_script(account).wscript_hash())
    }

    /// The witness script that spends a reserve output: the peg's own (`owner` is `None`) or the
    /// deposit address of the account `owner`.
    pub fn spend_script(&self, owner: Option<&Address>) -> ScriptBuf {
        owner.map_or_else(|| self.witness_script.clone(), |account| self.deposit_witness_script(account))
    }

    /// Member `member_index`'s key, if there is such a member.
    pub fn member_key(&self, member_index: usize) -> Option<&PublicKey> {
        self.member_keys.get(member_index)
    }

    /// Where member `member_index`'s key sits in the witness script (its BIP 67 position), if
    /// there is such a member.
    pub fn script_position(&self, member_index: usize) -> Option<usize> {
        let key = self.member_keys.get(member_index)?;
        self.keys.iter().position(|candidate| candidate == key)
    }
}

/// The OP_RETURN output script naming `recipient` as a deposit's beneficiary.
pub fn deposit_memo(recipient: &Address) -> ScriptBuf {
    let mut payload = PushBytesBuf::new();
    // 26 bytes always fit a push.
    let _ = payload.extend_from_slice(MEMO_TAG);
    let _ = payload.extend_from_slice(recipient.as_bytes());
    Builder::new().push_opcode(OP_RETURN).push_slice(payload).into_script()
}

/// Reads the recipient from a deposit's OP_RETURN output script.
///
/// # Errors
/// [`PegError::BadMemo`] naming what is wrong: not OP_RETURN, not one push, wrong length or tag.
pub fn parse_deposit_memo(script: &Script) -> Result<Address, PegError> {
    let mut instructions = script.instructions();
    match instructions.next() {
        Some(Ok(Instruction::Op(op))) if op == OP_RETURN => {}
        _ => return Err(PegError::BadMemo("does not start with OP_RETURN".to_owned())),
    }
    let payload = match (instructions.next(), instructions.next()) {
        (Some(Ok(Instruction::PushBytes(bytes))), None) => bytes.as_bytes().to_vec(),
        _ => return Err(PegError::BadMemo("expected exactly one data push after OP_RETURN".to_owned())),
    };
    if payload.len() != MEMO_LEN {
        return Err(PegError::BadMemo(format!("payload is {} bytes, expected {MEMO_LEN}", payload.len())));
    }
    let (tag, account) = payload.split_at(MEMO_TAG.len());
    if tag != MEMO_TAG {
        return Err(PegError::BadMemo(format!("tag is {:?}, expected FERRY1", String::from_utf8_lossy(tag))));
    }
    let account: [u8; 20] =
        account.try_into().map_err(|_| PegError::BadMemo("account id is not 20 bytes".to_owned()))?;
    Ok(Address::from_bytes(account))
}

impl fmt::Display for BitcoinNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BitcoinNetwork::Bitcoin => "bitcoin",
            BitcoinNetwork::Testnet => "testnet",
            BitcoinNetwork::Signet => "signet",
            BitcoinNetwork::Regtest => "regtest",
        })
    }
}

impl FromStr for BitcoinNetwork {
    type Err = PegError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "bitcoin" => Ok(BitcoinNetwork::Bitcoin),
            "testnet" => Ok(BitcoinNetwork::Testnet),
            "signet" => Ok(BitcoinNetwork::Signet),
            "regtest" => Ok(BitcoinNetwork::Regtest),
            other => Err(PegError::BadMemo(format!("unknown bitcoin network `{other}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> String {
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let secret = bitcoin::secp256k1::SecretKey::from_slice(&[seed; 32]).unwrap_or_else(|_| unreachable!());
        hex::encode(bitcoin::secp256k1::PublicKey::from_secret_key(&secp, &secret).serialize())
    }

    fn federation(keys: Vec<String>) -> BitcoinFederation {
        BitcoinFederation { network: BitcoinNetwork::Regtest, threshold: 3, keys }
    }

    #[test]
    fn peg_address_does_not_depend_on_key_order() -> Result<(), PegError> {
        let a = Peg::new(&federation(vec![key(1), key(2), key(3), key(4)]))?;
        let b = Peg::new(&federation(vec![key(4), key(2), key(1), key(3)]))?;
        assert_eq!(a.address(), b.address());
        assert!(a.address().to_string().starts_with("bcrt1q"), "{}", a.address());
        assert_eq!(a.script_pubkey(), a.address().script_pubkey());
        Ok(())
    }

    #[test]
    fn member_order_is_kept_beside_the_script_order() -> Result<(), PegError> {
        let members = vec![key(4), key(2), key(1), key(3)];
        let peg = Peg::new(&federation(members.clone()))?;
        let listed: Vec<String> = peg.member_keys().iter().map(ToString::to_string).collect();
        assert_eq!(listed, members);
        let mut sorted = members.clone();
        sorted.sort();
        let in_script: Vec<String> = peg.keys().iter().map(ToString::to_string).collect();
        assert_eq!(in_script, sorted, "compressed keys sort by their hex as by their bytes");
        assert_ne!(in_script, members, "the test needs member order to differ from script order");
        for (member, key) in members.iter().enumerate() {
            let position = peg.script_position(member);
            assert_eq!(position.and_then(|p| peg.keys().get(p)).map(ToString::to_string).as_ref(), Some(key));
            assert_eq!(peg.member_key(member).map(ToString::to_string).as_ref(), Some(key));
        }
        assert_eq!(peg.script_position(members.len()), None);
        assert_eq!(peg.member_key(members.len()), None);
        assert_eq!(peg.network(), BitcoinNetwork::Regtest);
        Ok(())
    }

    #[test]
    fn bad_keys_and_thresholds_are_refused() {
        assert!(matches!(Peg::new(&federation(vec![key(1), key(1), key(2)])), Err(PegError::DuplicateKey(_))));
        assert!(matches!(Peg::new(&federation(vec![key(1), key(2)])), Err(PegError::BadThreshold { .. })));
        assert!(matches!(
            Peg::new(&federation(vec!["02ab".to_owned(), key(2), key(3)])),
            Err(PegError::BadKey { index: 0, .. })
        ));
    }

    #[test]
    fn deposit_addresses_commit_to_their_account_and_spend_with_the_peg_keys() -> Result<(), PegError> {
        let peg = Peg::new(&federation(vec![key(1), key(2), key(3), key(4)]))?;
        let alice = Address::from_bytes([7; 20]);
        let bob = Address::from_bytes([8; 20]);
        let script = peg.deposit_witness_script(&alice);
        assert_eq!(script.len(), peg.witness_script().len() + 22);
        assert!(script.as_bytes().ends_with(peg.witness_script().as_bytes()));
        assert_eq!(script.as_bytes().get(1..21), Some(alice.as_bytes().as_slice()));
        assert_ne!(peg.deposit_address(&alice), peg.deposit_address(&bob));
        assert_ne!(peg.deposit_address(&alice), peg.address());
        assert_eq!(peg.deposit_script_pubkey(&alice), peg.deposit_address(&alice).script_pubkey());
        assert_eq!(peg.spend_script(Some(&alice)), script);
        assert_eq!(peg.spend_script(None).as_script(), peg.witness_script());
        // The same keys in another order give the same deposit address.
        let reordered = Peg::new(&federation(vec![key(3), key(1), key(4), key(2)]))?;
        assert_eq!(reordered.deposit_address(&alice), peg.deposit_address(&alice));
        Ok(())
    }

    #[test]
    fn memo_round_trips_and_rejects_lookalikes() -> Result<(), PegError> {
        let recipient = Address::from_bytes([7; 20]);
        assert_eq!(parse_deposit_memo(&deposit_memo(&recipient))?, recipient);
        let mut wrong_tag = PushBytesBuf::new();
        let _ = wrong_tag.extend_from_slice(b"FERRY2");
        let _ = wrong_tag.extend_from_slice(&[7; 20]);
        let script = Builder::new().push_opcode(OP_RETURN).push_slice(wrong_tag).into_script();
        assert!(matches!(parse_deposit_memo(&script), Err(PegError::BadMemo(reason)) if reason.contains("tag")));
        let short = Builder::new().push_opcode(OP_RETURN).push_slice(b"FERRY1").into_script();
        assert!(parse_deposit_memo(&short).is_err());
        Ok(())
    }
}
