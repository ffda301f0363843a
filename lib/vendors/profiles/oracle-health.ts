import { assumed, fact } from './fact.js';
import type { VendorProfile } from './types.js';

const MILLENNIUM = 'Oracle Health Millennium FHIR R4 documentation (fhir.cerner.com)';

export const oracleHealth: VendorProfile = {
  id: 'oracle-health',
  name: 'Oracle Health (Cerner)',
  fhirVersion: fact('R4', MILLENNIUM, 'H'),
  auth: {
    methods: fact(
      ['client_secret_basic', 'private_key_jwt'],
      'Millennium Authorization Framework, ' +
        'requesting authorization on behalf of a system (docs.oracle.com): ' +
        'system account id and secret in a Basic header; third-party guides also register a JWKS on Cerner Central',
      'M',
    ),
    algorithms: fact(['RS384', 'ES384'], 'only with private_key_jwt; not published', 'L'),
    assertionAudience: fact('token-endpoint', 'SMART Backend Services default; only with private_key_jwt', 'L'),
    jwks: fact('registered', 'third-party guides: JWKS pre-registered on Cerner Central for system apps', 'M'),
    jwksCacheSeconds: assumed(3600, 'not published; assume an hour'),
    revocationEndpoint: assumed(false, 'none published'),
    secretLifetimeDays: assumed(365, 'system account secrets are long-lived; assume a year'),
  },
  tokens: {
    lifetimeSeconds: fact(null, 'not published', 'L'),
    refresh: fact('reauthenticate', 'client_credentials issues no refresh token', 'M'),
  },
  scopes: {
    syntax: fact('v1', `${MILLENNIUM}: token URL profile smart-v1, scopes system/Patient.read`, 'M'),
    granularity: fact('resource', MILLENNIUM, 'M'),
  },
  paging: fact('next-link', MILLENNIUM, 'H'),
  bulk: fact(
    {
      supported: true,
      version: '1.0.1',
      levels: ['group', 'patient'],
      incremental: true,
      note: 'files expire after 30 days',
    },
    'Oracle Health Bulk Data (Millennium)',
    'H',
  ),
  reads: fact(
    { defaultStrategy: 'bulk', systemSearch: false, lastUpdatedSearch: true, overlapSeconds: 300, maxPageSize: 200 },
    `${MILLENNIUM}: patient-scoped searches; population reads by Bulk Data with _since`,
    'M',
  ),
  push: fact('none', 'no backend push found', 'M'),
  rateLimit: fact(null, 'none published', 'M'),
  extraParameters: fact([], MILLENNIUM, 'M'),
  auditExport: assumed('coarse', 'not published'),
  sandbox: fact('public', 'Oracle Health open sandbox', 'H'),
};
