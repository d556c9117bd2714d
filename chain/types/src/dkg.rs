//! The cryptography of Ferry's dealer-free key generation: a joint Feldman DKG (Pedersen's
//! protocol with a proof of knowledge of each dealer's secret) over BLS12-381, in the form the
//! chain can judge.
//!
//! Every participant is a dealer. Dealer *i* draws a random polynomial `f_i` of degree T − 1
//! (T = the signing threshold) and posts, through the chain:
//! - its **commitment** `C_i = [f_i,0·G, …, f_i,T−1·G]` (G1, compressed, constant term first);
//! - a **proof of knowledge** of `f_i,0` (a Schnorr proof bound to the session, the attempt and
//!   the dealer's position), so no dealer can post a key chosen to cancel another's;
//! - for each participant *j* (itself included) the **encrypted share** `f_i(j + 1)`, XORed with a
//!   pad derived from the pairwise key `K_ij = e_i·E_j = e_j·E_i` (Diffie–Hellman in G1 between
//!   the participants' registered encryption keys `E = e·G`).
//!
//! A recipient decrypts its share and checks it against the dealer's commitment (Feldman:
//! `s·G == Σ_k C_i,k·x^k` with `x = j + 1`). If it does not match, the recipient **complains**: it
//! reveals `K_ij` with a Chaum–Pedersen proof that it is `e_j·E_i` for the `e_j` behind its own
//! registered `E_j`. Anyone — the chain, in consensus — can then decrypt the share and check it:
//! a share that fails convicts the dealer, one that matches convicts the accuser. Revealing
//! `K_ij` exposes that one share only; the encryption secret `e_j` stays secret.
//!
//! The group key is the coefficient-wise sum of the qualified dealers' commitments (its constant
//! term is the federation public key); participant *j*'s secret share is the sum of the shares
//! it received from them, and its public share is that sum polynomial evaluated at `j + 1`, which
//! the participant proves by a BLS signature share over [`confirmation_message`] under
//! [`CONFIRM_DST`] (a tag no release signature uses).
//!
//! Encodings (fixed here for transactions and the chain's records): G1 points are 48-byte
//! compressed (zcash), scalars 32 bytes big-endian, a proof is `c ‖ z` (two scalars, 64 bytes).
//! Hashes to a scalar are SHA-512 over a domain tag and length-prefixed parts, reduced mod r.
//!
//! Pure: no randomness. The caller supplies the polynomial's coefficients (from uniform random
//! bytes, [`Polynomial::from_uniform_bytes`]); proofs take deterministic nonces derived from the
//! secret and everything proven (as EdDSA does), so a repeated proof reveals nothing new.
//!
//! The arithmetic uses the zcash `bls12_381` crate (maintained; already used for RFC 9380
//! hashing); keys and signature shares cross to threshold_crypto's types as bytes, since both use
//! the zcash encoding.

use bls12_381::G1Projective;
pub use bls12_381::{G1Affine, Scalar};
use sha2::{Digest, Sha256, Sha512};

use crate::address::Address;
use crate::release::bls::{self, G1_COMPRESSED_LEN, PublicKeySet, SignatureShare};

/// Domain separation tag of a participant's confirmation signature (RFC 9380 hash-to-curve, as
/// releases, under a tag of its own: a confirmation can never be a release signature).
pub const CONFIRM_DST: &[u8] = b"FERRY_DKG_CONFIRM_V1_BLS12381G2_XMD:SHA-256_SSWU_RO_";

/// Bytes of a scalar.
pub const SCALAR_LEN: usize = 32;
/// Bytes of a proof (`c ‖ z`).
pub const PROOF_LEN: usize = 64;
/// Bytes of an encrypted share.
pub const ENCRYPTED_SHARE_LEN: usize = 32;

/// Which DKG run a message belongs to: a session (one proposal's key generation) and its attempt
/// (a session restarts without members who fell silent or were disqualified). Every proof, pad
/// and confirmation binds it, so nothing carries over between runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// The session number.
    pub session: u64,
    /// The attempt within the session (1 first).
    pub attempt: u32,
}

impl Run {
    fn bytes(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..8].copy_from_slice(&self.session.to_be_bytes());
        out[8..].copy_from_slice(&self.attempt.to_be_bytes());
        out
    }
}

