import { assumed, fact } from './fact.js';
import type { VendorProfile } from './types.js';

const SPEC = 'FHIR R4 RESTful API (hl7.org/fhir/R4/http.html, search.html)';
const BACKEND = 'SMART Backend Services (hl7.org/fhir/smart-app-launch/backend-services.html)';
const HAPI = 'HAPI FHIR JPA server documentation (hapifhir.io)';
const DEPLOYMENT = 'depends on the deployment (its auth front: SMART, a cloud IAM, or none on a closed network)';

/**
 * A standards FHIR server this project did not write and that is not an EHR vendor: HAPI FHIR JPA, Smile CDR,
 * the cloud FHIR services. Most facts depend on how the server is deployed, so they are low confidence and
 * verified against the live endpoint; what the FHIR and SMART specifications fix is stated from them.
 */
export const fhirServer: VendorProfile = {
  id: 'fhir-server',
  name: 'Standards FHIR server (HAPI, Smile, cloud FHIR services)',
  fhirVersion: fact('R4', SPEC, 'M'),
  auth: {
    methods: fact(
      ['private_key_jwt', 'client_secret_basic', 'client_secret_post', 'tls_client_auth', 'none'],
      `${BACKEND} prefers private_key_jwt; otherwise ${DEPLOYMENT}`,
      'L',
    ),
    algorithms: fact(['ES384', 'RS384'], `${BACKEND}: servers SHALL support RS384 and ES384`, 'M'),
    assertionAudience: fact('token-endpoint', BACKEND, 'M'),
    jwks: fact('either', `${BACKEND}: a JWK Set URL or a registered JWK Set`, 'M'),
    jwksCacheSeconds: assumed(300, 'not published; depends on the deployment'),
    revocationEndpoint: assumed(false, 'not assumed; discovered from .well-known where published'),
    secretLifetimeDays: assumed(null, DEPLOYMENT),
  },
  tokens: {
    lifetimeSeconds: fact(300, `${BACKEND}: access tokens should not exceed five minutes`, 'L'),
    refresh: fact('new-assertion', BACKEND, 'M'),
  },
  scopes: {
    syntax: assumed('v2', 'SMART v2 syntax; an auth front may expect v1'),
    granularity: assumed('resource', DEPLOYMENT),
  },
  paging: fact('next-link', 'FHIR R4 searchset Bundle link[next]', 'H'),
  bulk: fact(
    {
      supported: true,
      version: '2.0.0',
      levels: ['system', 'patient', 'group'],
      incremental: true,
      note: 'HAPI JPA and Smile offer $export at every level with _since; cloud services vary: check the server',
    },
    `${HAPI}; Bulk Data IG v2 (hl7.org/fhir/uv/bulkdata)`,
    'L',
  ),
  reads: fact(
    { defaultStrategy: 'search', systemSearch: true, lastUpdatedSearch: true, overlapSeconds: 300, maxPageSize: null },
    `${SPEC}: system-wide search with _lastUpdated; ${HAPI}`,
    'M',
  ),
  push: assumed('none', 'R4 Subscriptions exist on some servers; the connector does not rely on them'),
  rateLimit: assumed(null, DEPLOYMENT),
  extraParameters: fact([], SPEC, 'M'),
  auditExport: assumed('none', DEPLOYMENT),
  sandbox: fact('public', 'HAPI public test server (hapi.fhir.org) and the open-source servers themselves', 'M'),
};
