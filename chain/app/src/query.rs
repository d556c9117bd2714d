//! Answers to ABCI queries over a state view (the node picks the view for the asked height).

use ferry_types::query::{
    ACCOUNT_PATH, AccountView, BALANCES_PATH, BATCH_PATH, BITCOIN_FEES_PATH, BRIDGE_PATH, BalancesView,
    DEPOSIT_ADDRESS_PATH, DEPOSIT_ADDRESSES_PAGE, DEPOSIT_ADDRESSES_PATH, DEPOSIT_PATH, DepositAddressPage,
    DepositAddressView, FEDERATION_PATH, PARAMS_PATH, PEG_PATH, PENDING_BATCHES_PAGE, PENDING_BATCHES_PATH,
    PendingBatchesView, QUERY_BAD_REQUEST, QUERY_NOT_FOUND, QUERY_OK, RESERVES_CHECK_PATH, RESERVES_PATH,
    UNATTRIBUTED_PAGE, UNATTRIBUTED_PATH, UnattributedPage, WITHDRAWAL_PATH, WithdrawalId, WithdrawalView,
};
use ferry_types::{Address, Coin};

use crate::state::{StateDelta, StateError, StateRead};

/// A query answer: code (see [`ferry_types::query`]), JSON value, and a log on failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryAnswer {
    /// Answer code.
    pub code: u32,
    /// JSON body when `code` is OK.
    pub value: Vec<u8>,
    /// Reason when `code` is not OK.
    pub log: String,
}

impl QueryAnswer {
    fn json(value: &impl serde::Serialize) -> Self {
        QueryAnswer { code: QUERY_OK, value: serde_json::to_vec(value).unwrap_or_default(), log: String::new() }
    }

    /// A failed answer.
    pub fn error(code: u32, log: impl Into<String>) -> Self {
        QueryAnswer { code, value: Vec::new(), log: log.into() }
    }
}

fn parse_address(path: &str, rest: &str) -> Result<Address, QueryAnswer> {
    rest.parse().map_err(|e| QueryAnswer::error(QUERY_BAD_REQUEST, format!("query `{path}`: {e}")))
}

/// Answers `path` from `state`.
///
/// # Errors
/// Only on storage failure.
pub fn query<R: StateRead>(state: R, path: &str) -> Result<QueryAnswer, StateError> {
    let state = StateDelta::new(state);
    if let Some(rest) = path.strip_prefix(ACCOUNT_PATH) {
        let address = match parse_address(path, rest) {
            Ok(address) => address,
            Err(answer) => return Ok(answer),
        };
        return Ok(match state.account(&address)? {
            None => QueryAnswer::error(QUERY_NOT_FOUND, format!("no account {address}")),
            Some(record) => QueryAnswer::json(&AccountView {
                address,
                account_number: record.account_number,
                sequence: record.sequence,
                public_key: record.public_key,
            }),
        });
    }
    if let Some(rest) = path.strip_prefix(BALANCES_PATH) {
        let address = match parse_address(path, rest) {
            Ok(address) => address,
            Err(answer) => return Ok(answer),
        };
        let balances = state
            .account(&address)?
            .map(|record| record.balances.into_iter().map(|(denom, amount)| Coin { denom, amount }).collect())
            .unwrap_or_default();
        return Ok(QueryAnswer::json(&BalancesView { address, balances }));
    }
    if path == PARAMS_PATH {
        return Ok(QueryAnswer::json(&state.params()?));
    }
    if let Some(rest) = path.strip_prefix(ferry_types::query::LISTING_PATH) {
        return Ok(match rest.parse::<ferry_types::release::eth::EthAddress>() {
            Ok(token) => QueryAnswer::json(&state.token_proposals(&token)?),
            Err(error) => QueryAnswer::error(QUERY_BAD_REQUEST, format!("query `{path}`: {error}")),
        });
    }
    if let Some(rest) = path.strip_prefix(DEPOSIT_PATH) {
        let id: ferry_types::DepositId = match rest.parse() {
            Ok(id) => id,
            Err(error) => return Ok(QueryAnswer::error(QUERY_BAD_REQUEST, format!("query `{path}`: {error}"))),
        };
        return Ok(match state.deposit(&id)? {
            Some(record) => QueryAnswer::json(&record),
            None => QueryAnswer::error(QUERY_NOT_FOUND, format!("no attestation of deposit {id} yet")),
        });
    }
    if path == RESERVES_PATH {
        return Ok(QueryAnswer::json(&reserves(&state)?));
    }
    if path == RESERVES_CHECK_PATH {
        return Ok(QueryAnswer::json(&state.reserves_check_view(&state.params()?)?));
    }
    if path == FEDERATION_PATH {
        return Ok(QueryAnswer::json(&state.federation()?));
    }
    if path == PEG_PATH {
        let federation = state.federation()?;
        let Some(bitcoin) = federation.bitcoin else {
            return Ok(QueryAnswer::error(QUERY_NOT_FOUND, "this chain has no Bitcoin peg"));
        };
        return Ok(match ferry_types::peg::Peg::new(&bitcoin) {
            Ok(peg) => QueryAnswer::json(&ferry_types::query::PegView::of(&peg, bitcoin.network)),
            // Genesis validation rules this out; answer rather than fail if it ever happens.
            Err(error) => QueryAnswer::error(QUERY_NOT_FOUND, format!("stored peg is invalid: {error}")),
        });
    }
    if let Some(answer) = withdrawal_query(&state, path)? {
        return Ok(answer);
    }
    if let Some(answer) = deposit_address_query(&state, path)? {
        return Ok(answer);
    }
    if let Some(answer) = federation_query(&state, path)? {
        return Ok(answer);
    }
    if let Some(rest) = path.strip_prefix(ferry_types::query::audit::AUDIT_ANCHOR_PATH) {
        return audit_anchor_query(&state, path, rest);
    }
    Ok(QueryAnswer::error(
        QUERY_BAD_REQUEST,
        format!(
            "unknown query path `{path}`; known: {ACCOUNT_PATH}<address>, {BALANCES_PATH}<address>, {PARAMS_PATH}, \
             {DEPOSIT_PATH}<id>, {RESERVES_PATH}, {RESERVES_CHECK_PATH}, {FEDERATION_PATH}, {PEG_PATH}, {WITHDRAWAL_PATH}wd-<n>, \
             {BATCH_PATH}<n>, {PENDING_BATCHES_PATH}[/<after>], {BRIDGE_PATH}, {BITCOIN_FEES_PATH}, \
             /listing/<0x token>, {DEPOSIT_ADDRESS_PATH}<address>, {DEPOSIT_ADDRESSES_PATH}<after>, \
             {UNATTRIBUTED_PATH}[/<after id>], /exit/eth/root, /exit/eth/claims/<from>, /signer_keys/<address>, /federation/proposals, /federation/next, /federation/liveness, /params/proposals, \
             /dkg[/<session>[/dealings]], /audit_anchor/<member>/<relayer|signer>"
        ),
    ))
}

