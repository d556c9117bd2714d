-- Relay state of ferry-relayer: where each parent-chain watcher stands, the deposits it saw and
-- what it did about them, and what it scanned but refused. Tables are prefixed `relayer_`; the
-- signer keeps its own. Amounts are numeric(39,0): any u128 fits, nothing is a float.

-- One cursor per parent chain ('btc' or 'eth'): the last block fully processed.
CREATE TABLE relayer_cursors (
    chain      text        PRIMARY KEY CHECK (chain IN ('btc', 'eth')),
    height     bigint      NOT NULL CHECK (height >= 0),
    block_hash text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Deposits to the federation. Status transitions (enforced by the store, recorded in the audit log):
--   observed  -> attesting  intent recorded before the attestation is sent (again after a restart)
--   attesting -> attested   outcome recorded after the sidechain accepted it
--   observed | attesting -> dropped   a reorganisation removed its block
--   observed | attesting -> rejected  the sidechain refused the attestation for good
--   dropped   -> observed   a reorganisation re-included it in another block
CREATE TABLE relayer_deposits (
    deposit_id     text          PRIMARY KEY,
    chain          text          NOT NULL CHECK (chain IN ('btc', 'eth')),
    tx_id          text          NOT NULL,
    idx            bigint        NOT NULL CHECK (idx BETWEEN 0 AND 4294967295),
    asset          text          NOT NULL,
    amount         numeric(39,0) NOT NULL CHECK (amount > 0),
    recipient      text          NOT NULL,
    block_height   bigint        NOT NULL CHECK (block_height >= 0),
    block_hash     text          NOT NULL,
    status         text          NOT NULL
                   CHECK (status IN ('observed', 'attesting', 'attested', 'dropped', 'rejected')),
    reason         text,
    attempts       integer       NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    attestation_tx text,
    first_seen_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at     timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (chain, tx_id, idx)
);

-- What a restart re-evaluates.
CREATE INDEX relayer_deposits_unfinished ON relayer_deposits (status)
    WHERE status IN ('observed', 'attesting');

-- Outputs or logs that were scanned and refused (malformed memo, wrong address, unknown token),
-- keyed like deposits (`btc:<txid>:<vout>`, `eth:<txhash>:<logindex>`), with the reason.
CREATE TABLE relayer_rejections (
    subject       text        PRIMARY KEY,
    chain         text        NOT NULL CHECK (chain IN ('btc', 'eth')),
    tx_id         text        NOT NULL,
    idx           bigint      NOT NULL CHECK (idx BETWEEN 0 AND 4294967295),
    reason        text        NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now()
);
