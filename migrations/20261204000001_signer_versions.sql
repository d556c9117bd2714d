-- A Bitcoin release may be replaced by the chain (BIP 125: same inputs and destinations, a higher
-- fee), so one batch nonce can have several versions to sign. The double-sign guard's key becomes
-- (epoch, nonce, version): still one payload per key, and a replacement is signed only after its
-- lineage is checked against the version this signer signed before.
ALTER TABLE signer_signed ADD COLUMN version bigint NOT NULL DEFAULT 0 CHECK (version >= 0);
ALTER TABLE signer_signed DROP CONSTRAINT signer_signed_pkey;
ALTER TABLE signer_signed ADD PRIMARY KEY (epoch, nonce, version);