/// `/audit_anchor/<member>/<log>`: the member's latest anchor of that audit log.
fn audit_anchor_query<R: StateRead>(state: &StateDelta<R>, path: &str, rest: &str) -> Result<QueryAnswer, StateError> {
    let bad_request = |reason: String| QueryAnswer::error(QUERY_BAD_REQUEST, format!("query `{path}`: {reason}"));
    let Some((member, log)) = rest.split_once('/') else {
        return Ok(bad_request("expected /audit_anchor/<member>/<relayer|signer>".to_owned()));
    };
    let member: Address = match member.parse() {
        Ok(member) => member,
        Err(error) => return Ok(bad_request(format!("{error}"))),
    };
    let log: ferry_types::query::audit::AuditLogName = match log.parse() {
        Ok(log) => log,
        Err(error) => return Ok(bad_request(format!("{error}"))),
    };
    Ok(match state.audit_anchor(&member, log)? {
        Some(anchor) => QueryAnswer::json(&anchor),
        None => QueryAnswer::error(QUERY_NOT_FOUND, format!("{member} has not anchored its {log} audit log")),
    })
}

/// The withdrawal side's queries; `None` when `path` is not one of them.
fn withdrawal_query<R: StateRead>(state: &StateDelta<R>, path: &str) -> Result<Option<QueryAnswer>, StateError> {
    let bad_request =
        |error: &dyn std::fmt::Display| QueryAnswer::error(QUERY_BAD_REQUEST, format!("query `{path}`: {error}"));
    if let Some(rest) = path.strip_prefix(WITHDRAWAL_PATH) {
        let id: WithdrawalId = match rest.parse() {
            Ok(id) => id,
            Err(error) => return Ok(Some(bad_request(&error))),
        };
        let Some(withdrawal) = state.withdrawal(id)? else {
            return Ok(Some(QueryAnswer::error(QUERY_NOT_FOUND, format!("no withdrawal {id}"))));
        };
        let batch = match withdrawal.batch {
            Some(batch) => state.batch(batch)?,
            None => None,
        };
        return Ok(Some(QueryAnswer::json(&WithdrawalView::of(withdrawal, batch.as_ref()))));
    }
    if let Some(rest) = path.strip_prefix(BATCH_PATH) {
        let Some(id) = parse_batch_id(rest) else {
            return Ok(Some(bad_request(&format_args!("`{rest}` is not a batch id (a positive integer)"))));
        };
        let Some(batch) = state.batch(id)? else {
            return Ok(Some(QueryAnswer::error(QUERY_NOT_FOUND, format!("no batch {id}"))));
        };
        let views = crate::batch::views(state, vec![batch])?;
        return Ok(Some(QueryAnswer::json(&views.first())));
    }
    if let Some(rest) = path.strip_prefix(PENDING_BATCHES_PATH) {
        let after = if rest.is_empty() {
            Some(0)
        } else {
            rest.strip_prefix('/').and_then(|after| after.parse::<u64>().ok().filter(|n| n.to_string() == after))
        };
        let Some(after) = after else {
            return Ok(Some(bad_request(&format_args!(
                "expected {PENDING_BATCHES_PATH} or {PENDING_BATCHES_PATH}/<batch id>"
            ))));
        };
        return Ok(Some(QueryAnswer::json(&pending_batches(state, after)?)));
    }
    if path == BRIDGE_PATH {
        return Ok(Some(QueryAnswer::json(&state.bridge_status()?)));
    }
    if path == BITCOIN_FEES_PATH {
        return Ok(Some(match state.bitcoin_fees()? {
            Some(fees) => QueryAnswer::json(&fees),
            None => QueryAnswer::error(QUERY_NOT_FOUND, "no parameters stored yet (before genesis)"),
        }));
    }
    Ok(None)
}

