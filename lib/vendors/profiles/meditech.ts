import { assumed, fact } from './fact.js';
import type { VendorProfile } from './types.js';

const GREENFIELD = 'MEDITECH Greenfield Workspace documentation';

export const meditech: VendorProfile = {
  id: 'meditech',
  name: 'MEDITECH Expanse (Greenfield)',
  fhirVersion: fact('R4 (US Core STU6)', GREENFIELD, 'M'),
  auth: {
    methods: fact(
      ['private_key_jwt', 'client_secret_basic'],
      'third-party reports: client_credentials with private_key_jwt or secret, production only',
      'M',
    ),
    algorithms: fact(['RS384'], GREENFIELD, 'L'),
    assertionAudience: fact('token-endpoint', GREENFIELD, 'L'),
    jwks: fact('registered', GREENFIELD, 'L'),
    jwksCacheSeconds: assumed(3600, 'not published; assume an hour'),
    revocationEndpoint: assumed(false, 'none published'),
    secretLifetimeDays: assumed(365, 'not published; assume a year'),
  },
  tokens: {
    lifetimeSeconds: fact(null, 'not published', 'L'),
    refresh: fact('new-assertion', GREENFIELD, 'L'),
  },
  scopes: {
    syntax: fact('v2', 'US Core STU6 implies SMART v2', 'L'),
    granularity: fact('resource', GREENFIELD, 'L'),
  },
  paging: fact('next-link', 'FHIR R4 searchset Bundle link[next]', 'M'),
  bulk: fact({ supported: false, levels: [], incremental: false, note: 'none found' }, 'not found', 'L'),
  reads: fact(
    {
      defaultStrategy: 'patient',
      systemSearch: false,
      lastUpdatedSearch: false,
      overlapSeconds: 300,
      maxPageSize: null,
    },
    `${GREENFIELD}: US Core patient-scoped searches; no bulk found`,
    'L',
  ),
  push: fact('none', 'not found', 'L'),
  rateLimit: fact(null, 'not found', 'L'),
  extraParameters: fact([], GREENFIELD, 'L'),
  auditExport: assumed('none', 'not found'),
  sandbox: fact('by-agreement', 'Greenfield access by agreement; backend services in production only', 'M'),
};
