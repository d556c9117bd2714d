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
pub const INDEXED_ATTRIBUTES: &[&str] =
    &[SENDER, RECIPIENT, PAYER, ADDRESS, DEPOSIT_ID, ATTESTER, WITHDRAWAL_ID, BATCH_ID];

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

/// Wrapped tokens were burned and a withdrawal queued.
/// Attributes: [`WITHDRAWAL_ID`], [`SENDER`], [`AMOUNT`], [`DESTINATION`], [`ELIGIBLE_HEIGHT`].
pub const WITHDRAWAL_QUEUED: &str = "ferry.bridge.withdrawal_queued";
/// A release batch was formed at the end of a block and awaits the federation's signatures.
/// Attributes: [`BATCH_ID`], [`ASSET`], [`ITEMS`], [`AMOUNT`].
pub const BATCH_CREATED: &str = "ferry.bridge.batch_created";
/// Queued withdrawals of an asset could not be batched at a batching height because the
/// Bitcoin reserves not locked by unsettled batches cannot pay them; they stay queued.
/// Attributes: [`ASSET`], [`ITEMS`], [`REASON`].
pub const BATCH_DEFERRED: &str = "ferry.bridge.batch_deferred";
/// A member's signatures for a batch were verified and recorded.
/// Attributes: [`BATCH_ID`], [`SIGNER`], [`SIGNATURES`], [`THRESHOLD`].
pub const SIGNATURES_SUBMITTED: &str = "ferry.bridge.signatures_submitted";
/// A batch reached its signing threshold and can be released. Attributes: [`BATCH_ID`].
pub const BATCH_SIGNED: &str = "ferry.bridge.batch_signed";
/// A member attested a batch's release on its parent chain.
/// Attributes: [`BATCH_ID`], [`ATTESTER`], [`PARENT_TX`], [`ATTESTATIONS`], [`QUORUM`].
pub const RELEASE_ATTESTED: &str = "ferry.bridge.release_attested";
/// A batch's release reached quorum and settled: reserves and unreleased amounts fell by its
/// total. Attributes: [`BATCH_ID`], [`PARENT_TX`], [`AMOUNT`].
pub const BATCH_RELEASED: &str = "ferry.bridge.batch_released";
/// A member voted to pause or resume the bridge. Attributes: [`ATTESTER`], [`PAUSED`], [`ATTESTATIONS`], [`QUORUM`].
pub const PAUSE_VOTE: &str = "ferry.bridge.pause_vote";
/// The bridge paused (reserves invariant violated, or a federation vote). Attributes: [`REASON`].
pub const BRIDGE_PAUSED: &str = "ferry.bridge.bridge_paused";
/// The bridge resumed by federation vote. Attributes: [`REASON`].
pub const BRIDGE_RESUMED: &str = "ferry.bridge.bridge_resumed";

/// Attribute: a withdrawal id (`wd-<n>`).
pub const WITHDRAWAL_ID: &str = "withdrawal_id";
/// Attribute: a batch id (the Ethereum batch nonce).
pub const BATCH_ID: &str = "batch_id";
/// Attribute: a parent-chain destination address.
pub const DESTINATION: &str = "destination";
/// Attribute: the first height at which a withdrawal may be batched.
pub const ELIGIBLE_HEIGHT: &str = "eligible_height";
/// Attribute: a denomination.
pub const ASSET: &str = "asset";
/// Attribute: a count of items.
pub const ITEMS: &str = "items";
/// Attribute: the signing member (bech32).
pub const SIGNER: &str = "signer";
/// Attribute: members whose signatures are recorded so far.
pub const SIGNATURES: &str = "signatures";
/// Attribute: signatures needed.
pub const THRESHOLD: &str = "threshold";
/// Attribute: a parent-chain transaction (Bitcoin txid or Ethereum transaction hash).
pub const PARENT_TX: &str = "parent_tx";
/// Attribute: `true` or `false`.
pub const PAUSED: &str = "paused";
/// Attribute: why, in words.
pub const REASON: &str = "reason";

