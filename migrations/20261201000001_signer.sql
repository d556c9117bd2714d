-- State of ferry-signer: every payload it signed, so it never signs two different payloads for
-- the same (federation epoch, batch nonce), and its audit log. Tables are prefixed `signer_`.

-- One row per (epoch, batch nonce) this signer signed. Written in the same transaction as the
-- audit row and BEFORE the signature leaves the process; a second, different payload for the
-- same key is refused by the signer (and could not be inserted: the key is the primary key).
CREATE TABLE signer_signed (
    epoch        bigint      NOT NULL CHECK (epoch >= 0),
    nonce        bigint      NOT NULL CHECK (nonce >= 0),
    chain        text        NOT NULL CHECK (chain IN ('btc', 'eth')),
    asset        text        NOT NULL,
    payload_hash bytea       NOT NULL CHECK (octet_length(payload_hash) = 32),
    total        numeric(39,0) NOT NULL CHECK (total >= 0),
    signed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (epoch, nonce)
);

-- Local outflow caps are computed over recent signatures.
CREATE INDEX signer_signed_recent ON signer_signed (asset, signed_at);

-- The signer's audit log: same shape and rules as relayer_audit (see ferry-audit).
CREATE TABLE signer_audit (
    seq       bigserial   PRIMARY KEY,
    at        timestamptz NOT NULL,
    kind      text        NOT NULL,
    subject   text        NOT NULL,
    detail    jsonb       NOT NULL,
    prev_hash bytea       CHECK (prev_hash IS NULL OR octet_length(prev_hash) = 32),
    hash      bytea       NOT NULL CHECK (octet_length(hash) = 32)
);

CREATE INDEX signer_audit_subject ON signer_audit (subject, seq);

CREATE FUNCTION ferry_audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'audit rows are never changed or removed; append a new row instead';
END;
$$;

CREATE TRIGGER signer_audit_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON signer_audit
    FOR EACH STATEMENT EXECUTE FUNCTION ferry_audit_refuse_change();
