-- A Bitcoin deposit paid to an account's registered deposit address (no memo) rather than to the
-- peg with a memo: part of the attested facts, since it decides the script that spends the output.
ALTER TABLE relayer_deposits ADD COLUMN deposit_address boolean NOT NULL DEFAULT false;