/// A queued withdrawal was left out of its asset's batch and keeps waiting (its fee share above
/// its `max_fee`, or what it would receive below the dust limit). Emitted when it starts
/// waiting; its record keeps the latest reason. Attributes: [`WITHDRAWAL_ID`], [`REASON`].
pub const WITHDRAWAL_WAITING: &str = "ferry.bridge.withdrawal_waiting";
/// The parent clock moved (a quorum of members reported a higher best block).
/// Attributes: [`CHAIN`], [`HEIGHT`].
pub const PARENT_HEIGHT: &str = "ferry.bridge.parent_height";
/// The Bitcoin fee controller moved the rate after a release settled.
/// Attributes: [`BATCH_ID`], [`WAITED_BLOCKS`], [`FEE_RATE`].
pub const FEE_RATE_CHANGED: &str = "ferry.bridge.fee_rate_changed";

/// Attribute: a parent chain (`btc`, `eth`).
pub const CHAIN: &str = "chain";
/// Attribute: a parent-chain height.
pub const HEIGHT: &str = "height";
/// Attribute: parent blocks a release took from its signing to its block.
pub const WAITED_BLOCKS: &str = "waited_blocks";
/// Attribute: a fee rate in satoshi per 1,000 virtual bytes.
pub const FEE_RATE: &str = "fee_rate_sat_per_kvb";
/// A stuck Bitcoin release was replaced by a next version with a higher fee, to be signed.
/// Attributes: [`BATCH_ID`], [`VERSION`], [`PARENT_TX`] (the new txid), [`FEE_RATE`], [`AMOUNT`] (its fee).
pub const RELEASE_REPLACED: &str = "ferry.bridge.release_replaced";
/// The chain formed a consolidation of small reserve UTXOs (a Bitcoin batch paying no withdrawal).
/// Attributes: [`BATCH_ID`], [`ITEMS`] (inputs spent), [`AMOUNT`] (its fee, from the fee pool).
pub const CONSOLIDATION_FORMED: &str = "ferry.bridge.consolidation_formed";
/// A replacement was due but none is possible (the rate at its ceiling, the budgets spent).
/// Emitted when the reason changes. Attributes: [`BATCH_ID`], [`REASON`].
pub const REPLACEMENT_BLOCKED: &str = "ferry.bridge.replacement_blocked";
/// Attribute: a release version (0 for the first).
pub const VERSION: &str = "version";
/// A member voted to abort a batch it will not sign.
/// Attributes: [`BATCH_ID`], [`ATTESTER`], [`REASON`], [`ATTESTATIONS`] (votes so far), [`QUORUM`] (votes that abort).
pub const ABORT_VOTE: &str = "ferry.bridge.abort_vote";
/// A batch was aborted before it was fully signed: its withdrawals re-queued or held, its inputs
/// unlocked. Attributes: [`BATCH_ID`], [`REASON`], [`ITEMS`] (withdrawals held).
pub const BATCH_ABORTED: &str = "ferry.bridge.batch_aborted";
/// An aborted batch held a withdrawal that enough members refused to pay.
/// Attributes: [`WITHDRAWAL_ID`], [`REASON`].
pub const WITHDRAWAL_HELD: &str = "ferry.bridge.withdrawal_held";
/// A held withdrawal was refunded to its sender by a member quorum.
/// Attributes: [`WITHDRAWAL_ID`], [`RECIPIENT`], [`AMOUNT`].
pub const WITHDRAWAL_REFUNDED: &str = "ferry.bridge.withdrawal_refunded";
/// A deposit reached its quorum but is below its asset's `min_deposit`: never minted, counted
/// in the ledger's `below_minimum`. Attributes: [`DEPOSIT_ID`], [`RECIPIENT`], [`AMOUNT`], [`REASON`].
pub const DEPOSIT_BELOW_MINIMUM: &str = "ferry.bridge.deposit_below_minimum";
/// Attribute: what a Bitcoin deposit prepaid for its own spending (into the fee pool).
pub const SPEND_FEE: &str = "spend_fee";

