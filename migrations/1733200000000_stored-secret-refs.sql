-- Up Migration

-- What a secret reference stored for an integration may name (DESIGN §4 invariant 11). A stored
-- reference is read by the worker and its secret sent to a vendor, so whoever can write one chooses
-- what leaves the process. The application role therefore cannot write them: it calls the SECURITY
-- DEFINER functions below, which check every reference against rules only the migration owner can
-- change. The worker checks again at every use (lib/config/stored-secret-refs.ts), with realpath.
--
-- secret_roots: the directories `file:` references may point into (kind 'root') and the paths they
-- must never point into (kind 'excluded': the key-encryption-key directory, the database password
-- file). Written by the owner from configuration (lib/store/secret-roots.ts writeSecretRoots, run
-- after the migrations by the dev stack, the test setup and `ehrctl db migrate`); empty means no
-- `file:` reference may be stored.
CREATE TABLE secret_roots (
  path           text PRIMARY KEY CHECK (
                   length(path) BETWEEN 2 AND 1024 AND left(path, 1) = '/'
                   AND path !~ '(^|/)\.\.?(/|$)' AND path !~ '//' AND path !~ '/$' AND path !~ '[\x01-\x1f\x7f-\x9f]'),
  kind           text NOT NULL CHECK (kind IN ('root', 'excluded')),
  configured_at  timestamptz NOT NULL DEFAULT now()
);
-- New tables inherit full DML for ehr_app (default privileges): this one is read-only to it.
REVOKE ALL ON secret_roots FROM ehr_app;
GRANT SELECT ON secret_roots TO ehr_app;

-- True when `p` is `dir` or lies beneath it (plain string prefix on a '/' boundary; LIKE would treat
-- '_' and '%' in a path as wildcards).
CREATE FUNCTION secret_path_under(p text, dir text) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, public, pg_temp AS $$
  SELECT p = dir OR left(p, length(dir) + 1) = dir || '/'
$$;

-- NULL when `ref` may be stored, otherwise the rule it breaks (the same codes, in the same order, as
-- lib/config/stored-secret-refs.ts). Lexical only: symbolic links are resolved by the worker.
CREATE FUNCTION stored_secret_ref_problem(ref text) RETURNS text LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  scheme text := substring(ref FROM '^([a-z][a-z0-9-]{1,31}):');
  target text;
BEGIN
  IF ref IS NULL THEN
    RETURN NULL;
  END IF;
  IF scheme IS NULL OR length(ref) > 2048 OR ref ~ '[\x01-\x1f\x7f-\x9f]' THEN
    RETURN 'not-a-reference';
  END IF;
  target := substr(ref, length(scheme) + 2);
  IF target = '' OR left(target, 2) = '//' THEN
    RETURN 'not-a-reference';
  END IF;
  IF scheme = 'env' THEN
    RETURN CASE WHEN target ~ '^EHR_VENDOR_SECRET_[A-Z0-9_]+$' THEN NULL ELSE 'env-prefix' END;
  END IF;
  IF scheme <> 'file' THEN
    RETURN NULL; -- a secret manager's locator: that manager decides what it may read
  END IF;
  IF left(target, 1) <> '/' THEN
    RETURN 'relative-path';
  END IF;
  IF target ~ '(^|/)\.\.?(/|$)' OR target ~ '//' OR target ~ '/$' THEN
    RETURN 'not-normalised';
  END IF;
  IF public.secret_path_under(target, '/proc') OR public.secret_path_under(target, '/sys') OR public.secret_path_under(target, '/dev') THEN
    RETURN 'system-path';
  END IF;
  IF EXISTS (SELECT 1 FROM public.secret_roots r WHERE r.kind = 'excluded' AND public.secret_path_under(target, r.path)) THEN
    RETURN 'excluded-path';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM public.secret_roots r WHERE r.kind = 'root' AND public.secret_path_under(target, r.path) AND target <> r.path) THEN
    RETURN 'outside-secret-roots';
  END IF;
  RETURN NULL;
END;
$$;

-- Raises check_violation (constraint `stored_secret_reference`, DETAIL = the rule, COLUMN = the
-- field). The message never quotes the reference.
CREATE FUNCTION refuse_stored_secret_ref(field text, rule text) RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  RAISE EXCEPTION 'secret reference % refused: %', field, rule
    USING ERRCODE = 'check_violation', CONSTRAINT = 'stored_secret_reference', DETAIL = rule, COLUMN = field;
END;
$$;

CREATE FUNCTION assert_stored_secret_ref(field text, ref text) RETURNS void LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  rule text := public.stored_secret_ref_problem(ref);
BEGIN
  IF rule IS NOT NULL THEN
    PERFORM public.refuse_stored_secret_ref(field, rule);
  END IF;
END;
$$;

-- tls_refs holds exactly these keys; each *Ref is a checked reference.
CREATE FUNCTION assert_stored_tls_refs(refs jsonb) RETURNS void LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  k text;
BEGIN
  IF refs IS NULL THEN
    RETURN;
  END IF;
  IF jsonb_typeof(refs) <> 'object' THEN
    PERFORM public.refuse_stored_secret_ref('tls_refs', 'not-a-reference');
  END IF;
  FOR k IN SELECT jsonb_object_keys(refs) LOOP
    IF k IN ('caRef', 'clientCertRef', 'clientKeyRef') THEN
      IF jsonb_typeof(refs -> k) <> 'string' THEN
        PERFORM public.refuse_stored_secret_ref('tls_refs.' || k, 'not-a-reference');
      END IF;
      PERFORM public.assert_stored_secret_ref('tls_refs.' || k, refs ->> k);
    ELSIF k NOT IN ('includeSystemRoots', 'minVersion') THEN
      PERFORM public.refuse_stored_secret_ref('tls_refs', 'not-a-reference');
    END IF;
  END LOOP;
