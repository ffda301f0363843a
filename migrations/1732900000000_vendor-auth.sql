-- Up Migration

-- Vendor connectivity (issue 4): how an integration authenticates and what its vendor needs besides.
--   auth_method:        OAuth client authentication at the token endpoint (lib/vendors/profiles/types.ts).
--   client_secret_ref:  a secret reference (file:/env:/manager) for client_secret_basic/post; the secret
--                       itself never enters the database.
--   tls_refs:           secret references for the vendor CA and our client certificate/key (mTLS and
--                       tls_client_auth): lib/vendors/tls-options.ts VendorTlsRefs: {"caRef", "clientCertRef", "clientKeyRef", …}.
--   vendor_params:      profile-declared extra parameters such as an athenahealth practice id or a
--                       NextGen site id (not secrets, not PHI).
-- Signing-key columns become optional: only private_key_jwt integrations have a key pair.
ALTER TABLE integrations
  ADD COLUMN auth_method text NOT NULL DEFAULT 'private_key_jwt'
    CHECK (auth_method IN ('private_key_jwt', 'client_secret_basic', 'client_secret_post', 'tls_client_auth')),
  ADD COLUMN client_secret_ref text,
  ADD COLUMN tls_refs jsonb,
  ADD COLUMN vendor_params jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(vendor_params) = 'object'),
  ALTER COLUMN signing_alg DROP NOT NULL,
  ALTER COLUMN signing_kid DROP NOT NULL,
  ALTER COLUMN public_jwk DROP NOT NULL,
  ALTER COLUMN private_key_ref DROP NOT NULL,
  ADD CONSTRAINT integrations_auth_material CHECK (
    CASE auth_method
      WHEN 'private_key_jwt' THEN signing_alg IS NOT NULL AND signing_kid IS NOT NULL AND public_jwk IS NOT NULL AND private_key_ref IS NOT NULL
      WHEN 'client_secret_basic' THEN client_secret_ref IS NOT NULL
      WHEN 'client_secret_post' THEN client_secret_ref IS NOT NULL
      WHEN 'tls_client_auth' THEN tls_refs ? 'clientCertRef' AND tls_refs ? 'clientKeyRef'
    END
  );

-- Down Migration
ALTER TABLE integrations
  DROP CONSTRAINT integrations_auth_material,
  DROP COLUMN auth_method,
  DROP COLUMN client_secret_ref,
  DROP COLUMN tls_refs,
  DROP COLUMN vendor_params;
