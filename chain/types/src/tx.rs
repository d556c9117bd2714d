//! The transaction wire format: Cosmos SDK `TxRaw`, SIGN_MODE_DIRECT, one secp256k1 signer.
//!
//! [`DecodedTx::decode`] performs every check that needs no state (the "stateless" phase);
//! [`DecodedTx::verify_signature`] checks the signature over the *received* body and auth-info
//! bytes once the account number is known. [`TxBuilder`] produces transactions with cosmrs.
//!
//! A stock Cosmos client's transaction is accepted as it is: the `ChainBinding` extension Ferry's
//! own tools add is optional (the chain id is bound by the signature over the `SignDoc` either
//! way; the extension only lets the chain answer "wrong chain id" instead of "bad signature").
//! [`DecodedTx::decode_for_simulation`] reads the unsigned form wallets send to `Simulate`.

use cosmrs::proto::cosmos::crypto::secp256k1::PubKey as Secp256k1PubKeyProto;
use cosmrs::proto::cosmos::tx::signing::v1beta1::SignMode;
use cosmrs::proto::cosmos::tx::v1beta1::mode_info::Sum as ModeInfoSum;
use cosmrs::proto::cosmos::tx::v1beta1::{AuthInfo, TxBody, TxRaw};
use prost::Message;
use secp256k1::ecdsa::Signature;
use secp256k1::{Message as Digest32, PublicKey, SECP256K1};

use crate::address::Address;
use crate::amount::Coin;
use crate::code::TxCode;
use crate::key::{AccountKey, address_of_compressed};
use crate::msg::{CHAIN_BINDING_TYPE_URL, ChainBindingProto, Msg};

const SECP256K1_PUBKEY_TYPE_URL: &str = "/cosmos.crypto.secp256k1.PubKey";

/// A refused transaction: the response code and a log line naming the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?} ({}): {log}", code.value())]
pub struct TxRejection {
    /// The ABCI code.
    pub code: TxCode,
    /// Human-readable reason, naming the offending input.
    pub log: String,
}

impl TxRejection {
    /// A rejection with `code` and `log`.
    pub fn new(code: TxCode, log: impl Into<String>) -> Self {
        TxRejection { code, log: log.into() }
    }
}

fn decode_error(what: &str, error: impl std::fmt::Display) -> TxRejection {
    TxRejection::new(TxCode::Decode, format!("{what} does not decode: {error}"))
}

/// A transaction that passed every stateless check.
#[derive(Clone, Debug)]
pub struct DecodedTx {
    body_bytes: Vec<u8>,
    auth_info_bytes: Vec<u8>,
    /// `None` only for a transaction decoded for simulation, which is never executed for real.
    signature: Option<Signature>,
    /// The messages, validated.
    pub msgs: Vec<Msg>,
    /// The memo (free text, not interpreted).
    pub memo: String,
    /// The chain id the signer stated in the optional `ChainBinding` extension (`None`: the
    /// transaction carries none; the signature still binds the chain id).
    pub stated_chain_id: Option<String>,
    /// The signer's address, derived from its public key.
    pub signer: Address,
    /// The signer's compressed public key.
    pub signer_public_key: [u8; 33],
    /// The sequence the transaction claims.
    pub sequence: u64,
    /// The fee offered (`None` for a fee-exempt federation transaction).
    pub fee: Option<Coin>,
    /// SHA-256 of the received bytes: CometBFT's transaction hash.
    pub hash: [u8; 32],
}

impl DecodedTx {
    /// Decodes `bytes` and applies every check that needs no chain state.
    ///
    /// # Errors
    /// A [`TxRejection`] with code `TooLarge`, `Decode`, `InvalidMessage`, `InvalidSignature`
    /// (malformed key or signature encoding) or `Unauthorized`.
    pub fn decode(bytes: &[u8], max_tx_bytes: u64) -> Result<DecodedTx, TxRejection> {
        Self::decode_as(bytes, max_tx_bytes, Purpose::Execution)
    }

