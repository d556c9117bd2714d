-- The relayer's own index of the Bitcoin peg's outputs, built from the blocks it scans (not from
-- the sidechain's list): what the peg held at any scanned height, for reserves snapshots.
CREATE TABLE relayer_peg_outputs (
    txid         text    NOT NULL,
    vout         integer NOT NULL CHECK (vout >= 0),
    amount_sat   bigint  NOT NULL CHECK (amount_sat >= 0),
    -- The block that created it, and the block that spent it (NULL: unspent at the cursor).
    height       bigint  NOT NULL CHECK (height >= 0),
    spent_height bigint  CHECK (spent_height >= height),
    PRIMARY KEY (txid, vout)
);
CREATE INDEX relayer_peg_outputs_height ON relayer_peg_outputs (height);
CREATE INDEX relayer_peg_outputs_spent_height ON relayer_peg_outputs (spent_height);
