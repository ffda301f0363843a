import { assumed, fact } from './fact.js';
import type { VendorProfile } from './types.js';

const NG = 'third-party reports on the NextGen Enterprise API';

export const nextgen: VendorProfile = {
  id: 'nextgen',
  name: 'NextGen Healthcare',
  fhirVersion: fact('R4 / DSTU2', 'NextGen API developer portal', 'M'),
  auth: {
    methods: fact(['client_secret_post'], `${NG}: client id/secret plus site id and a session header`, 'M'),
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
  push: fact('none', 'not found', 'L'),
  rateLimit: fact(null, 'not disclosed', 'M'),
  extraParameters: fact(
    [{ name: 'siteId', in: 'header', key: 'X-NG-SiteId', required: true, description: 'the NextGen enterprise site the practice lives in' }],
    NG,
    'L',
  ),
  auditExport: assumed('none', 'not found'),
  sandbox: fact('by-agreement', 'developer program', 'M'),
};
