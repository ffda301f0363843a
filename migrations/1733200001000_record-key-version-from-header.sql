-- Up Migration

-- Decryption trusts the ciphertext's envelope header (lib/security/envelope.ts), so the DEK version a
-- record needs is the one its header names, not whatever records.key_version says. Rotation selects,
-- verifies and gates key destruction on this function (lib/store/record-reencryption.ts), and the
-- column can no longer disagree with it (the CHECK below): a column raised by hand once made rotation
-- skip a record, report it verified, and destroy the key it still needed.
--
-- Envelope format 0x01: [0] format, [1..2] key id length L (uint16 BE), [3..3+L) key id,
-- [3+L..7+L) key version (uint32 BE). NULL for anything else (too short, unknown format).
-- plpgsql rather than an inlinable SQL function: a CASE over get_byte can be constant-folded at plan
-- time on a literal argument and raise "index out of range" instead of returning NULL.
CREATE FUNCTION envelope_key_version(ciphertext bytea) RETURNS bigint
  LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  id_length integer;
BEGIN
  IF length(ciphertext) < 7 OR get_byte(ciphertext, 0) <> 1 THEN
    RETURN NULL;
  END IF;
  id_length := (get_byte(ciphertext, 1) << 8) | get_byte(ciphertext, 2);
  IF length(ciphertext) < 7 + id_length THEN
    RETURN NULL;
  END IF;
  RETURN (get_byte(ciphertext, 3 + id_length)::bigint << 24) | (get_byte(ciphertext, 4 + id_length) << 16)
       | (get_byte(ciphertext, 5 + id_length) << 8) | get_byte(ciphertext, 6 + id_length);
END;
$$;

-- A record with an unreadable header would block nothing and decrypt never: refuse to migrate over it.
DO $$
DECLARE
  malformed bigint;
  healed bigint;
BEGIN
  SELECT count(*) INTO malformed FROM records WHERE envelope_key_version(ciphertext) IS NULL;
  IF malformed > 0 THEN
    RAISE EXCEPTION '% records have no readable envelope header; inspect them before migrating', malformed;
  END IF;
  UPDATE records SET key_version = envelope_key_version(ciphertext) WHERE key_version <> envelope_key_version(ciphertext);
  GET DIAGNOSTICS healed = ROW_COUNT;
  IF healed > 0 THEN
    RAISE NOTICE 'records.key_version set from the ciphertext header on % records', healed;
  END IF;
END;
$$;

ALTER TABLE records ADD CONSTRAINT records_key_version_is_header
  CHECK (envelope_key_version(ciphertext) IS NOT DISTINCT FROM key_version);

-- Re-encryption batches, their remaining count and destruction's check read records by header version.
CREATE INDEX records_tenant_header_key_version ON records (tenant_id, envelope_key_version(ciphertext));

-- Down Migration
DROP INDEX records_tenant_header_key_version;
ALTER TABLE records DROP CONSTRAINT records_key_version_is_header;
DROP FUNCTION envelope_key_version(bytea);