    /// Decodes a transaction sent to `Simulate`: as [`DecodedTx::decode`], except that the
    /// signature and the sign mode are not looked at (wallets simulate before they sign, with
    /// an empty signature and SIGN_MODE_UNSPECIFIED). The result's signature never verifies.
    ///
    /// # Errors
    /// As [`DecodedTx::decode`], without the signature's.
    pub fn decode_for_simulation(bytes: &[u8], max_tx_bytes: u64) -> Result<DecodedTx, TxRejection> {
        Self::decode_as(bytes, max_tx_bytes, Purpose::Simulation)
    }

    fn decode_as(bytes: &[u8], max_tx_bytes: u64, purpose: Purpose) -> Result<DecodedTx, TxRejection> {
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max_tx_bytes {
            return Err(TxRejection::new(
                TxCode::TooLarge,
                format!("transaction is {} bytes, the limit is {max_tx_bytes}", bytes.len()),
            ));
        }
        if bytes.is_empty() {
            return Err(TxRejection::new(TxCode::Decode, "transaction is empty"));
        }
        let raw = TxRaw::decode(bytes).map_err(|e| decode_error("TxRaw", e))?;
        // The wrapper is not signed: accept only its canonical encoding, so nobody can re-encode
        // a pending transaction (unknown or repeated fields) into a different hash that still verifies.
        if raw.encoded_len() != bytes.len() || raw.encode_to_vec() != bytes {
            return Err(TxRejection::new(
                TxCode::Decode,
                "TxRaw is not canonically encoded (unknown, repeated or reordered fields)",
            ));
        }
        let body = TxBody::decode(raw.body_bytes.as_slice()).map_err(|e| decode_error("TxBody", e))?;
        let auth_info = AuthInfo::decode(raw.auth_info_bytes.as_slice()).map_err(|e| decode_error("AuthInfo", e))?;

        let signature = match (purpose, raw.signatures.as_slice()) {
            (Purpose::Simulation, _) => None,
            (Purpose::Execution, [one]) => Some(parse_signature(one)?),
            (Purpose::Execution, other) => {
                return Err(TxRejection::new(
                    TxCode::InvalidSignature,
                    format!("expected exactly one signature, got {}", other.len()),
                ));
            }
        };
        let (signer_public_key, sequence) = parse_signer(&auth_info, purpose)?;
        let fee = parse_fee(&auth_info)?;
        let stated_chain_id = parse_chain_binding(&body)?;

        if body.messages.is_empty() {
            return Err(TxRejection::new(TxCode::InvalidMessage, "transaction carries no message"));
        }
        if body.timeout_height != 0 {
            return Err(TxRejection::new(TxCode::InvalidMessage, "timeout_height is not supported; leave it 0"));
        }
        let msgs = body
            .messages
            .iter()
            .map(Msg::from_any)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TxRejection::new(TxCode::InvalidMessage, e.to_string()))?;

