//! Amounts with explicit units: `0.01btc`, `1000sat`, `0.5eth`, `20gwei`, `1000wei`, and for
//! ERC-20 tokens `12.5` (in the token's decimals) or `1000unit` (base units). Pure: no I/O.
//!
//! A unit is required for BTC and ETH (a bare `0.5` is refused: half a BTC and half a satoshi
//! are too far apart to guess). Amounts are exact: more decimals than the unit has is an error,
//! never a rounding.

use ferry_types::{Amount, Denom};

/// Every unit, for error messages.
pub const UNITS_HELP: &str =
    "units: btc, sat (Bitcoin); eth, gwei, wei (ether); tokens: <n> in the token's decimals or <n>unit in base units";

/// Which asset an amount is of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssetKind {
    /// Bitcoin: `btc` (8 decimals) or `sat`.
    Bitcoin,
    /// Ether: `eth` (18 decimals), `gwei` (9) or `wei`.
    Ether,
    /// An ERC-20 token of `decimals` decimals.
    Token {
        /// Its sidechain denomination.
        denom: Denom,
        /// Its decimals.
        decimals: u8,
    },
}

impl AssetKind {
    /// The sidechain denomination amounts of this kind are in.
    pub fn denom(&self) -> Denom {
        match self {
            AssetKind::Bitcoin => Denom::sat(),
            AssetKind::Ether => Denom::wei(),
            AssetKind::Token { denom, .. } => denom.clone(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            AssetKind::Bitcoin => "Bitcoin",
            AssetKind::Ether => "ether",
            AssetKind::Token { .. } => "a token",
        }
    }
}

/// Why an amount was refused. Every variant names the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// No unit where one is required.
    #[error("amount `{input}` has no unit; {UNITS_HELP}")]
    MissingUnit {
        /// The text given.
        input: String,
    },
    /// A unit nobody knows.
    #[error("amount `{input}`: unknown unit `{unit}`; {UNITS_HELP}")]
    UnknownUnit {
        /// The text given.
        input: String,
        /// The unit part.
        unit: String,
    },
    /// A known unit of another asset.
    #[error("amount `{input}`: `{unit}` is not a unit of {expected}; {UNITS_HELP}")]
    WrongAsset {
        /// The text given.
        input: String,
        /// The unit part.
        unit: String,
        /// The asset expected.
        expected: &'static str,
    },
    /// The number part is not a decimal number.
    #[error("amount `{input}`: `{number}` is not a decimal number")]
    Malformed {
        /// The text given.
        input: String,
        /// The number part.
        number: String,
    },
    /// More decimals than the unit has.
    #[error("amount `{input}` has more than {decimals} decimals, the most `{unit}` allows")]
    TooPrecise {
        /// The text given.
        input: String,
        /// The unit.
        unit: String,
        /// Its decimals.
        decimals: u8,
    },
    /// Above 2^128 − 1 base units.
    #[error("amount `{input}` is too large")]
    Overflow {
        /// The text given.
        input: String,
    },
    /// Zero.
    #[error("amount `{input}` is zero")]
    Zero {
        /// The text given.
        input: String,
    },
}

/// A unit: its name, asset and decimals.
struct Unit {
    name: &'static str,
    asset: AssetKind,
    decimals: u8,
}

fn known_unit(name: &str) -> Option<Unit> {
    let unit = |name, asset, decimals| Some(Unit { name, asset, decimals });
    match name {
        "btc" => unit("btc", AssetKind::Bitcoin, 8),
        "sat" | "sats" => unit("sat", AssetKind::Bitcoin, 0),
        "eth" => unit("eth", AssetKind::Ether, 18),
        "gwei" => unit("gwei", AssetKind::Ether, 9),
        "wei" => unit("wei", AssetKind::Ether, 0),
        _ => None,
    }
}

/// Splits `12.5btc` into (`12.5`, `btc`); the unit is lowercased.
fn split(input: &str) -> (&str, String) {
    let trimmed = input.trim();
    let at = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(at);
    (number, unit.trim().to_ascii_lowercase())
}

/// `number` (digits, at most one `.`, `_` as a separator) scaled by `10^decimals`.
fn scale(input: &str, number: &str, unit: &str, decimals: u8) -> Result<u128, UnitError> {
    let malformed = || UnitError::Malformed { input: input.to_owned(), number: number.to_owned() };
    let digits: String = number.chars().filter(|c| *c != '_').collect();
    let (whole, fraction) = digits.split_once('.').unwrap_or((&digits, ""));
    if (whole.is_empty() && fraction.is_empty()) || !whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit()) {
        return Err(malformed());
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > usize::from(decimals) {
        return Err(UnitError::TooPrecise { input: input.to_owned(), unit: unit.to_owned(), decimals });
    }
    let overflow = || UnitError::Overflow { input: input.to_owned() };
    let padded = format!("{whole}{fraction:0<width$}", width = usize::from(decimals));
    let padded = padded.trim_start_matches('0');
    if padded.is_empty() {
        return Err(UnitError::Zero { input: input.to_owned() });
    }
    padded.parse::<u128>().map_err(|_| overflow())
}

