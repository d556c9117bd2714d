// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title TestToken — a plain ERC-20 for Ferry's end-to-end tests and devnet
/// @notice TEST ONLY: `mint` is open to anyone, so this token has no value and must never be
///         deployed anywhere but a local test chain.
contract TestToken {
    /// @notice Emitted when `value` tokens move from `from` to `to` (`from == 0` for a mint).
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// @notice Emitted when `owner` sets `spender`'s allowance to `value`.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice `from` holds less than `needed`.
    error InsufficientBalance(address from, uint256 balance, uint256 needed);
    /// @notice `spender` may move less than `needed` of `owner`'s tokens.
    error InsufficientAllowance(address owner, address spender, uint256 allowance, uint256 needed);
    /// @notice Transfers to the zero address are refused (they would silently burn).
    error ZeroAddress();

    string public name;
    string public symbol;
    uint8 public decimals;
    uint256 public totalSupply;
    mapping(address account => uint256) public balanceOf;
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
    }

    /// @notice Create `amount` new tokens for `to`. Open to anyone: this is a test token.
    function mint(address to, uint256 amount) external {
        if (to == address(0)) revert ZeroAddress();
        totalSupply += amount;
        unchecked {
            balanceOf[to] += amount; // cannot overflow: bounded by totalSupply
        }
        emit Transfer(address(0), to, amount);
    }

    /// @notice Move `amount` of the caller's tokens to `to`.
    function transfer(address to, uint256 amount) external returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    /// @notice Let `spender` move up to `amount` of the caller's tokens (replaces any previous
    ///         allowance; `type(uint256).max` is never decreased).
    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @notice Move `amount` of `from`'s tokens to `to`, spending the caller's allowance.
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert InsufficientAllowance(from, msg.sender, allowed, amount);
            unchecked {
                allowance[from][msg.sender] = allowed - amount;
            }
        }
        _transfer(from, to, amount);
        return true;
    }

    function _transfer(address from, address to, uint256 amount) internal {
        if (to == address(0)) revert ZeroAddress();
        uint256 balance = balanceOf[from];
        if (balance < amount) revert InsufficientBalance(from, balance, amount);
        unchecked {
            balanceOf[from] = balance - amount;
            balanceOf[to] += amount; // cannot overflow: bounded by totalSupply
        }
        emit Transfer(from, to, amount);
    }
}
