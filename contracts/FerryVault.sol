// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {BLS12381} from "./BLS12381.sol";

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
///         Funds leave only through `release(batch, signature)`: a withdrawal batch the
///         sidechain built, signed by a threshold of the federation (one BLS signature under the
///         federation's aggregate key), paid once per batch nonce.
/// @dev Trust model: this contract has no owner, admin key or upgrade path. The federation's
///      aggregate BLS12-381 public key (G1) and its epoch are fixed at deployment; a release
///      pays only when it carries a valid BLS signature under that key of
///      `abi.encode(RELEASE_TAG, block.chainid, address(this), epoch, nonce, items)`, so a
///      signature is bound to this chain, this vault, this federation epoch and one batch nonce.
///      Depositors therefore trust a threshold of federation members to mint on the sidechain
///      exactly what this contract records and to sign releases only for burned sidechain funds.
///
///      Tokens: only listed ERC-20 tokens are accepted (`depositToken` reverts with
///      `TokenNotListed` otherwise), so a token the sidechain could never mint or release cannot
///      enter. The constructor lists the genesis tokens; later listing and unlisting are
///      federation actions: `setListing(listing, signature)` with a BLS signature under the same
///      key of `abi.encode(LISTING_TAG, block.chainid, address(this), epoch, nonce, token, listed)`.
///      Listings and releases share one nonce space (the sidechain's batch ids), so each
///      signed action applies once.
///      Verification uses the EIP-2537 precompiles (see `BLS12381`) and costs the same gas
///      whatever the federation's size: only the aggregate key is on chain.
///
///      Rotation: the federation hands the vault to its next key with
///      `rotate(rotation, signature)`, signed by the current key over
///      `abi.encode(ROTATION_TAG, block.chainid, address(this), epoch, newEpoch, keccak256(newKey))`.
///      Only the next epoch (`epoch + 1`) is accepted, only from the current key, never a key that
///      is not a G1 point or is the point at infinity; afterwards batches of the old epoch revert
///      (`WrongEpoch`) and only the new key signs.
///
///      ETH arrives only through `deposit`: there is no `receive` or `fallback`, so a plain ETH
///      transfer reverts. (ETH forced in without a call — a `selfdestruct` beneficiary or a block
///      reward — cannot be refused; it has no `Deposited` event and is never minted.)
///
///      A payment of a release that fails (a recipient contract refusing ETH, a token whose
///      `transfer` reverts or returns `false`) does not block the batch: it is recorded in
///      `owed` and the recipient takes it later with `claim`.
///
///      Escape hatch (docs/exits.md): the federation posts a heartbeat — `heartbeat(hb, signature)`
///      under the same key over `abi.encode(HEARTBEAT_TAG, block.chainid, address(this), epoch,
///      height, balancesRoot)` — whose root (`exitRoot`) commits to every holder's claim on the
///      vault (`ferry_types::exit_tree`). When no heartbeat has landed for `escapeDelay` seconds,
///      anyone may `freeze()` the vault: from then on releases, listings, rotations, heartbeats
///      and deposits revert (`VaultFrozen`) for good, and each holder takes their claim once per
///      asset with `exit`, proving their leaf against `exitRoot` and signing with the Ferry
///      account's own secp256k1 key. Nobody, the federation included, can unfreeze the vault.
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
    /// @notice `depositToken` was called for a token the federation has not listed.
    error TokenNotListed(address token);

    /// @notice The federation key given to the constructor is not 128 bytes (EIP-2537 G1).
    error FederationKeyLength(uint256 length);
    /// @notice The federation key is not a point of G1 (a coordinate not below p, not on the
    ///         curve, or not in the prime-order subgroup).
    error FederationKeyNotInG1();
    /// @notice The federation key is the point at infinity, under which the signature at
    ///         infinity would verify for every batch.
    error FederationKeyIsInfinity();
    /// @notice The batch was signed for another federation epoch than this vault's.
    error WrongEpoch(uint64 expected, uint64 got);
    /// @notice A rotation to another epoch than the next one.
    error WrongNextEpoch(uint64 expected, uint64 got);
    /// @notice The batch (or listing) with this nonce was applied before.
    error AlreadyReleased(uint64 nonce);
    /// @notice The batch has no items.
    error EmptyBatch();
    /// @notice The signature is not 256 bytes, or the pairing precompile refused it as a point
    ///         (a coordinate not below p, not on the curve, not in the prime-order subgroup).
    error MalformedSignature();
    /// @notice The signature is a valid point but not the federation's signature of this batch
    ///         on this chain for this vault.
    error BadSignature();
    /// @notice Too little gas is left to give payment `item` its full `PAYMENT_GAS`: raise the
    ///         transaction's gas limit. (Refused so that a low limit can never turn a payment
    ///         into a deferred one.)
    error InsufficientGasForPayment(uint256 item);
    /// @notice `account` is owed nothing in `token`.
    error NothingOwed(address token, address account);
    /// @notice Sending ETH to `to` failed.
    error EthTransferFailed(address to);

    /// @notice The constructor was given an escape delay of zero seconds.
    error ZeroEscapeDelay();
    /// @notice The vault is frozen: only `exit` and `claim` work.
    error VaultFrozen();
    /// @notice `exit` before `freeze`.
    error NotFrozen();
    /// @notice `freeze` while heartbeats are still recent: it is allowed after `opensAt`.
    error EscapeNotOpen(uint256 opensAt);
    /// @notice The public key given to `exit` is not 64 bytes or not the key of `account`.
    error WrongAccountKey();
    /// @notice The exit request's signature is not 65 bytes, has a high `s` or a `v` other than
    ///         27 or 28, or was not made by the account's key.
    error BadExitSignature();
    /// @notice The proof is not 32 hashes, the index not below 2^32, or the leaf is not in `exitRoot`.
    error BadExitProof();
    /// @notice `account` already took its claim in `token`.
    error AlreadyExited(uint256 index);
    /// @notice A withdrawal's claim names a batch the vault released: the release paid it.
    error ClaimReleased(uint64 nonce);
    /// @notice An exit to the zero address.
    error ZeroExitRecipient();

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

    /// @notice The batch `nonce` of federation epoch `epoch` was verified and its `items`
    ///         payments made or deferred (one `Paid` or `PaymentDeferred` each, after this event).
    event Released(uint64 indexed nonce, uint64 epoch, uint256 items);
    /// @notice An item of batch `nonce` was paid: `amount` of `token` (`address(0)` for ETH) to
    ///         `recipient`.
    event Paid(uint64 indexed nonce, address indexed token, address indexed recipient, uint256 amount);
    /// @notice An item of batch `nonce` could not be paid and was added to
    ///         `owed[token][recipient]`, for `recipient` to `claim`.
    event PaymentDeferred(uint64 indexed nonce, address indexed token, address indexed recipient, uint256 amount);
    /// @notice `recipient` claimed what it was owed in `token`.
    event Claimed(address indexed token, address indexed recipient, uint256 amount);
    /// @notice The federation listed (`listed`) or unlisted `token` with the signed action `nonce`
    ///         (0 for the genesis listing made by the constructor).
    event ListingSet(uint64 indexed nonce, address indexed token, bool listed);
    /// @notice The vault now trusts `key` (EIP-2537 G1) for federation epoch `epoch`.
    event KeyRotated(uint64 indexed epoch, bytes key);
    /// @notice A heartbeat landed: the federation of `epoch` committed `root` to the holders'
    ///         claims at sidechain height `height`.
    event HeartbeatPosted(uint64 indexed nonce, uint64 epoch, uint64 height, bytes32 root);
    /// @notice The vault was frozen; exits are proven against `root`, posted at sidechain height
    ///         `height` (0 and `bytes32(0)` when no heartbeat ever landed).
    event Frozen(uint64 height, bytes32 root);
    /// @notice The holder of `account` took its claim of `amount` of `token` (`address(0)` for
    ///         ETH), paid to `recipient`.
    event Exited(
        address indexed token, bytes20 indexed account, address indexed recipient, uint256 index, uint256 amount
    );

    // ---------------------------------------------------------------------------------------
    // Types
    // ---------------------------------------------------------------------------------------

    /// @notice One payment of a release: `amount` of `token` (`address(0)` for ETH) to `recipient`.
    struct Item {
        address token;
        address recipient;
        uint256 amount;
    }

    /// @notice A withdrawal batch as the sidechain built it: federation epoch, batch nonce (the
    ///         sidechain's batch id), the exit tree's root over the sidechain's claims at the
    ///         height the batch formed (`exitHeight`: the batch's withdrawals are claims naming
    ///         its nonce there) and its payments.
    struct Batch {
        uint64 epoch;
        uint64 nonce;
        uint64 exitHeight;
        bytes32 exitRoot;
        Item[] items;
    }

    /// @notice A hand-over to the next federation key: the current epoch, the next one (always
    ///         `epoch + 1`) and the next key (EIP-2537 G1, 128 bytes).
    struct Rotation {
        uint64 epoch;
        uint64 newEpoch;
        bytes newKey;
    }

    /// @notice A change to the token allowlist as the sidechain decided it: federation epoch,
    ///         nonce (the sidechain's batch id of the action), the token and whether it is listed.
    struct Listing {
        uint64 epoch;
        uint64 nonce;
        address token;
        bool listed;
    }

    /// @notice The federation's commitment to every holder's claim on the vault: federation
    ///         epoch, the sidechain height it was computed at, and the exit tree's root.
    struct Heartbeat {
        uint64 epoch;
        uint64 nonce;
        uint64 height;
        bytes32 balancesRoot;
    }

    /// @notice A holder's claim as a leaf of the exit tree commits to it: `amount` of `token`
    ///         (`address(0)` for ETH) owed to the Ferry account `account`.
    struct Claim {
        address token;
        bytes20 account;
        uint64 nonce;
        uint256 amount;
    }

    // ---------------------------------------------------------------------------------------
    // Constants
    // ---------------------------------------------------------------------------------------

    /// @notice First word of every signed release message.
    bytes32 public constant RELEASE_TAG = "FERRY_RELEASE_V1";
    /// @notice First word of every signed listing message.
    bytes32 public constant LISTING_TAG = "FERRY_LISTING_V1";
    /// @notice First word of every signed rotation message.
    bytes32 public constant ROTATION_TAG = "FERRY_ROTATION_V1";
    /// @notice First word of every signed heartbeat message.
    bytes32 public constant HEARTBEAT_TAG = "FERRY_HEARTBEAT_V1";
    /// @notice First word of every exit leaf (`exitLeaf`).
    bytes32 public constant EXIT_LEAF_TAG = "FERRY_EXIT_LEAF_V1";
    /// @notice First word of every exit request a holder signs (`exitMessage`).
    bytes32 public constant EXIT_TAG = "FERRY_EXIT_V1";
    /// @notice Height of the exit tree: a proof is this many sibling hashes.
    uint256 public constant EXIT_TREE_DEPTH = 32;
    /// @dev Half the secp256k1 group order: a signature's `s` must not be above it.
    uint256 private constant _SECP256K1_HALF_ORDER =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;
    /// @notice The hash-to-curve domain separation tag of release (and listing) signatures.
    bytes public constant RELEASE_DST = "FERRY_RELEASE_V1_BLS12381G2_XMD:SHA-256_SSWU_RO_";
    /// @notice Gas each payment of a release may use (an ETH transfer to a contract, or a token's
    ///         `transfer`); a payment that runs out of it is deferred to `owed`. A release whose
    ///         gas limit cannot give every payment this much reverts (`InsufficientGasForPayment`).
    uint256 public constant PAYMENT_GAS = 100_000;
    /// @dev Gas that must be left before a payment so the call really gets `PAYMENT_GAS`: the
    ///      63/64 rule (EIP-150) plus the call's own costs (cold account 2600, value transfer
    ///      9000, new account 25000) and a margin.
    uint256 private constant _PAYMENT_GAS_NEEDED = PAYMENT_GAS + PAYMENT_GAS / 63 + 40_000;

    // ---------------------------------------------------------------------------------------
    // State
    // ---------------------------------------------------------------------------------------

    /// @notice Nonce of the most recent deposit (0 before the first); the next deposit gets
    ///         `depositNonce + 1`.
    uint256 public depositNonce;

    /// @notice The federation epoch whose key this vault trusts; every batch must carry it.
    ///         Changed only by `rotate`, to `epoch + 1`.
    uint64 public epoch;
    /// @dev The federation's aggregate public key, EIP-2537 G1 (128 bytes), as four words.
    bytes32 private _key0;
    bytes32 private _key1;
    bytes32 private _key2;
    bytes32 private _key3;

    /// @notice Whether the batch or listing with this nonce was applied (each nonce applies once).
    mapping(uint64 nonce => bool) public released;
    /// @notice Whether `depositToken` accepts this token.
    mapping(address token => bool) public listed;
    /// @notice Payments of releases that failed, by token (`address(0)` for ETH) and recipient,
    ///         waiting for `claim`.
    mapping(address token => mapping(address recipient => uint256)) public owed;

    /// @notice Seconds without a heartbeat after which anyone may `freeze` the vault.
    uint256 public immutable escapeDelay;
    /// @notice Root of the exit tree of the last heartbeat (`bytes32(0)` before the first).
    bytes32 public exitRoot;
    /// @notice When the last heartbeat landed (block timestamp); the deployment's before the first.
    uint64 public lastHeartbeatAt;
    /// @notice Sidechain height of the last heartbeat (0 before the first).
    uint64 public lastHeartbeatHeight;
    /// @notice Whether the vault is frozen (for good): only `exit` and `claim` work.
    bool public frozen;
    /// @notice Whether the claim at this position of the exit tree was taken (each position holds
    ///         one claim for good: an account's balance of a token, or one withdrawal).
    mapping(uint256 index => bool) public exited;

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

    /// @dev Rejects the call once the vault is frozen.
    modifier whenNotFrozen() {
        if (frozen) revert VaultFrozen();
        _;
    }

    // ---------------------------------------------------------------------------------------
    // Federation
    // ---------------------------------------------------------------------------------------

    /// @param key The federation's aggregate BLS12-381 public key, EIP-2537 G1
    ///        encoding (128 bytes: x ‖ y, each 16 zero bytes ‖ 48-byte big-endian value).
    /// @param federationEpoch The epoch of that federation, bound into every signed batch.
    /// @param genesisTokens The ERC-20 tokens listed from the start (the sidechain genesis's).
    /// @param escapeDelaySeconds Seconds without a heartbeat after which anyone may `freeze` the
    ///        vault (14 days on mainnet); the clock starts at deployment.
    /// @dev Reverts with `FederationKeyLength`, `FederationKeyNotInG1` (checked with G1MSM, which
    ///      also checks the subgroup), `FederationKeyIsInfinity`, `ZeroToken` / `NotAContract`
    ///      for a genesis token, or `ZeroEscapeDelay`.
    constructor(bytes memory key, uint64 federationEpoch, address[] memory genesisTokens, uint64 escapeDelaySeconds) {
        if (escapeDelaySeconds == 0) revert ZeroEscapeDelay();
        escapeDelay = escapeDelaySeconds;
        lastHeartbeatAt = uint64(block.timestamp);
        _setKey(key);
        epoch = federationEpoch;
        for (uint256 i; i < genesisTokens.length; ++i) {
            address token = genesisTokens[i];
            if (token == address(0)) revert ZeroToken();
            if (token.code.length == 0) revert NotAContract(token);
            listed[token] = true;
            emit ListingSet(0, token, true);
        }
    }

    /// @notice The federation's aggregate public key, EIP-2537 G1 encoding (128 bytes).
    function federationKey() public view returns (bytes memory) {
        return abi.encodePacked(_key0, _key1, _key2, _key3);
    }

    /// @dev Checks `key` (`FederationKeyLength`, `FederationKeyNotInG1`, `FederationKeyIsInfinity`)
    ///      and makes it the federation key.
    function _setKey(bytes memory key) private {
        if (key.length != BLS12381.G1_LENGTH) revert FederationKeyLength(key.length);
        if (!BLS12381.isInG1(key)) revert FederationKeyNotInG1();
        if (keccak256(key) == keccak256(new bytes(BLS12381.G1_LENGTH))) revert FederationKeyIsInfinity();
        (_key0, _key1, _key2, _key3) = abi.decode(key, (bytes32, bytes32, bytes32, bytes32));
    }

    /// @notice Hand the vault to the next federation key if `signature` is the current key's BLS
    ///         signature of `rotation`.
    /// @param rotation The hand-over as the sidechain decided it (epoch, newEpoch, newKey).
    /// @param signature The current federation's threshold signature, EIP-2537 G2 (256 bytes),
    ///        over `rotationMessage(rotation)` hashed to G2 with `RELEASE_DST`.
    /// @dev Checks, in order: `VaultFrozen`, `WrongEpoch` (signed for another epoch than the
    ///      current one), `WrongNextEpoch` (anything but `epoch + 1`), `MalformedSignature`,
    ///      `BadSignature`, then
    ///      the new key (`FederationKeyLength`, `FederationKeyNotInG1`, `FederationKeyIsInfinity`):
    ///      even the current federation cannot hand the vault to no key. Anyone may submit it. Release nonces are untouched: a nonce paid under
    ///      the old key stays paid.
    function rotate(Rotation calldata rotation, bytes calldata signature) external nonReentrant whenNotFrozen {
        if (rotation.epoch != epoch) revert WrongEpoch(epoch, rotation.epoch);
        if (rotation.newEpoch != epoch + 1) revert WrongNextEpoch(epoch + 1, rotation.newEpoch);
        if (signature.length != BLS12381.G2_LENGTH) revert MalformedSignature();
        bytes memory message = rotationMessage(rotation);
        (bool wellFormed, bool valid) = BLS12381.verify(federationKey(), message, RELEASE_DST, signature);
        if (!wellFormed) revert MalformedSignature();
        if (!valid) revert BadSignature();
        _setKey(rotation.newKey);
        epoch = rotation.newEpoch;
        emit KeyRotated(rotation.newEpoch, rotation.newKey);
    }

    /// @notice The message the federation signs to hand this vault on this chain to its next key:
    ///         `abi.encode(ROTATION_TAG, block.chainid, address(this), epoch, newEpoch, keccak256(newKey))`
    ///         — six words (`ferry_types::release::eth::EthRotation::payload` on the Rust side).
    function rotationMessage(Rotation calldata rotation) public view returns (bytes memory) {
        return abi.encode(
            ROTATION_TAG, block.chainid, address(this), rotation.epoch, rotation.newEpoch, keccak256(rotation.newKey)
        );
    }

    // ---------------------------------------------------------------------------------------
    // Deposits
    // ---------------------------------------------------------------------------------------

    /// @notice Deposit the ETH sent with this call for `recipient` on the sidechain.
    /// @param recipient The 20-byte sidechain account id (the payload of a `ferry1…` address).
    /// @dev Reverts with `VaultFrozen` once the vault is frozen (the sidechain would never mint
    ///      it), `ZeroAmount` when no ETH is sent and `ZeroRecipient` for a zero id.
    function deposit(bytes20 recipient) external payable nonReentrant whenNotFrozen {
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
    ///      the net amount. Reverts with `TokenNotListed` for a token the federation has not
    ///      listed (see `setListing`), and with `VaultFrozen` once the vault is frozen.
    function depositToken(address token, uint256 amount, bytes20 recipient) external nonReentrant whenNotFrozen {
        if (token == address(0)) revert ZeroToken();
        if (amount == 0) revert ZeroAmount();
        if (recipient == bytes20(0)) revert ZeroRecipient();
        if (!listed[token]) revert TokenNotListed(token);
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
    // Releases
    // ---------------------------------------------------------------------------------------

    /// @notice Pay out `batch` if `signature` is the federation's BLS signature of it.
    /// @param batch The batch as the sidechain built it (epoch, nonce, exit height and root, items).
    /// @param signature The federation's threshold signature, EIP-2537 G2 (256 bytes), over
    ///        `releaseMessage(batch)` hashed to G2 with `RELEASE_DST`.
    /// @dev Checks, in order: `VaultFrozen` (a frozen vault pays only exits), `WrongEpoch`,
    ///      `AlreadyReleased`, `EmptyBatch`, `MalformedSignature`,
    ///      `BadSignature`. Then marks the nonce released and counts the release as a heartbeat
    ///      (the escape clock restarts; its exit root is taken when higher than the one held,
    ///      so the root always covers every batch the vault released) before any payment
    ///      (checks-effects-interactions, besides the reentrancy guard) and pays each item with
    ///      `PAYMENT_GAS`; a failed payment is added to `owed` (`PaymentDeferred`) instead of
    ///      reverting, so one recipient cannot block the others. Anyone may submit a signed batch:
    ///      the signature, not the sender, authorises it.
    function release(Batch calldata batch, bytes calldata signature) external nonReentrant whenNotFrozen {
        if (batch.epoch != epoch) revert WrongEpoch(epoch, batch.epoch);
        if (released[batch.nonce]) revert AlreadyReleased(batch.nonce);
        uint256 count = batch.items.length;
        if (count == 0) revert EmptyBatch();
        if (signature.length != BLS12381.G2_LENGTH) revert MalformedSignature();
        (bool wellFormed, bool valid) = BLS12381.verify(federationKey(), releaseMessage(batch), RELEASE_DST, signature);
        if (!wellFormed) revert MalformedSignature();
        if (!valid) revert BadSignature();

        released[batch.nonce] = true;
        _beat(batch.exitHeight, batch.exitRoot);
        emit Released(batch.nonce, epoch, count);
        for (uint256 i; i < count; ++i) {
            _pay(batch.nonce, i, batch.items[i]);
        }
    }

    /// @notice The message the federation signs for `batch` on this chain for this vault:
    ///         `abi.encode(RELEASE_TAG, block.chainid, address(this), epoch, nonce, exitHeight,
    ///         exitRoot, items)` — words tag | chain id | vault | epoch | nonce | exit height |
    ///         exit root | 0x100 | item count | per item token, recipient, amount
    ///         (`ferry_types::release::eth::EthBatch::payload` on the Rust side).
    function releaseMessage(Batch calldata batch) public view returns (bytes memory) {
        return abi.encode(
            RELEASE_TAG,
            block.chainid,
            address(this),
            batch.epoch,
            batch.nonce,
            batch.exitHeight,
            batch.exitRoot,
            batch.items
        );
    }

    // ---------------------------------------------------------------------------------------
    // Listings
    // ---------------------------------------------------------------------------------------

    /// @notice List or unlist `listing.token` if `signature` is the federation's BLS signature
    ///         of `listing`. Unlisting stops new deposits of the token only: releases and claims
    ///         of it go on, so its holders on the sidechain can still withdraw.
    /// @param listing The change as the sidechain decided it (epoch, nonce, token, listed).
    /// @param signature The federation's threshold signature, EIP-2537 G2 (256 bytes), over
    ///        `listingMessage(listing)` hashed to G2 with `RELEASE_DST`.
    /// @dev Checks, in order: `VaultFrozen`, `WrongEpoch`, `AlreadyReleased` (the nonce space is shared with
    ///      releases), `ZeroToken`, `MalformedSignature`, `BadSignature`. Anyone may submit it.
    function setListing(Listing calldata listing, bytes calldata signature) external nonReentrant whenNotFrozen {
        if (listing.epoch != epoch) revert WrongEpoch(epoch, listing.epoch);
        if (released[listing.nonce]) revert AlreadyReleased(listing.nonce);
        if (listing.token == address(0)) revert ZeroToken();
        if (signature.length != BLS12381.G2_LENGTH) revert MalformedSignature();
        (bool wellFormed, bool valid) = BLS12381.verify(federationKey(), listingMessage(listing), RELEASE_DST, signature);
        if (!wellFormed) revert MalformedSignature();
        if (!valid) revert BadSignature();

        released[listing.nonce] = true;
        listed[listing.token] = listing.listed;
        emit ListingSet(listing.nonce, listing.token, listing.listed);
    }

    /// @notice The message the federation signs for `listing` on this chain for this vault:
    ///         `abi.encode(LISTING_TAG, block.chainid, address(this), epoch, nonce, token, listed)`
    ///         — seven words (`ferry_types::release::eth::EthListing::payload` on the Rust side).
    function listingMessage(Listing calldata listing) public view returns (bytes memory) {
        return abi.encode(LISTING_TAG, block.chainid, address(this), listing.epoch, listing.nonce, listing.token, listing.listed);
    }

    /// @notice Take everything the vault owes the caller in `token` (`address(0)` for ETH) from
    ///         release payments that failed.
    /// @dev Reverts with `NothingOwed` when nothing is owed, and when the payment fails
    ///      (`EthTransferFailed`, the token's own error, `TokenCallFailed`, `NotAContract`), which
    ///      leaves the debt in place. Unlike a release payment, this one gets all the gas left.
    function claim(address token) external nonReentrant {
        uint256 amount = owed[token][msg.sender];
        if (amount == 0) revert NothingOwed(token, msg.sender);
        owed[token][msg.sender] = 0;
        emit Claimed(token, msg.sender, amount);
        if (token == address(0)) {
            if (!_sendEth(msg.sender, amount, gasleft())) revert EthTransferFailed(msg.sender);
        } else {
            if (token.code.length == 0) revert NotAContract(token);
            _callToken(token, abi.encodeCall(IERC20Minimal.transfer, (msg.sender, amount)));
        }
    }

    /// @dev Pays item `index` of batch `nonce`, or records it in `owed` when the payment fails.
    function _pay(uint64 nonce, uint256 index, Item calldata item) private {
        if (gasleft() < _PAYMENT_GAS_NEEDED) revert InsufficientGasForPayment(index);
        bool paid = item.token == address(0)
            ? _sendEth(item.recipient, item.amount, PAYMENT_GAS)
            : _tryTransfer(item.token, item.recipient, item.amount);
        if (paid) {
            emit Paid(nonce, item.token, item.recipient, item.amount);
        } else {
            owed[item.token][item.recipient] += item.amount;
            emit PaymentDeferred(nonce, item.token, item.recipient, item.amount);
        }
    }

    /// @dev Sends `amount` wei to `to` with at most `gasLimit` gas; true when the call succeeded.
    ///      Nothing the recipient returns is copied (no gas spent on a huge return).
    function _sendEth(address to, uint256 amount, uint256 gasLimit) private returns (bool sent) {
        assembly ("memory-safe") {
            sent := call(gasLimit, to, amount, 0, 0, 0, 0)
        }
    }

    /// @dev `token.transfer(to, amount)` with `PAYMENT_GAS`, without reverting: true when `token`
    ///      holds code and the call succeeded returning nothing (e.g. USDT) or a first word of 1.
    ///      Only that first word of the answer is copied.
    function _tryTransfer(address token, address to, uint256 amount) private returns (bool ok) {
        if (token.code.length == 0) return false;
        bytes memory data = abi.encodeCall(IERC20Minimal.transfer, (to, amount));
        assembly ("memory-safe") {
            mstore(0, 0)
            ok := call(PAYMENT_GAS, token, 0, add(data, 0x20), mload(data), 0, 0x20)
            if ok {
                ok := or(iszero(returndatasize()), and(gt(returndatasize(), 31), eq(mload(0), 1)))
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Escape hatch
    // ---------------------------------------------------------------------------------------

    /// @notice Apply the federation's heartbeat `hb` if `signature` is the federation's BLS
    ///         signature of it: restarts the escape clock, and records `hb.balancesRoot` (its
    ///         commitment to every holder's claim) when `hb.height` is above the last root's.
    /// @param hb The heartbeat as the sidechain built it (epoch, nonce, height, balancesRoot).
    /// @param signature The federation's threshold signature, EIP-2537 G2 (256 bytes), over
    ///        `heartbeatMessage(hb)` hashed to G2 with `RELEASE_DST`.
    /// @dev Checks, in order: `VaultFrozen`, `WrongEpoch`, `AlreadyReleased` (the nonce space is
    ///      shared with releases and listings: each heartbeat applies once), `MalformedSignature`,
    ///      `BadSignature`. A heartbeat for a height not above the last root's (delivered late)
    ///      still restarts the clock but never rolls the root back. Anyone may submit it.
    function heartbeat(Heartbeat calldata hb, bytes calldata signature) external nonReentrant whenNotFrozen {
        if (hb.epoch != epoch) revert WrongEpoch(epoch, hb.epoch);
        if (released[hb.nonce]) revert AlreadyReleased(hb.nonce);
        if (signature.length != BLS12381.G2_LENGTH) revert MalformedSignature();
        (bool wellFormed, bool valid) = BLS12381.verify(federationKey(), heartbeatMessage(hb), RELEASE_DST, signature);
        if (!wellFormed) revert MalformedSignature();
        if (!valid) revert BadSignature();

        released[hb.nonce] = true;
        _beat(hb.height, hb.balancesRoot);
        emit HeartbeatPosted(hb.nonce, hb.epoch, hb.height, hb.balancesRoot);
    }

    /// @dev A sign of life from the federation (a heartbeat or a release): restarts the escape
    ///      clock, and takes `root` as the exit root when `height` is above the one held, never
    ///      rolling it back.
    function _beat(uint64 height, bytes32 root) private {
        lastHeartbeatAt = uint64(block.timestamp);
        if (height > lastHeartbeatHeight) {
            exitRoot = root;
            lastHeartbeatHeight = height;
        }
    }

    /// @notice The message the federation signs for `hb` on this chain for this vault:
    ///         `abi.encode(HEARTBEAT_TAG, block.chainid, address(this), epoch, nonce, height,
    ///         balancesRoot)` — seven words (`ferry_types::release::eth::EthHeartbeat::payload` on
    ///         the Rust side).
    function heartbeatMessage(Heartbeat calldata hb) public view returns (bytes memory) {
        return abi.encode(HEARTBEAT_TAG, block.chainid, address(this), hb.epoch, hb.nonce, hb.height, hb.balancesRoot);
    }

    /// @notice The first timestamp after which `freeze` is allowed: the last heartbeat's (or the
    ///         deployment's) plus `escapeDelay`. `freeze` needs `block.timestamp` strictly above it.
    function escapeOpensAt() public view returns (uint256) {
        return uint256(lastHeartbeatAt) + escapeDelay;
    }

    /// @notice Freeze the vault for good after `escapeDelay` seconds without a heartbeat. Anyone
    ///         may call it; afterwards every holder may `exit` against `exitRoot`.
    /// @dev Reverts with `VaultFrozen` when already frozen and `EscapeNotOpen` before the delay.
    function freeze() external nonReentrant whenNotFrozen {
        uint256 opensAt = escapeOpensAt();
        if (block.timestamp <= opensAt) revert EscapeNotOpen(opensAt);
        frozen = true;
        emit Frozen(lastHeartbeatHeight, exitRoot);
    }

    /// @notice Take `holding` (`amount` of `token`, `address(0)` for ETH, owed to the Ferry
    ///         account `account`) out of the frozen vault, paid to `recipient`: once per position.
    /// @param holding The leaf's content; `account` is the Ferry account id
    ///        (`RIPEMD160(SHA256(compressed key))`), `nonce` 0 or the batch whose release would
    ///        pay the claim, `amount` the whole claim, taken at once.
    /// @param index The leaf's position in the exit tree (below 2^32).
    /// @param proof The leaf's 32 siblings from the bottom up (`ferry_types::exit_tree::ExitTree::proof`).
    /// @param pubkey The account's secp256k1 public key, uncompressed without prefix (x ‖ y, 64 bytes).
    /// @param recipient Where the vault pays the claim.
    /// @param signature The account key's ECDSA signature `r ‖ s ‖ v` (65 bytes, low `s`,
    ///        `v` ∈ {27, 28}) of `exitMessage(holding, recipient)`.
    /// @dev Checks, in order: `NotFrozen`, `ZeroExitRecipient`, `AlreadyExited`, `ClaimReleased`
    ///      (a withdrawal whose batch this vault released was paid by that release),
    ///      `WrongAccountKey`, `BadExitSignature`, `BadExitProof`; then marks the position taken
    ///      before paying. Anyone may submit it: the account's signature, not the sender,
    ///      authorises it and names the recipient. A failed payment reverts the exit
    ///      (`EthTransferFailed`, the token's error, `TokenCallFailed`, `NotAContract`), leaving
    ///      the claim to take again.
    function exit(
        Claim calldata holding,
        uint256 index,
        bytes32[] calldata proof,
        bytes calldata pubkey,
        address recipient,
        bytes calldata signature
    ) external nonReentrant {
        if (!frozen) revert NotFrozen();
        if (recipient == address(0)) revert ZeroExitRecipient();
        if (exited[index]) revert AlreadyExited(index);
        if (holding.nonce != 0 && released[holding.nonce]) revert ClaimReleased(holding.nonce);
        if (pubkey.length != 64 || _accountOf(pubkey) != holding.account) revert WrongAccountKey();
        if (_signer(exitMessage(holding, recipient), signature) != _addressOf(pubkey)) revert BadExitSignature();
        if (!_proves(exitLeaf(holding), index, proof)) revert BadExitProof();

        exited[index] = true;
        (address token, uint256 amount) = (holding.token, holding.amount);
        emit Exited(token, holding.account, recipient, index, amount);
        if (token == address(0)) {
            if (!_sendEth(recipient, amount, gasleft())) revert EthTransferFailed(recipient);
        } else {
            if (token.code.length == 0) revert NotAContract(token);
            _callToken(token, abi.encodeCall(IERC20Minimal.transfer, (recipient, amount)));
        }
    }

    /// @notice The exit tree's leaf of `holding`: `keccak256(abi.encodePacked(EXIT_LEAF_TAG,
    ///         token, account, nonce, amount))`, 112 bytes (`ferry_types::exit_tree::Claim::leaf`
    ///         on the Rust side).
    function exitLeaf(Claim calldata holding) public pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(EXIT_LEAF_TAG, holding.token, holding.account, holding.nonce, holding.amount)
        );
    }

    /// @notice The digest the account's key signs to exit `holding` on this chain from this vault
    ///         to `recipient`: `keccak256(abi.encodePacked(EXIT_TAG, block.chainid, address(this),
    ///         token, account, nonce, amount, recipient))`, 184 bytes
    ///         (`ferry_types::exit_tree::exit_message` on the Rust side).
    function exitMessage(Claim calldata holding, address recipient) public view returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                EXIT_TAG,
                block.chainid,
                address(this),
                holding.token,
                holding.account,
                holding.nonce,
                holding.amount,
                recipient
            )
        );
    }

    /// @dev The Ferry account id of the uncompressed key `pubkey` (x ‖ y):
    ///      `RIPEMD160(SHA256(0x02|0x03 ‖ x))`, the prefix by the parity of y.
    function _accountOf(bytes calldata pubkey) private pure returns (bytes20) {
        bytes1 prefix = uint8(pubkey[63]) & 1 == 0 ? bytes1(0x02) : bytes1(0x03);
        return ripemd160(abi.encodePacked(sha256(abi.encodePacked(prefix, pubkey[0:32]))));
    }

    /// @dev The Ethereum address of the uncompressed key `pubkey` (x ‖ y).
    function _addressOf(bytes calldata pubkey) private pure returns (address) {
        return address(uint160(uint256(keccak256(pubkey))));
    }

    /// @dev The signer of `digest` by the 65-byte `r ‖ s ‖ v`, or `address(0)` when the signature
    ///      is malformed (length, high `s`, `v` not 27 or 28) or does not recover.
    function _signer(bytes32 digest, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > _SECP256K1_HALF_ORDER || (v != 27 && v != 28)) return address(0);
        return ecrecover(digest, v, r, s);
    }

    /// @dev Whether `proof` (32 siblings, bottom up) leads from `leaf` at `index` to `exitRoot`.
    ///      Bit h of `index` says whether the node at height h is a right child.
    function _proves(bytes32 leaf, uint256 index, bytes32[] calldata proof) private view returns (bool) {
        if (proof.length != EXIT_TREE_DEPTH || index >> EXIT_TREE_DEPTH != 0) return false;
        bytes32 node = leaf;
        for (uint256 height; height < EXIT_TREE_DEPTH; ++height) {
            bytes32 sibling = proof[height];
            bool right = (index >> height) & 1 == 1;
            assembly ("memory-safe") {
                switch right
                case 0 {
                    mstore(0x00, node)
                    mstore(0x20, sibling)
                }
                default {
                    mstore(0x00, sibling)
                    mstore(0x20, node)
                }
                node := keccak256(0x00, 0x40)
            }
        }
        return node == exitRoot;
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