        let signer = address_of_compressed(&signer_public_key);
        if let Some(foreign) = msgs.iter().map(Msg::signer).find(|owner| *owner != signer) {
            return Err(TxRejection::new(
                TxCode::Unauthorized,
                format!("message sender {foreign} is not the transaction signer {signer}"),
            ));
        }
        Ok(DecodedTx {
            hash: crate::key::sha256(bytes),
            signer_public_key,
            body_bytes: raw.body_bytes,
            auth_info_bytes: raw.auth_info_bytes,
            signature,
            msgs,
            memo: body.memo,
            stated_chain_id,
            signer,
            sequence,
            fee,
        })
    }

    /// Verifies the signature over `SignDoc{received body bytes, received auth-info bytes,
    /// chain_id, account_number}`.
    ///
    /// # Errors
    /// `WrongChainId` when the stated chain id is not `chain_id`; `InvalidSignature` when the
    /// signature does not verify (for example a wrong account number, or another chain id
    /// signed without the `ChainBinding` extension) or the transaction was decoded for
    /// simulation.
    pub fn verify_signature(&self, chain_id: &str, account_number: u64) -> Result<(), TxRejection> {
        self.check_stated_chain_id(chain_id)?;
        let Some(signature) = &self.signature else {
            return Err(TxRejection::new(TxCode::InvalidSignature, "transaction is unsigned (decoded for simulation)"));
        };
        // The point is decompressed here, not at decoding: a block's transactions were mostly
        // verified at CheckTx already (see the app's signature cache) and need no point at all.
        let public_key = PublicKey::from_slice(&self.signer_public_key).map_err(|_| {
            TxRejection::new(TxCode::InvalidSignature, "public key is not a compressed secp256k1 point")
        })?;
        let digest = Digest32::from_digest(crate::key::sha256(&self.sign_doc(chain_id, account_number)));
        SECP256K1.verify_ecdsa(&digest, signature, &public_key).map_err(|_| {
            TxRejection::new(
                TxCode::InvalidSignature,
                format!(
                    "signature of {} does not verify for chain `{chain_id}`, account number {account_number}, sequence {}",
                    self.signer, self.sequence
                ),
            )
        })
    }

    /// `WrongChainId` when the transaction's `ChainBinding` names a chain other than `chain_id`
    /// (a transaction without the extension passes: its signature decides).
    ///
    /// # Errors
    /// As said: a [`TxRejection`] with code `WrongChainId`.
    pub fn check_stated_chain_id(&self, chain_id: &str) -> Result<(), TxRejection> {
        match &self.stated_chain_id {
            Some(stated) if stated != chain_id => Err(TxRejection::new(
                TxCode::WrongChainId,
                format!("transaction is for chain `{stated}`, this is `{chain_id}`"),
            )),
            _ => Ok(()),
        }
    }
}

/// What a transaction is decoded for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// To be executed: signed, SIGN_MODE_DIRECT.
    Execution,
    /// To be simulated: the signature and sign mode are not looked at.
    Simulation,
}

fn parse_signature(bytes: &[u8]) -> Result<Signature, TxRejection> {
    let signature = Signature::from_compact(bytes).map_err(|_| {
        TxRejection::new(
            TxCode::InvalidSignature,
            format!("signature must be 64 bytes (r || s), got {} bytes", bytes.len()),
        )
    })?;
    // Refuse the malleable high-S twin of every signature, as Cosmos SDK does.
    let mut normalized = signature;
    normalized.normalize_s();
    if normalized != signature {
        return Err(TxRejection::new(TxCode::InvalidSignature, "signature is not in low-S form"));
    }
    Ok(signature)
}

impl DecodedTx {
    /// The encoded `SignDoc` over the received body and auth-info bytes (encoded in place: the
    /// bytes are not copied into a `SignDoc` first).
    fn sign_doc(&self, chain_id: &str, account_number: u64) -> Vec<u8> {
        use prost::encoding::{bytes, string, uint64};
        let mut out = Vec::with_capacity(self.body_bytes.len() + self.auth_info_bytes.len() + chain_id.len() + 24);
        // Proto3 as prost writes it: fields in order, defaults (empty, 0) left out.
        if !self.body_bytes.is_empty() {
            bytes::encode(1, &self.body_bytes, &mut out);
        }
        if !self.auth_info_bytes.is_empty() {
            bytes::encode(2, &self.auth_info_bytes, &mut out);
        }
        if !chain_id.is_empty() {
            string::encode(3, &chain_id.to_owned(), &mut out);
        }
        if account_number != 0 {
            uint64::encode(4, &account_number, &mut out);
        }
        out
    }
}

