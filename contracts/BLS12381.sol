// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title BLS12381 — BLS signatures on BLS12-381 (public keys in G1, signatures in G2) through the
///        EIP-2537 precompiles
/// @notice Hash-to-curve `BLS12381G2_XMD:SHA-256_SSWU_RO_` (RFC 9380 §8.8.2) and the pairing
///         check e(pk, H(m)) == e(g1, sig) that verifies a signature, the scheme threshold_crypto's
///         `sign_g2` produces over a standard hash-to-curve point.
/// @dev Encodings are EIP-2537's: an Fp element is 64 bytes (16 zero bytes ‖ 48-byte big-endian
///      value below p), a G1 point 128 bytes (x ‖ y), a G2 point 256 bytes (x.c0 ‖ x.c1 ‖ y.c0 ‖
///      y.c1), the point at infinity all zeros. Precompiles (Prague): 0x02 SHA-256 (the `sha256` builtin), 0x05 MODEXP,
///      0x0b G1ADD, 0x0c G1MSM, 0x0d G2ADD, 0x0f PAIRING_CHECK, 0x11 MAP_FP2_TO_G2.
///
///      The library holds no keys and decides nothing: callers choose the domain separation tag,
///      and a caller must refuse a public key at infinity itself (with it, the signature at
///      infinity verifies for every message). `verify` relies on PAIRING_CHECK's subgroup checks
///      for both points. On a chain without EIP-2537 a call to these addresses returns nothing;
///      that is caught (the output length is checked) rather than read as a result.
library BLS12381 {
    /// @notice A precompile failed, or answered with a length other than its specified output —
    ///         e.g. the chain predates EIP-2537. Never caused by the message or the tag.
    error PrecompileFailed(address precompile);
    /// @notice The domain separation tag is longer than the 255 bytes RFC 9380 allows.
    error DstTooLong(uint256 length);

    address private constant MODEXP = address(0x05);
    address private constant G1MSM = address(0x0c);
    address private constant G2ADD = address(0x0d);
    address private constant PAIRING_CHECK = address(0x0f);
    address private constant MAP_FP2_TO_G2 = address(0x11);

    /// @dev Sizes of the EIP-2537 encodings.
    uint256 internal constant FP_LENGTH = 64;
    uint256 internal constant G1_LENGTH = 128;
    uint256 internal constant G2_LENGTH = 256;

    /// @dev The base field modulus p as a 64-byte big-endian number (the MODEXP modulus).
    bytes private constant P = hex"00000000000000000000000000000000"
        hex"1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab";

    /// @dev −g1, the negated G1 generator (x ‖ p − y): verification checks
    ///      e(pk, H(m)) · e(−g1, sig) == 1 in a single PAIRING_CHECK.
    bytes private constant NEG_G1_GENERATOR = hex"00000000000000000000000000000000"
        hex"17f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
        hex"00000000000000000000000000000000"
        hex"114d1d6855d545a8aa7d76c8cf2e21f267816aef1db507c96655b9d5caac42364e6f38ba0ecb751bad54dcd6b939c2ca";

    /// @dev RFC 9380 parameters of the suite: L = 64 bytes per Fp element, m = 2 (Fp2),
    ///      count = 2 (two Fp2 elements), so expand_message_xmd produces 2 · 2 · 64 = 256 bytes
    ///      in ell = 256 / 32 = 8 SHA-256 blocks.
    uint256 private constant EXPANDED_LENGTH = 256;
    uint256 private constant SHA256_BLOCKS = 8;

    /// @notice The point `hash_to_curve(message)` of suite `BLS12381G2_XMD:SHA-256_SSWU_RO_` with
    ///         domain separation tag `dst`, EIP-2537-encoded (256 bytes).
    /// @dev RFC 9380 §3: u = hash_to_field(message, 2); Q0 = map_to_curve(u[0]);
    ///      Q1 = map_to_curve(u[1]); return clear_cofactor(Q0 + Q1). MAP_FP2_TO_G2 applies the
    ///      simplified SWU map, the 3-isogeny and the cofactor clearing, and clearing the cofactor
    ///      is a group homomorphism, so clear(Q0) + clear(Q1) == clear(Q0 + Q1).
    function hashToG2(bytes memory message, bytes memory dst) internal view returns (bytes memory) {
        bytes memory uniform = expandMessageXmd(message, dst);
        bytes memory q0 = _mapToG2(uniform, 0);
        bytes memory q1 = _mapToG2(uniform, 1);
        return _call(G2ADD, abi.encodePacked(q0, q1), G2_LENGTH);
    }

    /// @notice Checks the BLS signature `sig` (G2) of `message` under the public key `pk` (G1)
    ///         with the hash-to-curve tag `dst`: e(pk, hashToG2(message, dst)) == e(g1, sig).
    /// @return wellFormed False when `pk` is not 128 bytes, `sig` not 256 bytes, or PAIRING_CHECK
    ///         refused a point (a coordinate not below p, not on the curve, not in the
    ///         prime-order subgroup).
    /// @return valid Whether the pairing equation holds; always false when not `wellFormed`.
    /// @dev A failing PAIRING_CHECK call consumes the gas given to it (EIP-2537), so a malformed
    ///      signature costs its sender most of the transaction's gas.
    function verify(bytes memory pk, bytes memory message, bytes memory dst, bytes memory sig)
        internal
        view
        returns (bool wellFormed, bool valid)
    {
        if (pk.length != G1_LENGTH || sig.length != G2_LENGTH) return (false, false);
        bytes memory input = abi.encodePacked(pk, hashToG2(message, dst), NEG_G1_GENERATOR, sig);
        (bool success, bytes memory output) = PAIRING_CHECK.staticcall(input);
        if (!success) return (false, false);
        if (output.length != 32) revert PrecompileFailed(PAIRING_CHECK);
        return (true, abi.decode(output, (uint256)) == 1);
    }

    /// @notice Whether `point` is the EIP-2537 encoding of a point of G1 (on the curve, in the
    ///         prime-order subgroup, coordinates below p). The point at infinity is in G1.
    /// @dev G1MSM performs the subgroup check that G1ADD skips; the scalar 1 keeps it cheap.
    function isInG1(bytes memory point) internal view returns (bool) {
        if (point.length != G1_LENGTH) return false;
        (bool success, bytes memory output) = G1MSM.staticcall(abi.encodePacked(point, uint256(1)));
        if (success && output.length != G1_LENGTH) revert PrecompileFailed(G1MSM);
        return success;
    }

    /// @notice RFC 9380 §5.3.1 expand_message_xmd with SHA-256, 256 bytes out.
    /// @dev msg_prime = Z_pad(64 zero bytes) ‖ msg ‖ I2OSP(256, 2) ‖ I2OSP(0, 1) ‖ DST_prime;
    ///      b_0 = H(msg_prime); b_1 = H(b_0 ‖ I2OSP(1, 1) ‖ DST_prime);
    ///      b_i = H((b_0 XOR b_{i−1}) ‖ I2OSP(i, 1) ‖ DST_prime); out = b_1 ‖ … ‖ b_8,
    ///      with DST_prime = DST ‖ I2OSP(len(DST), 1).
    function expandMessageXmd(bytes memory message, bytes memory dst) internal pure returns (bytes memory out) {
        if (dst.length > 255) revert DstTooLong(dst.length);
        bytes memory dstPrime = abi.encodePacked(dst, uint8(dst.length));
        bytes32 b0 =
            sha256(abi.encodePacked(bytes32(0), bytes32(0), message, uint16(EXPANDED_LENGTH), uint8(0), dstPrime));
        bytes32 bi = sha256(abi.encodePacked(b0, uint8(1), dstPrime));
        out = abi.encodePacked(bi);
        for (uint8 i = 2; i <= SHA256_BLOCKS; ++i) {
            bi = sha256(abi.encodePacked(b0 ^ bi, i, dstPrime));
            out = bytes.concat(out, bi);
        }
    }

    /// @dev MAP_FP2_TO_G2 of u[`index`] = (c0, c1), the field elements 2·index and 2·index + 1.
    function _mapToG2(bytes memory uniform, uint256 index) private view returns (bytes memory) {
        bytes memory fp2 = abi.encodePacked(_fieldElement(uniform, 2 * index), _fieldElement(uniform, 2 * index + 1));
        return _call(MAP_FP2_TO_G2, fp2, G2_LENGTH);
    }

    /// @dev Field element `index` of hash_to_field: OS2IP of the 64 bytes at `index` · 64 of the
    ///      expanded message, reduced mod p with MODEXP (base^1 mod p), as a 64-byte Fp encoding.
    function _fieldElement(bytes memory uniform, uint256 index) private view returns (bytes memory) {
        bytes32 high;
        bytes32 low;
        assembly ("memory-safe") {
            let at := add(add(uniform, 0x20), mul(index, 64))
            high := mload(at)
            low := mload(add(at, 0x20))
        }
        // MODEXP input: base length, exponent length, modulus length (32-byte words), then base,
        // exponent and modulus; the output has the modulus's length.
        bytes memory input = abi.encodePacked(uint256(64), uint256(1), uint256(64), high, low, uint8(1), P);
        return _call(MODEXP, input, FP_LENGTH);
    }

    /// @dev Calls `precompile` with `input` and requires success and exactly `outputLength` bytes.
    function _call(address precompile, bytes memory input, uint256 outputLength) private view returns (bytes memory) {
        (bool success, bytes memory output) = precompile.staticcall(input);
        if (!success || output.length != outputLength) revert PrecompileFailed(precompile);
        return output;
    }
}
