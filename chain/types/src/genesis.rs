//! The chain's genesis state, read from CometBFT's `app_state`, and its parameters.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::amount::{Amount, Coin};
use crate::denom::Denom;
use crate::release::eth::EthAddress;
use crate::release::fee::{FeeRate, FeeRateBounds};

/// Chain parameters, fixed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Minimum fee per transaction, one entry per denomination. A transaction pays its fee in a
    /// denomination it moves; a denomination without an entry cannot pay fees.
    pub min_fees: Vec<Coin>,
    /// Largest accepted transaction, in bytes.
    pub max_tx_bytes: u64,
    /// Most messages in one transaction.
    pub max_msgs_per_tx: u32,
    /// Most federation duty messages (attestations, signatures, votes) one member may have
    /// executed in one block: duties are fee-free, so this is what bounds a member's load.
    #[serde(default = "default_max_duty_msgs_per_block")]
    pub max_duty_msgs_per_block: u32,
    /// Most deposit records one member may have opened (attested first) that no quorum has
    /// decided yet: every attested id is a permanent record, and this bounds what one member can
    /// make the chain store.
    #[serde(default = "default_max_open_deposits_per_member")]
    pub max_open_deposits_per_member: u32,
    /// Most deposit address registrations executed in one block: they are fee-exempt (a new user
    /// holds nothing yet), so this bounds what registrations can take of a block and of state.
    #[serde(default = "default_max_deposit_address_registrations_per_block")]
    pub max_deposit_address_registrations_per_block: u32,
    /// Blocks between reserves rounds: each member's relayer then attests what its own
    /// parent-chain nodes hold for the bridge, and a quorum's snapshot is compared with the
    /// ledger (a shortfall pauses the bridge).
    #[serde(default = "default_reserves_interval")]
    pub reserves_interval: u64,
    /// How withdrawals are limited, batched and paid out (absent: [`WithdrawalParams::default`]).
    #[serde(default)]
    pub withdrawals: WithdrawalParams,
    /// Which deposits are minted (absent: [`DepositParams::default`]).
    #[serde(default)]
    pub deposits: DepositParams,
    /// How a key generation for a new federation is paced (absent: [`DkgParams::default`]).
    #[serde(default)]
    pub dkg: DkgParams,
    /// How members prove they are online (absent: [`LivenessParams::default`]).
    #[serde(default)]
    pub liveness: LivenessParams,
    /// How parameter changes take effect (absent: [`GovernanceParams::default`]).
    #[serde(default)]
    pub governance: GovernanceParams,
}

/// Parameter changes by member quorum (`MsgProposeParams`) take effect `delay_blocks` after the
/// quorum is reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceParams {
    /// Blocks between a change's quorum and the height it takes effect at (at least 1).
    pub delay_blocks: u64,
}

impl Default for GovernanceParams {
    /// 100 blocks: time for every operator to see a change coming.
    fn default() -> Self {
        GovernanceParams { delay_blocks: 100 }
    }
}

/// Heartbeats: a round opens every `heartbeat_interval` blocks; a member is live while it
/// answered one of the last `live_rounds` rounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LivenessParams {
    /// Blocks between heartbeat rounds (0: no heartbeats).
    pub heartbeat_interval: u64,
    /// Rounds a member may miss in a row before it counts as not live, minus one: live means it
    /// answered the current round or one of the `live_rounds − 1` before.
    pub live_rounds: u64,
}

impl Default for LivenessParams {
    /// A round every 20 blocks; not live after missing 3 in a row.
    fn default() -> Self {
        LivenessParams { heartbeat_interval: 20, live_rounds: 3 }
    }
}

/// How a key generation (DKG) is paced: each phase lasts at most `phase_blocks`; participants
/// silent in a phase, or convicted by a complaint, are dropped and the session restarts without
/// them, at most `max_attempts` times in all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DkgParams {
    /// Blocks each phase (dealing, complaints, confirming) may last.
    pub phase_blocks: u64,
    /// Attempts per session, the first included.
    pub max_attempts: u32,
}

impl Default for DkgParams {
    /// 20 blocks per phase (a signer polls every second or two), 3 attempts.
    fn default() -> Self {
        DkgParams { phase_blocks: 20, max_attempts: 3 }
    }
}

/// Which deposits are minted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DepositParams {
    /// The smallest deposit minted, per denomination. A smaller one is recorded as rejected
    /// (`below_minimum`), never minted and never spent, and counted in its ledger's
    /// `below_minimum`, so reserves reports stay exact. A denomination without an entry has no
    /// minimum.
    pub min_deposits: Vec<Coin>,
    /// ERC-20 denominations the federation unlisted (`MsgProposeListing`, delivered to the
    /// vault): no longer minted, though their withdrawal limits stay so holders can withdraw.
    #[serde(default)]
    pub unlisted: Vec<Denom>,
    /// Blocks after a federation hand-over during which deposits to the retired federation's
    /// peg (and its deposit addresses) are still minted — wallets keep paying an address they
    /// saved — and then swept to the new peg. Later payments to it are not minted. It must
    /// cover a deposit's confirmations and attestation.
    pub old_peg_grace_blocks: u64,
}

