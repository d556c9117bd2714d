//! Finds Ferry deposits in a Bitcoin block.
//!
//! A deposit either pays an account's registered deposit address (any wallet can: no memo, the
//! address names the account), or pays the peg's own P2WSH script with exactly one OP_RETURN
//! output carrying the `FERRY1` memo that names the sidechain recipient. Each such output is one
//! deposit, `btc:<txid>:<vout>`. A payment to the peg whose memo is missing, repeated or
//! malformed names no account: it is still attested, as an unattributed payment
//! ([`DepositFacts::unattributed`], recipient the unattributed pool), so the chain holds it and
//! members can give it back. What carries no money (a memo without a payment, a zero-value
//! output) is reported as [`Scanned::Rejected`] so the relayer records why in its audit log.

use std::collections::HashMap;

use bitcoin::opcodes::all::{OP_DROP, OP_RETURN};
use bitcoin::{Block, Script, ScriptBuf, Transaction};
use ferry_types::deposit::Unattributed;
use ferry_types::peg::{MEMO_TAG, Peg, parse_deposit_memo};
use ferry_types::query::DepositAddressRecord;
use ferry_types::{Address, Amount, Denom, DepositFacts, ParentChain};

use crate::store::PegFlows;

/// What scanning found in one transaction output (or transaction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scanned {
    /// A deposit that can be attested once confirmed (paid by a coinbase transaction: once
    /// mature, see [`crate::tracker::COINBASE_MATURITY`]).
    Deposit {
        /// What was paid to whom.
        facts: DepositFacts,
        /// Whether a coinbase transaction paid it.
        coinbase: bool,
    },
    /// Something addressed to Ferry that will not be minted, and why.
    Rejected {
        /// Transaction id (display order hex).
        txid: String,
        /// The output concerned (the peg payment, or the memo when nothing paid the peg).
        vout: u32,
        /// Why it is refused.
        reason: String,
    },
}

/// The output scripts that pay the bridge: the peg's own, and every registered deposit address
/// (by the account it commits to).
#[derive(Clone, Debug)]
pub struct PegScripts {
    peg: Peg,
    peg_script: ScriptBuf,
    deposit_addresses: HashMap<ScriptBuf, Address>,
    registered: u64,
}

/// Whom an output script pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Payee {
    /// The peg's own script (a memo names the recipient).
    Peg,
    /// An account's deposit address.
    Account(Address),
}

impl PegScripts {
    /// The peg's script alone, no deposit address yet.
    pub fn new(peg: Peg) -> Self {
        PegScripts { peg_script: peg.script_pubkey(), peg, deposit_addresses: HashMap::new(), registered: 0 }
    }

    /// The peg.
    pub fn peg(&self) -> &Peg {
        &self.peg
    }

    /// Adds a registered deposit address; registrations are added in number order.
    pub fn register(&mut self, record: &DepositAddressRecord) {
        self.deposit_addresses.insert(self.peg.deposit_script_pubkey(&record.account), record.account);
        self.registered = self.registered.max(record.number);
    }

    /// The highest registration number added (0 for none).
    pub fn registered(&self) -> u64 {
        self.registered
    }

    /// Whether `tx` spends an output of the bridge: an input's witness script (its last witness
    /// item) is the peg's multisig, or a deposit address's (`<20 bytes> OP_DROP` then the same).
    /// Only the federation can make such a transaction (a release or a consolidation), so its
    /// outputs to the peg are change, never deposits. (A payer who makes their own input look so
    /// only loses their own payment's attribution.)
    fn spent_by_federation(&self, tx: &Transaction) -> bool {
        let multisig = self.peg.witness_script().as_bytes();
        let is_bridge_script = |script: &[u8]| {
            script == multisig
                || (script.len() == multisig.len() + 22
                    && script.first() == Some(&0x14)
                    && script.get(21) == Some(&OP_DROP.to_u8())
                    && script.ends_with(multisig))
        };
        tx.input.iter().any(|input| input.witness.last().is_some_and(is_bridge_script))
    }

