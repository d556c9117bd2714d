-- The relayer's audit log: append-only and hash-chained.
--
-- hash = sha256(prev || canonical(seq, at, kind, subject, detail)), where prev is the previous
-- row's hash (32 zero bytes for the first row, whose prev_hash is NULL). The canonical encoding is
-- defined once, in Rust (ferry_relayer::store::audit::canonical_row); writers compute the hash
-- while holding an EXCLUSIVE lock on this table, so concurrent appends cannot fork the chain.
-- `ferry-relayer verify` recomputes the chain and names the first broken row.
CREATE TABLE relayer_audit (
    seq       bigserial   PRIMARY KEY,
    at        timestamptz NOT NULL,
    kind      text        NOT NULL,
    subject   text        NOT NULL,
    detail    jsonb       NOT NULL,
    prev_hash bytea       CHECK (prev_hash IS NULL OR octet_length(prev_hash) = 32),
    hash      bytea       NOT NULL CHECK (octet_length(hash) = 32)
);

CREATE INDEX relayer_audit_subject ON relayer_audit (subject, seq);

CREATE FUNCTION relayer_audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'relayer_audit is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'audit rows are never changed or removed; append a new row instead';
END;
$$;

-- Statement-level, so even an UPDATE or DELETE matching no row is refused.
CREATE TRIGGER relayer_audit_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON relayer_audit
    FOR EACH STATEMENT EXECUTE FUNCTION relayer_audit_refuse_change();
