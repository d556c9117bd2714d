//! The Ethereum exit tree: the Merkle tree over every holder's claim on `FerryVault` whose root
//! the federation posts in each heartbeat, and the signed exit request a holder sends the vault
//! once it is frozen (issue 17, "Emergency exits"). Pure: no I/O, no clock, no randomness; the
//! chain decides the amounts and assigns the leaf positions, this module only hashes them.
//!
//! **Invariant.** The root commits to one leaf per non-zero claim the chain keeps (an account's
//! balance of an asset, or one of its withdrawals burned but not yet paid), at the position the
//! chain assigned it, and `FerryVault.exit` accepts a claim only with the 32 siblings of that
//! position leading to the root it holds, once per position, and a withdrawal's claim only while
//! the batch that would pay it is unreleased: a holder exits at most what the chain said they own.
//!
//! - **Leaf**: `keccak256(abi.encodePacked(bytes32 "FERRY_EXIT_LEAF_V1", address token,
//!   bytes20 account, uint64 nonce, uint256 amount))` — 112 bytes hashed ([`Claim::leaf`]).
//!   `token` is `address(0)` for ETH; `account` is the Ferry account id, `RIPEMD160(SHA256(
//!   compressed secp256k1 public key))` ([`crate::key::address_of`]); `nonce` is 0 or the batch
//!   whose release pays the claim; `amount` is big-endian.
//! - **Tree**: fixed depth [`EXIT_TREE_DEPTH`] = 32, binary, node = `keccak256(left ‖ right)`.
//!   Leaves sit at positions `0 .. 2^32` that the chain assigns append-only; an empty position
//!   is `bytes32(0)` and an empty subtree of height `h` hashes to [`zero_hashes`]`()[h]`.
//!   Pairs are ordered by position, not sorted: bit `h` of the index says whether the node at
//!   height `h` is a right child (1) or a left one (0).
//! - **Proof**: the 32 sibling hashes from the leaf up ([`ExitTree::proof`], [`verify`]).
//! - **Heartbeat**: what the federation BLS-signs to post a root
//!   ([`crate::release::eth::EthHeartbeat::payload`]): `abi.encode(bytes32 "FERRY_HEARTBEAT_V1",
//!   uint256 chainId, address vault, uint64 epoch, uint64 nonce, uint64 height, bytes32
//!   balancesRoot)`, seven words like the release payloads.
//! - **Exit request**: the holder's account key signs, with plain ECDSA over the 32-byte digest
//!   (no EIP-191 prefix), [`exit_message`] = `keccak256(abi.encodePacked(bytes32
//!   "FERRY_EXIT_V1", uint256 chainId, address vault, address token, bytes20 account,
//!   uint64 nonce, uint256 amount, address recipient))` — 184 bytes hashed. [`sign_exit`] gives the 65-byte
//!   `r ‖ s ‖ v` signature (low `s`, `v` ∈ {27, 28}) `ecrecover` takes.
//!
//! [`ExitTree`] keeps only non-empty nodes (one ordered map per height), so a tree of a million
//! leaves holds about two million 32-byte nodes; [`ExitTree::set`] rehashes the 32 nodes of one
//! path, so the chain updates the root per changed claim instead of rebuilding it per heartbeat.
//! The layout is written out in `docs/exits.md` ("Ethereum exit tree").

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k256::ecdsa::SigningKey;
use sha3::{Digest, Keccak256};

use crate::eth_address::EthAddress;
use crate::key::KeyError;
use crate::release::eth::pad_right;
use crate::{Address, Amount};

/// Height of the exit tree: 2^32 leaf positions, 32 siblings per proof.
pub const EXIT_TREE_DEPTH: usize = 32;

/// Domain tag leading every exit leaf: Solidity `bytes32("FERRY_EXIT_LEAF_V1")`.
pub const EXIT_LEAF_TAG: [u8; 32] = pad_right(b"FERRY_EXIT_LEAF_V1");

