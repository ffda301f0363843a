-- Up Migration

-- An integration's client-assertion key pairs, so a signing key can be rotated in band through our
-- hosted JWKS (issue 4 item 2; orchestrated by issue 5's rotation workflow):
--   successor  published in the JWKS, not yet used to sign (vendors pick it up within their cache time);
--   current    signs assertions (exactly one per private_key_jwt integration);
--   previous   replaced by its successor, still published until retired (assertions signed just before
--              the switch, and workers whose credential cache has not yet turned over);
--   retired    never published again.
-- The integrations row keeps signing_kid / signing_alg / public_jwk / private_key_ref equal to the
-- current key, so readers of that row keep working.
CREATE TABLE integration_signing_keys (
  integration_id  text NOT NULL REFERENCES integrations(id),
  kid             text NOT NULL,
  alg             text NOT NULL CHECK (alg IN ('RS384', 'ES384')),
  public_jwk      jsonb NOT NULL CHECK (NOT (public_jwk ? 'd') AND NOT (public_jwk ? 'p') AND NOT (public_jwk ? 'q')),
  private_key_ref text NOT NULL,
  state           text NOT NULL CHECK (state IN ('successor', 'current', 'previous', 'retired')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  activated_at    timestamptz,
  retired_at      timestamptz,
  PRIMARY KEY (integration_id, kid)
);
CREATE UNIQUE INDEX integration_signing_keys_one_current ON integration_signing_keys (integration_id) WHERE state = 'current';
CREATE UNIQUE INDEX integration_signing_keys_one_successor ON integration_signing_keys (integration_id) WHERE state = 'successor';

INSERT INTO integration_signing_keys (integration_id, kid, alg, public_jwk, private_key_ref, state, created_at, activated_at)
SELECT id, signing_kid, signing_alg, public_jwk, private_key_ref, 'current', created_at, created_at
  FROM integrations
 WHERE auth_method = 'private_key_jwt' AND signing_kid IS NOT NULL;

-- A newly registered private_key_jwt integration's key is its current key.
CREATE FUNCTION integrations_first_signing_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.signing_kid IS NOT NULL THEN
    INSERT INTO integration_signing_keys (integration_id, kid, alg, public_jwk, private_key_ref, state, activated_at)
    VALUES (NEW.id, NEW.signing_kid, NEW.signing_alg, NEW.public_jwk, NEW.private_key_ref, 'current', now())
    ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER integrations_first_signing_key AFTER INSERT ON integrations
  FOR EACH ROW EXECUTE FUNCTION integrations_first_signing_key();

-- Down Migration
DROP TRIGGER integrations_first_signing_key ON integrations;
DROP FUNCTION integrations_first_signing_key();
DROP TABLE integration_signing_keys;