impl Default for DepositParams {
    /// Devnet values: Bitcoin deposits of at least 10,000 sat; an old peg's grace of 200 blocks
    /// (a minute of the devnet's 300 ms blocks — a production chain keeps it a day or more).
    fn default() -> Self {
        DepositParams {
            min_deposits: vec![Coin::new(10_000, Denom::sat())],
            unlisted: Vec::new(),
            old_peg_grace_blocks: 200,
        }
    }
}

impl DepositParams {
    /// The smallest deposit of `denom` minted (zero when it has no minimum).
    pub fn min_deposit(&self, denom: &Denom) -> Amount {
        self.min_deposits.iter().find(|coin| &coin.denom == denom).map_or(Amount::ZERO, |coin| coin.amount)
    }
}

/// A member's duty messages per block: 512, room for sixteen 32-attestation transactions.
fn default_max_duty_msgs_per_block() -> u32 {
    512
}

/// 10,000 undecided deposit records per member: far above any honest backlog.
fn default_max_open_deposits_per_member() -> u32 {
    10_000
}

/// 100 deposit address registrations per block.
fn default_max_deposit_address_registrations_per_block() -> u32 {
    100
}

/// A reserves round every 20 blocks.
fn default_reserves_interval() -> u64 {
    20
}

impl Params {
    /// Whether the chain lists `asset`: native assets always; an ERC-20 token only with a
    /// withdrawal limit (the chain's token allowlist), since nothing else could ever be withdrawn,
    /// and not unlisted since. A deposit of an unlisted token is never minted (the vault refuses
    /// it; relayers do not attest one a vault let in; the chain records a quorum's attestation as
    /// `unlisted`).
    pub fn lists(&self, asset: &Denom) -> bool {
        crate::msg::erc20_token(asset).is_none()
            || (self.withdrawals.limit(asset).is_some() && !self.deposits.unlisted.contains(asset))
    }

    /// Applies a listing change the vault confirmed: a listing adopts `limit` for the token
    /// (replacing any earlier one) and lists it again if it was unlisted; an unlisting (`None`)
    /// stops its mints and keeps its limits.
    pub fn apply_listing(&mut self, denom: &Denom, limit: Option<&AssetLimit>) {
        match limit {
            Some(limit) => {
                self.withdrawals.limits.retain(|existing| &existing.denom != denom);
                self.withdrawals.limits.push(limit.clone());
                self.deposits.unlisted.retain(|unlisted| unlisted != denom);
            }
            None if !self.deposits.unlisted.contains(denom) => self.deposits.unlisted.push(denom.clone()),
            None => {}
        }
    }
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_fees: vec![Coin::new(100, crate::Denom::sat()), Coin::new(10_000_000_000, crate::Denom::wei())],
            max_tx_bytes: 16 * 1024,
            max_msgs_per_tx: 64,
            max_duty_msgs_per_block: default_max_duty_msgs_per_block(),
            max_open_deposits_per_member: default_max_open_deposits_per_member(),
            max_deposit_address_registrations_per_block: default_max_deposit_address_registrations_per_block(),
            reserves_interval: default_reserves_interval(),
            withdrawals: WithdrawalParams::default(),
            deposits: DepositParams::default(),
            dkg: DkgParams::default(),
            liveness: LivenessParams::default(),
            governance: GovernanceParams::default(),
        }
    }
}

