-- A Bitcoin deposit paid to an account's registered deposit address (no memo) rather than to the
-- peg with a memo: part of the attested facts, since it decides the script that spends the output.
ALTER TABLE relayer_deposits ADD COLUMN deposit_address boolean NOT NULL DEFAULT false;

-- A Bitcoin payment to the peg that names no account (no_memo, several_memos, bad_memo): attested
-- as unattributed, recipient the unattributed pool; NULL for every deposit naming its account.
ALTER TABLE relayer_deposits ADD COLUMN unattributed text;
