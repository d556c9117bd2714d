-- A Bitcoin coinbase output cannot be spent before 100 confirmations (consensus: coinbase
-- maturity), so a deposit paid by one is attested only then, whatever the confirmation policy.
ALTER TABLE relayer_deposits ADD COLUMN coinbase boolean NOT NULL DEFAULT false;
