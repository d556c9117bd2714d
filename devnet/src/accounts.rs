//! Deterministic devnet accounts and the devnet genesis. The keys derive from public seeds:
//! they protect nothing and must never hold value outside a devnet.

use ferry_signer::ceremony::Ceremony;
use ferry_signer::secrets::{MemberSecrets, SECRET_LEN};
use ferry_types::genesis::{AssetLimit, BlsFederation, EthereumBridge, Federation, WithdrawalParams};
use ferry_types::release::eth::EthAddress;
use ferry_types::{AccountKey, Coin, Denom, GenesisAccount, GenesisState, Params};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

/// The key of devnet user `index` (funded by deposits: [`crate::funding`]).
///
/// # Errors
/// Never in practice (a hash that is not a valid scalar).
pub fn user_key(index: usize) -> anyhow::Result<AccountKey> {
    Ok(AccountKey::from_seed(&format!("ferry-devnet/user/{index}"))?)
}

/// Members of the devnet federation (the validators' operators), as DESIGN's devnet has them.
pub const FEDERATION_MEMBERS: usize = 4;

/// The devnet federation's key ceremony (`ferry-signer devnet-keygen`'s library form): 4 members,
/// threshold 3, every key from a public seed. It protects nothing and is rebuilt identically on
/// every call, so tests, the devnet and the bench agree on the federation without sharing files.
///
/// # Errors
/// Never in practice.
pub fn federation_ceremony() -> anyhow::Result<Ceremony> {
    let members = u32::try_from(FEDERATION_MEMBERS)?;
    let mut rng = ChaCha20Rng::from_seed(ferry_types::key::sha256(b"ferry-devnet/federation"));
    Ok(ferry_signer::ceremony::keygen(members, attest_quorum(FEDERATION_MEMBERS), &mut rng)?)
}

/// Every secret of devnet federation member `index` (for tests that play a member, honest or not).
///
/// # Errors
/// When there is no such member.
pub fn member_secrets(index: usize) -> anyhow::Result<MemberSecrets> {
    member(index)
}

fn member(index: usize) -> anyhow::Result<MemberSecrets> {
    let mut ceremony = federation_ceremony()?;
    anyhow::ensure!(index < ceremony.members.len(), "the devnet federation has no member {index}");
    Ok(ceremony.members.swap_remove(index))
}

/// The secret (hex) of federation member `index`'s sidechain key, as a relayer's key file holds it.
///
/// # Errors
/// When there is no such member.
pub fn member_secret_hex(index: usize) -> anyhow::Result<String> {
    // The keystore plaintext is BLS share ‖ Bitcoin key ‖ account key, 32 bytes each.
    let secrets = member(index)?;
    Ok(hex::encode(&secrets.to_bytes()[2 * SECRET_LEN..]))
}

/// Federation member `index`'s Bitcoin key (one of the peg's multisig keys), for tests that
/// spend the peg behind the chain's back with a quorum of them.
///
/// # Errors
/// When there is no such member.
pub fn member_bitcoin_secret(index: usize) -> anyhow::Result<bitcoin::secp256k1::SecretKey> {
    Ok(*member(index)?.bitcoin_secret_key())
}

/// The sidechain key of federation member `index`.
///
/// # Errors
/// When there is no such member.
pub fn member_key(index: usize) -> anyhow::Result<AccountKey> {
    Ok(member(index)?.account_key().clone())
}

/// A genesis creating `users` empty user accounts (account numbers `0..users`, in order; they
/// are funded by deposits, [`crate::funding`]) and, when
/// `members` is [`FEDERATION_MEMBERS`], naming the devnet federation (its accounts, Bitcoin peg
/// and BLS key set from [`federation_ceremony`]); `members` 0 means no federation.
///
/// # Errors
/// A federation size other than 0 or [`FEDERATION_MEMBERS`].
pub fn genesis(users: usize, members: usize) -> anyhow::Result<GenesisState> {
    let accounts = (0..users)
        .map(|index| Ok(GenesisAccount { address: user_key(index)?.address() }))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let federation = match members {
        0 => Federation::default(),
        FEDERATION_MEMBERS => {
            let manifest = federation_ceremony()?.manifest;
            Federation {
                members: manifest.accounts(),
                attest_quorum: attest_quorum(members),
                bitcoin: Some(manifest.bitcoin.clone()),
                epoch: manifest.epoch,
                bls: Some(BlsFederation { public_key_set: manifest.bls_public_key_set.clone() }),
            }
        }
        other => anyhow::bail!("the devnet federation has {FEDERATION_MEMBERS} members, not {other}"),
    };
    Ok(GenesisState { accounts, federation, params: Params::default() })
}

/// Points `genesis`'s Ethereum releases at `vault` on chain `chain_id`, and lets each ERC-20 in
/// `tokens` pay fees and be withdrawn under the same minimums and limits as wrapped ETH (the
/// devnet's test tokens use 18 decimals too).
pub fn with_ethereum(genesis: &mut GenesisState, chain_id: u64, vault: EthAddress, tokens: &[EthAddress]) {
    let wei_fee = genesis.params.min_fee(&Denom::wei());
    for token in tokens {
        let denom = Denom::erc20(token);
        genesis.params.min_fees.retain(|fee| fee.denom != denom);
        if let Some(fee) = wei_fee {
            genesis.params.min_fees.push(Coin { denom, amount: fee });
        }
    }
    let withdrawals = &mut genesis.params.withdrawals;
    withdrawals.ethereum = Some(EthereumBridge::new(chain_id, vault));
    let wei_limit = withdrawals.limits.iter().find(|limit| limit.denom == Denom::wei()).cloned();
    if let Some(wei_limit) = wei_limit {
        for token in tokens {
            let denom = Denom::erc20(token);
            withdrawals.limits.retain(|limit| limit.denom != denom);
            withdrawals.limits.push(AssetLimit { denom, ..wei_limit.clone() });
        }
    }
}

/// The devnet federation as `FerryVault` trusts it: the ceremony's aggregate BLS key and epoch.
///
/// # Errors
/// Never in practice.
pub fn federation_vault_key() -> anyhow::Result<crate::anvil::FederationKey> {
    let manifest = federation_ceremony()?.manifest;
    let keys = manifest.public_key_set()?;
    Ok(crate::anvil::FederationKey {
        key: ferry_types::release::bls::eip2537_g1(&keys.public_key()),
        epoch: manifest.epoch,
    })
}

/// The deposit quorum for a federation of `members`: the smallest count above two thirds.
pub fn attest_quorum(members: usize) -> u32 {
    u32::try_from(members.saturating_mul(2) / 3 + 1).unwrap_or(u32::MAX).min(u32::try_from(members).unwrap_or(u32::MAX))
}

/// Lifts every asset's withdrawal window cap and large-withdrawal delay (benchmarks that queue
/// many withdrawals measure the chain, not the limits).
pub fn lift_withdrawal_limits(rules: &mut WithdrawalParams) {
    for limit in &mut rules.limits {
        limit.window_cap = ferry_types::Amount::new(u128::from(u64::MAX));
        limit.delay_above = ferry_types::Amount::new(u128::from(u64::MAX));
    }
}