/// The signer's compressed public key (33 bytes with an 02/03 prefix; whether it is a point on
/// the curve is checked when the signature is verified) and the sequence it claims.
fn parse_signer(auth_info: &AuthInfo, purpose: Purpose) -> Result<([u8; 33], u64), TxRejection> {
    let [signer_info] = auth_info.signer_infos.as_slice() else {
        return Err(TxRejection::new(
            TxCode::Decode,
            format!("expected exactly one signer, got {}", auth_info.signer_infos.len()),
        ));
    };
    let direct = signer_info
        .mode_info
        .as_ref()
        .and_then(|mode| mode.sum.as_ref())
        .is_some_and(|sum| matches!(sum, ModeInfoSum::Single(single) if single.mode == SignMode::Direct as i32));
    if !direct && purpose == Purpose::Execution {
        return Err(TxRejection::new(TxCode::Decode, "sign mode must be SIGN_MODE_DIRECT"));
    }
    let any = signer_info
        .public_key
        .as_ref()
        .ok_or_else(|| TxRejection::new(TxCode::Decode, "signer public key is missing"))?;
    if any.type_url != SECP256K1_PUBKEY_TYPE_URL {
        return Err(TxRejection::new(
            TxCode::Decode,
            format!("public key type `{}` is not {SECP256K1_PUBKEY_TYPE_URL}", any.type_url),
        ));
    }
    let key = Secp256k1PubKeyProto::decode(any.value.as_slice()).map_err(|e| decode_error("public key", e))?;
    let public_key = <[u8; 33]>::try_from(key.key.as_slice())
        .ok()
        .filter(|key| matches!(key.first(), Some(0x02 | 0x03)))
        .ok_or_else(|| TxRejection::new(TxCode::InvalidSignature, "public key is not a compressed secp256k1 point"))?;
    Ok((public_key, signer_info.sequence))
}

/// The fee coin; `None` when the transaction offers no fee (only federation duties may do so).
fn parse_fee(auth_info: &AuthInfo) -> Result<Option<Coin>, TxRejection> {
    let Some(fee) = auth_info.fee.as_ref() else { return Ok(None) };
    if !fee.payer.is_empty() || !fee.granter.is_empty() {
        return Err(TxRejection::new(TxCode::Decode, "fee payer and granter are not supported"));
    }
    match fee.amount.as_slice() {
        [] => Ok(None),
        [coin] => {
            Coin::from_proto(coin).map(Some).map_err(|e| TxRejection::new(TxCode::InsufficientFee, format!("fee: {e}")))
        }
        other => {
            Err(TxRejection::new(TxCode::InsufficientFee, format!("fee must be exactly one coin, got {}", other.len())))
        }
    }
}

/// The chain id stated by the optional `ChainBinding` extension.
fn parse_chain_binding(body: &TxBody) -> Result<Option<String>, TxRejection> {
    if let Some(option) = body.extension_options.first() {
        return Err(TxRejection::new(
            TxCode::Decode,
            format!("unsupported critical extension option `{}`", option.type_url),
        ));
    }
    let binding = match body.non_critical_extension_options.as_slice() {
        [] => return Ok(None),
        [binding] => binding,
        more => {
            return Err(TxRejection::new(
                TxCode::Decode,
                format!("{} non-critical extensions; at most one is accepted ({CHAIN_BINDING_TYPE_URL})", more.len()),
            ));
        }
    };
    if binding.type_url != CHAIN_BINDING_TYPE_URL {
        return Err(TxRejection::new(
            TxCode::Decode,
            format!("extension `{}` is not {CHAIN_BINDING_TYPE_URL}", binding.type_url),
        ));
    }
    ChainBindingProto::decode(binding.value.as_slice())
        .map(|binding| Some(binding.chain_id))
        .map_err(|e| decode_error("chain binding", e))
}

/// Why a transaction could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build transaction: {0}")]
pub struct TxBuildError(String);