/// How withdrawals are limited, batched and paid out.
///
/// Outflow is capped per asset in **fixed windows**: window `w` is the heights
/// `w * window_blocks ..= (w + 1) * window_blocks - 1`, and the amounts batched in one window add
/// up to at most the asset's `window_cap`. (A fixed window is simple to state and to check; the
/// price is that up to twice the cap can leave around a window boundary. The signers' own local
/// caps are the second line.) Withdrawals over the cap stay queued for later windows.
///
/// An asset **without a limit entry cannot be withdrawn**: a cap is a deliberate decision per
/// asset, so a token nobody configured is refused rather than left uncapped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WithdrawalParams {
    /// Batches form at every height that is a multiple of this.
    pub batch_interval: u64,
    /// Most withdrawals in one batch.
    pub max_batch_items: u32,
    /// Length of an outflow window, in blocks.
    pub window_blocks: u64,
    /// Per-asset caps, delays and minimums; one entry per withdrawable denomination.
    pub limits: Vec<AssetLimit>,
    /// Blocks a withdrawal above its asset's `delay_above` waits after its burn before it can be batched.
    pub delay_blocks: u64,
    /// The floor of the Bitcoin release fee rate, in sat/vB (at least 1, the minimum relay fee).
    pub bitcoin_min_fee_rate: u64,
    /// The ceiling of the Bitcoin release fee rate, in sat/vB.
    pub bitcoin_max_fee_rate: u64,
    /// The fee rate the chain starts at, in sat/vB (within the floor and the ceiling).
    pub bitcoin_start_fee_rate: u64,
    /// Parent blocks a release should take from its signing to its confirmation: slower, and the
    /// rate rises ×1.25; faster, and it falls ×0.75 ([`crate::release::fee::next_rate`]).
    pub bitcoin_target_confirm_blocks: u64,
    /// Parent blocks a signed release may stay unconfirmed before the chain schedules its
    /// replacement (same inputs and destinations, a higher fee: BIP 125).
    pub bitcoin_bump_after_blocks: u64,
    /// When more free reserve UTXOs than this exist, the chain consolidates the smallest of them
    /// (at most [`crate::release::bitcoin::CONSOLIDATION_INPUTS`]) into one, paid from the fee pool.
    pub bitcoin_max_reserve_utxos: u32,
    /// Sidechain blocks a batch may stay unsigned before it is aborted (its withdrawals
    /// re-queued, its inputs unlocked).
    pub abort_after_blocks: u64,
    /// Destinations the chain refuses at `MsgWithdraw` (addresses, compared case-insensitively),
    /// so they rarely reach a batch that signers would refuse.
    pub denylist: Vec<String>,
    /// Smallest Bitcoin output a release creates (a destination output or the change).
    pub bitcoin_dust_limit: Amount,
    /// Where Ethereum releases are paid (absent: ether and ERC-20 withdrawals are refused).
    pub ethereum: Option<EthereumBridge>,
    /// The Bitcoin emergency disbursal (issue 17): absent, no disbursal is derived and Bitcoin
    /// releases are signed without one (a chain without it has no Bitcoin exit).
    pub bitcoin_exit: Option<BitcoinExitParams>,
}

/// The pre-signed, height-locked Bitcoin disbursal that pays every wrapped-BTC holder if the
/// federation stops signing (`ferry_types::release::exit`). Defaults are mainnet's (Nomic's
/// two weeks and 50 kvB transactions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BitcoinExitParams {
    /// Parent blocks from a disbursal's derivation (the quorum's Bitcoin clock) to its
    /// `nLockTime`: how long the federation may be silent before holders can take their coins.
    pub lock_blocks: u32,
    /// When the covering disbursal's lock is this close (parent blocks), the chain forms a refresh:
    /// a reserve-moving transaction with a new disbursal, so the old one never opens by accident.
    pub refresh_margin_blocks: u32,
    /// The disbursal's fee rate as a percentage of the chain's release rate (headroom for the
    /// fees of the day it is broadcast), kept within the release rate's bounds.
    pub fee_rate_percent: u32,
    /// The least net payment one output carries (above its type's dust threshold); smaller
    /// claims are pooled into the residual at the peg.
    pub min_output: Amount,
    /// The largest transaction of the disbursal tree, in virtual bytes with the longest signatures.
    pub max_tx_vbytes: u64,
    /// When reserve UTXOs no disbursal covers (deposits since the last reserve move) hold more than
    /// this percentage of the reserves, the chain forms a refresh to cover them.
    pub max_uncovered_percent: u32,
}

impl Default for BitcoinExitParams {
    fn default() -> Self {
        BitcoinExitParams {
            lock_blocks: 2_016,
            refresh_margin_blocks: 1_008,
            fee_rate_percent: 200,
            min_output: Amount::new(1_000),
            max_tx_vbytes: 50_000,
            max_uncovered_percent: 10,
        }
    }
}

impl BitcoinExitParams {
    /// The disbursal's fee rate for the chain's release rate `rate`, within `bounds`.
    pub fn fee_rate(&self, rate: FeeRate, bounds: FeeRateBounds) -> FeeRate {
        let scaled = rate.sat_per_kvb().saturating_mul(u64::from(self.fee_rate_percent)) / 100;
        bounds.clamp(FeeRate::from_sat_per_kvb(scaled))
    }
}

