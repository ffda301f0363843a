import { assumed, fact } from './fact.js';
import type { VendorProfile } from './types.js';

const MILLENNIUM = 'Oracle Health Millennium FHIR R4 documentation (fhir.cerner.com)';

export const oracleHealth: VendorProfile = {
  id: 'oracle-health',
  name: 'Oracle Health (Cerner)',
  fhirVersion: fact('R4', MILLENNIUM, 'H'),
  auth: {
    methods: fact(['client_secret_basic'], 'third-party reports: system account with client secret via HTTP Basic', 'M'),
    algorithms: fact([], 'secret-based', 'M'),
    assertionAudience: fact('token-endpoint', 'not applicable to secrets', 'M'),
    jwks: fact('not-applicable', 'secret-based', 'M'),
    jwksCacheSeconds: assumed(0, 'no JWKS'),
    revocationEndpoint: assumed(false, 'none published'),
    secretLifetimeDays: assumed(365, 'system account secrets are long-lived; assume a year'),
  },
  tokens: {
    lifetimeSeconds: fact(null, 'not published', 'L'),
    refresh: fact('reauthenticate', 'client_credentials issues no refresh token', 'M'),
  },
  scopes: {
    syntax: fact('v1', MILLENNIUM, 'M'),
    granularity: fact('resource', MILLENNIUM, 'M'),
  },
  paging: fact('next-link', MILLENNIUM, 'H'),
  bulk: fact({ supported: true, version: '1.0.1', levels: ['group', 'patient'], incremental: true, note: 'files expire after 30 days' }, 'Oracle Health Bulk Data (Millennium)', 'H'),
  push: fact('none', 'no backend push found', 'M'),
  rateLimit: fact(null, 'none published', 'M'),
  extraParameters: fact([], MILLENNIUM, 'M'),
  auditExport: assumed('coarse', 'not published'),
  sandbox: fact('public', 'Oracle Health open sandbox', 'H'),
};
