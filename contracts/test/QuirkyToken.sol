// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title QuirkyToken — a deliberately awkward ERC-20 for testing FerryVault
/// @notice TEST ONLY: `mint` and the knobs below are open to anyone. It behaves like the tokens
///         the vault must survive: `transfer`, `transferFrom` and `approve` return nothing (like
///         USDT), every transfer burns `feeBps` basis points (fee-on-transfer), and
///         `transferFrom` can call back into a vault (to show the reentrancy guard holds).
contract QuirkyToken {
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice Part of every transfer that is burned, in basis points (0–10000).
    uint256 public feeBps;
    /// @notice When non-zero, `transferFrom` first calls `reenterVault.depositToken(this, 1, …)`.
    address public reenterVault;
    uint256 public totalSupply;
    mapping(address account => uint256) public balanceOf;
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    /// @notice Create `amount` new tokens for `to`. Open to anyone: this is a test token.
    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @notice Set the fee burned on each transfer, in basis points.
    function setFee(uint256 bps) external {
        require(bps <= 10_000, "fee above 100%");
        feeBps = bps;
    }

    /// @notice Make `transferFrom` re-enter `vault` (zero turns it off).
    function setReenter(address vault) external {
        reenterVault = vault;
    }

    /// @notice Returns nothing, like USDT.
    function approve(address spender, uint256 amount) external {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
    }

    /// @notice Returns nothing, like USDT.
    function transfer(address to, uint256 amount) external {
        _transfer(msg.sender, to, amount);
    }

    /// @notice Returns nothing, like USDT; re-enters `reenterVault` first when it is set.
    function transferFrom(address from, address to, uint256 amount) external {
        if (reenterVault != address(0)) {
            (bool ok, bytes memory ret) = reenterVault.call(
                abi.encodeWithSignature("depositToken(address,uint256,bytes20)", address(this), 1, bytes20(uint160(1)))
            );
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
        require(allowance[from][msg.sender] >= amount, "insufficient allowance");
        allowance[from][msg.sender] -= amount;
        _transfer(from, to, amount);
    }

    function _transfer(address from, address to, uint256 amount) internal {
        require(balanceOf[from] >= amount, "insufficient balance");
        uint256 fee = amount * feeBps / 10_000;
        balanceOf[from] -= amount;
        balanceOf[to] += amount - fee;
        totalSupply -= fee;
        emit Transfer(from, to, amount - fee);
        if (fee != 0) emit Transfer(from, address(0), fee);
    }
}
