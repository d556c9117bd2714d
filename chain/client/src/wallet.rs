//! A wallet for one account: learns its account number and sequence from the chain, signs and
//! submits transactions, and tracks the sequence locally between them.

use std::time::Duration;

use ferry_types::msg::{MsgRegisterDepositAddress, MsgSend};
use ferry_types::{AccountKey, Address, Coin, Msg, TxBuilder};

use crate::{ClientError, FerryClient, Inclusion};

/// One account's signing state.
#[derive(Clone, Debug)]
pub struct Wallet {
    key: AccountKey,
    builder: TxBuilder,
    sequence: u64,
}

impl Wallet {
    /// Loads the account's number and next sequence from the chain.
    ///
    /// # Errors
    /// When the account does not exist (fund it first) or the node is unreachable.
    pub async fn load(client: &FerryClient, key: AccountKey) -> Result<Self, ClientError> {
        let chain_id = client.chain_id().await?;
        let address = key.address();
        let account = client.account(&address, None).await?.ok_or_else(|| ClientError::Query {
            path: format!("/account/{address}"),
            code: ferry_types::query::QUERY_NOT_FOUND,
            log: format!("account {address} does not exist on chain `{chain_id}`; fund it first"),
        })?;
        Ok(Wallet { key, builder: TxBuilder::new(chain_id, account.account_number), sequence: account.sequence })
    }

    /// Registers `key`'s Bitcoin deposit address and waits for the block. Fee-exempt, and works
    /// for an account the chain does not know yet: it is then signed with account number 0 and
    /// sequence 0, and the chain opens the account. Registering again changes nothing.
    ///
    /// # Errors
    /// [`ClientError::Refused`] when refused (for example a block already full of
    /// registrations); RPC errors; timeout.
    pub async fn register_deposit_address(
        client: &FerryClient,
        key: AccountKey,
        timeout: Duration,
    ) -> Result<Inclusion, ClientError> {
        let chain_id = client.chain_id().await?;
        let account = key.address();
        let (number, sequence) =
            client.account(&account, None).await?.map_or((0, 0), |known| (known.account_number, known.sequence));
        let mut wallet = Wallet::offline(key, chain_id, number, sequence);
        let tx = wallet.sign_fee_exempt(&[Msg::RegisterDepositAddress(MsgRegisterDepositAddress { account })])?;
        client.broadcast_and_wait(tx, timeout).await
    }

    /// A wallet whose account number and sequence are already known (no RPC).
    pub fn offline(key: AccountKey, chain_id: impl Into<String>, account_number: u64, sequence: u64) -> Self {
        Wallet { key, builder: TxBuilder::new(chain_id, account_number), sequence }
    }

    /// The account address.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// The sequence the next transaction will carry.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Signs `msgs` at the current sequence and advances it.
    ///
    /// # Errors
    /// When signing fails.
    pub fn sign(&mut self, fee: &Coin, msgs: &[Msg]) -> Result<Vec<u8>, ClientError> {
        let bytes = self.builder.sign(&self.key, self.sequence, fee, msgs)?;
        self.sequence = self.sequence.saturating_add(1);
        Ok(bytes)
    }

    /// Signs fee-exempt federation duties (for example deposit attestations) at the current
    /// sequence and advances it.
    ///
    /// # Errors
    /// When signing fails.
    pub fn sign_fee_exempt(&mut self, msgs: &[Msg]) -> Result<Vec<u8>, ClientError> {
        let bytes = self.builder.sign_fee_exempt(&self.key, self.sequence, msgs)?;
        self.sequence = self.sequence.saturating_add(1);
        Ok(bytes)
    }

    /// Signs a transfer of `amount` to `to`, paying `fee`, and advances the sequence.
    ///
    /// # Errors
    /// When signing fails.
    pub fn sign_transfer(&mut self, to: Address, amount: Vec<Coin>, fee: &Coin) -> Result<Vec<u8>, ClientError> {
        let msg = Msg::Send(MsgSend { from: self.address(), to, amount });
        self.sign(fee, &[msg])
    }

    /// Sends `amount` to `to` and waits for the block (see [`Wallet::submit`]).
    ///
    /// # Errors
    /// [`ClientError::Refused`] when refused; RPC errors; timeout.
    pub async fn send(
        &mut self,
        client: &FerryClient,
        to: Address,
        amount: Vec<Coin>,
        fee: &Coin,
        timeout: Duration,
    ) -> Result<Inclusion, ClientError> {
        let msg = Msg::Send(MsgSend { from: self.address(), to, amount });
        self.submit(client, fee, &[msg], timeout).await
    }

    /// Signs `msgs` paying `fee`, broadcasts them and waits for the block. On refusal by CheckTx
    /// the local sequence is rolled back, so the next call reuses it.
    ///
    /// # Errors
    /// [`ClientError::Refused`] when refused; RPC errors; timeout.
    pub async fn submit(
        &mut self,
        client: &FerryClient,
        fee: &Coin,
        msgs: &[Msg],
        timeout: Duration,
    ) -> Result<Inclusion, ClientError> {
        let tx = self.sign(fee, msgs)?;
        match client.broadcast_and_wait(tx, timeout).await {
            Err(error @ ClientError::Refused { .. }) => {
                self.sequence = self.sequence.saturating_sub(1);
                Err(error)
            }
            other => other,
        }
    }
}
