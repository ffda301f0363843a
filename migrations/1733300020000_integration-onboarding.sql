-- Up Migration

-- Onboarding (issue 11 items 4 and 9).
--
-- auth method 'none': an open FHIR server on a network the organisation controls. No token endpoint, no
--   client id, no credential of any kind; allowed only over TLS or to loopback (checked here as well as at
--   registration), and only with an explicit acknowledgement recorded in the audit trail.
-- status 'pending-client-id': registered (keys generated, JWKS published) before the vendor issued a client
--   id. Never active without one: syncs are refused (INTEGRATION_PENDING_CLIENT_ID) until
--   update_integration_endpoints sets it.
ALTER TABLE integrations DROP CONSTRAINT integrations_auth_method_check;
ALTER TABLE integrations ADD CONSTRAINT integrations_auth_method_check
  CHECK (auth_method IN ('private_key_jwt', 'client_secret_basic', 'client_secret_post', 'tls_client_auth', 'none'));
ALTER TABLE integrations DROP CONSTRAINT integrations_auth_material;
ALTER TABLE integrations ADD CONSTRAINT integrations_auth_material CHECK (
  CASE auth_method
    WHEN 'private_key_jwt' THEN signing_alg IS NOT NULL AND signing_kid IS NOT NULL AND public_jwk IS NOT NULL AND private_key_ref IS NOT NULL
    WHEN 'client_secret_basic' THEN client_secret_ref IS NOT NULL
    WHEN 'client_secret_post' THEN client_secret_ref IS NOT NULL
    WHEN 'tls_client_auth' THEN tls_refs ? 'clientCertRef' AND tls_refs ? 'clientKeyRef'
    WHEN 'none' THEN private_key_ref IS NULL AND client_secret_ref IS NULL AND token_url IS NULL
  END
);
-- Lexically: https, or plain http to a loopback address (lib/vendors/http-policy.ts says the same).
CREATE FUNCTION integration_url_allowed(u text) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, public, pg_temp AS $$
  SELECT length(u) <= 2048 AND u !~ '[\s\x01-\x1f\x7f-\x9f]' AND u !~ '^[a-z]+://[^/]*@' AND u !~ '[?#]' AND (
    u ~ '^https://[^/]+' OR u ~ '^http://(localhost|127(\.[0-9]{1,3}){3}|\[::1\])(:[0-9]{1,5})?(/|$)')
$$;
ALTER TABLE integrations ADD CONSTRAINT integrations_none_needs_tls
  CHECK (auth_method <> 'none' OR public.integration_url_allowed(base_url));
ALTER TABLE integrations ALTER COLUMN token_url DROP NOT NULL;
ALTER TABLE integrations ADD CONSTRAINT integrations_token_url_present CHECK (token_url IS NOT NULL OR auth_method = 'none');

ALTER TABLE integrations ALTER COLUMN client_id DROP NOT NULL;
ALTER TABLE integrations DROP CONSTRAINT integrations_status_check;
ALTER TABLE integrations ADD CONSTRAINT integrations_status_check
  CHECK (status IN ('active', 'suspended', 'revoked', 'pending-client-id'));
ALTER TABLE integrations ADD CONSTRAINT integrations_client_id_present
  CHECK (client_id IS NOT NULL OR auth_method = 'none' OR status NOT IN ('active', 'suspended'));
ALTER TABLE integrations ADD CONSTRAINT integrations_pending_has_no_client_id
  CHECK (status <> 'pending-client-id' OR client_id IS NULL);