/// A reserves round opened (attributes: `round`, and `chain`/`height` pairs as `targets`).
pub const RESERVES_ROUND_OPENED: &str = "ferry.bridge.reserves_round_opened";
/// A member's reserves snapshot was recorded (`attester`, `chain`, `round`, `attestations`, `quorum`).
pub const RESERVES_ATTESTED: &str = "ferry.bridge.reserves_attested";
/// A quorum agreed on a snapshot and the ledger was compared with it (`chain`, `round`,
/// `height`, `result`: `ok`, `excess` or `shortfall`, `reason`).
pub const RESERVES_CHECKED: &str = "ferry.bridge.reserves_checked";
/// Attribute: the reserves round.
pub const ROUND: &str = "round";
/// Attribute: the outcome of a check.
pub const RESULT: &str = "result";
/// Attribute: a round's parent heights per chain (`btc=120,eth=340`).
pub const TARGETS: &str = "targets";

/// A quorum attested a deposit of a token the chain does not list: not minted (`deposit_id`,
/// `recipient`, `amount`, `reason`).
pub const DEPOSIT_UNLISTED: &str = "ferry.bridge.deposit_unlisted";

/// A member proposed to list or unlist a token (`MsgProposeListing`); attributes `attester`,
/// `token`, `listed`, `attestations` (identical proposals so far), `quorum`.
pub const LISTING_PROPOSED: &str = "ferry.bridge.listing_proposed";
/// A listing change the vault confirmed took effect on the chain; attributes `batch_id`,
/// `token`, `listed`.
pub const LISTING_SETTLED: &str = "ferry.bridge.listing_settled";
/// The chain formed a heartbeat for the vault: the exit tree's root at a height (issue 17).
pub const VAULT_HEARTBEAT_FORMED: &str = "ferry.exit.vault_heartbeat_formed";
/// A heartbeat landed in the vault (its delivery was attested by a quorum).
pub const VAULT_HEARTBEAT_LANDED: &str = "ferry.exit.vault_heartbeat_landed";
/// Attribute: an exit tree root (hex).
pub const EXIT_ROOT: &str = "exit_root";
/// The chain derived the Bitcoin disbursal for the reserve a release version leaves behind.
pub const EXIT_DERIVED: &str = "ferry.exit.btc_derived";
/// The chain could not derive a release version's disbursal: the version is signed without one.
pub const EXIT_NOT_DERIVED: &str = "ferry.exit.btc_not_derived";
/// The chain formed a refresh: a consolidation whose disbursal covers the whole reserve again
/// (the covering one's lock is near, or deposits are uncovered).
pub const EXIT_REFRESH: &str = "ferry.exit.btc_refresh";
/// A Bitcoin disbursal's release confirmed: it now covers the reserve.
pub const EXIT_COVERING: &str = "ferry.exit.btc_covering";
/// An account set (or cleared) where the Bitcoin exit pays it; attributes `address` (the
/// account) and `destination` (empty: its own key's P2WPKH).
pub const RECOVERY_ADDRESS_SET: &str = "ferry.exit.recovery_address_set";
/// The release a disbursal follows (attribute: its batch id).
pub const FOLLOWS: &str = "follows";
/// A disbursal's lock height (attribute).
pub const LOCK_HEIGHT: &str = "lock_height";
/// How many claims a disbursal pays an output to (attribute).
pub const RECIPIENTS: &str = "recipients";
/// How many claims a disbursal pooled into its residual (attribute).
pub const POOLED: &str = "pooled";
/// Attribute: an ERC-20 token contract.
pub const TOKEN: &str = "token";
/// Attribute: whether a token is listed (`true`) or unlisted (`false`).
pub const LISTED: &str = "listed";

/// An account registered its Bitcoin deposit address; attributes `address` (the account) and
/// `number` (its registration number).
pub const DEPOSIT_ADDRESS_REGISTERED: &str = "ferry.bridge.deposit_address_registered";
/// Attribute: a registration number.
pub const NUMBER: &str = "number";

