//! A private anvil (Ethereum dev node) for tests and the devnet (being written).