-- register_integration as before, with a pending status when the vendor has not issued a client id yet.
CREATE OR REPLACE FUNCTION register_integration(
  p_id text, p_tenant_id text, p_vendor text, p_base_url text, p_token_url text, p_client_id text,
  p_signing_alg text, p_signing_kid text, p_public_jwk jsonb, p_private_key_ref text, p_resource_types text[],
  p_purpose text, p_auth_method text, p_client_secret_ref text, p_tls_refs jsonb, p_vendor_params jsonb
) RETURNS SETOF public.integrations LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  created public.integrations;
BEGIN
  PERFORM public.assert_stored_secret_ref('private_key_ref', p_private_key_ref);
  PERFORM public.assert_stored_secret_ref('client_secret_ref', p_client_secret_ref);
  PERFORM public.assert_stored_tls_refs(p_tls_refs);
  INSERT INTO public.integrations (id, tenant_id, vendor, base_url, token_url, client_id, signing_alg, signing_kid, public_jwk,
                                   private_key_ref, resource_types, purpose, auth_method, client_secret_ref, tls_refs, vendor_params,
                                   status)
  VALUES (p_id, p_tenant_id, p_vendor, p_base_url, p_token_url, p_client_id, p_signing_alg, p_signing_kid, p_public_jwk,
          p_private_key_ref, p_resource_types, p_purpose, p_auth_method, p_client_secret_ref, p_tls_refs, p_vendor_params,
          CASE WHEN p_client_id IS NULL AND p_auth_method <> 'none' THEN 'pending-client-id' ELSE 'active' END)
  ON CONFLICT (id) DO NOTHING
  RETURNING * INTO created;
  IF FOUND THEN
    RETURN NEXT created;
  END IF;
END;
$$;

-- `integrations update`: where requests (and with them credentials and bearer tokens) go, and who we say
-- we are. NULL leaves a value unchanged. A change of base URL, token URL, client id or file hosts bumps the credential
-- generation, so every worker drops its cached row, tokens and connections (the revocation trigger
-- notifies them) and a request still in flight under the old generation is refused and retried. A client
-- id given to a pending integration makes it active. Returns the row as it was before and after.
CREATE FUNCTION update_integration_endpoints(
  p_id text, p_base_url text, p_token_url text, p_client_id text, p_bulk_file_hosts text[]
) RETURNS TABLE (before jsonb, after jsonb) LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  old public.integrations;
  new_row public.integrations;
  h text;
BEGIN
  SELECT * INTO old FROM public.integrations WHERE id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'integration % does not exist', p_id USING ERRCODE = 'no_data_found';
  END IF;
  IF p_base_url IS NOT NULL AND NOT public.integration_url_allowed(p_base_url) THEN
    RAISE EXCEPTION 'base URL refused' USING ERRCODE = 'check_violation', CONSTRAINT = 'integration_url_allowed', COLUMN = 'base_url';
  END IF;
  IF p_token_url IS NOT NULL AND (old.auth_method = 'none' OR NOT public.integration_url_allowed(p_token_url)) THEN
    RAISE EXCEPTION 'token URL refused' USING ERRCODE = 'check_violation', CONSTRAINT = 'integration_url_allowed', COLUMN = 'token_url';
  END IF;
  IF p_client_id IS NOT NULL AND (length(p_client_id) NOT BETWEEN 1 AND 255 OR p_client_id !~ '^[\x21-\x7e]+$') THEN
    RAISE EXCEPTION 'client id refused' USING ERRCODE = 'check_violation', CONSTRAINT = 'integration_client_id', COLUMN = 'client_id';
  END IF;
  IF p_bulk_file_hosts IS NOT NULL THEN
    IF cardinality(p_bulk_file_hosts) > 20 THEN
      RAISE EXCEPTION 'too many bulk file hosts' USING ERRCODE = 'check_violation', CONSTRAINT = 'integration_bulk_file_host', COLUMN = 'bulk_file_hosts';
    END IF;
    FOREACH h IN ARRAY p_bulk_file_hosts LOOP
      IF h IS NULL OR length(h) > 261 OR h !~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?$' THEN
        RAISE EXCEPTION 'bulk file host refused' USING ERRCODE = 'check_violation', CONSTRAINT = 'integration_bulk_file_host', COLUMN = 'bulk_file_hosts';
      END IF;
    END LOOP;
  END IF;
  UPDATE public.integrations SET
    base_url = coalesce(p_base_url, base_url),
    token_url = coalesce(p_token_url, token_url),
    client_id = coalesce(p_client_id, client_id),
    bulk_file_hosts = coalesce(p_bulk_file_hosts, bulk_file_hosts),
    status = CASE WHEN p_client_id IS NOT NULL AND status = 'pending-client-id' THEN 'active' ELSE status END,
    credential_generation = credential_generation + CASE
      WHEN coalesce(p_base_url, base_url) IS DISTINCT FROM base_url
        OR coalesce(p_token_url, token_url) IS DISTINCT FROM token_url
        OR coalesce(p_client_id, client_id) IS DISTINCT FROM client_id
        OR coalesce(p_bulk_file_hosts, bulk_file_hosts) IS DISTINCT FROM bulk_file_hosts THEN 1 ELSE 0 END
  WHERE id = p_id
  RETURNING * INTO new_row;
  RETURN QUERY SELECT to_jsonb(old), to_jsonb(new_row);