/// The deposit address queries; `None` when `path` is not one of them.
fn deposit_address_query<R: StateRead>(state: &StateDelta<R>, path: &str) -> Result<Option<QueryAnswer>, StateError> {
    if let Some(rest) = path.strip_prefix(DEPOSIT_ADDRESS_PATH) {
        let account = match parse_address(path, rest) {
            Ok(account) => account,
            Err(answer) => return Ok(Some(answer)),
        };
        let Some(peg) = crate::batch::peg_of(&state.federation()?)? else {
            return Ok(Some(QueryAnswer::error(QUERY_NOT_FOUND, "this chain has no Bitcoin peg")));
        };
        return Ok(Some(match state.deposit_address(&account)? {
            Some(record) => QueryAnswer::json(&DepositAddressView::of(record, &peg)),
            None => QueryAnswer::error(
                QUERY_NOT_FOUND,
                format!("{account} has no registered deposit address (`ferry deposit-address` registers one)"),
            ),
        }));
    }
    if let Some(rest) = path.strip_prefix(DEPOSIT_ADDRESSES_PATH) {
        let Some(after) = rest.parse::<u64>().ok().filter(|n| n.to_string() == rest) else {
            return Ok(Some(QueryAnswer::error(
                QUERY_BAD_REQUEST,
                format!(
                    "query `{path}`: expected {DEPOSIT_ADDRESSES_PATH}<after>, a registration number (0 for the first page)"
                ),
            )));
        };
        let registrations = state.deposit_addresses_after(after, DEPOSIT_ADDRESSES_PAGE)?;
        return Ok(Some(QueryAnswer::json(&DepositAddressPage {
            registrations,
            total: state.deposit_address_count()?,
        })));
    }
    if path == ferry_types::query::EXIT_BTC_PATH {
        return Ok(Some(QueryAnswer::json(&crate::btc_exit::status(state)?)));
    }
    if let Some(rest) = path.strip_prefix(ferry_types::query::EXIT_BTC_RECOVERY_PATH) {
        let address = match parse_address(path, rest) {
            Ok(address) => address,
            Err(answer) => return Ok(Some(answer)),
        };
        return Ok(Some(QueryAnswer::json(&crate::btc_exit::recovery_address(state, &address)?)));
    }
    if let Some(rest) = path.strip_prefix(ferry_types::query::EXIT_BTC_DISBURSAL_PATH) {
        let Some(id) = rest.parse::<u64>().ok().filter(|n| n.to_string() == rest) else {
            return Ok(Some(QueryAnswer::error(
                QUERY_BAD_REQUEST,
                format!("query `{path}`: expected {}<id>, a batch id", ferry_types::query::EXIT_BTC_DISBURSAL_PATH),
            )));
        };
        return Ok(Some(crate::btc_exit::disbursal(state, id)?.map_or_else(
            || QueryAnswer::error(QUERY_NOT_FOUND, format!("batch {id} is no Bitcoin exit disbursal")),
            |view| QueryAnswer::json(&view),
        )));
    }
    if path == ferry_types::query::EXIT_ROOT_PATH {
        let root: Option<ferry_types::exit_tree::ExitRoot> = state.get_record(ferry_types::state_keys::EXIT_ROOT)?;
        return Ok(Some(root.map_or_else(
            || QueryAnswer::error(QUERY_NOT_FOUND, "no exit root yet (before the first block)"),
            |root| QueryAnswer::json(&root),
        )));
    }
    if let Some(rest) = path.strip_prefix(ferry_types::query::EXIT_CLAIMS_PATH) {
        let Some(from) = rest.parse::<u32>().ok().filter(|n| n.to_string() == rest) else {
            return Ok(Some(QueryAnswer::error(
                QUERY_BAD_REQUEST,
                format!(
                    "query `{path}`: expected {}<from>, a position (0 for the first page)",
                    ferry_types::query::EXIT_CLAIMS_PATH
                ),
            )));
        };
        let page = ferry_types::query::EXIT_CLAIMS_PAGE;
        let claims = crate::exit_claims::claims_from(state, from, page)?;
        let next = if claims.len() == page { claims.last().and_then(|(index, _)| index.checked_add(1)) } else { None };
        return Ok(Some(QueryAnswer::json(&ferry_types::query::ExitClaimPage { claims, next })));
    }
    if let Some(rest) = path.strip_prefix(UNATTRIBUTED_PATH) {
        let after = match rest.strip_prefix('/') {
            None if rest.is_empty() => None,
            Some(id) => match id.parse::<ferry_types::DepositId>() {
                Ok(id) => Some(id),
                Err(error) => {
                    return Ok(Some(QueryAnswer::error(QUERY_BAD_REQUEST, format!("query `{path}`: {error}"))));
                }
            },
            None => {
                return Ok(Some(QueryAnswer::error(
                    QUERY_BAD_REQUEST,
                    format!("query `{path}`: expected {UNATTRIBUTED_PATH} or {UNATTRIBUTED_PATH}/<deposit id>"),
                )));
            }
        };
        let open = state.open_unattributed(after.as_ref(), UNATTRIBUTED_PAGE)?;
        return Ok(Some(QueryAnswer::json(&UnattributedPage { open, total: state.open_unattributed_count()? })));
    }
    Ok(None)
}

