-- The double-sign table becomes append-only, like the audit logs (issue 15, item 4): a signer
-- that forgot what it signed could sign a second payload for the same batch, so no row of
-- `signer_signed` is ever changed or removed. Statement-level, so even an UPDATE or DELETE
-- matching no row is refused; the function is the audit logs' own (it names the table).
CREATE TRIGGER signer_signed_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON signer_signed
    FOR EACH STATEMENT EXECUTE FUNCTION ferry_audit_refuse_change();

-- Every row of `signer_signed` has its `batch.signed` audit row (same epoch, batch nonce,
-- version and payload hash), written in the same transaction (`Store::record_signing`), and
-- every `batch.signed` audit row has its `signer_signed` row. Checked at commit (deferred), so
-- an insert into one table without the other fails the whole transaction: the two cannot
-- disagree silently.
CREATE FUNCTION signer_signed_check_audited() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM signer_audit
        WHERE subject = 'batch-' || NEW.nonce
          AND kind = 'batch.signed'
          AND detail->>'payload_hash' = encode(NEW.payload_hash, 'hex')
          AND (detail->>'epoch')::numeric = NEW.epoch
          AND (detail->>'version')::numeric = NEW.version
    ) THEN
        RAISE EXCEPTION 'signer_signed row (epoch %, nonce %, version %, payload %) has no batch.signed audit row',
                NEW.epoch, NEW.nonce, NEW.version, encode(NEW.payload_hash, 'hex')
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'record signatures through the signer''s store: the row and its audit entry in one transaction';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER signer_signed_audited
    AFTER INSERT ON signer_signed
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION signer_signed_check_audited();

CREATE FUNCTION signer_audit_check_signed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM signer_signed
        WHERE epoch = (NEW.detail->>'epoch')::bigint
          AND nonce = (NEW.detail->>'nonce')::bigint
          AND version = (NEW.detail->>'version')::bigint
          AND 'batch-' || nonce = NEW.subject
          AND encode(payload_hash, 'hex') = NEW.detail->>'payload_hash'
    ) THEN
        RAISE EXCEPTION 'batch.signed audit row % (%) has no signer_signed row', NEW.seq, NEW.subject
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'record signatures through the signer''s store: the row and its audit entry in one transaction';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER signer_audit_signed_recorded
    AFTER INSERT ON signer_audit
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.kind = 'batch.signed')
    EXECUTE FUNCTION signer_audit_check_signed();
