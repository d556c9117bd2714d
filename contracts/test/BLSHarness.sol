// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {BLS12381} from "../BLS12381.sol";

/// @title BLSHarness — the `BLS12381` library's functions as external views, for tests
/// @notice TEST ONLY: lets the Rust end-to-end tests run the RFC 9380 hash-to-curve vectors and
///         BLS verifications through the EIP-2537 precompiles of a real node. Holds nothing.
contract BLSHarness {
    /// @notice `BLS12381.hashToG2(message, dst)`: the EIP-2537 G2 encoding (256 bytes).
    function hashToG2(bytes calldata message, bytes calldata dst) external view returns (bytes memory) {
        return BLS12381.hashToG2(message, dst);
    }

    /// @notice `BLS12381.expandMessageXmd(message, dst)`: RFC 9380 expand_message_xmd, 256 bytes.
    function expandMessageXmd(bytes calldata message, bytes calldata dst) external pure returns (bytes memory) {
        return BLS12381.expandMessageXmd(message, dst);
    }

    /// @notice `BLS12381.verify(pk, message, dst, sig)`.
    function verify(bytes calldata pk, bytes calldata message, bytes calldata dst, bytes calldata sig)
        external
        view
        returns (bool wellFormed, bool valid)
    {
        return BLS12381.verify(pk, message, dst, sig);
    }
}
