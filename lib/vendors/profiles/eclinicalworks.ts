import { assumed, fact } from './fact.js';
import type { VendorProfile } from './types.js';

const ECW = 'eClinicalWorks FHIR developer documentation (fhir.eclinicalworks.com)';
const GUIDE = 'third-party integration guide (doordoc.com eCW constraints and rate limits)';

export const eclinicalworks: VendorProfile = {
  id: 'eclinicalworks',
  name: 'eClinicalWorks',
  fhirVersion: fact('R4 (US Core 3.1.1 / 6.1.0)', 'third-party capability survey (usecobalt.com)', 'M'),
  auth: {
    methods: fact(['private_key_jwt'], 'backend services for bulk access', 'M'),
    algorithms: fact(['RS384'], `${GUIDE}: RS384 is the only accepted signing algorithm`, 'M'),
    assertionAudience: fact('token-endpoint', ECW, 'L'),
    jwks: fact('hosted-url', `${GUIDE}: the JWKS URL must be whitelisted by eCW support`, 'M'),
    jwksCacheSeconds: assumed(3600, 'not published; assume an hour'),
    revocationEndpoint: assumed(false, 'none published'),
    secretLifetimeDays: fact(null, 'key-based', 'L'),
  },
  tokens: {
    lifetimeSeconds: fact(300, `${GUIDE}: backend service tokens last 5 minutes`, 'M'),
    refresh: fact('new-assertion', `${GUIDE}: no refresh token for backend services`, 'M'),
  },
  scopes: {
    syntax: fact('v1', ECW, 'L'),
    granularity: fact('coarse', 'bulk scopes grant every resource type', 'L'),
  },
  paging: fact('next-link', 'FHIR R4 searchset Bundle link[next]', 'M'),
  bulk: fact({ supported: true, version: '1.0.1', levels: ['group'], incremental: false }, 'third-party reports', 'M'),
  reads: fact(
    {
      defaultStrategy: 'patient',
      systemSearch: false,
      lastUpdatedSearch: false,
      overlapSeconds: 300,
      maxPageSize: null,
    },
    `${GUIDE}: patient-scoped US Core searches within the per-minute limit`,
    'L',
  ),
  push: fact(
    'hl7v2-middleware',
    'third-party surveys: no webhooks or FHIR Subscriptions; HL7v2 ADT via middleware',
    'M',
  ),
  rateLimit: fact(
    { requests: 250, perSeconds: 60, scope: 'base-url', window: 'fixed', retryAfter: false },
    `${GUIDE}: since 2025-10-07, 250 calls/min per practice base URL counting FHIR, ` +
      `/authorize and /token; a 429 blocks the rest of the minute, the counter resets on the minute`,
    'M',
  ),
  extraParameters: fact([], ECW, 'L'),
  auditExport: assumed('none', 'not found'),
  sandbox: fact('public', 'third-party surveys: sandbox after developer portal signup', 'M'),
};
