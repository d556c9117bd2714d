-- The Bitcoin exit disbursals this relayer keeps (issue 17): every signed disbursal it learnt of,
-- whole (its signed transactions, `ferry_types::release::exit::SignedDisbursal` as JSON), so that
-- it can broadcast it once its lock height passed even with the sidechain gone. `state` is where
-- broadcasting stands (`ferry_parent_chains::disbursal::DisbursalStep`): kept (locked), dead
-- (a later release spent an input), intermediate_pending, fan_outs_pending, done.
CREATE TABLE relayer_exits (
    exit_id bigint PRIMARY KEY,
    lock_height bigint NOT NULL,
    disbursal jsonb NOT NULL,
    state text NOT NULL DEFAULT 'kept',
    updated_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE ON relayer_exits TO ferry_relayer;