impl Default for WithdrawalParams {
    /// Devnet values: batches every 5 blocks of at most 32 withdrawals; per 100-block window at
    /// most 10 BTC and 100 ETH; withdrawals above 1 BTC or 10 ETH wait 20 blocks; Bitcoin fees
    /// from 1 to 1,000 sat/vB starting at 10, aiming at confirmation within 3 parent blocks, a
    /// replacement after 6 blocks unconfirmed; no Ethereum vault configured.
    fn default() -> Self {
        const BTC: u128 = 100_000_000;
        const ETH: u128 = 1_000_000_000_000_000_000;
        WithdrawalParams {
            batch_interval: 5,
            max_batch_items: 32,
            window_blocks: 100,
            limits: vec![
                AssetLimit {
                    denom: Denom::sat(),
                    window_cap: Amount::new(10 * BTC),
                    delay_above: Amount::new(BTC),
                    min_amount: Amount::new(10_000),
                },
                AssetLimit {
                    denom: Denom::wei(),
                    window_cap: Amount::new(100 * ETH),
                    delay_above: Amount::new(10 * ETH),
                    min_amount: Amount::new(ETH / 1_000),
                },
            ],
            delay_blocks: 20,
            bitcoin_min_fee_rate: 1,
            bitcoin_max_fee_rate: 1_000,
            bitcoin_start_fee_rate: 10,
            bitcoin_target_confirm_blocks: 3,
            bitcoin_bump_after_blocks: 6,
            bitcoin_max_reserve_utxos: 50,
            abort_after_blocks: 600,
            denylist: Vec::new(),
            bitcoin_dust_limit: Amount::new(546),
            ethereum: None,
            bitcoin_exit: None,
        }
    }
}

impl WithdrawalParams {
    /// The limits of `denom`, if it can be withdrawn.
    pub fn limit(&self, denom: &Denom) -> Option<&AssetLimit> {
        self.limits.iter().find(|limit| &limit.denom == denom)
    }

    /// The outflow window `height` falls in.
    pub fn window(&self, height: u64) -> u64 {
        height.checked_div(self.window_blocks).unwrap_or(0)
    }

    /// The bounds of the Bitcoin release fee rate.
    pub fn bitcoin_fee_bounds(&self) -> FeeRateBounds {
        FeeRateBounds {
            min: FeeRate::from_sat_per_vb(self.bitcoin_min_fee_rate),
            max: FeeRate::from_sat_per_vb(self.bitcoin_max_fee_rate),
        }
    }

    /// Whether `destination` is on the genesis denylist.
    pub fn denies(&self, destination: &str) -> bool {
        self.denylist.iter().any(|entry| entry.eq_ignore_ascii_case(destination))
    }

    /// Whether batches form at the end of `height`.
    pub fn is_batch_height(&self, height: u64) -> bool {
        height.checked_rem(self.batch_interval) == Some(0)
    }
}

/// Withdrawal limits of one asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetLimit {
    /// The wrapped denomination.
    pub denom: Denom,
    /// Most that may be batched for release in one outflow window. A single withdrawal above
    /// this can never be released and is refused when submitted.
    pub window_cap: Amount,
    /// Withdrawals above this wait `delay_blocks` after their burn.
    pub delay_above: Amount,
    /// Smallest withdrawal accepted.
    pub min_amount: Amount,
}

/// Where Ethereum releases pay out: the vault on one Ethereum chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EthereumBridge {
    /// EIP-155 chain id, bound into every release payload.
    pub chain_id: u64,
    /// The `FerryVault` contract, bound into every release payload.
    pub vault: EthAddress,
    /// Blocks between two heartbeats the chain forms for the vault (the exit tree's root, issue
    /// 17). The vault's escape hatch opens `escapeDelay` (14 days) after the last one landed, so
    /// this must be a small fraction of it: about a day by default (14,400 blocks of 6 s).
    #[serde(default = "default_heartbeat_interval_blocks")]
    pub heartbeat_interval_blocks: u64,
}

/// About a day of 6-second blocks.
fn default_heartbeat_interval_blocks() -> u64 {
    14_400
}

impl EthereumBridge {
    /// The vault `vault` on chain `chain_id`, with the default heartbeat interval.
    pub fn new(chain_id: u64, vault: EthAddress) -> Self {
        EthereumBridge { chain_id, vault, heartbeat_interval_blocks: default_heartbeat_interval_blocks() }
    }
}

impl Params {
    /// The minimum fee in `denom`, if that denomination can pay fees.
    pub fn min_fee(&self, denom: &crate::Denom) -> Option<crate::Amount> {
        self.min_fees.iter().find(|coin| &coin.denom == denom).map(|coin| coin.amount)
    }
}

/// An account created at genesis (numbered in genesis order). It holds nothing: wrapped supply
/// enters the chain only by deposits the federation attests, so every coin has reserves behind
/// it from the first block (a genesis file with `coins` is refused as an unknown field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// The account.
    pub address: Address,
}

