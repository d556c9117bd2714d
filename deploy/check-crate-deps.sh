#!/usr/bin/env bash
# Crate boundaries (docs/design.md, "Crate boundaries"): the `ferry` CLI and the library crates it
# stands on never link an operator's daemon or the state machine. Fails, naming the crate, the
# forbidden dependency and the path that pulls it in, when one of them depends on such a crate
# through its normal dependencies (dev-dependencies are the tests' business).
#
# Usage: deploy/check-crate-deps.sh        (make lint runs it; CARGO overrides the cargo binary)

set -euo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}

# <crate>: <crates it must not depend on, directly or through others>
rules=(
    "ferry-cli: ferry-relayer ferry-signer ferry-app"
    "ferry-parent-chains: ferry-relayer ferry-signer ferry-app"
    "ferry-keystore: ferry-relayer ferry-signer ferry-app"
)

broken=0
for rule in "${rules[@]}"; do
    crate=${rule%%:*}
    # One package name per line: everything the crate links, itself included.
    linked=$("$cargo" tree --quiet --package "$crate" --edges normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
    for forbidden in ${rule#*:}; do
        if grep --quiet --line-regexp --fixed-strings "$forbidden" <<<"$linked"; then
            echo "error: $crate depends on $forbidden, which it must not (docs/design.md, \"Crate boundaries\")." >&2
            echo "       What pulls it in ($cargo tree -p $crate -e normal -i $forbidden):" >&2
            "$cargo" tree --quiet --package "$crate" --edges normal --invert "$forbidden" | sed 's/^/         /' >&2
            broken=1
        fi
    done
done
if [ "$broken" -ne 0 ]; then
    exit 1
fi
echo "crate boundaries: ok (ferry-cli, ferry-parent-chains and ferry-keystore link no daemon and no state machine)"
