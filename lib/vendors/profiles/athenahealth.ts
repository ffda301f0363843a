import { assumed, fact } from './fact.js';
import type { VendorProfile } from './types.js';

const ATHENA = 'athenahealth developer portal (docs.athenahealth.com)';

export const athenahealth: VendorProfile = {
  id: 'athenahealth',
  name: 'athenahealth',
  fhirVersion: fact('R4 (US Core 3.1.1)', ATHENA, 'H'),
  auth: {
    methods: fact(['private_key_jwt', 'client_secret_basic', 'client_secret_post'], 'third-party reports: client_credentials advertising private_key_jwt and client_secret_*', 'M'),
    algorithms: fact(['RS384', 'ES384'], ATHENA, 'M'),
    assertionAudience: fact('token-endpoint', ATHENA, 'M'),
    jwks: fact('either', ATHENA, 'M'),
    jwksCacheSeconds: assumed(3600, 'not published; assume an hour'),
    revocationEndpoint: assumed(false, 'none published'),
    secretLifetimeDays: assumed(365, 'not published; assume a year'),
  },
  tokens: {
    lifetimeSeconds: fact(null, 'not published', 'L'),
    refresh: fact('new-assertion', ATHENA, 'M'),
  },
  scopes: {
    syntax: fact('v2', ATHENA, 'M'),
    granularity: fact('resource', ATHENA, 'M'),
  },
  paging: fact('offset', 'athenahealth FHIR search paging by offset in next links', 'L'),
  bulk: fact({ supported: true, version: '2.0.0', levels: ['group'], incremental: true, note: 'not recommended for daily sync' }, ATHENA, 'H'),
  push: fact('alpha', 'event push reported in alpha', 'L'),
  rateLimit: fact({ requests: 150, perSeconds: 1, scope: 'practice', window: 'sliding', retryAfter: true }, 'figures circulate, unverified', 'L'),
  extraParameters: fact(
    [{ name: 'practiceId', in: 'query', key: 'ah-practice', required: true, description: 'the athenahealth practice, e.g. Organization/a-1.Practice-195900' }],
    ATHENA,
    'M',
  ),
  auditExport: assumed('coarse', 'not published'),
  sandbox: fact('public', 'athenahealth preview environment', 'H'),
};
