-- Releases ferry-relayer delivers to a parent chain and attests back to the sidechain: one row per
-- signed batch it acted on, keyed by the batch id (the Ethereum batch nonce). The vault pays a
-- nonce once and a Bitcoin transaction spends its inputs once, so a release delivered twice is
-- never paid twice; this table makes a restarted relayer resume quietly instead of re-sending.
--
-- Status transitions (enforced by the store, recorded in the audit log):
--   delivering -> broadcast   intent (and, on Ethereum, the signed transaction's hash) recorded
--                             before the release is handed to the parent chain; outcome after
--   delivering | broadcast -> broadcast with block   found in a block (ours or another relayer's)
--   broadcast with block -> confirmed   its block is `confirmations` deep and still canonical
--   broadcast | confirmed | attesting -> broadcast without block   a reorganisation removed it
--   confirmed -> attesting    intent recorded before MsgAttestRelease is sent (again on restart)
--   attesting -> attested     the sidechain accepted it (or already holds this member's)
--   attesting -> refused      the sidechain refused it for good (reason kept)
--   any -> settled            the sidechain settled the batch (a quorum attested)
CREATE TABLE relayer_releases (
    batch_id        bigint        PRIMARY KEY CHECK (batch_id > 0),
    chain           text          NOT NULL CHECK (chain IN ('btc', 'eth')),
    asset           text          NOT NULL,
    items           integer       NOT NULL CHECK (items >= 0),
    total           numeric(39,0) NOT NULL CHECK (total >= 0),
    status          text          NOT NULL
                    CHECK (status IN ('delivering', 'broadcast', 'confirmed', 'attesting', 'attested',
                                      'refused', 'settled')),
    -- The release transaction: the one this relayer sent, replaced by the one found in a block
    -- (another relayer's, on Ethereum) once it is included.
    parent_tx       text,
    -- The block holding parent_tx, while it is in the best chain.
    block_height    bigint        CHECK (block_height >= 0),
    block_hash      text,
    attempts        integer       NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    attest_attempts integer       NOT NULL DEFAULT 0 CHECK (attest_attempts >= 0),
    -- Why the last delivery failed, or why the attestation was refused.
    reason          text,
    attestation_tx  text,
    first_seen_at   timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    CHECK ((block_height IS NULL) = (block_hash IS NULL)),
    CHECK (block_height IS NULL OR parent_tx IS NOT NULL),
    CHECK (status NOT IN ('confirmed', 'attesting') OR block_height IS NOT NULL)
);

-- What each delivery round re-evaluates.
CREATE INDEX relayer_releases_unsettled ON relayer_releases (batch_id) WHERE status <> 'settled';
