// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @dev The ERC-20 functions the vault uses. `balanceOf` is called directly; `transfer` and
///      `transferFrom` only through `FerryVault._callToken`, which also accepts tokens that
///      return nothing from them (e.g. USDT).
interface IERC20Minimal {
    function balanceOf(address account) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @title FerryVault — the Ethereum custody contract of the Ferry federated peg
/// @notice Holds ETH and ERC-20 tokens deposited for the Ferry sidechain. Every deposit emits
///         `Deposited`, which the federation's relayers attest on the sidechain (deposit id
///         `eth:<txhash>:<logindex>`) so the chain mints the wrapped asset to `recipient`.
/// @dev Trust model: this contract has no owner, admin key or upgrade path, and funds will leave
///      it only through `release(batch, signature)`, which pays a withdrawal batch only when it
///      carries a valid BLS threshold signature of the federation. Depositors therefore trust a
///      threshold of federation members to mint on the sidechain exactly what this contract
///      records and to sign releases only for burned sidechain funds.
///
///      Layout: the deposit side is below; the withdrawal side (`release`, verified with the
///      EIP-2537 BLS12-381 precompiles, with the federation key set and the used batch nonces in
///      storage) is added later and reuses `nonReentrant` and `_callToken` (for `transfer`).
///      ETH arrives only through `deposit`: there is no `receive` or `fallback`, so a plain ETH
///      transfer reverts. (ETH forced in without a call — a `selfdestruct` beneficiary or a block
///      reward — cannot be refused; it has no `Deposited` event and is never minted.)
contract FerryVault {
    // ---------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------

    /// @notice The deposit carries no value (ETH), a zero `amount`, or the token delivered nothing.
    error ZeroAmount();
    /// @notice The sidechain recipient is the zero account id.
    error ZeroRecipient();
    /// @notice `depositToken` was called with `token == address(0)` (use `deposit` for ETH).
    error ZeroToken();
    /// @notice The token address holds no contract code.
    error NotAContract(address token);
    /// @notice The amount received does not fit the sidechain's 128-bit amounts.
    error AmountTooLarge(uint256 amount);
    /// @notice The token call reverted without a reason or returned `false`.
    error TokenCallFailed(address token);
    /// @notice A guarded function was entered again before it returned.
    error Reentrancy();

    // ---------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------

    /// @notice A deposit for the sidechain was received.
    /// @param nonce Position of this deposit: 1 for the first, then strictly increasing by one.
    /// @param token The ERC-20 token deposited, or `address(0)` for ETH.
    /// @param from The account that called the vault (and, for tokens, paid them).
    /// @param recipient The 20-byte sidechain account id behind a `ferry1…` bech32 address.
    /// @param amount The amount the vault actually received, in the token's smallest unit (wei
    ///        for ETH).
    event Deposited(
        uint256 indexed nonce, address indexed token, address indexed from, bytes20 recipient, uint256 amount
    );

    // ---------------------------------------------------------------------------------------
    // State
    // ---------------------------------------------------------------------------------------

    /// @notice Nonce of the most recent deposit (0 before the first); the next deposit gets
    ///         `depositNonce + 1`.
    uint256 public depositNonce;

    uint256 private constant _NOT_ENTERED = 1;
    uint256 private constant _ENTERED = 2;
    /// @dev Reentrancy status; never zero, so setting and resetting it stays a warm update.
    uint256 private _status = _NOT_ENTERED;

    /// @dev Rejects any call into a guarded function while another guarded call is running.
    modifier nonReentrant() {
        if (_status == _ENTERED) revert Reentrancy();
        _status = _ENTERED;
        _;
        _status = _NOT_ENTERED;
    }

    // ---------------------------------------------------------------------------------------
    // Deposits
    // ---------------------------------------------------------------------------------------

    /// @notice Deposit the ETH sent with this call for `recipient` on the sidechain.
    /// @param recipient The 20-byte sidechain account id (the payload of a `ferry1…` address).
    /// @dev Reverts with `ZeroAmount` when no ETH is sent and `ZeroRecipient` for a zero id.
    function deposit(bytes20 recipient) external payable nonReentrant {
        if (msg.value == 0) revert ZeroAmount();
        if (recipient == bytes20(0)) revert ZeroRecipient();
        _recordDeposit(address(0), recipient, msg.value);
    }

    /// @notice Deposit `amount` of the ERC-20 `token` for `recipient` on the sidechain. The vault
    ///         pulls the tokens with `transferFrom`, so approve the vault for `amount` first.
    /// @param token The ERC-20 token contract (non-zero).
    /// @param amount The amount to pull from the caller (non-zero).
    /// @param recipient The 20-byte sidechain account id (the payload of a `ferry1…` address).
    /// @dev Tokens that return nothing from `transferFrom` (e.g. USDT) are accepted. The deposit
    ///      records what the vault's balance actually grew by, so a fee-on-transfer token credits
    ///      the net amount. Only tokens the sidechain lists are minted; the vault cannot tell, so
    ///      a deposit of any other token stays in the vault unminted.
    function depositToken(address token, uint256 amount, bytes20 recipient) external nonReentrant {
        if (token == address(0)) revert ZeroToken();
        if (amount == 0) revert ZeroAmount();
        if (recipient == bytes20(0)) revert ZeroRecipient();
        if (token.code.length == 0) revert NotAContract(token);

        uint256 before = IERC20Minimal(token).balanceOf(address(this));
        _callToken(token, abi.encodeCall(IERC20Minimal.transferFrom, (msg.sender, address(this), amount)));
        uint256 received = IERC20Minimal(token).balanceOf(address(this)) - before;
        if (received == 0) revert ZeroAmount();

        _recordDeposit(token, recipient, received);
    }

    /// @dev Assigns the next nonce and emits `Deposited`. Amounts above 2^128 − 1 are refused:
    ///      the sidechain's amounts are 128-bit, so such a deposit could never be minted.
    function _recordDeposit(address token, bytes20 recipient, uint256 amount) private {
        if (amount > type(uint128).max) revert AmountTooLarge(amount);
        uint256 nonce = ++depositNonce;
        emit Deposited(nonce, token, msg.sender, recipient, amount);
    }

    // ---------------------------------------------------------------------------------------
    // Token calls
    // ---------------------------------------------------------------------------------------

    /// @dev Calls `token` with `data` (an ERC-20 `transfer` or `transferFrom`) and requires it to
    ///      succeed and to return either nothing or `true`. A revert reason from the token is
    ///      passed on unchanged; a bare revert or a `false` becomes `TokenCallFailed(token)`.
    ///      Callers must have checked that `token` holds code (a call to an account without
    ///      code succeeds and returns nothing).
    function _callToken(address token, bytes memory data) private {
        (bool success, bytes memory ret) = token.call(data);
        if (!success) {
            if (ret.length > 0) {
                assembly ("memory-safe") {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
            revert TokenCallFailed(token);
        }
        if (ret.length != 0 && (ret.length < 32 || !abi.decode(ret, (bool)))) {
            revert TokenCallFailed(token);
        }
    }
}