/// The federation as known at genesis.
///
/// Member `i` (its position in `members`) holds BLS key share `i` of `bls` and Bitcoin key `i`
/// of `bitcoin`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Federation {
    /// Sidechain accounts of the federation members.
    pub members: Vec<Address>,
    /// How many distinct members must attest identical facts before a deposit mints (also the
    /// quorum for release attestations and pause votes).
    #[serde(default)]
    pub attest_quorum: u32,
    /// The members' Bitcoin keys and the peg's signing threshold (absent: no Bitcoin peg).
    #[serde(default)]
    pub bitcoin: Option<crate::peg::BitcoinFederation>,
    /// The federation's epoch, bound into every Ethereum release payload; a new set of keys
    /// comes with a new epoch.
    #[serde(default)]
    pub epoch: u64,
    /// The federation's BLS public key set (absent: no Ethereum releases can be signed).
    #[serde(default)]
    pub bls: Option<BlsFederation>,
}

impl Federation {
    /// Whether `address` is a member.
    pub fn is_member(&self, address: &Address) -> bool {
        self.members.contains(address)
    }

    /// The position of `address` among the members: the index of its BLS share and Bitcoin key.
    pub fn member_index(&self, address: &Address) -> Option<usize> {
        self.members.iter().position(|member| member == address)
    }
}

/// The federation's BLS threshold key, as threshold_crypto's public key set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlsFederation {
    /// The public key set, encoded as [`crate::release::bls::decode_public_key_set`] reads it.
    pub public_key_set: String,
}

/// Everything the application needs at `InitChain`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisState {
    /// Accounts created empty at genesis.
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    /// Federation members.
    #[serde(default)]
    pub federation: Federation,
    /// Parameters.
    pub params: Params,
}

/// Why a genesis state was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// The JSON does not match the schema.
    #[error("app_state is not a Ferry genesis: {0}")]
    Json(String),
    /// An account appears twice.
    #[error("genesis account {0} is listed twice")]
    DuplicateAccount(Address),
    /// A federation member appears twice.
    #[error("federation member {0} is listed twice")]
    DuplicateMember(Address),
    /// A fee denomination repeats.
    #[error("min_fees lists denom `{0}` twice")]
    DuplicateFeeDenom(crate::Denom),
    /// A parameter is out of range.
    #[error("parameter `{0}` must be positive")]
    ZeroParam(&'static str),
    /// The Bitcoin peg is invalid.
    #[error("federation.bitcoin: {0}")]
    Peg(crate::peg::PegError),
    /// Not one Bitcoin key per member.
    #[error("federation.bitcoin lists {keys} keys for {members} members; give one per member")]
    KeyCount {
        /// Keys given.
        keys: usize,
        /// Members.
        members: usize,
    },
    /// The quorum cannot be met or could be met by a minority.
    #[error("attest_quorum {quorum} must be more than half of the {members} members and at most all of them")]
    BadQuorum {
        /// The quorum given.
        quorum: u32,
        /// The member count.
        members: usize,
    },
    /// The BLS public key set does not decode.
    #[error("federation.bls.public_key_set: {0}")]
    Bls(String),
    /// The BLS signing threshold cannot be met or could be met by a minority.
    #[error(
        "federation.bls needs {threshold} signatures of {members} members; it must be more than half and at most all"
    )]
    BadSigningThreshold {
        /// Signatures the public key set needs.
        threshold: u32,
        /// The member count.
        members: usize,
    },
    /// The BLS and Bitcoin thresholds differ.
    #[error("federation.bls needs {bls} signatures but federation.bitcoin.threshold is {bitcoin}; they must be equal")]
    ThresholdMismatch {
        /// Signatures the BLS key set needs.
        bls: u32,
        /// The peg's threshold.
        bitcoin: u32,
    },
    /// A withdrawal parameter is invalid.
    #[error("params.withdrawals.{param}: {reason}")]
    Withdrawals {
        /// The parameter.
        param: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl GenesisState {
    /// Parses and validates `app_state` JSON.
    ///
    /// # Errors
    /// When the JSON does not match the schema or a rule in [`GenesisState::validate`] fails.
    pub fn from_json(bytes: &[u8]) -> Result<Self, GenesisError> {
        let state: GenesisState = serde_json::from_slice(bytes).map_err(|e| GenesisError::Json(e.to_string()))?;
        state.validate()?;
        Ok(state)
    }

    /// Checks uniqueness of accounts, members and fee denoms, and positive limits.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let mut accounts = BTreeSet::new();
        for account in &self.accounts {
            if !accounts.insert(account.address) {
                return Err(GenesisError::DuplicateAccount(account.address));
            }
        }
        let mut members = BTreeSet::new();
        for member in &self.federation.members {
            if !members.insert(member) {
                return Err(GenesisError::DuplicateMember(*member));
            }
        }
        let members = self.federation.members.len();
        let quorum = usize::try_from(self.federation.attest_quorum).unwrap_or(usize::MAX);
        if members > 0 && (quorum > members || quorum.saturating_mul(2) <= members) {
            return Err(GenesisError::BadQuorum { quorum: self.federation.attest_quorum, members });
        }
        if let Some(bitcoin) = &self.federation.bitcoin {
            crate::peg::Peg::new(bitcoin).map_err(GenesisError::Peg)?;
            if bitcoin.keys.len() != members {
                return Err(GenesisError::KeyCount { keys: bitcoin.keys.len(), members });
            }
        }
        if let Some(bls) = &self.federation.bls {
            let keys = crate::release::bls::decode_public_key_set(&bls.public_key_set)
                .map_err(|error| GenesisError::Bls(error.to_string()))?;
            let threshold = crate::release::bls::threshold_signatures(&keys);
            let needed = usize::try_from(threshold).unwrap_or(usize::MAX);
            if members == 0 || needed > members || needed.saturating_mul(2) <= members {
                return Err(GenesisError::BadSigningThreshold { threshold, members });
            }
            if let Some(bitcoin) = &self.federation.bitcoin
                && bitcoin.threshold != threshold
            {
                return Err(GenesisError::ThresholdMismatch { bls: threshold, bitcoin: bitcoin.threshold });
            }
        }
        self.params.validate()
    }
}