/// The federation change queries (signer keys, proposals, key generation); `None` when `path` is
/// not one of them.
fn federation_query<R: StateRead>(state: &StateDelta<R>, path: &str) -> Result<Option<QueryAnswer>, StateError> {
    use ferry_types::query::federation::{
        DKG_PATH, FEDERATION_PROPOSALS_PATH, LIVENESS_PATH, NEXT_FEDERATION_PATH, SIGNER_KEYS_PATH,
    };
    if path == ferry_types::query::federation::PARAMS_PROPOSALS_PATH {
        return Ok(Some(QueryAnswer::json(&state.params_proposals()?)));
    }
    if path == LIVENESS_PATH {
        return Ok(Some(QueryAnswer::json(&state.liveness(&state.params()?)?)));
    }
    if let Some(rest) = path.strip_prefix(SIGNER_KEYS_PATH) {
        let account = match parse_address(path, rest) {
            Ok(account) => account,
            Err(answer) => return Ok(Some(answer)),
        };
        return Ok(Some(match state.signer_keys(&account)? {
            Some(keys) => QueryAnswer::json(&keys),
            None => QueryAnswer::error(QUERY_NOT_FOUND, format!("{account} has registered no signer keys")),
        }));
    }
    if path == FEDERATION_PROPOSALS_PATH {
        return Ok(Some(QueryAnswer::json(&state.federation_proposals()?)));
    }
    if path == NEXT_FEDERATION_PATH {
        return Ok(Some(match state.next_federation()? {
            Some(next) => QueryAnswer::json(&next),
            None => QueryAnswer::error(QUERY_NOT_FOUND, "no key generation has completed a next federation"),
        }));
    }
    if let Some(answer) = handover_query(state, path)? {
        return Ok(Some(answer));
    }
    let Some(rest) = path.strip_prefix(DKG_PATH) else { return Ok(None) };
    if rest.is_empty() {
        return Ok(Some(match state.latest_dkg()? {
            Some(session) => QueryAnswer::json(&session),
            None => QueryAnswer::error(QUERY_NOT_FOUND, "no key generation has started"),
        }));
    }
    let mut parts = rest.trim_start_matches('/').splitn(2, '/');
    let number = parts.next().and_then(|text| text.parse::<u64>().ok()).filter(|_| rest.starts_with('/'));
    let (Some(number), tail) = (number, parts.next()) else {
        return Ok(Some(QueryAnswer::error(
            QUERY_BAD_REQUEST,
            format!("query `{path}`: expected {DKG_PATH}, {DKG_PATH}/<session> or {DKG_PATH}/<session>/dealings"),
        )));
    };
    let Some(session) = state.dkg_session(number)? else {
        return Ok(Some(QueryAnswer::error(QUERY_NOT_FOUND, format!("no key generation session {number}"))));
    };
    Ok(Some(match tail {
        None => QueryAnswer::json(&session),
        Some("dealings") => QueryAnswer::json(&state.dkg_dealings(&session)?),
        Some(_) => {
            QueryAnswer::error(QUERY_BAD_REQUEST, format!("query `{path}`: expected {DKG_PATH}/<session>/dealings"))
        }
    }))
}

