import { assumed, fact } from './fact.js';
import type { VendorProfile } from './types.js';

const ATHENA = 'athenahealth developer portal (docs.athenahealth.com)';
const AUTH_GUIDE = 'docs.athenahealth.com/api/guides/authentication-and-url-locations and /token-endpoint';

export const athenahealth: VendorProfile = {
  id: 'athenahealth',
  name: 'athenahealth',
  fhirVersion: fact('R4 (US Core 3.1.1)', ATHENA, 'H'),
  auth: {
    methods: fact(
      ['private_key_jwt', 'client_secret_basic'],
      `${AUTH_GUIDE}: 2-legged OAuth (client_credentials) with a client assertion JWT or the secret in a Basic header`,
      'H',
    ),
    algorithms: fact(['RS384', 'ES384'], ATHENA, 'M'),
    assertionAudience: fact('token-endpoint', ATHENA, 'M'),
    jwks: fact('either', `${AUTH_GUIDE}: imported public JWKS or self-hosted JWKS URL`, 'H'),
    jwksCacheSeconds: assumed(3600, 'not published; assume an hour'),
    revocationEndpoint: assumed(false, 'none published'),
    secretLifetimeDays: assumed(365, 'not published; assume a year'),
  },
  tokens: {
    lifetimeSeconds: fact(
      3600,
      `${AUTH_GUIDE}: each token is valid for one hour; ` +
        `token requests limited to 50/min in production, 5/min in preview`,
      'H',
    ),
    refresh: fact('new-assertion', `${AUTH_GUIDE}: 2-legged OAuth returns only an access token`, 'H'),
  },
  scopes: {
    syntax: fact('v2', ATHENA, 'M'),
    granularity: fact('resource', ATHENA, 'M'),
  },
  paging: fact('offset', 'athenahealth FHIR search paging by offset in next links', 'L'),
  bulk: fact(
    {
      supported: true,
      version: '2.0.0',
      levels: ['group'],
      incremental: true,
      note: 'not recommended for daily sync; bulk backfills need athenahealth approval',
    },
    `${ATHENA}, best practices: data backfills`,
    'H',
  ),
  reads: fact(
    { defaultStrategy: 'patient', systemSearch: false, lastUpdatedSearch: true, overlapSeconds: 300, maxPageSize: 100 },
    `${ATHENA}: searches are patient-scoped; bulk not recommended for daily sync`,
    'M',
  ),
  push: fact('alpha', 'event push reported in alpha', 'L'),
  rateLimit: fact(
    { requests: 10, perSeconds: 1, scope: 'client', window: 'sliding', retryAfter: false },
    'apis.io rate-limit profile: ~10 requests/s per app per environment, ' +
      'exact figure disclosed to registered developers; the portal documents a daily API quota in response headers',
    'L',
  ),
  extraParameters: fact(
    [
      {
        name: 'practiceId',
        in: 'query',
        key: 'ah-practice',
        required: true,
        description: 'the athenahealth practice, e.g. Organization/a-1.Practice-195900',
      },
    ],
    'fhir.athena.io Athena Core IG, ' +
      'extension ah-practice (practice = Organization a-1.Practice-{id}); ' +
      'the search parameter name is from third-party guides',
    'M',
  ),
  auditExport: assumed('coarse', 'not published'),
  sandbox: fact('public', 'athenahealth preview environment', 'H'),
};