/// Builds and signs transactions for one account.
#[derive(Clone, Debug)]
pub struct TxBuilder {
    /// Target chain id.
    pub chain_id: String,
    /// The signer's account number on that chain.
    pub account_number: u64,
    /// Gas limit written into the fee (Ferry charges flat fees; the limit is informational).
    pub gas_limit: u64,
    /// Memo.
    pub memo: String,
}

impl TxBuilder {
    /// A builder for `chain_id` and the signer's `account_number`.
    pub fn new(chain_id: impl Into<String>, account_number: u64) -> Self {
        TxBuilder { chain_id: chain_id.into(), account_number, gas_limit: 200_000, memo: String::new() }
    }

    /// Signs `msgs` with `key` at `sequence`, paying `fee`; returns the `TxRaw` bytes.
    ///
    /// # Errors
    /// When cosmrs refuses a part (for example a chain id that is not a valid Tendermint chain id).
    pub fn sign(&self, key: &AccountKey, sequence: u64, fee: &Coin, msgs: &[Msg]) -> Result<Vec<u8>, TxBuildError> {
        self.sign_with_fee(key, sequence, Some(fee), msgs)
    }

    /// Signs fee-exempt federation duties (for example deposit attestations) at `sequence`.
    ///
    /// # Errors
    /// As [`TxBuilder::sign`].
    pub fn sign_fee_exempt(&self, key: &AccountKey, sequence: u64, msgs: &[Msg]) -> Result<Vec<u8>, TxBuildError> {
        self.sign_with_fee(key, sequence, None, msgs)
    }

