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

/// The output scripts that pay the bridge: the peg's own, every registered deposit address (by
/// the account it commits to), during a federation hand-over the next federation's peg, which
/// the reserves migrate to, and the retired federations' pegs and deposit addresses (minted
/// during their grace, then swept).
#[derive(Clone, Debug)]
pub struct PegScripts {
    peg: Peg,
    peg_script: ScriptBuf,
    /// The federation epoch of `peg`, once the chain named it.
    epoch: Option<u64>,
    deposit_addresses: HashMap<ScriptBuf, Address>,
    registered: u64,
    next_peg_script: Option<ScriptBuf>,
    retired: Vec<RetiredScripts>,
}

/// A retired federation's scripts.
#[derive(Clone, Debug)]
struct RetiredScripts {
    epoch: u64,
    peg: Peg,
    peg_script: ScriptBuf,
    deposit_addresses: HashMap<ScriptBuf, Address>,
    /// Whether payments to it are still minted (its grace is open).
    minting: bool,
}

/// A retired federation's peg as the chain lists it, for [`PegScripts::set_retired`].
#[derive(Clone, Debug)]
pub struct RetiredPeg {
    /// Its epoch.
    pub epoch: u64,
    /// Its peg.
    pub peg: Peg,
    /// Whether its grace is still open (payments to it are minted).
    pub minting: bool,
}

/// Whom an output script pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Payee {
    /// A peg's own script (a memo names the recipient): the current one, or a retired one in its
    /// grace (its epoch).
    Peg(Option<u64>),
    /// An account's deposit address, of the current peg or of a retired one in its grace.
    Account(Address, Option<u64>),
    /// The next federation's peg, before the hand-over to it (only migrations pay it).
    NextPeg,
    /// A retired federation's peg or deposit address after its grace: not minted.
    Expired(u64),
}

impl PegScripts {
    /// The peg's script alone, no deposit address yet.
    pub fn new(peg: Peg) -> Self {
        PegScripts {
            peg_script: peg.script_pubkey(),
            peg,
            epoch: None,
            deposit_addresses: HashMap::new(),
            registered: 0,
            next_peg_script: None,
            retired: Vec::new(),
        }
    }

    /// The peg.
    pub fn peg(&self) -> &Peg {
        &self.peg
    }

