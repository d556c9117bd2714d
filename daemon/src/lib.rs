//! `ferry-daemon`: the plumbing every Ferry daemon shares — logging setup ([`logging`]), the
//! `/metrics` and `/health` endpoint ([`endpoint`], with the registry behind it in [`metrics`]),
//! reading config files and secret files ([`config`]), connecting to PostgreSQL and applying the
//! embedded migrations ([`postgres`]), and the sealed member account key a relayer attests with
//! ([`account_keystore`], written by the key ceremony and `ferry-relayer keystore seal`).
//!
//! Both daemons read what they act on proven, through `ferry-light`, configured the same way
//! ([`verified_reads`]).
//!
//! Both daemons anchor their audit log's head on the sidechain the same way ([`audit_anchor`]:
//! when, and with which `MsgAnchorAudit`; each daemon posts it with its member account).
//!
//! It knows nothing about deposits, releases or parent chains: each daemon (`ferry-relayer`,
//! `ferry-signer`) keeps its own configuration schema, its own metrics and its own store queries,
//! and hands this crate only names, paths, URLs and closures. The audit log is not here either;
//! it lives in `ferry-audit`.

pub mod account_keystore;
pub mod audit_anchor;
pub mod config;
pub mod endpoint;
pub mod logging;
pub mod metrics;
pub mod postgres;
pub mod verified_reads;
