-- A Bitcoin deposit's peg: the federation epoch whose peg (or deposit address) the output pays.
-- Part of the attested facts since federations hand over: a retired peg's deposits are minted
-- only within its grace and swept by its federation. NULL for Ethereum and for rows written
-- before this column (attested as the current federation's).
ALTER TABLE relayer_deposits ADD COLUMN peg_epoch bigint;