/// Domain tag leading every exit request a holder signs: Solidity `bytes32("FERRY_EXIT_V1")`.
pub const EXIT_TAG: [u8; 32] = pad_right(b"FERRY_EXIT_V1");

/// Domain tag leading every heartbeat the federation signs: Solidity `bytes32("FERRY_HEARTBEAT_V1")`.
pub const HEARTBEAT_TAG: [u8; 32] = pad_right(b"FERRY_HEARTBEAT_V1");

/// A 32-byte keccak-256 hash: a leaf, a node or a root.
pub type Hash = [u8; 32];

/// The siblings of a leaf, from its own height up to just below the root.
pub type ExitProof = [Hash; EXIT_TREE_DEPTH];

/// keccak-256 of `bytes` (Solidity's `keccak256`).
pub fn keccak256(bytes: &[u8]) -> Hash {
    Keccak256::digest(bytes).into()
}

/// A 128-bit amount as the `uint256` word the leaf and the exit request carry (big-endian).
pub fn amount_word(amount: u128) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[16..].copy_from_slice(&amount.to_be_bytes());
    word
}

/// A holder's claim on the vault, as one leaf of the exit tree commits to it: `amount` (in the
/// token's smallest unit) of `token` (all zeros for ETH) owed to the Ferry account `account`.
/// `nonce` is 0 for the account's balance and its withdrawals not yet in a batch, and the batch's
/// nonce for its withdrawals in a batch the vault may still release: `FerryVault.exit` pays such a
/// claim only while that nonce is unreleased, so a withdrawal is never paid by both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Claim {
    /// The ERC-20 contract, the zero address for ETH.
    pub token: EthAddress,
    /// The Ferry account owed.
    pub account: Address,
    /// 0, or the batch nonce whose release would pay the claim instead.
    pub nonce: u64,
    /// The amount owed.
    pub amount: Amount,
}

impl Claim {
    /// The leaf: `keccak256(abi.encodePacked(EXIT_LEAF_TAG, address token, bytes20 account,
    /// uint64 nonce, uint256 amount))`, 112 bytes hashed, as `FerryVault.exitLeaf` computes it.
    pub fn leaf(&self) -> Hash {
        let mut packed = [0u8; 32 + 20 + 20 + 8 + 32];
        packed[..32].copy_from_slice(&EXIT_LEAF_TAG);
        packed[32..52].copy_from_slice(self.token.as_bytes());
        packed[52..72].copy_from_slice(self.account.as_bytes());
        packed[72..80].copy_from_slice(&self.nonce.to_be_bytes());
        packed[80..].copy_from_slice(&amount_word(self.amount.get()));
        keccak256(&packed)
    }
}

/// The exit tree's root over the claims of the state committed at `height` and at every later
/// height until the next record: what a heartbeat (or a release) carries to the vault, and what
/// an exit proof is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitRoot {
    /// The sidechain height whose committed claims the root covers.
    pub height: u64,
    /// The root.
    #[serde(with = "hex::serde")]
    pub root: Hash,
}

/// Every claim committed at one height, with the root they make: what `ferry exit export` writes
/// and `ferry exit eth --claims` reads when no node answers for that height any more (JSON).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClaimsSnapshot {
    /// The sidechain height the claims were committed at.
    pub height: u64,
    /// Every claim, as (position, claim), in position order.
    pub claims: Vec<(u32, Claim)>,
}

impl ClaimsSnapshot {
    /// The exit tree of these claims.
    pub fn tree(&self) -> ExitTree {
        ExitTree::from_leaves(self.claims.iter().map(|(index, claim)| (*index, claim.leaf())))
    }

    /// `account`'s claims, as (position, claim), in position order.
    pub fn of(&self, account: &Address) -> Vec<(u32, Claim)> {
        self.claims.iter().filter(|(_, claim)| claim.account == *account).copied().collect()
    }
}

