-- The services connect as roles that own nothing (issue 15, item 4). Migrations run as the
-- database's owner (`ferry-relayer migrate`, `ferry-signer migrate`, or the devnet harness),
-- which owns every table, trigger and function; the relayer connects as `ferry_relayer` and the
-- signer as `ferry_signer`, with only the rights below. Not owning a table, a service role
-- cannot drop or disable its triggers, alter it, truncate it, or re-hash its history; the
-- append-only tables (the audit logs, `signer_signed`) it may only read and append to.
--
-- Roles belong to the whole cluster, not to a database: they are created only when missing
-- (several databases of one cluster share them; a concurrent migration of another database may
-- create them first), and without a password — an operator who created them beforehand
-- (`CREATE ROLE ferry_signer LOGIN PASSWORD …`) keeps them as they are, and then the owner
-- needs no CREATEROLE. A role without a password can log in only where pg_hba.conf trusts it
-- (the devnet's and tests' private clusters on loopback).
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['ferry_relayer', 'ferry_signer'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I LOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created meanwhile by a migration of another database
            END;
        END IF;
    END LOOP;
END;
$$;

-- Writers serialise on an EXCLUSIVE lock of the audit table (see ferry-audit), and LOCK in that
-- mode needs UPDATE, DELETE or TRUNCATE on the table — rights the service roles must not have.
-- This function takes the lock with the owner's rights, for the two audit tables only; the lock
-- is held until the caller's transaction ends.
CREATE FUNCTION ferry_audit_lock(log text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF log NOT IN ('relayer_audit', 'signer_audit') THEN
        RAISE EXCEPTION '% is not an audit log', log USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('LOCK TABLE public.%I IN EXCLUSIVE MODE', log);
END;
$$;
REVOKE ALL ON FUNCTION ferry_audit_lock(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ferry_audit_lock(text) TO ferry_relayer, ferry_signer;

-- Both services check at start that every migration is applied (and run none).
GRANT SELECT ON _sqlx_migrations TO ferry_relayer, ferry_signer;

-- The relayer: its state tables change as deposits and releases advance; its audit log is
-- append-only; the peg index is rolled back on a reorganisation.
GRANT SELECT, INSERT, UPDATE ON relayer_cursors, relayer_deposits, relayer_releases TO ferry_relayer;
GRANT SELECT, INSERT ON relayer_rejections, relayer_audit TO ferry_relayer;
GRANT SELECT, INSERT, UPDATE, DELETE ON relayer_peg_outputs TO ferry_relayer;
GRANT USAGE ON SEQUENCE relayer_audit_seq_seq TO ferry_relayer;

-- The signer: both of its tables are append-only.
GRANT SELECT, INSERT ON signer_signed, signer_audit TO ferry_signer;
GRANT USAGE ON SEQUENCE signer_audit_seq_seq TO ferry_signer;