/// Parses `input` as an amount of `asset`, in base units (sat, wei, token base units).
///
/// # Errors
/// A missing or unknown unit, a unit of another asset, a malformed number, too many decimals,
/// an overflow or zero — each naming `input` and listing the units.
pub fn parse_amount(input: &str, asset: &AssetKind) -> Result<Amount, UnitError> {
    let (number, unit) = split(input);
    if let AssetKind::Token { decimals, .. } = asset {
        return match unit.as_str() {
            "" => scale(input, number, "token", *decimals).map(Amount::new),
            "unit" | "units" => scale(input, number, "unit", 0).map(Amount::new),
            other => Err(match known_unit(other) {
                Some(_) => {
                    UnitError::WrongAsset { input: input.to_owned(), unit: unit.clone(), expected: asset.name() }
                }
                None => UnitError::UnknownUnit { input: input.to_owned(), unit: unit.clone() },
            }),
        };
    }
    let (asset_of_unit, amount) = parse_with_unit(input)?;
    if &asset_of_unit != asset {
        return Err(UnitError::WrongAsset { input: input.to_owned(), unit, expected: asset.name() });
    }
    Ok(amount)
}

/// Parses `input` as a Bitcoin or ether amount, the unit deciding which.
///
/// # Errors
/// As [`parse_amount`].
pub fn parse_with_unit(input: &str) -> Result<(AssetKind, Amount), UnitError> {
    let (number, unit) = split(input);
    if unit.is_empty() {
        return Err(UnitError::MissingUnit { input: input.to_owned() });
    }
    let Some(known) = known_unit(&unit) else {
        return Err(UnitError::UnknownUnit { input: input.to_owned(), unit });
    };
    let amount = scale(input, number, known.name, known.decimals)?;
    Ok((known.asset, Amount::new(amount)))
}

/// `amount` base units with `decimals` decimals, as exact decimal text (`0.015`, `2`).
pub fn decimal(amount: Amount, decimals: u8) -> String {
    let digits = amount.get().to_string();
    let decimals = usize::from(decimals);
    if decimals == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = decimals + 1);
    let (whole, fraction) = padded.split_at(padded.len() - decimals);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() { whole.to_owned() } else { format!("{whole}.{fraction}") }
}

/// `amount` of `denom` for people: `0.015 BTC (1500000 sat)`, `2 ETH (…wei)`, or base units of
/// other denominations.
pub fn display(amount: Amount, denom: &Denom) -> String {
    match denom.as_str() {
        ferry_types::denom::SAT => format!("{} BTC ({amount} sat)", decimal(amount, 8)),
        ferry_types::denom::WEI => format!("{} ETH ({amount} wei)", decimal(amount, 18)),
        _ => format!("{amount} {denom}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(input: &str, asset: &AssetKind) -> Result<u128, UnitError> {
        parse_amount(input, asset).map(Amount::get)
    }

    #[test]
    fn units_scale_exactly() {
        assert_eq!(amount("0.01btc", &AssetKind::Bitcoin), Ok(1_000_000));
        assert_eq!(amount("1000sat", &AssetKind::Bitcoin), Ok(1000));
        assert_eq!(amount("1 BTC", &AssetKind::Bitcoin), Ok(100_000_000));
        assert_eq!(amount("0.5eth", &AssetKind::Ether), Ok(500_000_000_000_000_000));
        assert_eq!(amount("20gwei", &AssetKind::Ether), Ok(20_000_000_000));
        assert_eq!(amount("1_000wei", &AssetKind::Ether), Ok(1000));
        assert_eq!(amount(".5btc", &AssetKind::Bitcoin), Ok(50_000_000));
        assert_eq!(amount("1.50000000000btc", &AssetKind::Bitcoin), Ok(150_000_000));
        let token = AssetKind::Token { denom: Denom::wei(), decimals: 6 };
        assert_eq!(amount("12.5", &token), Ok(12_500_000));
        assert_eq!(amount("1000unit", &token), Ok(1000));
    }

    #[test]
    fn bad_amounts_name_the_input_and_list_the_units() {
        let cases: Vec<(&str, AssetKind)> = vec![
            ("5", AssetKind::Bitcoin),
            ("5doge", AssetKind::Bitcoin),
            ("1eth", AssetKind::Bitcoin),
            ("0.000000001btc", AssetKind::Bitcoin),
            ("1.2.3btc", AssetKind::Bitcoin),
            ("0btc", AssetKind::Bitcoin),
            ("999999999999999999999999999999eth", AssetKind::Ether),
            ("1btc", AssetKind::Token { denom: Denom::wei(), decimals: 6 }),
        ];
        for (input, asset) in cases {
            let error = parse_amount(input, &asset).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(&format!("`{input}`")), "{input}: {error}");
        }
        let unknown = parse_amount("5doge", &AssetKind::Bitcoin).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(unknown.contains("unknown unit `doge`") && unknown.contains("btc, sat"), "{unknown}");
        assert!(matches!(parse_amount("5", &AssetKind::Ether), Err(UnitError::MissingUnit { .. })));
    }

    #[test]
    fn amounts_display_exactly() {
        assert_eq!(decimal(Amount::new(1_500_000), 8), "0.015");
        assert_eq!(decimal(Amount::new(200_000_000), 8), "2");
        assert_eq!(decimal(Amount::new(7), 0), "7");
        assert_eq!(display(Amount::new(1), &Denom::sat()), "0.00000001 BTC (1 sat)");
    }
}