    fn sign_with_fee(
        &self,
        key: &AccountKey,
        sequence: u64,
        fee: Option<&Coin>,
        msgs: &[Msg],
    ) -> Result<Vec<u8>, TxBuildError> {
        let err = |e: cosmrs::ErrorReport| TxBuildError(e.to_string());
        let mut body = cosmrs::tx::Body::new(msgs.iter().map(Msg::to_any), self.memo.clone(), 0u32);
        body.non_critical_extension_options.push(cosmrs::Any {
            type_url: CHAIN_BINDING_TYPE_URL.to_owned(),
            value: ChainBindingProto { chain_id: self.chain_id.clone() }.encode_to_vec(),
        });
        let signing_key = key.cosmrs_signing_key();
        let fee = match fee {
            Some(fee) => {
                let coin = cosmrs::Coin { denom: fee.denom.as_str().parse().map_err(err)?, amount: fee.amount.get() };
                cosmrs::tx::Fee::from_amount_and_gas(coin, self.gas_limit)
            }
            None => cosmrs::tx::Fee { amount: Vec::new(), gas_limit: self.gas_limit, payer: None, granter: None },
        };
        let auth_info = cosmrs::tx::SignerInfo::single_direct(Some(signing_key.public_key()), sequence).auth_info(fee);
        let chain_id = self.chain_id.parse().map_err(|e: cosmrs::tendermint::Error| TxBuildError(e.to_string()))?;
        cosmrs::tx::SignDoc::new(&body, &auth_info, &chain_id, self.account_number)
            .and_then(|doc| doc.sign(&signing_key))
            .and_then(|raw| raw.to_bytes())
            .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use cosmrs::proto::cosmos::tx::v1beta1::SignDoc;

    use super::*;
    use crate::msg::MsgSend;
    use crate::{Amount, Denom};

    const CHAIN: &str = "ferry-test";

    fn transfer(key: &AccountKey) -> Vec<Msg> {
        vec![Msg::Send(MsgSend {
            from: key.address(),
            to: Address::from_bytes([9; 20]),
            amount: vec![Coin::new(1_000, Denom::sat())],
        })]
    }

    fn signed(key: &AccountKey, chain_id: &str, account_number: u64) -> Result<Vec<u8>, TxBuildError> {
        TxBuilder::new(chain_id, account_number).sign(key, 3, &Coin::new(10, Denom::sat()), &transfer(key))
    }

    #[test]
    fn the_sign_doc_is_encoded_as_prost_encodes_it() -> Result<(), Box<dyn std::error::Error>> {
        let key = AccountKey::from_seed("alice")?;
        let tx = DecodedTx::decode(&signed(&key, CHAIN, 7)?, 4096)?;
        for (chain_id, account_number) in [(CHAIN, 7), (CHAIN, 0), ("", 1 << 40)] {
            let expected = SignDoc {
                body_bytes: tx.body_bytes.clone(),
                auth_info_bytes: tx.auth_info_bytes.clone(),
                chain_id: chain_id.to_owned(),
                account_number,
            }
            .encode_to_vec();
            assert_eq!(tx.sign_doc(chain_id, account_number), expected, "{chain_id:?} {account_number}");
        }
        Ok(())
    }

    #[test]
    fn a_signer_key_off_the_curve_is_refused_when_verifying() -> Result<(), Box<dyn std::error::Error>> {
        let key = AccountKey::from_seed("alice")?;
        let mut tx = DecodedTx::decode(&signed(&key, CHAIN, 7)?, 4096)?;
        // x = 0 is on no point of secp256k1 (7 is not a square modulo p).
        tx.signer_public_key = [0; 33];
        tx.signer_public_key[0] = 0x02;
        let refused = tx.verify_signature(CHAIN, 7).err().ok_or("an off-curve key verified")?;
        assert_eq!(refused.code, TxCode::InvalidSignature);
        assert!(refused.log.contains("not a compressed secp256k1 point"), "{}", refused.log);
        Ok(())
    }

    #[test]
    fn built_transaction_decodes_and_verifies() -> Result<(), Box<dyn std::error::Error>> {
        let key = AccountKey::from_seed("alice")?;
        let tx = DecodedTx::decode(&signed(&key, CHAIN, 7)?, 4096)?;
        assert_eq!(tx.signer, key.address());
        assert_eq!(tx.sequence, 3);
        assert_eq!(tx.fee.as_ref().map(|fee| fee.amount), Some(Amount::new(10)));
        assert_eq!(tx.msgs, transfer(&key));
        tx.verify_signature(CHAIN, 7)?;
        Ok(())
    }

    #[test]
    fn wrong_account_number_is_a_bad_signature() -> Result<(), Box<dyn std::error::Error>> {
        let key = AccountKey::from_seed("alice")?;
        let tx = DecodedTx::decode(&signed(&key, CHAIN, 7)?, 4096)?;
        assert_eq!(tx.verify_signature(CHAIN, 8).map_err(|r| r.code), Err(TxCode::InvalidSignature));
        Ok(())
    }

    #[test]
    fn other_chain_id_is_named() -> Result<(), Box<dyn std::error::Error>> {
        let key = AccountKey::from_seed("alice")?;
        let tx = DecodedTx::decode(&signed(&key, "other-chain", 7)?, 4096)?;
        let rejection = tx.verify_signature(CHAIN, 7).err().ok_or("accepted")?;
        assert_eq!(rejection.code, TxCode::WrongChainId);
        assert!(rejection.log.contains("other-chain"), "{}", rejection.log);
        Ok(())
    }

    /// A transfer as a stock Cosmos client builds it: the SDK's own `MsgSend`, no `ChainBinding`.
    fn stock_transfer(
        key: &AccountKey,
        chain_id: &str,
        signatures: Option<Vec<Vec<u8>>>,
    ) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let send = crate::msg::MsgSendProto {
            from_address: key.address().to_string(),
            to_address: Address::from_bytes([9; 20]).to_string(),
            amount: vec![Coin::new(1_000, Denom::sat()).to_proto()],
        };
        let body = TxBody {
            messages: vec![cosmrs::Any {
                type_url: crate::msg::COSMOS_MSG_SEND_TYPE_URL.to_owned(),
                value: send.encode_to_vec(),
            }],
            ..TxBody::default()
        };
        let signing_key = key.cosmrs_signing_key();
        let fee = cosmrs::tx::Fee::from_amount_and_gas(cosmrs::Coin { denom: "sat".parse()?, amount: 100 }, 200_000u64);
        let auth_info = cosmrs::tx::SignerInfo::single_direct(Some(signing_key.public_key()), 0).auth_info(fee);
        let auth_info_bytes = cosmrs::proto::cosmos::tx::v1beta1::AuthInfo::from(auth_info).encode_to_vec();
        let body_bytes = body.encode_to_vec();
        let doc = SignDoc {
            body_bytes: body_bytes.clone(),
            auth_info_bytes: auth_info_bytes.clone(),
            chain_id: chain_id.to_owned(),
            account_number: 7,
        };
        let signatures = match signatures {
            Some(signatures) => signatures,
            None => vec![signing_key.sign(&doc.encode_to_vec())?.to_vec()],
        };
        Ok(TxRaw { body_bytes, auth_info_bytes, signatures }.encode_to_vec())
    }

