// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @dev The part of FerryVault this contract calls.
interface IFerryVaultClaim {
    function claim(address token) external;
}

/// @title RefusingRecipient — a release recipient that refuses ETH until told otherwise
/// @notice TEST ONLY: shows that a recipient refusing a release payment is owed it instead of
///         blocking the batch, and can `claim` it later. Anyone may flip it and make it claim.
contract RefusingRecipient {
    /// @notice Raised by `receive` while ETH is refused.
    error Refused();

    /// @notice Whether plain ETH transfers are accepted.
    bool public accepting;

    /// @notice Accept (`true`) or refuse (`false`) ETH from now on.
    function setAccepting(bool accept) external {
        accepting = accept;
    }

    /// @notice Calls `vault.claim(token)` as this contract.
    function claimFrom(address vault, address token) external {
        IFerryVaultClaim(vault).claim(token);
    }

    receive() external payable {
        if (!accepting) revert Refused();
    }
}