END;
$$;
REVOKE ALL ON FUNCTION update_integration_endpoints(text, text, text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION update_integration_endpoints(text, text, text, text, text[]) TO ehr_app;

-- The policy's resource types (checked against the purpose by the application, which also bumps the
-- credential generation so cached tokens with the old scopes are dropped).
GRANT UPDATE (resource_types) ON integrations TO ehr_app;

-- Down Migration
REVOKE UPDATE (resource_types) ON integrations FROM ehr_app;
DROP FUNCTION update_integration_endpoints(text, text, text, text, text[]);
CREATE OR REPLACE FUNCTION register_integration(
  p_id text, p_tenant_id text, p_vendor text, p_base_url text, p_token_url text, p_client_id text,
  p_signing_alg text, p_signing_kid text, p_public_jwk jsonb, p_private_key_ref text, p_resource_types text[],
  p_purpose text, p_auth_method text, p_client_secret_ref text, p_tls_refs jsonb, p_vendor_params jsonb
) RETURNS SETOF public.integrations LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  created public.integrations;
BEGIN
  PERFORM public.assert_stored_secret_ref('private_key_ref', p_private_key_ref);
  PERFORM public.assert_stored_secret_ref('client_secret_ref', p_client_secret_ref);
  PERFORM public.assert_stored_tls_refs(p_tls_refs);
  INSERT INTO public.integrations (id, tenant_id, vendor, base_url, token_url, client_id, signing_alg, signing_kid, public_jwk,
                                   private_key_ref, resource_types, purpose, auth_method, client_secret_ref, tls_refs, vendor_params)
  VALUES (p_id, p_tenant_id, p_vendor, p_base_url, p_token_url, p_client_id, p_signing_alg, p_signing_kid, p_public_jwk,
          p_private_key_ref, p_resource_types, p_purpose, p_auth_method, p_client_secret_ref, p_tls_refs, p_vendor_params)
  ON CONFLICT (id) DO NOTHING
  RETURNING * INTO created;
  IF FOUND THEN
    RETURN NEXT created;
  END IF;
END;
$$;
-- Fails while an integration without a client id or with auth method none exists (revoke and remove it first).
ALTER TABLE integrations DROP CONSTRAINT integrations_pending_has_no_client_id;
ALTER TABLE integrations DROP CONSTRAINT integrations_client_id_present;
ALTER TABLE integrations DROP CONSTRAINT integrations_status_check;
ALTER TABLE integrations ADD CONSTRAINT integrations_status_check CHECK (status IN ('active', 'suspended', 'revoked'));
ALTER TABLE integrations ALTER COLUMN client_id SET NOT NULL;
ALTER TABLE integrations DROP CONSTRAINT integrations_token_url_present;
ALTER TABLE integrations ALTER COLUMN token_url SET NOT NULL;
ALTER TABLE integrations DROP CONSTRAINT integrations_none_needs_tls;
DROP FUNCTION integration_url_allowed(text);
ALTER TABLE integrations DROP CONSTRAINT integrations_auth_material;
ALTER TABLE integrations ADD CONSTRAINT integrations_auth_material CHECK (
  CASE auth_method
    WHEN 'private_key_jwt' THEN signing_alg IS NOT NULL AND signing_kid IS NOT NULL AND public_jwk IS NOT NULL AND private_key_ref IS NOT NULL
    WHEN 'client_secret_basic' THEN client_secret_ref IS NOT NULL
    WHEN 'client_secret_post' THEN client_secret_ref IS NOT NULL
    WHEN 'tls_client_auth' THEN tls_refs ? 'clientCertRef' AND tls_refs ? 'clientKeyRef'
  END
);
ALTER TABLE integrations DROP CONSTRAINT integrations_auth_method_check;
ALTER TABLE integrations ADD CONSTRAINT integrations_auth_method_check
  CHECK (auth_method IN ('private_key_jwt', 'client_secret_basic', 'client_secret_post', 'tls_client_auth'));
