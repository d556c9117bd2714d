//! What `ferry status` accepts: deposit ids (`btc:<txid>:<vout>`, `eth:<0xhash>:<logindex>`),
//! parent-chain transaction ids (a Bitcoin txid, an Ethereum transaction hash: the deposit is
//! looked up) and withdrawal ids (`wd-<n>`). Pure: no I/O.

use std::str::FromStr;

use ferry_types::DepositId;
use ferry_types::query::WithdrawalId;

/// A thing whose progress `ferry status` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusId {
    /// A deposit id.
    Deposit(DepositId),
    /// A Bitcoin transaction (64 hex digits): its outputs to the peg are deposits.
    BitcoinTx(String),
    /// An Ethereum transaction (`0x` + 64 hex digits): its vault logs are deposits.
    EthereumTx(String),
    /// A withdrawal.
    Withdrawal(WithdrawalId),
}

/// Why text is none of the ids `status` accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a deposit id (btc:<txid>:<vout>, eth:<0xtxhash>:<logindex>), a Bitcoin txid (64 hex digits), \
     an Ethereum transaction hash (0x + 64 hex digits) or a withdrawal id (wd-<n>)"
)]
pub struct StatusIdError(pub String);

fn is_hex64(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl FromStr for StatusId {
    type Err = StatusIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let bad = || StatusIdError(text.to_owned());
        if text.starts_with("wd-") {
            return text.parse().map(StatusId::Withdrawal).map_err(|_| bad());
        }
        if text.contains(':') {
            // Deposit ids carry lowercase hex; accept what a block explorer copies.
            return text.to_ascii_lowercase().parse().map(StatusId::Deposit).map_err(|_| bad());
        }
        if let Some(hash) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            return if is_hex64(hash) {
                Ok(StatusId::EthereumTx(format!("0x{}", hash.to_ascii_lowercase())))
            } else {
                Err(bad())
            };
        }
        if is_hex64(text) {
            return Ok(StatusId::BitcoinTx(text.to_ascii_lowercase()));
        }
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_form_parses_and_lookalikes_are_refused() -> Result<(), StatusIdError> {
        let txid = "ab".repeat(32);
        assert_eq!(
            format!("btc:{txid}:1").parse::<StatusId>()?,
            StatusId::Deposit(format!("btc:{txid}:1").parse().map_err(|_| StatusIdError(String::new()))?)
        );
        assert!(matches!(format!("eth:0x{txid}:3").parse::<StatusId>()?, StatusId::Deposit(_)));
        assert_eq!(txid.to_uppercase().parse::<StatusId>()?, StatusId::BitcoinTx(txid.clone()));
        assert_eq!(format!("0x{txid}").parse::<StatusId>()?, StatusId::EthereumTx(format!("0x{txid}")));
        assert_eq!("wd-12".parse::<StatusId>()?, StatusId::Withdrawal(WithdrawalId(12)));
        for bad in ["wd-0", "wd-x", "btc:zz:1", "0x12", &txid[..63], "", "eth:abc:1", &format!("{txid}0")] {
            let error = bad.parse::<StatusId>().err();
            assert!(error.is_some_and(|e| e.to_string().contains(&format!("`{bad}`"))), "{bad} accepted");
        }
        Ok(())
    }
}