    /// Names the federation epoch of the peg (deposits to it carry it).
    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = Some(epoch);
    }

    /// Watches `next`'s peg as the one the reserves migrate to (`None`: no hand-over runs).
    pub fn set_next(&mut self, next: Option<&Peg>) {
        self.next_peg_script = next.map(Peg::script_pubkey);
    }

    /// Watches the retired federations' pegs the chain lists. A peg not watched before is
    /// added, and its deposit addresses are learned again with everyone's (the registrations
    /// count restarts from 0).
    pub fn set_retired(&mut self, retired: &[RetiredPeg]) {
        let mut added = false;
        for listed in retired {
            match self.retired.iter_mut().find(|known| known.epoch == listed.epoch) {
                Some(known) => known.minting = listed.minting,
                None => {
                    added = true;
                    self.retired.push(RetiredScripts {
                        epoch: listed.epoch,
                        peg_script: listed.peg.script_pubkey(),
                        peg: listed.peg.clone(),
                        deposit_addresses: HashMap::new(),
                        minting: listed.minting,
                    });
                }
            }
        }
        if added {
            self.registered = 0;
            self.deposit_addresses.clear();
            for known in &mut self.retired {
                known.deposit_addresses.clear();
            }
        }
    }

    /// Adds a registered deposit address (of the peg and of every retired peg); registrations
    /// are added in number order.
    pub fn register(&mut self, record: &DepositAddressRecord) {
        self.deposit_addresses.insert(self.peg.deposit_script_pubkey(&record.account), record.account);
        for retired in &mut self.retired {
            retired.deposit_addresses.insert(retired.peg.deposit_script_pubkey(&record.account), record.account);
        }
        self.registered = self.registered.max(record.number);
    }

    /// The highest registration number added (0 for none).
    pub fn registered(&self) -> u64 {
        self.registered
    }

    /// Whether `tx` spends an output of the bridge: an input's witness script (its last witness
    /// item) is a peg's multisig (the current one's or a retired one's), or a deposit address's
    /// (`<20 bytes> OP_DROP` then the same). Only a federation can make such a transaction (a
    /// release, a consolidation, a migration, a sweep), so its outputs to the peg are change,
    /// never deposits. (A payer who makes their own input look so only loses their own
    /// payment's attribution.)
    fn spent_by_federation(&self, tx: &Transaction) -> bool {
        let multisigs: Vec<&[u8]> = std::iter::once(&self.peg)
            .chain(self.retired.iter().map(|retired| &retired.peg))
            .map(|peg| peg.witness_script().as_bytes())
            .collect();
        let is_bridge_script = |script: &[u8]| {
            multisigs.iter().any(|multisig| {
                script == *multisig
                    || (script.len() == multisig.len() + 22
                        && script.first() == Some(&0x14)
                        && script.get(21) == Some(&OP_DROP.to_u8())
                        && script.ends_with(multisig))
            })
        };
        tx.input.iter().any(|input| input.witness.last().is_some_and(is_bridge_script))
    }

    fn payee(&self, script: &Script) -> Option<Payee> {
        // Every script we watch is P2WSH: anything else is not ours without a lookup.
        if !script.is_p2wsh() {
            return None;
        }
        if script == self.peg_script.as_script() {
            return Some(Payee::Peg(self.epoch));
        }
        if self.next_peg_script.as_deref() == Some(script) {
            return Some(Payee::NextPeg);
        }
        if let Some(account) = self.deposit_addresses.get(script) {
            return Some(Payee::Account(*account, self.epoch));
        }
        self.retired.iter().find_map(|retired| {
            let payee = if script == retired.peg_script.as_script() {
                Payee::Peg(Some(retired.epoch))
            } else {
                Payee::Account(*retired.deposit_addresses.get(script)?, Some(retired.epoch))
            };
            Some(if retired.minting { payee } else { Payee::Expired(retired.epoch) })
        })
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
    let mut payments: Vec<(u32, u64, Option<u64>)> = Vec::new();
    let mut to_accounts: Vec<Scanned> = Vec::new();
    for (vout, out) in tx.output.iter().enumerate() {
        let vout = u32::try_from(vout).unwrap_or(u32::MAX);
        match scripts.payee(&out.script_pubkey) {
            None => {}
            // Its deposits are not minted until it is the peg: the chain would count them in
            // the current peg's reserves, which they are not.
            Some(Payee::NextPeg) => to_accounts.push(Scanned::Rejected {
                txid: txid.clone(),
                vout,
                reason: "paid the next federation's peg before the hand-over to it".to_owned(),
            }),
            Some(Payee::Expired(epoch)) => to_accounts.push(Scanned::Rejected {
                txid: txid.clone(),
                vout,
                reason: format!("paid the peg of retired federation epoch {epoch} after its grace"),
            }),
            Some(Payee::Peg(epoch)) => payments.push((vout, out.value.to_sat(), epoch)),
            Some(Payee::Account(recipient, epoch)) => {
                to_accounts.push(deposit(
                    tx,
                    &txid,
                    (vout, epoch),
                    out.value.to_sat(),
                    Payer::DepositAddress(recipient),
                ));
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
    let to_peg = payments.into_iter().map(|(vout, sats, epoch)| match recipient {
        Ok(recipient) => deposit(tx, &txid, (vout, epoch), sats, Payer::Memo(recipient)),
        Err(reason) => deposit(tx, &txid, (vout, epoch), sats, Payer::Unattributed(reason)),
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

/// Output `vout` of `tx` paying `sats` to the peg of federation epoch `peg_epoch` as `payer`
/// says: a deposit, unless it is worth nothing.
fn deposit(tx: &Transaction, txid: &str, (vout, peg_epoch): (u32, Option<u64>), sats: u64, payer: Payer) -> Scanned {
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
            peg_epoch,
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

    /// The regtest peg of the keys with secrets `[seed; 32]` for each of `seeds`.
    fn peg_of(seeds: std::ops::RangeInclusive<u8>, threshold: u32) -> Result<Peg, Box<dyn std::error::Error>> {
        let keys = seeds
            .map(|seed| {
                let secret = bitcoin::secp256k1::SecretKey::from_slice(&[seed; 32])?;
                Ok(bitcoin::secp256k1::PublicKey::from_secret_key(bitcoin::secp256k1::SECP256K1, &secret).to_string())
            })
            .collect::<Result<Vec<_>, bitcoin::secp256k1::Error>>()?;
        Ok(Peg::new(&BitcoinFederation { network: BitcoinNetwork::Regtest, threshold, keys })?)
    }

    fn peg() -> Result<Peg, Box<dyn std::error::Error>> {
        peg_of(1..=4, 3)
    }

    /// Another federation's peg (a next or a retired one).
    fn another_peg() -> Result<Peg, Box<dyn std::error::Error>> {
        peg_of(5..=7, 2)
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
                    peg_epoch: None,
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

    /// The next federation's peg, during a hand-over: a payment to it is no deposit (the chain
    /// would count it in the current peg's reserves), but its outputs are the bridge's — a
    /// migration's output counts in this member's reserve snapshots.
    #[test]
    fn the_next_peg_is_watched_but_never_mints() -> Result<(), Box<dyn std::error::Error>> {
        let peg = peg()?;
        let next = another_peg()?;
        let mut scripts = PegScripts::new(peg.clone());
        let early = tx(vec![(40_000, next.script_pubkey()), (0, deposit_memo(&Address::from_bytes([9; 20])))]);
        // Before a hand-over the next peg is nobody's.
        assert!(matches!(scan_transaction(&early, &scripts)[..], [Scanned::Rejected { .. }]));
        scripts.set_next(Some(&next));
        let found = scan_transaction(&early, &scripts);
        assert!(
            matches!(&found[..], [Scanned::Rejected { vout: 0, reason, .. }] if reason.contains("next federation")),
            "{found:?}"
        );
        let block = bitcoin::Block {
            header: bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest).header,
            txdata: vec![early.clone()],
        };
        let flows = peg_flows(&block, &scripts);
        assert_eq!(flows.created, vec![(early.compute_txid().to_string(), 0, 40_000)]);
        // Once no hand-over runs, it is not watched.
        scripts.set_next(None);
        assert!(peg_flows(&block, &scripts).created.is_empty());
        Ok(())
    }

    /// A retired federation's peg after the switch: payments to it (or to a deposit address
    /// derived from it) are deposits of its epoch while its grace is open, rejected after; the
    /// sweep spending it into the current peg is the federation's own, no payment; deposits to
    /// the current peg carry the current epoch.
    #[test]
    fn a_retired_peg_mints_within_its_grace_and_its_sweep_is_no_payment() -> Result<(), Box<dyn std::error::Error>> {
        let old = peg()?;
        let current = another_peg()?;
        let alice = Address::from_bytes([9; 20]);
        let mut scripts = PegScripts::new(current.clone());
        scripts.set_epoch(2);
        scripts.set_retired(&[RetiredPeg { epoch: 1, peg: old.clone(), minting: true }]);
        scripts.register(&DepositAddressRecord { number: 1, account: alice, height: 5 });
        let epochs = |found: &[Scanned]| -> Vec<Option<u64>> {
            found
                .iter()
                .filter_map(|scanned| match scanned {
                    Scanned::Deposit { facts, .. } => Some(facts.peg_epoch),
                    Scanned::Rejected { .. } => None,
                })
                .collect()
        };
        let to_old = tx(vec![(40_000, old.script_pubkey()), (0, deposit_memo(&alice))]);
        assert_eq!(epochs(&scan_transaction(&to_old, &scripts)), vec![Some(1)]);
        let to_old_address = tx(vec![(30_000, old.deposit_script_pubkey(&alice))]);
        assert_eq!(epochs(&scan_transaction(&to_old_address, &scripts)), vec![Some(1)]);
        let to_current = tx(vec![(20_000, current.script_pubkey()), (0, deposit_memo(&alice))]);
        assert_eq!(epochs(&scan_transaction(&to_current, &scripts)), vec![Some(2)]);

        // The sweep: inputs at the old peg, one output to the current peg.
        let mut sweep = tx(vec![(39_000, current.script_pubkey())]);
        if let Some(input) = sweep.input.first_mut() {
            input.witness = bitcoin::Witness::from_slice(&[vec![], vec![0x30; 71], old.witness_script().to_bytes()]);
        }
        assert!(scan_transaction(&sweep, &scripts).is_empty(), "a sweep's output is no deposit");

        // After the grace: not minted, but still the bridge's outputs in its index.
        scripts.set_retired(&[RetiredPeg { epoch: 1, peg: old.clone(), minting: false }]);
        let found = scan_transaction(&to_old, &scripts);
        assert!(
            matches!(&found[..], [Scanned::Rejected { vout: 0, reason, .. }] if reason.contains("after its grace")),
            "{found:?}"
        );
        assert!(matches!(&scan_transaction(&to_old_address, &scripts)[..], [Scanned::Rejected { .. }]));
        let block = bitcoin::Block {
            header: bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest).header,
            txdata: vec![to_old.clone()],
        };
        assert_eq!(peg_flows(&block, &scripts).created, vec![(to_old.compute_txid().to_string(), 0, 40_000)]);
        assert!(scan_transaction(&sweep, &scripts).is_empty());
        Ok(())
    }
}