END;
$$;

-- The definer functions run with search_path pg_catalog, public, pg_temp (the application role cannot
-- create objects in public, and pg_temp comes last); triggers they fire (integrations_first_signing_key)
-- resolve the tables by that path.

-- The only way the application role creates an integration.
CREATE FUNCTION register_integration(
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

-- Restore: the rotated client secret and TLS references.
CREATE FUNCTION set_integration_secret_refs(p_integration_id text, p_client_secret_ref text, p_tls_refs jsonb)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  PERFORM public.assert_stored_secret_ref('client_secret_ref', p_client_secret_ref);
  PERFORM public.assert_stored_tls_refs(p_tls_refs);
  UPDATE public.integrations SET client_secret_ref = p_client_secret_ref, tls_refs = p_tls_refs WHERE id = p_integration_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'integration % does not exist', p_integration_id USING ERRCODE = 'no_data_found';
  END IF;
END;
$$;

-- A new signing key pair of an integration (rotation's successor, restore's fresh key).
CREATE FUNCTION add_integration_signing_key(p_integration_id text, p_kid text, p_alg text, p_public_jwk jsonb, p_private_key_ref text, p_state text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  PERFORM public.assert_stored_secret_ref('private_key_ref', p_private_key_ref);
  INSERT INTO public.integration_signing_keys (integration_id, kid, alg, public_jwk, private_key_ref, state, activated_at)
  VALUES (p_integration_id, p_kid, p_alg, p_public_jwk, p_private_key_ref, p_state, CASE WHEN p_state = 'current' THEN now() END);
END;
$$;

-- The integrations row mirrors its current signing key, copied from integration_signing_keys (whose
-- references were checked when they were inserted), so no reference is passed in at all.
CREATE FUNCTION mirror_current_signing_key(p_integration_id text, p_kid text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  UPDATE public.integrations i
     SET signing_kid = k.kid, signing_alg = k.alg, public_jwk = k.public_jwk, private_key_ref = k.private_key_ref
    FROM public.integration_signing_keys k
   WHERE i.id = p_integration_id AND k.integration_id = p_integration_id AND k.kid = p_kid AND k.state = 'current';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'integration % has no current signing key %', p_integration_id, p_kid USING ERRCODE = 'no_data_found';
  END IF;
END;
$$;

-- A new current webhook secret version (the caller retires and demotes the others).
CREATE FUNCTION add_webhook_secret(p_integration_id text, p_version integer, p_secret_ref text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  IF p_secret_ref IS NULL THEN
    PERFORM public.refuse_stored_secret_ref('webhook_secrets.secret_ref', 'not-a-reference');
  END IF;
  PERFORM public.assert_stored_secret_ref('webhook_secrets.secret_ref', p_secret_ref);
  INSERT INTO public.webhook_secrets (integration_id, version, secret_ref, state) VALUES (p_integration_id, p_version, p_secret_ref, 'current');
END;
$$;

REVOKE ALL ON FUNCTION register_integration(text, text, text, text, text, text, text, text, jsonb, text, text[], text, text, text, jsonb, jsonb),
  set_integration_secret_refs(text, text, jsonb),
  add_integration_signing_key(text, text, text, jsonb, text, text),
  mirror_current_signing_key(text, text),
  add_webhook_secret(text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION register_integration(text, text, text, text, text, text, text, text, jsonb, text, text[], text, text, text, jsonb, jsonb),
  set_integration_secret_refs(text, text, jsonb),
  add_integration_signing_key(text, text, text, jsonb, text, text),
  mirror_current_signing_key(text, text),
  add_webhook_secret(text, integer, text) TO ehr_app;

-- The application role changes only what it has a reason to change; everything that decides where a
-- credential is read from or sent to (references, URLs, client id, signing key) goes through the
-- functions above. A later migration adding a column the application updates must GRANT UPDATE on it.
REVOKE INSERT, UPDATE ON integrations FROM ehr_app;
GRANT UPDATE (status, credential_generation, revoked_at) ON integrations TO ehr_app;
REVOKE INSERT, UPDATE ON integration_signing_keys FROM ehr_app;
GRANT UPDATE (state, activated_at, retired_at) ON integration_signing_keys TO ehr_app;
REVOKE INSERT, UPDATE ON webhook_secrets FROM ehr_app;
GRANT UPDATE (state, retired_at) ON webhook_secrets TO ehr_app;

-- Down Migration
REVOKE UPDATE (state, retired_at) ON webhook_secrets FROM ehr_app;
GRANT INSERT, UPDATE ON webhook_secrets TO ehr_app;
REVOKE UPDATE (state, activated_at, retired_at) ON integration_signing_keys FROM ehr_app;
GRANT INSERT, UPDATE ON integration_signing_keys TO ehr_app;
REVOKE UPDATE (status, credential_generation, revoked_at) ON integrations FROM ehr_app;
GRANT INSERT, UPDATE ON integrations TO ehr_app;
DROP FUNCTION add_webhook_secret(text, integer, text);
DROP FUNCTION mirror_current_signing_key(text, text);
DROP FUNCTION add_integration_signing_key(text, text, text, jsonb, text, text);
DROP FUNCTION set_integration_secret_refs(text, text, jsonb);
DROP FUNCTION register_integration(text, text, text, text, text, text, text, text, jsonb, text, text[], text, text, text, jsonb, jsonb);
DROP FUNCTION assert_stored_tls_refs(jsonb);
DROP FUNCTION assert_stored_secret_ref(text, text);
DROP FUNCTION refuse_stored_secret_ref(text, text);
DROP FUNCTION stored_secret_ref_problem(text);
DROP FUNCTION secret_path_under(text, text);
DROP TABLE secret_roots;
