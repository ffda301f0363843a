-- Up Migration

-- Per-tenant keys by purpose, beside (not in) data_keys. Today one purpose: 'pseudonym', the HMAC key
-- of the tenant's patient pseudonyms (records.patient_pseudonym, audit rows). It used to be derived
-- from DEK v1 on every use, which kept DEK v1 alive forever; stored here it outlives DEK rotation, so
-- rotation can destroy v1 like any other superseded version. A separate table (not a purpose column on
-- data_keys) so that no data-key query — rotation, re-encryption, version numbering, the one-primary
-- index — can ever pick a pseudonym key up as a DEK (docs/decisions.md).
-- Stored only wrapped by the KEK; the wrap AAD binds tenant, purpose, version and KEK id/version.
-- A destroyed row keeps its place (crypto-shredding: its pseudonyms become unlinkable) but loses its bytes.
CREATE TABLE tenant_purpose_keys (
  tenant_id     text NOT NULL REFERENCES tenants(id),
  purpose       text NOT NULL CHECK (purpose IN ('pseudonym')),
  version       integer NOT NULL CHECK (version > 0),
  kek_id        text NOT NULL,
  kek_version   integer NOT NULL CHECK (kek_version > 0),
  wrapped_key   bytea,
  -- How the material was made: 'hkdf-dek-v1' = HKDF-SHA256(DEK v1, 'ehr-connectors/pseudonym/v1'),
  -- byte-identical to the key the code derived before this table existed.
  derivation    text NOT NULL CHECK (derivation IN ('hkdf-dek-v1')),
  status        text NOT NULL CHECK (status IN ('active', 'destroyed')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  rewrapped_at  timestamptz,
  destroyed_at  timestamptz,
  PRIMARY KEY (tenant_id, purpose, version),
  CHECK ((status = 'destroyed') = (wrapped_key IS NULL))
);
CREATE INDEX tenant_purpose_keys_kek ON tenant_purpose_keys (kek_id, kek_version) WHERE wrapped_key IS NOT NULL;

-- Same guard as data_keys and purpose_keys: nothing (re)wrapped below the KEK floor or under an
-- unusable KEK version.
CREATE TRIGGER tenant_purpose_keys_wrap_guard BEFORE INSERT OR UPDATE OF kek_id, kek_version, wrapped_key ON tenant_purpose_keys
  FOR EACH ROW EXECUTE FUNCTION key_wrap_guard();

GRANT SELECT, INSERT, UPDATE ON tenant_purpose_keys TO ehr_app;

-- Down Migration
DROP TABLE tenant_purpose_keys;