    fn payee(&self, script: &Script) -> Option<Payee> {
        // Every script we watch is P2WSH: anything else is not ours without a lookup.
        if !script.is_p2wsh() {
            return None;
        }
        if script == self.peg_script.as_script() {
            return Some(Payee::Peg);
        }
        self.deposit_addresses.get(script).map(|account| Payee::Account(*account))
    }
}

fn is_ferry_memo(script: &Script) -> bool {
    let bytes = script.as_bytes();
    bytes.first() == Some(&OP_RETURN.to_u8()) && bytes.windows(MEMO_TAG.len()).any(|window| window == MEMO_TAG)
}

/// Scans one transaction for payments to the bridge's `scripts` and Ferry memos.
pub fn scan_transaction(tx: &Transaction, scripts: &PegScripts) -> Vec<Scanned> {
    if scripts.spent_by_federation(tx) {
        return Vec::new();
    }
    let txid = tx.compute_txid().to_string();
    let memo_outputs: Vec<(u32, &Script)> = tx
        .output
        .iter()
        .enumerate()
        .map(|(vout, out)| (u32::try_from(vout).unwrap_or(u32::MAX), out.script_pubkey.as_script()))
        .filter(|(_, script)| is_ferry_memo(script))
        .collect();
    let memos: Vec<&Script> = memo_outputs.iter().map(|(_, script)| *script).collect();
    let mut payments: Vec<(u32, u64)> = Vec::new();
    let mut to_accounts: Vec<Scanned> = Vec::new();
    for (vout, out) in tx.output.iter().enumerate() {
        let vout = u32::try_from(vout).unwrap_or(u32::MAX);
        match scripts.payee(&out.script_pubkey) {
            None => {}
            Some(Payee::Peg) => payments.push((vout, out.value.to_sat())),
            Some(Payee::Account(recipient)) => {
                to_accounts.push(deposit(tx, &txid, vout, out.value.to_sat(), Payer::DepositAddress(recipient)));
            }
        }
    }
    // A deposit address names its account: memos beside it are not an attempt gone wrong.
    if payments.is_empty() && !to_accounts.is_empty() {
        return to_accounts;
    }
    if payments.is_empty() {
        return if memos.is_empty() {
            Vec::new()
        } else {
            memo_outputs
                .iter()
                .map(|(vout, _)| Scanned::Rejected {
                    txid: txid.clone(),
                    vout: *vout,
                    reason: "Ferry memo without a payment to the peg address".to_owned(),
                })
                .collect()
        };
    }
    let recipient = match memos.as_slice() {
        [memo] => parse_deposit_memo(memo).map_err(|_| Unattributed::BadMemo),
        [] => Err(Unattributed::NoMemo),
        _ => Err(Unattributed::SeveralMemos),
    };
    let to_peg = payments.into_iter().map(|(vout, sats)| match recipient {
        Ok(recipient) => deposit(tx, &txid, vout, sats, Payer::Memo(recipient)),
        Err(reason) => deposit(tx, &txid, vout, sats, Payer::Unattributed(reason)),
    });
    to_peg.chain(to_accounts).collect()
}

/// Whom a payment to the bridge names.
#[derive(Clone, Copy)]
enum Payer {
    /// The peg, with a memo naming this account.
    Memo(Address),
    /// This account's deposit address.
    DepositAddress(Address),
    /// The peg, naming no account, for this reason.
    Unattributed(Unattributed),
}