/// Why a DKG value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkgError {
    /// A G1 point's bytes are not 48 long, not on the curve or subgroup, or the identity.
    #[error("{what} is not a compressed G1 point of the prime-order subgroup (and not the identity)")]
    Point {
        /// Which value.
        what: &'static str,
    },
    /// A commitment has the wrong number of coefficients.
    #[error("a commitment of {got} coefficients, the threshold needs {want}")]
    CommitmentLength {
        /// Coefficients given.
        got: usize,
        /// The threshold.
        want: usize,
    },
    /// A proof is not 64 bytes of two scalars.
    #[error("{what} is not a proof: expected 64 bytes, two scalars below the group order")]
    ProofEncoding {
        /// Which proof.
        what: &'static str,
    },
    /// A proof does not verify.
    #[error("{what} does not verify")]
    ProofInvalid {
        /// Which proof.
        what: &'static str,
    },
    /// A record names something its session lacks, or a share does not decode.
    #[error("the session's {0} is missing or does not decode")]
    Missing(&'static str),
}

/// Hashes `parts` (each length-prefixed) under `tag` to a scalar.
fn hash_to_scalar(tag: &[u8], parts: &[&[u8]]) -> Scalar {
    let mut hasher = Sha512::new();
    hasher.update((tag.len() as u64).to_be_bytes());
    hasher.update(tag);
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&hasher.finalize());
    Scalar::from_bytes_wide(&wide)
}

/// The 32-byte big-endian form of a scalar.
pub fn scalar_to_bytes(scalar: &Scalar) -> [u8; SCALAR_LEN] {
    let mut bytes = scalar.to_bytes();
    bytes.reverse();
    bytes
}

/// The scalar of 32 big-endian bytes, if they are below the group order.
pub fn scalar_from_bytes(bytes: &[u8]) -> Option<Scalar> {
    let mut little: [u8; SCALAR_LEN] = bytes.try_into().ok()?;
    little.reverse();
    Option::from(Scalar::from_bytes(&little))
}

/// The scalar of 64 uniform random bytes (reduced mod r: uniform to within 2^-128).
pub fn scalar_from_uniform_bytes(bytes: &[u8; 64]) -> Scalar {
    Scalar::from_bytes_wide(bytes)
}

/// Parses a compressed G1 point, refusing the identity.
///
/// # Errors
/// [`DkgError::Point`] naming `what`.
pub fn decode_point(bytes: &[u8], what: &'static str) -> Result<G1Affine, DkgError> {
    let array: &[u8; G1_COMPRESSED_LEN] = bytes.try_into().map_err(|_| DkgError::Point { what })?;
    let point: Option<G1Affine> = G1Affine::from_compressed(array).into();
    match point {
        Some(point) if !bool::from(point.is_identity()) => Ok(point),
        _ => Err(DkgError::Point { what }),
    }
}

/// Parses a compressed G1 point written as hex (the chain's records), refusing the identity.
///
/// # Errors
/// [`DkgError::Point`] naming `what`.
pub fn decode_point_hex(text: &str, what: &'static str) -> Result<G1Affine, DkgError> {
    let bytes = hex::decode(text).map_err(|_| DkgError::Point { what })?;
    decode_point(&bytes, what)
}

/// The compressed form of a G1 point.
pub fn encode_point(point: &G1Affine) -> [u8; G1_COMPRESSED_LEN] {
    point.to_compressed()
}

fn mul(point: &G1Affine, scalar: &Scalar) -> G1Affine {
    G1Affine::from(G1Projective::from(point) * scalar)
}

fn base(scalar: &Scalar) -> G1Affine {
    mul(&G1Affine::generator(), scalar)
}

/// A Schnorr-style proof `(c, z)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof {
    c: Scalar,
    z: Scalar,
}

impl Proof {
    /// `c ‖ z`, 64 bytes.
    pub fn to_bytes(&self) -> [u8; PROOF_LEN] {
        let mut out = [0u8; PROOF_LEN];
        out[..SCALAR_LEN].copy_from_slice(&scalar_to_bytes(&self.c));
        out[SCALAR_LEN..].copy_from_slice(&scalar_to_bytes(&self.z));
        out
    }

