//! ABCI event types and attribute keys emitted by the chain. Relayers, signers, the CLI and tests
//! subscribe to these names, so they are defined here once.

/// Tokens moved between two accounts. Attributes: [`SENDER`], [`RECIPIENT`], [`AMOUNT`].
pub const TRANSFER: &str = "ferry.bank.transfer";
/// A fee was paid to the fee collector. Attributes: [`PAYER`], [`AMOUNT`].
pub const FEE: &str = "ferry.bank.fee";
/// An account came into existence. Attributes: [`ADDRESS`], [`ACCOUNT_NUMBER`].
pub const ACCOUNT_CREATED: &str = "ferry.auth.account_created";
/// A signer's sequence advanced (and its public key was recorded on first use).
/// Attributes: [`ADDRESS`], [`SEQUENCE`].
pub const SEQUENCE: &str = "ferry.auth.sequence";
/// Genesis state was loaded. Attributes: [`ACCOUNTS`].
pub const GENESIS: &str = "ferry.genesis";

/// Attribute: sending account (bech32).
pub const SENDER: &str = "sender";
/// Attribute: receiving account (bech32).
pub const RECIPIENT: &str = "recipient";
/// Attribute: a coin, `<amount><denom>`.
pub const AMOUNT: &str = "amount";
/// Attribute: fee payer (bech32).
pub const PAYER: &str = "payer";
/// Attribute: an account (bech32).
pub const ADDRESS: &str = "address";
/// Attribute: an account number.
pub const ACCOUNT_NUMBER: &str = "account_number";
/// Attribute: the account's next sequence.
pub const SEQUENCE_VALUE: &str = "sequence";
/// Attribute: number of genesis accounts.
pub const ACCOUNTS: &str = "accounts";

/// Attributes CometBFT indexes for `tx_search` (the others are only delivered with results).
pub const INDEXED_ATTRIBUTES: &[&str] = &[SENDER, RECIPIENT, PAYER, ADDRESS, DEPOSIT_ID, ATTESTER];

/// A member attested a deposit. Attributes: [`DEPOSIT_ID`], [`ATTESTER`], [`ATTESTATIONS`], [`QUORUM`].
pub const DEPOSIT_ATTESTED: &str = "ferry.bridge.deposit_attested";
/// A deposit reached quorum and was minted. Attributes: [`DEPOSIT_ID`], [`RECIPIENT`], [`AMOUNT`].
pub const DEPOSIT_MINTED: &str = "ferry.bridge.deposit_minted";
/// A member attested facts that differ from another attestation of the same deposit.
/// Attributes: [`DEPOSIT_ID`], [`ATTESTER`].
pub const DEPOSIT_CONFLICT: &str = "ferry.bridge.deposit_conflict";

/// Attribute: a deposit id.
pub const DEPOSIT_ID: &str = "deposit_id";
/// Attribute: the attesting member (bech32).
pub const ATTESTER: &str = "attester";
/// Attribute: matching attestations so far.
pub const ATTESTATIONS: &str = "attestations";
/// Attribute: the quorum.
pub const QUORUM: &str = "quorum";
