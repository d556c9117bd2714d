//! Deterministic devnet accounts and the devnet genesis. The keys derive from public seeds:
//! they protect nothing and must never hold value outside a devnet.

use ferry_types::genesis::Federation;
use ferry_types::peg::{BitcoinFederation, BitcoinNetwork};
use ferry_types::{AccountKey, Coin, Denom, GenesisAccount, GenesisState, Params};

/// Opening balance of every funded devnet account, per denomination.
pub const OPENING_SAT: u128 = 100_000_000_000; // 1000 fBTC
/// Opening wei balance (1000 fETH).
pub const OPENING_WEI: u128 = 1_000_000_000_000_000_000_000;

/// The key of funded user account `index`.
///
/// # Errors
/// Never in practice (a hash that is not a valid scalar).
pub fn user_key(index: usize) -> anyhow::Result<AccountKey> {
    Ok(AccountKey::from_seed(&format!("ferry-devnet/user/{index}"))?)
}

/// The secret (hex) of federation member `index`'s sidechain key, as a key file holds it.
pub fn member_secret_hex(index: usize) -> String {
    hex::encode(ferry_types::key::sha256(format!("ferry-devnet/member/{index}").as_bytes()))
}

/// The sidechain key of federation member `index`.
///
/// # Errors
/// Never in practice.
pub fn member_key(index: usize) -> anyhow::Result<AccountKey> {
    Ok(AccountKey::from_seed(&format!("ferry-devnet/member/{index}"))?)
}

/// The Bitcoin key of federation member `index` (until the key ceremony of the signer replaces
/// seeds with generated keys).
///
/// # Errors
/// Never in practice.
pub fn member_bitcoin_key(index: usize) -> anyhow::Result<AccountKey> {
    Ok(AccountKey::from_seed(&format!("ferry-devnet/member-bitcoin/{index}"))?)
}

/// A genesis funding `users` user accounts (account numbers `0..users`, in order) and naming
/// `members` federation members.
///
/// # Errors
/// Never in practice.
pub fn genesis(users: usize, members: usize) -> anyhow::Result<GenesisState> {
    let accounts = (0..users)
        .map(|index| {
            Ok(GenesisAccount {
                address: user_key(index)?.address(),
                coins: vec![Coin::new(OPENING_SAT, Denom::sat()), Coin::new(OPENING_WEI, Denom::wei())],
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let members = (0..members).map(|index| Ok(member_key(index)?.address())).collect::<anyhow::Result<Vec<_>>>()?;
    let attest_quorum = attest_quorum(members.len());
    let bitcoin = if members.is_empty() {
        None
    } else {
        let keys = (0..members.len())
            .map(|index| Ok(hex::encode(member_bitcoin_key(index)?.public_key_bytes())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Some(BitcoinFederation { network: BitcoinNetwork::Regtest, threshold: attest_quorum, keys })
    };
    Ok(GenesisState { accounts, federation: Federation { members, attest_quorum, bitcoin }, params: Params::default() })
}

/// The deposit quorum for a federation of `members`: the smallest count above two thirds.
pub fn attest_quorum(members: usize) -> u32 {
    u32::try_from(members.saturating_mul(2) / 3 + 1).unwrap_or(u32::MAX).min(u32::try_from(members).unwrap_or(u32::MAX))
}