/// The digest the holder of `claim.account` signs to take `claim` out of the frozen `vault` on
/// chain `chain_id`, paid to `recipient`: `keccak256(abi.encodePacked(EXIT_TAG, uint256 chainId,
/// address vault, address token, bytes20 account, uint64 nonce, uint256 amount, address
/// recipient))`, 184 bytes hashed, as `FerryVault.exitMessage` computes it. Binding chain, vault
/// and recipient means a signature cannot be replayed on another vault or redirected.
pub fn exit_message(chain_id: u64, vault: [u8; 20], claim: &Claim, recipient: [u8; 20]) -> Hash {
    let mut packed = [0u8; 32 + 32 + 20 + 20 + 20 + 8 + 32 + 20];
    packed[..32].copy_from_slice(&EXIT_TAG);
    packed[56..64].copy_from_slice(&chain_id.to_be_bytes());
    packed[64..84].copy_from_slice(&vault);
    packed[84..104].copy_from_slice(claim.token.as_bytes());
    packed[104..124].copy_from_slice(claim.account.as_bytes());
    packed[124..132].copy_from_slice(&claim.nonce.to_be_bytes());
    packed[132..164].copy_from_slice(&amount_word(claim.amount.get()));
    packed[164..].copy_from_slice(&recipient);
    keccak256(&packed)
}

/// Why an exit request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExitSignatureError {
    /// The secret is not a secp256k1 key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The signer failed, or gave a recovery id `ecrecover` cannot take (an `r` above the group
    /// order, probability about 2^-128).
    #[error("could not make an ecrecover-compatible signature of the exit request")]
    Signing,
}

/// The public key of the 32-byte account `secret` as `FerryVault.exit` takes it: uncompressed,
/// without the `0x04` prefix (`x ‖ y`, 64 bytes).
///
/// # Errors
/// [`KeyError`] when `secret` is not a valid secp256k1 scalar.
pub fn exit_public_key(secret: &[u8]) -> Result<[u8; 64], KeyError> {
    let key = SigningKey::from_slice(secret).map_err(|_| KeyError)?;
    let point = key.verifying_key().to_encoded_point(false);
    let mut out = [0u8; 64];
    // An uncompressed SEC1 point is 0x04 ‖ x ‖ y: 65 bytes.
    out.copy_from_slice(point.as_bytes().get(1..65).ok_or(KeyError)?);
    Ok(out)
}

/// The Ferry account id of an uncompressed public key `x ‖ y`: `RIPEMD160(SHA256(0x02|0x03 ‖ x))`,
/// the prefix by the parity of `y` — what `FerryVault.exit` derives with its precompiles.
pub fn account_of_exit_public_key(public_key: &[u8; 64]) -> [u8; 20] {
    let mut compressed = [0u8; 33];
    compressed[0] = 0x02 | (public_key[63] & 1);
    compressed[1..].copy_from_slice(&public_key[..32]);
    *crate::key::address_of_compressed(&compressed).as_bytes()
}

/// The 65-byte signature `r ‖ s ‖ v` (low `s`, `v` ∈ {27, 28}) by the account `secret` of
/// [`exit_message`]`(chain_id, vault, claim, recipient)`: what a holder hands `FerryVault.exit`
/// with their public key ([`exit_public_key`]) and leaf proof.
///
/// # Errors
/// [`ExitSignatureError::Key`] for a secret that is not a secp256k1 key;
/// [`ExitSignatureError::Signing`] when no `ecrecover`-compatible signature came out.
pub fn sign_exit(
    secret: &[u8],
    chain_id: u64,
    vault: [u8; 20],
    claim: &Claim,
    recipient: [u8; 20],
) -> Result<[u8; 65], ExitSignatureError> {
    let key = SigningKey::from_slice(secret).map_err(|_| KeyError)?;
    let digest = exit_message(chain_id, vault, claim, recipient);
    // k256 signs with RFC 6979 nonces and normalises `s` to the low half (flipping the
    // recovery id to match), which is what the vault requires.
    let (signature, recovery) = key.sign_prehash_recoverable(&digest).map_err(|_| ExitSignatureError::Signing)?;
    if recovery.is_x_reduced() {
        return Err(ExitSignatureError::Signing);
    }
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&signature.to_bytes());
    out[64] = 27 + u8::from(recovery.is_y_odd());
    Ok(out)
}

