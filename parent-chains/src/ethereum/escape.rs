//! The vault's escape hatch from a holder's side (issue 17): read where it stands, freeze it once
//! the federation has been silent for `escapeDelay`, and take a claim out with its exit-tree
//! proof and the account key's signature. I/O only: which claims to take, with which proof, is
//! decided by the caller (`ferry exit eth`) from the chain's claims and `ferry_types::exit_tree`.

use std::future::IntoFuture;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address as EthAddress, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolCall;
use ferry_types::exit_tree::{Claim, ExitProof, Hash};

use super::error::EthereumError;
use super::rpc::{decode_word, undecodable};
use super::vault::FerryVault;
use super::wallet::{Receipt, Wallet};
use super::watcher::EthereumWatcher;

/// Where the vault's escape hatch stands, read in one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EscapeState {
    /// Whether the vault is frozen (only exits and claims work).
    pub frozen: bool,
    /// The root exits are proven against (all zeros before the first heartbeat).
    pub exit_root: Hash,
    /// The sidechain height whose claims that root covers.
    pub root_height: u64,
    /// When the escape hatch opens (Unix seconds): `freeze()` works once a block is later.
    pub opens_at: u64,
    /// The latest block's timestamp (Unix seconds).
    pub now: u64,
}

impl EscapeState {
    /// Seconds until `freeze()` is allowed (0 once it is).
    pub fn opens_in(&self) -> u64 {
        self.opens_at.saturating_add(1).saturating_sub(self.now)
    }
}

fn as_u64(method: &str, word: U256) -> Result<u64, EthereumError> {
    u64::try_from(word).map_err(|_| EthereumError::UnexpectedAnswer {
        method: method.to_owned(),
        detail: format!("{word} does not fit 64 bits"),
    })
}

impl EthereumWatcher {
    /// `eth_call` of `call` on the vault at the latest block; the raw answer.
    async fn vault_view<C: SolCall>(&self, call: C) -> Result<Bytes, EthereumError> {
        let request =
            alloy::rpc::types::TransactionRequest::default().with_to(self.vault()).with_input(call.abi_encode());
        self.calls.run("eth_call", self.provider.call(request).into_future()).await
    }

    /// The vault's escape hatch, as the latest block has it.
    ///
    /// # Errors
    /// Transport, node and timeout errors; an answer that does not decode.
    pub async fn escape_state(&self) -> Result<EscapeState, EthereumError> {
        let frozen = !decode_word("eth_call frozen", &self.vault_view(FerryVault::frozenCall {}).await?)?.is_zero();
        let answer = self.vault_view(FerryVault::exitRootCall {}).await?;
        let exit_root: B256 =
            FerryVault::exitRootCall::abi_decode_returns(&answer).map_err(|e| undecodable("eth_call exitRoot", &e))?;
        let answer = self.vault_view(FerryVault::lastHeartbeatHeightCall {}).await?;
        let root_height = decode_word("eth_call lastHeartbeatHeight", &answer)?;
        let opens_at =
            decode_word("eth_call escapeOpensAt", &self.vault_view(FerryVault::escapeOpensAtCall {}).await?)?;
        let latest = self.provider.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).into_future();
        let block =
            self.calls.run("eth_getBlockByNumber", latest).await?.ok_or_else(|| EthereumError::UnexpectedAnswer {
                method: "eth_getBlockByNumber".to_owned(),
                detail: "no latest block".to_owned(),
            })?;
        Ok(EscapeState {
            frozen,
            exit_root: exit_root.0,
            root_height: as_u64("eth_call lastHeartbeatHeight", root_height)?,
            opens_at: as_u64("eth_call escapeOpensAt", opens_at)?,
            now: block.header.timestamp,
        })
    }

    /// `vault.exited(index)`: whether the claim at position `index` was taken.
    ///
    /// # Errors
    /// As [`escape_state`](Self::escape_state).
    pub async fn exited(&self, index: u32) -> Result<bool, EthereumError> {
        let answer = self.vault_view(FerryVault::exitedCall { index: U256::from(index) }).await?;
        Ok(!decode_word("eth_call exited", &answer)?.is_zero())
    }
}

impl Wallet {
    /// The node's EIP-155 chain id (what an exit request is signed for).
    ///
    /// # Errors
    /// Transport, node and timeout errors.
    pub async fn chain_id(&self) -> Result<u64, EthereumError> {
        self.calls.run("eth_chainId", self.provider.get_chain_id().into_future()).await
    }

    /// `vault.freeze()`: anyone may call it once the escape hatch is open.
    ///
    /// # Errors
    /// Transport, node and timeout errors, or the vault's refusal (`EscapeNotOpen`, `VaultFrozen`).
    pub async fn freeze(&self, vault: EthAddress) -> Result<Receipt, EthereumError> {
        let request = FerryVault::new(vault, &self.provider).freeze().into_transaction_request();
        self.send("FerryVault.freeze", request).await
    }

    /// `vault.exit(claim, index, proof, pubkey, recipient, signature)`: takes `claim` at position
    /// `index` out of the frozen vault to `recipient`, authorised by the account key's 64-byte
    /// public key and 65-byte signature (`ferry_types::exit_tree::sign_exit`).
    ///
    /// # Errors
    /// Transport, node and timeout errors, or the vault's refusal (`NotFrozen`, `AlreadyExited`,
    /// `ClaimReleased`, `WrongAccountKey`, `BadExitSignature`, `BadExitProof`, a failed payment).
    #[allow(clippy::too_many_arguments)]
    pub async fn exit(
        &self,
        vault: EthAddress,
        claim: &Claim,
        index: u32,
        proof: &ExitProof,
        public_key: &[u8; 64],
        recipient: EthAddress,
        signature: &[u8; 65],
    ) -> Result<Receipt, EthereumError> {
        let holding = FerryVault::Claim {
            token: EthAddress::from(*claim.token.as_bytes()),
            account: alloy::primitives::FixedBytes::from(*claim.account.as_bytes()),
            nonce: claim.nonce,
            amount: U256::from(claim.amount.get()),
        };
        let call = FerryVault::exitCall {
            holding,
            index: U256::from(index),
            proof: proof.iter().map(|sibling| B256::from(*sibling)).collect(),
            pubkey: Bytes::copy_from_slice(public_key),
            recipient,
            signature: Bytes::copy_from_slice(signature),
        };
        let request = alloy::rpc::types::TransactionRequest::default().with_to(vault).with_input(call.abi_encode());
        self.send("FerryVault.exit", request).await
    }
}