impl Params {
    /// Checks the parameters alone (at genesis, and for every proposed change): withdrawal
    /// parameters, one minimum fee per denomination, and the counts and intervals that must not
    /// be zero.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), GenesisError> {
        self.withdrawals.validate()?;
        let mut fee_denoms = BTreeSet::new();
        for coin in &self.min_fees {
            if !fee_denoms.insert(&coin.denom) {
                return Err(GenesisError::DuplicateFeeDenom(coin.denom.clone()));
            }
        }
        for (name, value) in [
            ("max_tx_bytes", self.max_tx_bytes),
            ("max_msgs_per_tx", u64::from(self.max_msgs_per_tx)),
            ("max_duty_msgs_per_block", u64::from(self.max_duty_msgs_per_block)),
            ("max_open_deposits_per_member", u64::from(self.max_open_deposits_per_member)),
            (
                "max_deposit_address_registrations_per_block",
                u64::from(self.max_deposit_address_registrations_per_block),
            ),
            ("reserves_interval", self.reserves_interval),
            ("dkg.phase_blocks", self.dkg.phase_blocks),
            ("dkg.max_attempts", u64::from(self.dkg.max_attempts)),
            ("liveness.live_rounds", self.liveness.live_rounds),
            ("governance.delay_blocks", self.governance.delay_blocks),
        ] {
            if value == 0 {
                return Err(GenesisError::ZeroParam(name));
            }
        }
        Ok(())
    }
}