    /// Parses `c ‖ z`.
    ///
    /// # Errors
    /// [`DkgError::ProofEncoding`] naming `what`.
    pub fn from_bytes(bytes: &[u8], what: &'static str) -> Result<Proof, DkgError> {
        if bytes.len() != PROOF_LEN {
            return Err(DkgError::ProofEncoding { what });
        }
        let c = scalar_from_bytes(&bytes[..SCALAR_LEN]).ok_or(DkgError::ProofEncoding { what })?;
        let z = scalar_from_bytes(&bytes[SCALAR_LEN..]).ok_or(DkgError::ProofEncoding { what })?;
        Ok(Proof { c, z })
    }
}

/// A proof of knowledge of `secret` for `public = secret·G`, bound to `tag` and `context`.
fn prove_knowledge(tag: &[u8], context: &[u8], secret: &Scalar, public: &G1Affine) -> Proof {
    let public_bytes = encode_point(public);
    let k = hash_to_scalar(b"ferry-dkg-nonce", &[tag, context, &scalar_to_bytes(secret), &public_bytes]);
    let commitment = encode_point(&base(&k));
    let c = hash_to_scalar(tag, &[context, &public_bytes, &commitment]);
    Proof { c, z: k + c * secret }
}

fn verify_knowledge(tag: &[u8], context: &[u8], public: &G1Affine, proof: &Proof) -> bool {
    // R = z·G − c·P
    let commitment = G1Affine::from(G1Projective::generator() * proof.z - G1Projective::from(public) * proof.c);
    hash_to_scalar(tag, &[context, &encode_point(public), &encode_point(&commitment)]) == proof.c
}

const ENCRYPTION_KEY_DERIVATION_TAG: &[u8] = b"ferry-dkg-encryption-key-derivation-v1";
const KEY_POSSESSION_TAG: &[u8] = b"ferry-dkg-encryption-key-v1";
const SECRET_TERM_TAG: &[u8] = b"ferry-dkg-secret-term-v1";
const PAIRWISE_KEY_TAG: &[u8] = b"ferry-dkg-pairwise-key-v1";
const SHARE_PAD_TAG: &[u8] = b"ferry-dkg-share-pad-v1";
const CONFIRMATION_TAG: &[u8] = b"ferry-dkg-confirm-v1";

/// A participant's DKG encryption key pair: the secret `e` and `E = e·G`.
#[derive(Clone)]
pub struct EncryptionKey {
    secret: Scalar,
    public: G1Affine,
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionKey").field("public", &hex::encode(encode_point(&self.public))).finish()
    }
}

impl EncryptionKey {
    /// The key pair of `secret` (from uniform random bytes, or derived; see the signer).
    pub fn from_secret(secret: Scalar) -> EncryptionKey {
        EncryptionKey { secret, public: base(&secret) }
    }

    /// The key pair derived from `seed` (a member's long-term secret): a domain-separated hash,
    /// so the encryption key reveals nothing of the seed and no other use of the seed yields it.
    pub fn derive(seed: &[u8]) -> EncryptionKey {
        EncryptionKey::from_secret(hash_to_scalar(ENCRYPTION_KEY_DERIVATION_TAG, &[seed]))
    }

    /// The public key `E`.
    pub fn public(&self) -> G1Affine {
        self.public
    }

    /// A proof that the holder of this key registers it for `account` (so no one registers a key
    /// it cannot use, or another's).
    pub fn prove_possession(&self, account: &Address) -> Proof {
        prove_knowledge(KEY_POSSESSION_TAG, account.as_bytes(), &self.secret, &self.public)
    }

    /// The pairwise key with the holder of `other`: `e·E_other`.
    pub fn pairwise_key(&self, other: &G1Affine) -> G1Affine {
        mul(other, &self.secret)
    }