/// Output `vout` of `tx` paying `sats` to the bridge as `payer` says: a deposit, unless it is worth
/// nothing.
fn deposit(tx: &Transaction, txid: &str, vout: u32, sats: u64, payer: Payer) -> Scanned {
    let (recipient, deposit_address, unattributed) = match payer {
        Payer::Memo(account) => (account, false, None),
        Payer::DepositAddress(account) => (account, true, None),
        Payer::Unattributed(reason) => (Address::unattributed_pool(), false, Some(reason)),
    };
    if sats == 0 {
        return Scanned::Rejected { txid: txid.to_owned(), vout, reason: "zero-value output".to_owned() };
    }
    Scanned::Deposit {
        facts: DepositFacts {
            chain: ParentChain::Bitcoin,
            tx_id: txid.to_owned(),
            index: vout,
            asset: Denom::sat(),
            amount: Amount::new(u128::from(sats)),
            recipient,
            deposit_address,
            unattributed,
        },
        coinbase: tx.is_coinbase(),
    }
}

/// Scans every transaction of `block`.
pub fn scan_block(block: &Block, scripts: &PegScripts) -> Vec<Scanned> {
    block.txdata.iter().flat_map(|tx| scan_transaction(tx, scripts)).collect()
}

/// What `block` does to the peg, for the relayer's own index: every output paying one of the
/// bridge's `scripts` (deposit or not, memo or not) and every outpoint its transactions spend.
pub fn peg_flows(block: &Block, scripts: &PegScripts) -> PegFlows {
    let mut flows = PegFlows::default();
    for tx in &block.txdata {
        let txid = tx.compute_txid().to_string();
        for (vout, output) in tx.output.iter().enumerate() {
            if scripts.payee(&output.script_pubkey).is_some() {
                flows.created.push((txid.clone(), u32::try_from(vout).unwrap_or(u32::MAX), output.value.to_sat()));
            }
        }
        if !tx.is_coinbase() {
            flows.spent.extend(
                tx.input.iter().map(|input| (input.previous_output.txid.to_string(), input.previous_output.vout)),
            );
        }
    }
    flows
}

