//! `ferry-signer`: a federation member's signing service — the key ceremony (trusted-dealer
//! keygen into encrypted keystores and a public federation manifest), and the daemon that follows
//! the chain, rebuilds every release payload from chain state, applies its own policy and posts
//! BLS signature shares and Bitcoin input signatures.
//!
//! Secrets never appear in argv, logs or error messages, and are zeroized after use. The policy
//! core is pure: chain state, height and the signer's own records come in as arguments.
