//! A private PostgreSQL cluster for tests and the devnet (being written).
