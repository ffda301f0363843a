-- Up Migration

-- Key hierarchy metadata (DESIGN §4 invariants 3 and 4). Key material never lives here: KEK versions
-- are files (local) or KMS keys (aws-kms) named by provider_ref; DEKs and purpose keys are stored only
-- wrapped by a KEK version.

-- One row per key-encryption key (per provider id): its decryption floor (Vault min_decryption_version).
CREATE TABLE kek_keys (
  kek_id                  text PRIMARY KEY CHECK (length(kek_id) BETWEEN 1 AND 100),
  min_decryption_version  integer NOT NULL DEFAULT 1 CHECK (min_decryption_version > 0),
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now()
);

-- KEK versions and their states (Tink/Vault): exactly one primary (wraps), active ones unwrap only,
-- disabled ones refuse (reversibly), destroy_scheduled waits for destroy_after, destroyed is final.
CREATE TABLE kek_versions (
  kek_id         text NOT NULL REFERENCES kek_keys (kek_id),
  version        integer NOT NULL CHECK (version > 0),
  state          text NOT NULL CHECK (state IN ('primary', 'active', 'disabled', 'destroy_scheduled', 'destroyed')),
  provider_ref   text NOT NULL CHECK (length(provider_ref) BETWEEN 1 AND 2048),
  destroy_after  timestamptz,
  destroyed_at   timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kek_id, version),
  CHECK ((state = 'destroy_scheduled') = (destroy_after IS NOT NULL) OR state = 'destroyed')
);
CREATE UNIQUE INDEX kek_versions_one_primary ON kek_versions (kek_id) WHERE state = 'primary';

-- Existing deployments: register the KEK versions that already wrap data keys (highest = primary).
INSERT INTO kek_keys (kek_id) SELECT DISTINCT kek_id FROM data_keys;
INSERT INTO kek_versions (kek_id, version, state, provider_ref)
SELECT d.kek_id, d.kek_version,
       CASE WHEN d.kek_version = max(d.kek_version) OVER (PARTITION BY d.kek_id) THEN 'primary' ELSE 'active' END,
       CASE WHEN d.kek_id = 'local' THEN 'kek-v' || d.kek_version || '.key' ELSE 'unknown' END
FROM (SELECT DISTINCT kek_id, kek_version FROM data_keys) d;

-- Crypto-shredding: a destroyed data key keeps its row (version numbers are never reused) but loses
-- its wrapped bytes.
ALTER TABLE data_keys ALTER COLUMN wrapped_key DROP NOT NULL;
ALTER TABLE data_keys ADD COLUMN destroyed_at timestamptz;
ALTER TABLE data_keys ADD COLUMN rewrapped_at timestamptz;
ALTER TABLE data_keys ADD CONSTRAINT data_keys_wrapped_unless_destroyed
  CHECK ((status = 'destroyed') = (wrapped_key IS NULL));
CREATE INDEX data_keys_kek ON data_keys (kek_id, kek_version) WHERE wrapped_key IS NOT NULL;

-- Keys by purpose: the Temporal payload codec keys (AES-256, key_id payload-v<N>) and the audit
-- checkpoint signing keys (Ed25519, key_id = JWK thumbprint, public JWK in clear, private key wrapped).
CREATE TABLE purpose_keys (
  purpose       text NOT NULL CHECK (purpose IN ('payload', 'audit-signing')),
  version       integer NOT NULL CHECK (version > 0),
  key_id        text NOT NULL CHECK (length(key_id) BETWEEN 1 AND 200),
  kek_id        text NOT NULL,
  kek_version   integer NOT NULL CHECK (kek_version > 0),
  wrapped_key   bytea,
  public_jwk    jsonb,
  status        text NOT NULL CHECK (status IN ('primary', 'decrypt_only', 'destroyed')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  rewrapped_at  timestamptz,
  destroyed_at  timestamptz,
  PRIMARY KEY (purpose, version),
  UNIQUE (purpose, key_id),
  CHECK ((status = 'destroyed') = (wrapped_key IS NULL)),
  CHECK ((purpose = 'audit-signing') = (public_jwk IS NOT NULL))
);
CREATE UNIQUE INDEX purpose_keys_one_primary ON purpose_keys (purpose) WHERE status = 'primary';
CREATE INDEX purpose_keys_kek ON purpose_keys (kek_id, kek_version) WHERE wrapped_key IS NOT NULL;

-- Nothing may be (re)wrapped under a KEK version that is below the floor or not primary/active. The
-- FOR SHARE lock on kek_keys serialises with raiseKekFloor (FOR UPDATE), so a floor raise and a
-- concurrent wrap under an old version cannot both commit.
CREATE FUNCTION key_wrap_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  floor_version integer;
  version_state text;
BEGIN
  IF NEW.wrapped_key IS NULL THEN
    RETURN NEW;
  END IF;
  SELECT min_decryption_version INTO floor_version FROM kek_keys WHERE kek_id = NEW.kek_id FOR SHARE;
  IF floor_version IS NOT NULL AND NEW.kek_version < floor_version THEN
    RAISE EXCEPTION 'key wrapped under KEK version % below the decryption floor %', NEW.kek_version, floor_version
      USING ERRCODE = 'check_violation';
  END IF;
  SELECT state INTO version_state FROM kek_versions WHERE kek_id = NEW.kek_id AND version = NEW.kek_version;
  IF version_state IS NOT NULL AND version_state NOT IN ('primary', 'active') THEN
    RAISE EXCEPTION 'key wrapped under KEK version % in state %', NEW.kek_version, version_state
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER data_keys_wrap_guard BEFORE INSERT OR UPDATE OF kek_id, kek_version, wrapped_key ON data_keys
  FOR EACH ROW EXECUTE FUNCTION key_wrap_guard();
CREATE TRIGGER purpose_keys_wrap_guard BEFORE INSERT OR UPDATE OF kek_id, kek_version, wrapped_key ON purpose_keys
  FOR EACH ROW EXECUTE FUNCTION key_wrap_guard();

-- Down Migration
DROP TRIGGER purpose_keys_wrap_guard ON purpose_keys;
DROP TRIGGER data_keys_wrap_guard ON data_keys;
DROP FUNCTION key_wrap_guard();
DROP TABLE purpose_keys;
DROP INDEX data_keys_kek;
ALTER TABLE data_keys DROP CONSTRAINT data_keys_wrapped_unless_destroyed;
ALTER TABLE data_keys DROP COLUMN rewrapped_at;
ALTER TABLE data_keys DROP COLUMN destroyed_at;
DELETE FROM data_keys WHERE wrapped_key IS NULL;
ALTER TABLE data_keys ALTER COLUMN wrapped_key SET NOT NULL;
DROP TABLE kek_versions;
DROP TABLE kek_keys;
