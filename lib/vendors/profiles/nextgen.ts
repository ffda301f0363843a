import { assumed, fact } from './fact.js';
import type { VendorProfile } from './types.js';

const NG = 'third-party reports on the NextGen Enterprise API';

export const nextgen: VendorProfile = {
  id: 'nextgen',
  name: 'NextGen Healthcare',
  fhirVersion: fact('R4 / DSTU2', 'NextGen API developer portal', 'M'),
  auth: {
    methods: fact(
      ['client_secret_post'],
      `${NG}: Global Service Account auth sends client_id, client_secret and site_id as request parameters`,
      'M',
    ),
    algorithms: fact([], 'secret-based', 'M'),
    assertionAudience: fact('token-endpoint', 'not applicable to secrets', 'M'),
    jwks: fact('not-applicable', 'secret-based', 'M'),
    jwksCacheSeconds: assumed(0, 'no JWKS'),
    revocationEndpoint: assumed(false, 'none published'),
    secretLifetimeDays: assumed(365, 'long-lived client secret'),
  },
  tokens: {
    lifetimeSeconds: fact(null, 'not published', 'L'),
    refresh: fact('refresh-token', 'refresh within 48 h', 'L'),
  },
  scopes: {
    syntax: fact('v1', NG, 'L'),
    granularity: fact('coarse', 'enterprise API access is granted per site', 'L'),
  },
  paging: fact('offset', NG, 'L'),
  bulk: fact({ supported: true, levels: ['group'], incremental: false, note: 'exists; details unverified' }, NG, 'L'),
  reads: fact(
    {
      defaultStrategy: 'patient',
      systemSearch: false,
      lastUpdatedSearch: false,
      overlapSeconds: 300,
      maxPageSize: null,
    },
    `${NG}: patient-scoped US Core searches`,
    'L',
  ),
  push: fact('none', 'not found', 'L'),
  rateLimit: fact(null, 'not disclosed', 'M'),
  extraParameters: fact(
    [
      {
        name: 'siteId',
        in: 'header',
        key: 'X-NG-SiteId',
        required: true,
        description: 'the NextGen enterprise site the practice lives in',
      },
    ],
    `${NG}: site_id goes with the token request and every call carries an X-NG-SessionId header naming ` +
      'enterprise and practice; a session adapter is still needed, this header is a placeholder',
    'L',
  ),
  auditExport: assumed('none', 'not found'),
  sandbox: fact('by-agreement', 'developer program', 'M'),
};