    #[test]
    fn a_stock_transfer_without_chain_binding_is_bound_by_its_signature() -> Result<(), Box<dyn std::error::Error>> {
        let key = AccountKey::from_seed("alice")?;
        let tx = DecodedTx::decode(&stock_transfer(&key, CHAIN, None)?, 4096)?;
        assert_eq!(tx.stated_chain_id, None);
        assert_eq!(tx.msgs, transfer(&key), "the SDK's MsgSend is Ferry's transfer");
        tx.verify_signature(CHAIN, 7)?;
        // Signed for another chain: no extension to name it, so the signature does not verify.
        let other = DecodedTx::decode(&stock_transfer(&key, "other-chain", None)?, 4096)?;
        let refused = other.verify_signature(CHAIN, 7).err().ok_or("another chain's transfer verified")?;
        assert_eq!(refused.code, TxCode::InvalidSignature);
        Ok(())
    }

    #[test]
    fn an_unsigned_transaction_decodes_only_for_simulation() -> Result<(), Box<dyn std::error::Error>> {
        let key = AccountKey::from_seed("alice")?;
        let unsigned = stock_transfer(&key, CHAIN, Some(vec![Vec::new()]))?;
        assert_eq!(DecodedTx::decode(&unsigned, 4096).map(|_| ()).map_err(|r| r.code), Err(TxCode::InvalidSignature));
        let simulated = DecodedTx::decode_for_simulation(&unsigned, 4096)?;
        assert_eq!(simulated.signer, key.address());
        let refused = simulated.verify_signature(CHAIN, 7).err().ok_or("an unsigned transaction verified")?;
        assert_eq!(refused.code, TxCode::InvalidSignature);
        Ok(())
    }

    #[test]
    fn oversized_and_garbage_bytes_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let key = AccountKey::from_seed("alice")?;
        let bytes = signed(&key, CHAIN, 7)?;
        assert_eq!(DecodedTx::decode(&bytes, 10).map(|_| ()).map_err(|r| r.code), Err(TxCode::TooLarge));
        assert_eq!(DecodedTx::decode(b"\xff\xff\xff", 4096).map(|_| ()).map_err(|r| r.code), Err(TxCode::Decode));
        Ok(())
    }

    #[test]
    fn high_s_twin_signature_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let key = AccountKey::from_seed("alice")?;
        let mut raw = TxRaw::decode(signed(&key, CHAIN, 7)?.as_slice())?;
        let low = k256::ecdsa::Signature::from_slice(raw.signatures.first().ok_or("no signature")?)?;
        let (r, s) = low.split_scalars();
        let high = k256::ecdsa::Signature::from_scalars(r, -*s)?;
        raw.signatures = vec![high.to_bytes().to_vec()];
        let rejection = DecodedTx::decode(&raw.encode_to_vec(), 4096).err().ok_or("accepted")?;
        assert_eq!(rejection.code, TxCode::InvalidSignature);
        Ok(())
    }
}