    /// A proof that `key` is this key's pairwise key with `dealer` (`log_G E = log_dealer key`),
    /// for run `run`: what a complaint reveals.
    pub fn prove_pairwise_key(&self, dealer: &G1Affine, key: &G1Affine, run: Run) -> Proof {
        let context = pairwise_context(run, &self.public, dealer, key);
        let k = hash_to_scalar(b"ferry-dkg-nonce", &[PAIRWISE_KEY_TAG, &context, &scalar_to_bytes(&self.secret)]);
        let (a1, a2) = (encode_point(&base(&k)), encode_point(&mul(dealer, &k)));
        let c = hash_to_scalar(PAIRWISE_KEY_TAG, &[&context, &a1, &a2]);
        Proof { c, z: k + c * self.secret }
    }
}

/// Whether `proof` shows that `public` was registered by its holder for `account`.
pub fn verify_possession(public: &G1Affine, account: &Address, proof: &Proof) -> bool {
    verify_knowledge(KEY_POSSESSION_TAG, account.as_bytes(), public, proof)
}

fn pairwise_context(run: Run, accuser: &G1Affine, dealer: &G1Affine, key: &G1Affine) -> Vec<u8> {
    [run.bytes().as_slice(), &encode_point(accuser), &encode_point(dealer), &encode_point(key)].concat()
}

/// Whether `proof` shows that `key` is `e·dealer` for the `e` behind `accuser` (`accuser = e·G`):
/// the Chaum–Pedersen check of a complaint.
pub fn verify_pairwise_key(accuser: &G1Affine, dealer: &G1Affine, key: &G1Affine, run: Run, proof: &Proof) -> bool {
    let context = pairwise_context(run, accuser, dealer, key);
    let a1 = G1Projective::generator() * proof.z - G1Projective::from(accuser) * proof.c;
    let a2 = G1Projective::from(dealer) * proof.z - G1Projective::from(key) * proof.c;
    hash_to_scalar(PAIRWISE_KEY_TAG, &[&context, &encode_point(&a1.into()), &encode_point(&a2.into())]) == proof.c
}

/// The pad that encrypts dealer `dealer`'s share for participant `recipient` (positions in the
/// run's participant list) under their pairwise key.
pub fn share_pad(run: Run, dealer: u32, recipient: u32, key: &G1Affine) -> [u8; ENCRYPTED_SHARE_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(SHARE_PAD_TAG);
    hasher.update(run.bytes());
    hasher.update(dealer.to_be_bytes());
    hasher.update(recipient.to_be_bytes());
    hasher.update(encode_point(key));
    hasher.finalize().into()
}

fn xor(left: &[u8; ENCRYPTED_SHARE_LEN], right: &[u8; ENCRYPTED_SHARE_LEN]) -> [u8; ENCRYPTED_SHARE_LEN] {
    let mut out = [0u8; ENCRYPTED_SHARE_LEN];
    for (slot, (a, b)) in out.iter_mut().zip(left.iter().zip(right)) {
        *slot = a ^ b;
    }
    out
}

/// Decrypts a share with its pad; `None` when the plaintext is not a scalar (the dealer's fault).
pub fn decrypt_share(ciphertext: &[u8; ENCRYPTED_SHARE_LEN], pad: &[u8; ENCRYPTED_SHARE_LEN]) -> Option<Scalar> {
    scalar_from_bytes(&xor(ciphertext, pad))
}

/// The point `x = position + 1` at which participant `position`'s share is evaluated
/// (threshold_crypto's share index convention).
fn evaluation_point(position: u32) -> Scalar {
    Scalar::from(u64::from(position) + 1)
}

/// A dealer's secret polynomial (coefficients, constant term first).
#[derive(Clone)]
pub struct Polynomial {
    coefficients: Vec<Scalar>,
}

impl std::fmt::Debug for Polynomial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Polynomial(degree {})", self.coefficients.len().saturating_sub(1))
    }
}

impl Polynomial {
    /// The polynomial of degree `random.len() − 1` whose coefficients are the given uniform bytes.
    pub fn from_uniform_bytes(random: &[[u8; 64]]) -> Polynomial {
        Polynomial { coefficients: random.iter().map(scalar_from_uniform_bytes).collect() }
    }

    /// The value at participant `position`'s point.
    pub fn share(&self, position: u32) -> Scalar {
        let x = evaluation_point(position);
        self.coefficients.iter().rev().fold(Scalar::zero(), |acc, coefficient| acc * x + coefficient)
    }