/// A payment to the peg naming no account reached its quorum: held in the reserves, minted to
/// nobody. Attributes [`DEPOSIT_ID`], [`AMOUNT`], [`REASON`].
pub const DEPOSIT_UNATTRIBUTED: &str = "ferry.bridge.deposit_unattributed";
/// A member voted on an unattributed payment. Attributes [`DEPOSIT_ID`], [`ATTESTER`],
/// [`RESOLUTION`], [`ATTESTATIONS`] (agreeing votes), [`QUORUM`].
pub const UNATTRIBUTED_VOTE: &str = "ferry.bridge.unattributed_vote";
/// An unattributed payment was resolved. Attributes [`DEPOSIT_ID`], [`RESOLUTION`], and
/// [`RECIPIENT`] with [`AMOUNT`] (credit) or [`WITHDRAWAL_ID`] (refund).
pub const UNATTRIBUTED_RESOLVED: &str = "ferry.bridge.unattributed_resolved";
/// Attribute: a resolution, `credit:<account>` or `refund:<address>`.
pub const RESOLUTION: &str = "resolution";

/// An account registered its signer keys. Attributes [`ADDRESS`], [`ENCRYPTION_KEY`],
/// [`BITCOIN_KEY`].
pub const SIGNER_KEYS_REGISTERED: &str = "ferry.federation.signer_keys_registered";
/// Attribute: a DKG encryption key (hex).
pub const ENCRYPTION_KEY: &str = "encryption_key";
/// Attribute: a Bitcoin public key (hex).
pub const BITCOIN_KEY: &str = "bitcoin_key";
/// A member proposed the next federation. Attributes [`MEMBER`], [`MEMBERS`] (comma-separated),
/// [`THRESHOLD`], [`ATTESTATIONS`] (identical proposals), [`QUORUM`].
pub const FEDERATION_PROPOSED: &str = "ferry.federation.proposed";
/// Attribute: a member.
pub const MEMBER: &str = "member";
/// Attribute: a comma-separated member list.
pub const MEMBERS: &str = "members";
/// A key generation started or restarted. Attributes [`SESSION`], [`ATTEMPT`], [`EPOCH`],
/// [`MEMBERS`], [`THRESHOLD`].
pub const DKG_STARTED: &str = "ferry.dkg.started";
/// Attribute: a DKG session number.
pub const SESSION: &str = "session";
/// Attribute: a DKG attempt number.
pub const ATTEMPT: &str = "attempt";
/// Attribute: a federation epoch.
pub const EPOCH: &str = "epoch";
/// A participant's dealing was accepted. Attributes [`SESSION`], [`ATTEMPT`], [`MEMBER`].
pub const DKG_DEALT: &str = "ferry.dkg.dealt";
/// A complaint was judged. Attributes [`SESSION`], [`ATTEMPT`], [`MEMBER`] (the accuser),
/// [`DEALER`], [`FAULTY`] (whoever the chain convicted).
pub const DKG_COMPLAINT: &str = "ferry.dkg.complaint";
/// Attribute: an accused dealer.
pub const DEALER: &str = "dealer";
/// Attribute: a participant the chain found at fault.
pub const FAULTY: &str = "faulty";
/// A participant was dropped from a session. Attributes [`SESSION`], [`ATTEMPT`], [`MEMBER`],
/// [`REASON`].
pub const DKG_DROPPED: &str = "ferry.dkg.dropped";
/// The complaints phase closed clean: the group key is fixed. Attributes [`SESSION`],
/// [`ATTEMPT`], [`PUBLIC_KEY`].
pub const DKG_KEY_FORMED: &str = "ferry.dkg.key_formed";
/// Attribute: a BLS public key (hex).
pub const PUBLIC_KEY: &str = "public_key";
/// A participant confirmed its share. Attributes [`SESSION`], [`ATTEMPT`], [`MEMBER`].
pub const DKG_CONFIRMED: &str = "ferry.dkg.confirmed";
/// Every participant confirmed. Attributes [`SESSION`], [`EPOCH`], [`MEMBERS`], [`THRESHOLD`],
/// [`PUBLIC_KEY`].
pub const DKG_COMPLETE: &str = "ferry.dkg.complete";
/// A session gave up. Attributes [`SESSION`], [`REASON`].
pub const DKG_FAILED: &str = "ferry.dkg.failed";
/// A heartbeat round opened. Attributes [`ROUND`], [`CHALLENGE`].
pub const HEARTBEAT_ROUND: &str = "ferry.federation.heartbeat_round";
/// Attribute: a heartbeat challenge (hex).
pub const CHALLENGE: &str = "challenge";
/// A member answered a heartbeat round. Attributes [`MEMBER`], [`ROUND`].
pub const HEARTBEAT: &str = "ferry.federation.heartbeat";
/// A member proposed parameters. Attributes [`MEMBER`], [`HASH`], [`ATTESTATIONS`], [`QUORUM`].
pub const PARAMS_PROPOSED: &str = "ferry.governance.params_proposed";
/// Attribute: a hex SHA-256 identifying a proposal.
pub const HASH: &str = "hash";
/// A quorum accepted a parameter change. Attributes [`HASH`], [`HEIGHT`] (where it takes effect).
pub const PARAMS_SCHEDULED: &str = "ferry.governance.params_scheduled";
/// A scheduled parameter change took effect. Attributes [`HASH`], [`HEIGHT`].
pub const PARAMS_CHANGED: &str = "ferry.governance.params_changed";
/// A hand-over to the next federation started. Attributes [`EPOCH`], [`MEMBERS`].
pub const HANDOVER_STARTED: &str = "ferry.federation.handover_started";
/// The vault's rotation batch formed. Attributes [`EPOCH`], [`BATCH_ID`].
pub const ROTATION_FORMED: &str = "ferry.federation.rotation_formed";
/// A quorum attested the vault's rotation. Attributes [`EPOCH`], [`BATCH_ID`].
pub const ROTATED: &str = "ferry.federation.rotated";
/// A migration batch formed. Attributes [`EPOCH`], [`BATCH_ID`], [`ITEMS`] (inputs), [`AMOUNT`] (moved).
pub const MIGRATION_FORMED: &str = "ferry.federation.migration_formed";
/// A migration settled. Attributes [`EPOCH`], [`BATCH_ID`], [`AMOUNT`] (what arrived at the next peg).
pub const MIGRATED: &str = "ferry.federation.migrated";
/// A sweep batch formed: deposits minted within a retired peg's grace move to the current peg.
/// Attributes [`EPOCH`] (the retired one), [`BATCH_ID`], [`ITEMS`] (inputs), [`AMOUNT`] (moved).
pub const SWEEP_FORMED: &str = "ferry.federation.sweep_formed";
/// A sweep settled. Attributes [`EPOCH`] (the retired one), [`BATCH_ID`], [`AMOUNT`] (what arrived
/// at the current peg).
pub const SWEPT: &str = "ferry.federation.swept";
/// The federation switched to the next epoch. Attributes [`EPOCH`], [`MEMBERS`], [`THRESHOLD`].
pub const FEDERATION_SWITCHED: &str = "ferry.federation.switched";
/// A member anchored the head of one of its audit logs. Attributes [`MEMBER`], [`AUDIT_LOG`],
/// [`ROWS`], [`HASH`] (the head hash, hex).
pub const AUDIT_ANCHORED: &str = "ferry.audit.anchored";
/// A member's anchor was refused — fewer rows than its anchored head, the same count with
/// another hash, or more rows over another history: evidence that the log was cut or rewritten.
/// Attributes [`MEMBER`], [`AUDIT_LOG`], [`ROWS`], [`HASH`] (offered), [`ANCHORED_ROWS`],
/// [`ANCHORED_HASH`], [`REASON`] (`fewer_rows`, `other_hash` or `other_history`).
pub const AUDIT_ANCHOR_REFUSED: &str = "ferry.audit.anchor_refused";
/// Attribute: an audit log's name (`relayer`, `signer`).
pub const AUDIT_LOG: &str = "log";
/// Attribute: an audit log's row count.
pub const ROWS: &str = "rows";
/// Attribute: the row count of the anchor already held.
pub const ANCHORED_ROWS: &str = "anchored_rows";
/// Attribute: the head hash of the anchor already held (hex).
pub const ANCHORED_HASH: &str = "anchored_hash";