/// `/federation/handover[/<epoch>]`, `/federation/epoch/<n>` and `/federation/retired`; `None`
/// for other paths.
fn handover_query<R: StateRead>(state: &StateDelta<R>, path: &str) -> Result<Option<QueryAnswer>, StateError> {
    use ferry_types::query::federation::{HANDOVER_PATH, RETIRED_FEDERATION_PATH, RETIRED_FEDERATIONS_PATH};
    let epoch_of = |text: &str| text.parse::<u64>().ok().filter(|epoch| epoch.to_string() == text);
    if path == RETIRED_FEDERATIONS_PATH {
        return Ok(Some(QueryAnswer::json(&crate::handover::retired_federations(state)?)));
    }
    if let Some(rest) = path.strip_prefix(RETIRED_FEDERATION_PATH) {
        let Some(epoch) = epoch_of(rest) else {
            return Ok(Some(QueryAnswer::error(
                QUERY_BAD_REQUEST,
                format!("query `{path}`: expected {RETIRED_FEDERATION_PATH}<epoch>"),
            )));
        };
        return Ok(Some(match state.retired_federation(epoch)? {
            Some(federation) => QueryAnswer::json(&federation),
            None => QueryAnswer::error(QUERY_NOT_FOUND, format!("no federation of epoch {epoch} has handed over")),
        }));
    }
    let Some(rest) = path.strip_prefix(HANDOVER_PATH) else { return Ok(None) };
    let epoch = match rest.strip_prefix('/') {
        Some(text) => match epoch_of(text) {
            Some(epoch) => epoch,
            None => {
                return Ok(Some(QueryAnswer::error(
                    QUERY_BAD_REQUEST,
                    format!("query `{path}`: expected {HANDOVER_PATH} or {HANDOVER_PATH}/<epoch>"),
                )));
            }
        },
        None if rest.is_empty() => match state.next_federation()? {
            Some(next) => next.epoch,
            None => state.federation()?.epoch,
        },
        None => return Ok(None),
    };
    Ok(Some(match state.handover(epoch)? {
        Some(handover) => QueryAnswer::json(&handover),
        None => QueryAnswer::error(QUERY_NOT_FOUND, format!("no hand-over to epoch {epoch}")),
    }))
}

/// A batch id: `<n>` or `batch-<n>`, n positive, without leading zeros.
fn parse_batch_id(text: &str) -> Option<u64> {
    let number = text.strip_prefix("batch-").unwrap_or(text);
    number.parse::<u64>().ok().filter(|id| *id > 0 && id.to_string() == number)
}

fn pending_batches<R: StateRead>(state: &StateDelta<R>, after: u64) -> Result<PendingBatchesView, StateError> {
    // One more than a page tells whether another page follows.
    let ids = state.pending_batch_page(after, PENDING_BATCHES_PAGE.saturating_add(1))?;
    let more = ids.len() > PENDING_BATCHES_PAGE;
    let mut page = Vec::new();
    for id in ids.into_iter().take(PENDING_BATCHES_PAGE) {
        if let Some(batch) = state.batch(id)? {
            page.push(batch);
        }
    }
    let batches = crate::batch::views(state, page)?;
    let next_after = if more { batches.last().map(|view| view.batch.id) } else { None };
    Ok(PendingBatchesView { batches, pending: state.pending_batch_count()?, next_after })
}

pub use ferry_types::query::ReservesView;

fn reserves<R: StateRead>(state: &StateDelta<R>) -> Result<ReservesView, StateError> {
    let mut assets = std::collections::BTreeMap::new();
    for denom in state.ledger_denoms()? {
        let ledger = state.ledger(&denom)?;
        assets.insert(denom, ledger);
    }
    Ok(ReservesView { assets, bitcoin_utxos: state.reserve_utxos()? })
}
