import { assumed, fact } from './fact.js';
import type { VendorProfile } from './types.js';

const BACKEND = 'fhir.epic.com, Backend Services (OAuth 2.0) documentation';

export const epic: VendorProfile = {
  id: 'epic',
  name: 'Epic',
  fhirVersion: fact('R4', 'fhir.epic.com', 'H'),
  auth: {
    methods: fact(['private_key_jwt'], BACKEND, 'H'),
    algorithms: fact(
      ['RS384', 'ES384'],
      `${BACKEND} (RS384); third-party guides: ES256/ES384 for apps that register a JWK Set URL`,
      'M',
    ),
    assertionAudience: fact('token-endpoint', BACKEND, 'H'),
    jwks: fact(
      'hosted-url',
      'Epic notice for the February 2024 version (quoted by reviewpoint.org): ' +
        'backend clients must host a JWK Set URL; public-key uploads end',
      'M',
    ),
    jwksCacheSeconds: assumed(3600, 'not published; assume an hour'),
    revocationEndpoint: assumed(false, 'none published for backend clients'),
    secretLifetimeDays: fact(null, BACKEND, 'H'),
  },
  tokens: {
    lifetimeSeconds: fact(3600, 'community reports (~1 h)', 'L'),
    refresh: fact('new-assertion', BACKEND, 'H'),
  },
  scopes: {
    syntax: fact('v1', 'fhir.epic.com app registration (scopes chosen per API at registration)', 'M'),
    granularity: fact('coarse', 'scopes granted per app registration, not per request', 'M'),
  },
  paging: fact('next-link', 'FHIR R4 searchset Bundle link[next]', 'H'),
  bulk: fact(
    {
      supported: true,
      version: '1.0.1',
      levels: ['group'],
      incremental: false,
      note: 'Group $export only, not incremental',
    },
    'fhir.epic.com Bulk FHIR',
    'H',
  ),
  reads: fact(
    { defaultStrategy: 'bulk', systemSearch: false, lastUpdatedSearch: false, overlapSeconds: 300, maxPageSize: 1000 },
    'fhir.epic.com: clinical searches need a patient; population reads are Group $export',
    'M',
  ),
  push: fact('none', 'no backend push found', 'M'),
  rateLimit: fact(null, 'not published', 'L'),
  extraParameters: fact([], BACKEND, 'M'),
  auditExport: fact(
    'coarse',
    'Epic backend OAuth docs: ' +
      'the customer maps the client id to an Epic user whose account audits the web service calls; ' +
      'the audit stays with the customer',
    'M',
  ),
  sandbox: fact('public', 'fhir.epic.com sandbox', 'H'),
};