    /// The Feldman commitment (each coefficient times G).
    pub fn commitment(&self) -> Vec<G1Affine> {
        self.coefficients.iter().map(base).collect()
    }
}

/// The value a commitment promises at participant `position`'s point: `Σ_k C_k·x^k`.
pub fn commitment_at(commitment: &[G1Affine], position: u32) -> G1Affine {
    let x = evaluation_point(position);
    commitment
        .iter()
        .rev()
        .fold(G1Projective::identity(), |acc, coefficient| acc * x + G1Projective::from(coefficient))
        .into()
}

/// Whether `share` is what `commitment` promises participant `position`.
pub fn share_matches(commitment: &[G1Affine], position: u32, share: &Scalar) -> bool {
    base(share) == commitment_at(commitment, position)
}

/// What one dealer posts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dealing {
    /// The commitment to its polynomial.
    pub commitment: Vec<G1Affine>,
    /// The proof of knowledge of its constant term.
    pub proof: Proof,
    /// One encrypted share per participant, in participant order (its own included).
    pub encrypted_shares: Vec<[u8; ENCRYPTED_SHARE_LEN]>,
}

fn secret_term_context(run: Run, dealer: u32) -> Vec<u8> {
    [run.bytes().as_slice(), &dealer.to_be_bytes()].concat()
}

/// Dealer `dealer`'s dealing of `polynomial` to `participants` (their encryption keys, in order).
pub fn deal(polynomial: &Polynomial, run: Run, dealer: u32, key: &EncryptionKey, participants: &[G1Affine]) -> Dealing {
    let commitment = polynomial.commitment();
    let constant = polynomial.coefficients.first().copied().unwrap_or_else(Scalar::zero);
    let constant_public = commitment.first().copied().unwrap_or_else(G1Affine::identity);
    let proof = prove_knowledge(SECRET_TERM_TAG, &secret_term_context(run, dealer), &constant, &constant_public);
    let encrypted_shares = participants
        .iter()
        .zip(0u32..)
        .map(|(recipient, position)| {
            let pad = share_pad(run, dealer, position, &key.pairwise_key(recipient));
            xor(&scalar_to_bytes(&polynomial.share(position)), &pad)
        })
        .collect();
    Dealing { commitment, proof, encrypted_shares }
}

/// Checks a dealing's public part: `threshold` coefficients, none the identity, and a valid proof
/// of knowledge of the constant term for this run and dealer. (Shares are checked by their
/// recipients; a bad one leads to a complaint.)
///
/// # Errors
/// What is wrong, as a [`DkgError`].
pub fn check_dealing(
    commitment: &[G1Affine],
    proof: &Proof,
    run: Run,
    dealer: u32,
    threshold: usize,
) -> Result<(), DkgError> {
    if commitment.len() != threshold {
        return Err(DkgError::CommitmentLength { got: commitment.len(), want: threshold });
    }
    if commitment.iter().any(|point| bool::from(point.is_identity())) {
        return Err(DkgError::Point { what: "a commitment coefficient" });
    }
    let constant = commitment.first().ok_or(DkgError::CommitmentLength { got: 0, want: threshold })?;
    if !verify_knowledge(SECRET_TERM_TAG, &secret_term_context(run, dealer), constant, proof) {
        return Err(DkgError::ProofInvalid { what: "the proof of knowledge of the secret term" });
    }
    Ok(())
}

/// How a complaint is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The revealed share does not match the dealer's commitment (or is not a scalar): the
    /// dealer lied.
    DealerFaulty,
    /// The revealed share matches: the accuser lied.
    AccuserFaulty,
}

/// Judges a complaint whose pairwise key was proven ([`verify_pairwise_key`]): decrypts the
/// accused dealer's share for the accuser and checks it against the dealer's commitment.
pub fn judge_complaint(
    run: Run,
    (dealer, commitment): (u32, &[G1Affine]),
    (accuser, ciphertext): (u32, &[u8; ENCRYPTED_SHARE_LEN]),
    key: &G1Affine,
) -> Verdict {
    match decrypt_share(ciphertext, &share_pad(run, dealer, accuser, key)) {
        Some(share) if share_matches(commitment, accuser, &share) => Verdict::AccuserFaulty,
        _ => Verdict::DealerFaulty,
    }
}