/// The hashes of empty subtrees: `[h]` is the root of an empty subtree of height `h`
/// (`[0]` = `bytes32(0)`, `[h + 1]` = `keccak256([h] ‖ [h])`); `[EXIT_TREE_DEPTH]` is the root of
/// the empty tree.
pub fn zero_hashes() -> &'static [Hash; EXIT_TREE_DEPTH + 1] {
    static ZEROS: OnceLock<[Hash; EXIT_TREE_DEPTH + 1]> = OnceLock::new();
    ZEROS.get_or_init(|| {
        let mut zeros = [[0u8; 32]; EXIT_TREE_DEPTH + 1];
        for height in 0..EXIT_TREE_DEPTH {
            zeros[height + 1] = hash_pair(&zeros[height], &zeros[height]);
        }
        zeros
    })
}

/// `keccak256(left ‖ right)`: an inner node.
fn hash_pair(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Keccak256::new();
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root the proof `siblings` leads to from `leaf` at `index`.
pub fn root_from_proof(index: u32, leaf: &Hash, siblings: &ExitProof) -> Hash {
    let mut node = *leaf;
    for (height, sibling) in siblings.iter().enumerate() {
        node = if (index >> height) & 1 == 0 { hash_pair(&node, sibling) } else { hash_pair(sibling, &node) };
    }
    node
}

/// Whether `siblings` proves `leaf` at position `index` of the tree with `root` — the check
/// `FerryVault.exit` makes.
pub fn verify(root: &Hash, index: u32, leaf: &Hash, siblings: &ExitProof) -> bool {
    root_from_proof(index, leaf, siblings) == *root
}

/// The exit tree, kept up to date leaf by leaf. Only non-empty nodes are stored; every absent
/// node is the empty subtree of its height ([`zero_hashes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitTree {
    /// `nodes[h]`: the non-empty nodes at height `h` by position; `nodes[0]` are the leaves,
    /// `nodes[EXIT_TREE_DEPTH]` holds at most the root (position 0).
    nodes: Vec<BTreeMap<u32, Hash>>,
}

impl Default for ExitTree {
    fn default() -> Self {
        Self::new()
    }
}

impl ExitTree {
    /// The empty tree (root [`zero_hashes`]`()[EXIT_TREE_DEPTH]`).
    pub fn new() -> Self {
        ExitTree { nodes: vec![BTreeMap::new(); EXIT_TREE_DEPTH + 1] }
    }

    /// The tree of `leaves` (position, leaf hash), built level by level in one pass — for a
    /// rebuild at startup. A later entry for the same position wins; an all-zero leaf is an empty
    /// position.
    pub fn from_leaves(leaves: impl IntoIterator<Item = (u32, Hash)>) -> Self {
        let zeros = zero_hashes();
        let mut tree = ExitTree::new();
        for (index, leaf) in leaves {
            if leaf == zeros[0] {
                tree.nodes[0].remove(&index);
            } else {
                tree.nodes[0].insert(index, leaf);
            }
        }
        for height in 0..EXIT_TREE_DEPTH {
            let mut parents = BTreeMap::new();
            let mut last_parent = None;
            for &position in tree.nodes[height].keys() {
                let parent = position >> 1;
                if last_parent == Some(parent) {
                    continue;
                }
                last_parent = Some(parent);
                let left = tree.node(height, parent << 1);
                let right = tree.node(height, (parent << 1) | 1);
                parents.insert(parent, hash_pair(&left, &right));
            }
            tree.nodes[height + 1] = parents;
        }
        tree
    }

    /// The node at `height` and `position` (the empty subtree's hash when none is stored).
    fn node(&self, height: usize, position: u32) -> Hash {
        self.nodes[height].get(&position).copied().unwrap_or(zero_hashes()[height])
    }