#[cfg(test)]
mod tests {
    use bitcoin::absolute::LockTime;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount as Sats, OutPoint, ScriptBuf, TxIn, TxOut};
    use ferry_types::Address;
    use ferry_types::peg::{BitcoinFederation, BitcoinNetwork, Peg, deposit_memo};

    use super::*;

    fn peg() -> Result<Peg, Box<dyn std::error::Error>> {
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let keys = (1u8..=4)
            .map(|seed| {
                let secret = bitcoin::secp256k1::SecretKey::from_slice(&[seed; 32])?;
                Ok(bitcoin::secp256k1::PublicKey::from_secret_key(&secp, &secret).to_string())
            })
            .collect::<Result<Vec<_>, bitcoin::secp256k1::Error>>()?;
        Ok(Peg::new(&BitcoinFederation { network: BitcoinNetwork::Regtest, threshold: 3, keys })?)
    }

    /// A transaction spending some earlier output, paying `outputs`.
    fn tx(outputs: Vec<(u64, ScriptBuf)>) -> Transaction {
        let spent = OutPoint { txid: bitcoin::hashes::Hash::from_byte_array([7; 32]), vout: 0 };
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn { previous_output: spent, ..TxIn::default() }],
            output: outputs
                .into_iter()
                .map(|(sats, script_pubkey)| TxOut { value: Sats::from_sat(sats), script_pubkey })
                .collect(),
        }
    }

    #[test]
    fn payment_with_memo_is_one_deposit_per_peg_output() -> Result<(), Box<dyn std::error::Error>> {
        let peg = peg()?;
        let recipient = Address::from_bytes([9; 20]);
        let change = ScriptBuf::new_p2wsh(&ScriptBuf::new().wscript_hash());
        let deposit = tx(vec![
            (50_000, peg.script_pubkey()),
            (0, deposit_memo(&recipient)),
            (7_000, change),
            (1_000, peg.script_pubkey()),
        ]);
        let found = scan_transaction(&deposit, &PegScripts::new(peg.clone()));
        let txid = deposit.compute_txid().to_string();
        assert_eq!(found.len(), 2);
        assert_eq!(
            found.first(),
            Some(&Scanned::Deposit {
                facts: DepositFacts {
                    chain: ParentChain::Bitcoin,
                    tx_id: txid.clone(),
                    index: 0,
                    asset: Denom::sat(),
                    amount: Amount::new(50_000),
                    recipient,
                    deposit_address: false,
                    unattributed: None,
                },
                coinbase: false,
            })
        );
        assert!(
            matches!(found.get(1), Some(Scanned::Deposit { facts, .. }) if facts.index == 3 && facts.amount == Amount::new(1_000))
        );
        Ok(())
    }

    #[test]
    fn peg_flows_name_every_peg_output_and_every_spent_outpoint() -> Result<(), Box<dyn std::error::Error>> {
        let peg = peg()?;
        let elsewhere = ScriptBuf::new_p2wsh(&ScriptBuf::new().wscript_hash());
        // No memo: not a deposit, but the peg holds it all the same.
        let paying = tx(vec![(7_000, elsewhere.clone()), (50_000, peg.script_pubkey())]);
        let unrelated = tx(vec![(9_000, elsewhere)]);
        let block = Block {
            header: bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header,
            txdata: vec![paying.clone(), unrelated],
        };
        let flows = peg_flows(&block, &PegScripts::new(peg.clone()));
        assert_eq!(flows.created, vec![(paying.compute_txid().to_string(), 1, 50_000)]);
        let spent = "0707070707070707070707070707070707070707070707070707070707070707".to_owned();
        assert_eq!(flows.spent, vec![(spent.clone(), 0), (spent, 0)]);
        Ok(())
    }

    #[test]
    fn a_payment_to_a_registered_deposit_address_mints_to_its_account_memo_or_not()
    -> Result<(), Box<dyn std::error::Error>> {
        let peg = peg()?;
        let alice = Address::from_bytes([1; 20]);
        let mallory = Address::from_bytes([2; 20]);
        let mut scripts = PegScripts::new(peg.clone());
        scripts.register(&DepositAddressRecord { number: 1, account: alice, height: 5 });
        assert_eq!(scripts.registered(), 1);
        // A plain wallet payment, and one whose memo names someone else: both mint to alice.
        for outputs in [
            vec![
                (7_000, ScriptBuf::new_p2wsh(&ScriptBuf::new().wscript_hash())),
                (60_000, peg.deposit_script_pubkey(&alice)),
            ],
            vec![(7_000, deposit_memo(&mallory)), (60_000, peg.deposit_script_pubkey(&alice))],
        ] {
            let paying = tx(outputs);
            let found = scan_transaction(&paying, &scripts);
            assert!(
                matches!(found.as_slice(), [Scanned::Deposit { facts, coinbase: false }]
                    if facts.recipient == alice && facts.deposit_address && facts.index == 1 && facts.amount == Amount::new(60_000)),
                "{found:?}"
            );
        }
        // An address nobody registered is not the bridge's.
        let unregistered = tx(vec![(60_000, peg.deposit_script_pubkey(&mallory))]);
        assert!(scan_transaction(&unregistered, &scripts).is_empty());
        // The peg index holds deposit address outputs beside the peg's.
        let block = Block {
            header: bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header,
            txdata: vec![tx(vec![(60_000, peg.deposit_script_pubkey(&alice)), (1_000, peg.script_pubkey())])],
        };
        assert_eq!(peg_flows(&block, &scripts).created.len(), 2);
        Ok(())
    }

    #[test]
    fn the_federations_own_change_to_the_peg_is_no_payment_to_attribute() -> Result<(), Box<dyn std::error::Error>> {
        let peg = peg()?;
        let scripts = PegScripts::new(peg.clone());
        let alice = Address::from_bytes([1; 20]);
        // A release spending a deposit address's output: its change to the peg is the federation's.
        let mut release =
            tx(vec![(40_000, ScriptBuf::new_p2wsh(&ScriptBuf::new().wscript_hash())), (9_000, peg.script_pubkey())]);
        if let Some(input) = release.input.first_mut() {
            input.witness =
                bitcoin::Witness::from_slice(&[vec![], vec![0x30; 71], peg.deposit_witness_script(&alice).to_bytes()]);
        }
        assert!(scan_transaction(&release, &scripts).is_empty());
        // Spending the peg's own script: the same.
        if let Some(input) = release.input.first_mut() {
            input.witness = bitcoin::Witness::from_slice(&[vec![], vec![0x30; 71], peg.witness_script().to_bytes()]);
        }
        assert!(scan_transaction(&release, &scripts).is_empty());
        // Anyone else's payment to the peg without a memo is still unattributed.
        if let Some(input) = release.input.first_mut() {
            input.witness = bitcoin::Witness::from_slice(&[vec![0x30; 71], vec![2; 33]]);
        }
        assert!(
            matches!(scan_transaction(&release, &scripts).as_slice(), [Scanned::Deposit { facts, .. }] if facts.unattributed.is_some())
        );
        Ok(())
    }

    #[test]
    fn a_coinbase_paying_the_peg_is_a_deposit_marked_coinbase() -> Result<(), Box<dyn std::error::Error>> {
        let peg = peg()?;
        let recipient = Address::from_bytes([9; 20]);
        let mut coinbase = tx(vec![(50_000, peg.script_pubkey()), (0, deposit_memo(&recipient))]);
        if let Some(input) = coinbase.input.first_mut() {
            input.previous_output = OutPoint::null();
        }
        let found = scan_transaction(&coinbase, &PegScripts::new(peg.clone()));
        assert!(
            matches!(found.as_slice(), [Scanned::Deposit { coinbase: true, facts }] if facts.amount == Amount::new(50_000))
        );
        Ok(())
    }

    #[test]
    fn a_peg_payment_without_one_valid_memo_is_unattributed_and_a_memo_without_payment_rejected()
    -> Result<(), Box<dyn std::error::Error>> {
        let peg = peg()?;
        let recipient = Address::from_bytes([9; 20]);
        let unattributed = |found: &[Scanned]| match found {
            [Scanned::Deposit { facts, .. }] if facts.recipient == Address::unattributed_pool() => facts.unattributed,
            _ => None,
        };
        let no_memo = tx(vec![(50_000, peg.script_pubkey())]);
        assert_eq!(
            unattributed(&scan_transaction(&no_memo, &PegScripts::new(peg.clone()))),
            Some(Unattributed::NoMemo)
        );
        let two_memos =
            tx(vec![(50_000, peg.script_pubkey()), (0, deposit_memo(&recipient)), (0, deposit_memo(&recipient))]);
        assert_eq!(
            unattributed(&scan_transaction(&two_memos, &PegScripts::new(peg.clone()))),
            Some(Unattributed::SeveralMemos)
        );

        let mut short = b"FERRY1".to_vec();
        short.extend_from_slice(&[1; 10]);
        let bad_memo = bitcoin::script::Builder::new()
            .push_opcode(OP_RETURN)
            .push_slice(<&bitcoin::script::PushBytes>::try_from(short.as_slice())?)
            .into_script();
        let malformed = tx(vec![(50_000, peg.script_pubkey()), (0, bad_memo)]);
        assert_eq!(
            unattributed(&scan_transaction(&malformed, &PegScripts::new(peg.clone()))),
            Some(Unattributed::BadMemo)
        );

        let elsewhere = ScriptBuf::new_p2wsh(&ScriptBuf::new().wscript_hash());
        let wrong_address = tx(vec![(50_000, elsewhere), (0, deposit_memo(&recipient))]);
        assert!(matches!(
            scan_transaction(&wrong_address, &PegScripts::new(peg.clone())).as_slice(),
            [Scanned::Rejected { vout: 1, .. }]
        ));

        let unrelated = tx(vec![(50_000, ScriptBuf::new_p2wsh(&ScriptBuf::new().wscript_hash()))]);
        assert!(scan_transaction(&unrelated, &PegScripts::new(peg.clone())).is_empty());
        Ok(())
    }
}