/// The group's commitment: the coefficient-wise sum of the qualified dealers' commitments.
pub fn group_commitment<'a>(commitments: impl IntoIterator<Item = &'a [G1Affine]>) -> Vec<G1Affine> {
    let mut sum: Vec<G1Projective> = Vec::new();
    for commitment in commitments {
        if sum.len() < commitment.len() {
            sum.resize(commitment.len(), G1Projective::identity());
        }
        for (slot, coefficient) in sum.iter_mut().zip(commitment) {
            *slot += G1Projective::from(coefficient);
        }
    }
    sum.into_iter().map(G1Affine::from).collect()
}

/// The group commitment in the federation's public key set encoding
/// ([`bls::encode_public_key_set`]).
pub fn encode_key_set(group: &[G1Affine]) -> String {
    group.iter().map(|point| hex::encode(encode_point(point))).collect()
}

/// The group commitment as threshold_crypto's key set.
///
/// # Errors
/// When a coefficient is the identity (a sum that cancelled; the run must be repeated).
pub fn key_set(group: &[G1Affine]) -> Result<PublicKeySet, bls::BlsError> {
    bls::decode_public_key_set(&encode_key_set(group))
}

/// The message every participant signs with its final share to confirm the run: fixed per run.
pub fn confirmation_message(run: Run, group_key: &G1Affine) -> Vec<u8> {
    [CONFIRMATION_TAG, &run.bytes(), &encode_point(group_key)].concat()
}

/// Participant `position`'s confirmation share: its final secret share signing
/// [`confirmation_message`] under [`CONFIRM_DST`].
pub fn sign_confirmation(share: &bls::SecretKeyShare, run: Run, group_key: &G1Affine) -> SignatureShare {
    share.sign_g2(bls::hash_to_g2(&confirmation_message(run, group_key), CONFIRM_DST))
}

/// Whether `signature` is participant `position`'s confirmation under the group key set.
pub fn verify_confirmation(
    set: &PublicKeySet,
    position: u32,
    signature: &SignatureShare,
    run: Run,
    group: &G1Affine,
) -> bool {
    set.public_key_share(u64::from(position))
        .verify_g2(signature, bls::hash_to_g2(&confirmation_message(run, group), CONFIRM_DST))
}

/// The scalar as threshold_crypto's secret key share (the form releases sign with). `None` never
/// happens for a reduced scalar; it is kept for the conversion's own check.
pub fn secret_key_share(scalar: &Scalar) -> Option<bls::SecretKeyShare> {
    use threshold_crypto::ff::{PrimeField, PrimeFieldRepr};
    let mut repr = threshold_crypto::FrRepr::default();
    repr.read_be(&scalar_to_bytes(scalar)[..]).ok()?;
    let mut fr = threshold_crypto::Fr::from_repr(repr).ok()?;
    Some(bls::SecretKeyShare::from_mut(&mut fr))
}

/// What a recipient found in one dealing: its share, or why it cannot use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// The share decrypted and matches the dealer's commitment.
    Valid(Scalar),
    /// It does not: complain about the dealer.
    Invalid,
}

/// Decrypts and checks the share dealer `dealer` (encryption key `dealer_key`, commitment
/// `commitment`) sent participant `me` (holding `key`).
pub fn receive(
    run: Run,
    key: &EncryptionKey,
    me: u32,
    (dealer, dealer_key, commitment): (u32, &G1Affine, &[G1Affine]),
    ciphertext: &[u8; ENCRYPTED_SHARE_LEN],
) -> Received {
    let pad = share_pad(run, dealer, me, &key.pairwise_key(dealer_key));
    match decrypt_share(ciphertext, &pad) {
        Some(share) if share_matches(commitment, me, &share) => Received::Valid(share),
        _ => Received::Invalid,
    }
}

/// A participant's final secret share: the sum of the shares it received from the qualified
/// dealers.
pub fn combine_shares(shares: impl IntoIterator<Item = Scalar>) -> Scalar {
    shares.into_iter().fold(Scalar::zero(), |acc, share| acc + share)
}

#[cfg(test)]
mod tests;