impl WithdrawalParams {
    /// Checks positive intervals, batches a Bitcoin release can pay, one limit per denomination,
    /// a Bitcoin minimum above the dust limit, and fee-rate bounds that hold the start rate.
    ///
    /// # Errors
    /// [`GenesisError::Withdrawals`] naming the parameter.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let bad = |param: &str, reason: String| GenesisError::Withdrawals { param: param.to_owned(), reason };
        for (param, value) in [
            ("batch_interval", self.batch_interval),
            ("window_blocks", self.window_blocks),
            ("max_batch_items", u64::from(self.max_batch_items)),
        ] {
            if value == 0 {
                return Err(bad(param, "must be positive".to_owned()));
            }
        }
        let max_outputs = crate::release::bitcoin::MAX_RELEASE_OUTPUTS;
        if usize::try_from(self.max_batch_items).unwrap_or(usize::MAX) >= max_outputs {
            return Err(bad(
                "max_batch_items",
                format!("a Bitcoin release pays at most {max_outputs} outputs including the change"),
            ));
        }
        let mut denoms = BTreeSet::new();
        for limit in &self.limits {
            let param = format!("limits[{}]", limit.denom);
            if !denoms.insert(&limit.denom) {
                return Err(bad(&param, "the denomination is listed twice".to_owned()));
            }
            if limit.min_amount.is_zero() || limit.min_amount > limit.window_cap {
                return Err(bad(
                    &param,
                    format!(
                        "min_amount {} must be positive and at most window_cap {}",
                        limit.min_amount, limit.window_cap
                    ),
                ));
            }
            if limit.denom == Denom::sat() && limit.min_amount <= self.bitcoin_dust_limit {
                return Err(bad(
                    &param,
                    format!(
                        "min_amount {} leaves nothing for the fee above a bitcoin_dust_limit {} output",
                        limit.min_amount, self.bitcoin_dust_limit
                    ),
                ));
            }
        }
        if self.bitcoin_min_fee_rate == 0 {
            return Err(bad("bitcoin_min_fee_rate", "must be at least 1 sat/vB, the minimum relay fee".to_owned()));
        }
        if !(self.bitcoin_min_fee_rate..=self.bitcoin_max_fee_rate).contains(&self.bitcoin_start_fee_rate) {
            return Err(bad(
                "bitcoin_start_fee_rate",
                format!(
                    "{} sat/vB is not between bitcoin_min_fee_rate {} and bitcoin_max_fee_rate {}",
                    self.bitcoin_start_fee_rate, self.bitcoin_min_fee_rate, self.bitcoin_max_fee_rate
                ),
            ));
        }
        if self.bitcoin_target_confirm_blocks == 0 {
            return Err(bad("bitcoin_target_confirm_blocks", "must be positive".to_owned()));
        }
        if self.abort_after_blocks == 0 {
            return Err(bad("abort_after_blocks", "must be positive".to_owned()));
        }
        if self.bitcoin_bump_after_blocks == 0 {
            return Err(bad("bitcoin_bump_after_blocks", "must be positive".to_owned()));
        }
        if let Some(ethereum) = &self.ethereum
            && ethereum.chain_id == 0
        {
            return Err(bad("ethereum.chain_id", "must be positive".to_owned()));
        }
        if let Some(ethereum) = &self.ethereum
            && ethereum.heartbeat_interval_blocks == 0
        {
            return Err(bad(
                "ethereum.heartbeat_interval_blocks",
                "must be positive: without heartbeats the vault's escape hatch opens".to_owned(),
            ));
        }
        if let Some(exit) = &self.bitcoin_exit {
            if exit.lock_blocks == 0 || exit.refresh_margin_blocks >= exit.lock_blocks {
                return Err(bad(
                    "bitcoin_exit.refresh_margin_blocks",
                    format!(
                        "must be below lock_blocks ({}) and lock_blocks above 0: the refresh must come before the lock",
                        exit.lock_blocks
                    ),
                ));
            }
            if exit.fee_rate_percent == 0 {
                return Err(bad("bitcoin_exit.fee_rate_percent", "must be positive".to_owned()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_duplicates_are_refused() {
        let unknown = br#"{"accounts":[],"params":{"min_fees":[],"max_tx_bytes":1,"max_msgs_per_tx":1},"extra":1}"#;
        assert!(matches!(GenesisState::from_json(unknown), Err(GenesisError::Json(_))));
        let address = Address::from_bytes([1; 20]);
        let twice = GenesisState {
            accounts: vec![GenesisAccount { address }, GenesisAccount { address }],
            ..GenesisState::default()
        };
        assert_eq!(twice.validate(), Err(GenesisError::DuplicateAccount(address)));
    }

    #[test]
    fn a_genesis_balance_is_refused_naming_the_field() {
        let address = Address::from_bytes([1; 20]);
        let funded = format!(
            r#"{{"accounts":[{{"address":"{address}","coins":[{{"denom":"sat","amount":"1"}}]}}],"params":{}}}"#,
            serde_json::to_string(&Params::default()).unwrap_or_default()
        );
        let refused = GenesisState::from_json(funded.as_bytes());
        assert!(
            matches!(&refused, Err(GenesisError::Json(reason)) if reason.contains("unknown field `coins`")),
            "{refused:?}"
        );
    }

    fn key_set(signatures: usize) -> String {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaChaRng::seed_from_u64(7);
        let secret = threshold_crypto::SecretKeySet::random(signatures - 1, &mut rng);
        crate::release::bls::encode_public_key_set(&secret.public_keys())
    }

    fn bitcoin_key(seed: u8) -> String {
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let secret = bitcoin::secp256k1::SecretKey::from_slice(&[seed; 32]).unwrap_or_else(|_| unreachable!());
        hex::encode(bitcoin::secp256k1::PublicKey::from_secret_key(&secp, &secret).serialize())
    }

    fn federation_of(members: u8, bls_signatures: usize, bitcoin_threshold: Option<u32>) -> GenesisState {
        let federation = Federation {
            members: (1..=members).map(|seed| Address::from_bytes([seed; 20])).collect(),
            attest_quorum: u32::from(members / 2 + 1),
            bitcoin: bitcoin_threshold.map(|threshold| crate::peg::BitcoinFederation {
                network: crate::peg::BitcoinNetwork::Regtest,
                threshold,
                keys: (1..=members).map(bitcoin_key).collect(),
            }),
            epoch: 1,
            bls: Some(BlsFederation { public_key_set: key_set(bls_signatures) }),
        };
        GenesisState { federation, ..GenesisState::default() }
    }

    #[test]
    fn bls_threshold_must_be_a_majority_and_match_the_peg() {
        assert_eq!(federation_of(4, 3, Some(3)).validate(), Ok(()));
        assert_eq!(
            federation_of(4, 2, None).validate(),
            Err(GenesisError::BadSigningThreshold { threshold: 2, members: 4 })
        );
        assert_eq!(
            federation_of(4, 5, None).validate(),
            Err(GenesisError::BadSigningThreshold { threshold: 5, members: 4 })
        );
        assert_eq!(
            federation_of(4, 3, Some(4)).validate(),
            Err(GenesisError::ThresholdMismatch { bls: 3, bitcoin: 4 })
        );
        let mut garbled = federation_of(4, 3, None);
        garbled.federation.bls = Some(BlsFederation { public_key_set: "00".repeat(48) });
        assert!(matches!(garbled.validate(), Err(GenesisError::Bls(_))));
    }

    #[test]
    fn withdrawal_params_are_checked_by_name_and_default_when_absent() -> Result<(), GenesisError> {
        let without = br#"{"accounts":[],"params":{"min_fees":[],"max_tx_bytes":1,"max_msgs_per_tx":1}}"#;
        assert_eq!(GenesisState::from_json(without)?.params.withdrawals, WithdrawalParams::default());
        let partial = br#"{"accounts":[],"params":{"min_fees":[],"max_tx_bytes":1,"max_msgs_per_tx":1,
            "withdrawals":{"batch_interval":3}}}"#;
        let read = GenesisState::from_json(partial)?.params.withdrawals;
        assert_eq!(read, WithdrawalParams { batch_interval: 3, ..WithdrawalParams::default() });

        let with = |withdrawals: WithdrawalParams| {
            let state = GenesisState { params: Params { withdrawals, ..Params::default() }, ..GenesisState::default() };
            match state.validate() {
                Err(GenesisError::Withdrawals { param, .. }) => param,
                other => format!("{other:?}"),
            }
        };
        assert_eq!(with(WithdrawalParams { window_blocks: 0, ..WithdrawalParams::default() }), "window_blocks");
        assert_eq!(with(WithdrawalParams { max_batch_items: 500, ..WithdrawalParams::default() }), "max_batch_items");
        let mut twice = WithdrawalParams::default();
        twice.limits.push(twice.limits[0].clone());
        assert_eq!(with(twice), "limits[sat]");
        let mut cheap = WithdrawalParams::default();
        cheap.limits[0].min_amount = Amount::new(546);
        assert_eq!(with(cheap), "limits[sat]", "a 546 sat minimum leaves nothing above a 546 sat output");
        for (min, start, max, param) in [
            (0, 0, 10, "bitcoin_min_fee_rate"),
            (2, 1, 10, "bitcoin_start_fee_rate"),
            (2, 11, 10, "bitcoin_start_fee_rate"),
            (5, 5, 4, "bitcoin_start_fee_rate"),
        ] {
            let rates = WithdrawalParams {
                bitcoin_min_fee_rate: min,
                bitcoin_start_fee_rate: start,
                bitcoin_max_fee_rate: max,
                ..WithdrawalParams::default()
            };
            assert_eq!(with(rates), param, "{min} ≤ {start} ≤ {max}");
        }
        let untargeted = WithdrawalParams { bitcoin_target_confirm_blocks: 0, ..WithdrawalParams::default() };
        assert_eq!(with(untargeted), "bitcoin_target_confirm_blocks");
        let never_bumped = WithdrawalParams { bitcoin_bump_after_blocks: 0, ..WithdrawalParams::default() };
        assert_eq!(with(never_bumped), "bitcoin_bump_after_blocks");
        let ethereum = EthereumBridge::new(0, EthAddress::from_bytes([9; 20]));
        assert_eq!(
            with(WithdrawalParams { ethereum: Some(ethereum), ..WithdrawalParams::default() }),
            "ethereum.chain_id"
        );
        Ok(())
    }

    #[test]
    fn outflow_windows_are_fixed_and_batches_form_at_multiples_of_the_interval() {
        let params = WithdrawalParams { batch_interval: 5, window_blocks: 100, ..WithdrawalParams::default() };
        assert_eq!([params.window(0), params.window(99), params.window(100), params.window(250)], [0, 0, 1, 2]);
        assert!(params.is_batch_height(10));
        assert!(!params.is_batch_height(11));
    }

    #[test]
    fn a_zero_duty_limit_is_refused_and_an_absent_one_defaults_to_512() -> Result<(), Box<dyn std::error::Error>> {
        let zero = GenesisState {
            params: Params { max_duty_msgs_per_block: 0, ..Params::default() },
            ..GenesisState::default()
        };
        assert_eq!(zero.validate(), Err(GenesisError::ZeroParam("max_duty_msgs_per_block")));
        let absent = br#"{"accounts":[],"params":{"min_fees":[],"max_tx_bytes":1,"max_msgs_per_tx":1}}"#;
        assert_eq!(GenesisState::from_json(absent)?.params.max_duty_msgs_per_block, 512);
        Ok(())
    }
}