    /// Stores a node, or forgets it when it is the empty subtree's hash.
    fn store(&mut self, height: usize, position: u32, node: Hash) {
        if node == zero_hashes()[height] {
            self.nodes[height].remove(&position);
        } else {
            self.nodes[height].insert(position, node);
        }
    }

    /// Puts `leaf` at `index` (all zeros empties the position) and rehashes its path to the root:
    /// 32 hashes, whatever the size of the tree.
    pub fn set(&mut self, index: u32, leaf: Hash) {
        let mut position = index;
        let mut node = leaf;
        for height in 0..EXIT_TREE_DEPTH {
            self.store(height, position, node);
            let sibling = self.node(height, position ^ 1);
            node = if position & 1 == 0 { hash_pair(&node, &sibling) } else { hash_pair(&sibling, &node) };
            position >>= 1;
        }
        self.store(EXIT_TREE_DEPTH, 0, node);
    }

    /// The leaf at `index` (all zeros when the position is empty).
    pub fn leaf(&self, index: u32) -> Hash {
        self.node(0, index)
    }

    /// How many positions hold a leaf.
    pub fn len(&self) -> usize {
        self.nodes[0].len()
    }

    /// Whether no position holds a leaf.
    pub fn is_empty(&self) -> bool {
        self.nodes[0].is_empty()
    }

    /// The root the heartbeat posts.
    pub fn root(&self) -> Hash {
        self.node(EXIT_TREE_DEPTH, 0)
    }

    /// The root this tree would have with `changes` (position → leaf, all zeros to empty)
    /// applied, leaving the tree as it is: 32 hashes per changed path. How the chain learns the
    /// root of a block's claims before the block is committed.
    pub fn root_with(&self, changes: &BTreeMap<u32, Hash>) -> Hash {
        if changes.is_empty() {
            return self.root();
        }
        let mut level = changes.clone();
        for height in 0..EXIT_TREE_DEPTH {
            let mut parents = BTreeMap::new();
            for &position in level.keys() {
                let parent = position >> 1;
                if parents.contains_key(&parent) {
                    continue;
                }
                let at = |position: u32| level.get(&position).copied().unwrap_or_else(|| self.node(height, position));
                parents.insert(parent, hash_pair(&at(parent << 1), &at((parent << 1) | 1)));
            }
            level = parents;
        }
        level.get(&0).copied().unwrap_or_else(|| self.root())
    }

    /// The siblings of position `index`, from the leaf's height up: with the leaf, they lead to
    /// [`root`](Self::root) ([`verify`]). An empty position has a proof too (of the zero leaf).
    pub fn proof(&self, index: u32) -> ExitProof {
        let mut siblings = [[0u8; 32]; EXIT_TREE_DEPTH];
        for (height, sibling) in siblings.iter_mut().enumerate() {
            *sibling = self.node(height, (index >> height) ^ 1);
        }
        siblings
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const TOKEN: EthAddress = EthAddress::from_bytes([0x70; 20]);
    const ETH: EthAddress = EthAddress::from_bytes([0; 20]);

    fn claim(token: EthAddress, account: u8, nonce: u64, amount: u128) -> Claim {
        Claim { token, account: Address::from_bytes([account; 20]), nonce, amount: Amount::new(amount) }
    }

    fn leaf_of(byte: u8, amount: u128) -> Hash {
        claim(TOKEN, byte, 0, amount).leaf()
    }

    #[test]
    fn domain_tags_are_the_solidity_bytes32_literals() {
        assert_eq!(&EXIT_LEAF_TAG[..18], b"FERRY_EXIT_LEAF_V1");
        assert_eq!(EXIT_LEAF_TAG[18..], [0; 14]);
        assert_eq!(&EXIT_TAG[..13], b"FERRY_EXIT_V1");
        assert_eq!(&HEARTBEAT_TAG[..18], b"FERRY_HEARTBEAT_V1");
    }

    #[test]
    fn empty_tree_root_is_the_zero_subtree_of_full_height() {
        let zeros = zero_hashes();
        assert_eq!(zeros[0], [0; 32]);
        assert_eq!(zeros[1], keccak256(&[0; 64]));
        assert_eq!(ExitTree::new().root(), zeros[EXIT_TREE_DEPTH]);
        assert_eq!(ExitTree::from_leaves([]).root(), zeros[EXIT_TREE_DEPTH]);
    }

    #[test]
    fn leaf_is_keccak_of_the_packed_tag_token_account_nonce_and_amount() {
        let mut packed = Vec::new();
        packed.extend_from_slice(b"FERRY_EXIT_LEAF_V1");
        packed.extend_from_slice(&[0; 14]);
        packed.extend_from_slice(&[0; 20]);
        packed.extend_from_slice(&[0xac; 20]);
        packed.extend_from_slice(&9u64.to_be_bytes());
        packed.extend_from_slice(&amount_word(5));
        assert_eq!(packed.len(), 112);
        assert_eq!(claim(ETH, 0xac, 9, 5).leaf(), keccak256(&packed));
        assert_ne!(claim(ETH, 0xac, 0, 5).leaf(), claim(ETH, 0xac, 9, 5).leaf());
    }

    #[test]
    fn single_leaf_at_index_zero_hashes_up_the_left_edge() {
        let leaf = leaf_of(1, 10);
        let mut expected = leaf;
        for height in 0..EXIT_TREE_DEPTH {
            expected = hash_pair(&expected, &zero_hashes()[height]);
        }
        let mut tree = ExitTree::new();
        tree.set(0, leaf);
        assert_eq!(tree.root(), expected);
        assert_eq!(tree.proof(0)[..], zero_hashes()[..EXIT_TREE_DEPTH]);
    }

    #[test]
    fn emptying_every_leaf_gives_back_the_empty_tree() {
        let mut tree = ExitTree::new();
        for index in [0, 1, 7, u32::MAX] {
            tree.set(index, leaf_of(index as u8, 1));
        }
        for index in [0, 1, 7, u32::MAX] {
            tree.set(index, [0; 32]);
        }
        assert_eq!(tree, ExitTree::new());
        assert!(tree.is_empty());
    }

    #[test]
    fn exit_message_packs_184_bytes_in_the_vault_order() {
        let mut packed = Vec::new();
        packed.extend_from_slice(&EXIT_TAG);
        packed.extend_from_slice(&amount_word(31_337));
        packed.extend_from_slice(&[0x11; 20]);
        packed.extend_from_slice(&[0; 20]);
        packed.extend_from_slice(&[0x22; 20]);
        packed.extend_from_slice(&4u64.to_be_bytes());
        packed.extend_from_slice(&amount_word(1_000));
        packed.extend_from_slice(&[0x33; 20]);
        assert_eq!(packed.len(), 184);
        assert_eq!(exit_message(31_337, [0x11; 20], &claim(ETH, 0x22, 4, 1_000), [0x33; 20]), keccak256(&packed));
    }

    #[test]
    fn exit_signature_recovers_to_the_accounts_key_with_low_s() -> Result<(), Box<dyn std::error::Error>> {
        let secret = crate::key::sha256(b"exit signer");
        let public_key = exit_public_key(&secret)?;
        let account = crate::AccountKey::from_secret_bytes(&secret)?.address();
        assert_eq!(account_of_exit_public_key(&public_key), *account.as_bytes());

        let held = Claim { token: TOKEN, account, nonce: 0, amount: Amount::new(7) };
        let signature = sign_exit(&secret, 31_337, [0x11; 20], &held, [0x33; 20])?;
        assert!(signature[64] == 27 || signature[64] == 28);
        let parsed = k256::ecdsa::Signature::from_slice(&signature[..64])?;
        assert!(parsed.normalize_s().is_none(), "s must already be low");
        let recovery = k256::ecdsa::RecoveryId::from_byte(signature[64] - 27).ok_or("recovery id")?;
        let digest = exit_message(31_337, [0x11; 20], &held, [0x33; 20]);
        let recovered = k256::ecdsa::VerifyingKey::recover_from_prehash(&digest, &parsed, recovery)?;
        assert_eq!(recovered.to_encoded_point(false).as_bytes()[1..], public_key);
        assert_eq!(sign_exit(&[0; 32], 1, [0; 20], &held, [0; 20]), Err(KeyError.into()));
        Ok(())
    }

    /// Up to 40 claims at positions below 64 (dense, many shared subtrees) or anywhere.
    fn claims() -> impl Strategy<Value = Vec<(u32, u8, u128)>> {
        prop::collection::vec((prop_oneof![0u32..64, any::<u32>()], any::<u8>(), 1u128..u128::MAX), 1..40)
    }

    proptest! {
        #[test]
        fn every_proof_verifies_and_any_change_breaks_it(claims in claims(), pick in any::<prop::sample::Index>()) {
            let leaves: Vec<(u32, Hash)> =
                claims.iter().map(|&(index, account, amount)| (index, leaf_of(account, amount))).collect();
            let tree = ExitTree::from_leaves(leaves.iter().copied());
            let root = tree.root();
            let (index, _) = leaves[pick.index(leaves.len())];
            let leaf = tree.leaf(index);
            let Some(&(_, account, amount)) = claims.iter().rev().find(|claim| claim.0 == index) else {
                return Err(TestCaseError::fail("the picked index has no claim"));
            };
            prop_assert_eq!(leaf, leaf_of(account, amount));
            let proof = tree.proof(index);
            prop_assert!(verify(&root, index, &leaf, &proof));

            prop_assert!(!verify(&root, index, &leaf_of(account, amount + 1), &proof), "amount + 1");
            prop_assert!(!verify(&root, index, &claim(ETH, account, 0, amount).leaf(), &proof), "another token");
            prop_assert!(!verify(&root, index, &claim(TOKEN, account, 1, amount).leaf(), &proof), "another nonce");
            prop_assert!(!verify(&root, index ^ 1, &leaf, &proof), "a neighbouring index");
            prop_assert!(!verify(&root, index ^ (1 << 31), &leaf, &proof), "the top bit of the index");
            for height in [0, 5, EXIT_TREE_DEPTH - 1] {
                let mut forged = proof;
                forged[height][0] ^= 1;
                prop_assert!(!verify(&root, index, &leaf, &forged), "sibling {} changed", height);
            }
        }

        #[test]
        fn incremental_updates_give_the_root_of_a_rebuild(
            first in claims(),
            updates in prop::collection::vec((0u32..80, any::<u8>(), 0u128..1_000), 0..40),
        ) {
            let mut tree = ExitTree::new();
            let mut latest = BTreeMap::new();
            let mut apply = |tree: &mut ExitTree, index: u32, leaf: Hash| {
                tree.set(index, leaf);
                latest.insert(index, leaf);
            };
            for &(index, account, amount) in &first {
                apply(&mut tree, index, leaf_of(account, amount));
            }
            // An amount of 0 empties the position, as the chain does for a claim paid in full.
            for &(index, account, amount) in &updates {
                apply(&mut tree, index, if amount == 0 { [0; 32] } else { leaf_of(account, amount) });
            }
            let rebuilt = ExitTree::from_leaves(latest.clone());
            prop_assert_eq!(tree.root(), rebuilt.root());
            // The root with the updates, computed over the first claims alone, is the same.
            let first_tree = ExitTree::from_leaves(first.iter().map(|&(index, account, amount)| (index, leaf_of(account, amount))));
            let changes: BTreeMap<u32, Hash> = updates
                .iter()
                .map(|&(index, account, amount)| (index, if amount == 0 { [0; 32] } else { leaf_of(account, amount) }))
                .collect();
            prop_assert_eq!(first_tree.root_with(&changes), rebuilt.root());
            prop_assert_eq!(&tree, &rebuilt);
            for (&index, leaf) in &latest {
                prop_assert!(verify(&tree.root(), index, leaf, &tree.proof(index)));
            }
        }
    }
}
