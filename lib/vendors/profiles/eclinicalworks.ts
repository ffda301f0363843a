import { assumed, fact } from './fact.js';
import type { VendorProfile } from './types.js';

const ECW = 'eClinicalWorks FHIR developer documentation (fhir.eclinicalworks.com)';

export const eclinicalworks: VendorProfile = {
  id: 'eclinicalworks',
  name: 'eClinicalWorks',
  fhirVersion: fact('R4', ECW, 'M'),
  auth: {
    methods: fact(['private_key_jwt'], 'backend services for bulk access', 'M'),
    algorithms: fact(['RS384'], ECW, 'L'),
    assertionAudience: fact('token-endpoint', ECW, 'L'),
    jwks: fact('hosted-url', ECW, 'L'),
    jwksCacheSeconds: assumed(3600, 'not published; assume an hour'),
    revocationEndpoint: assumed(false, 'none published'),
    secretLifetimeDays: fact(null, 'key-based', 'L'),
  },
  tokens: {
    lifetimeSeconds: fact(null, 'not published', 'L'),
    refresh: fact('new-assertion', ECW, 'L'),
  },
  scopes: {
    syntax: fact('v1', ECW, 'L'),
    granularity: fact('coarse', 'bulk scopes grant every resource type', 'L'),
  },
  paging: fact('next-link', 'FHIR R4 searchset Bundle link[next]', 'M'),
  bulk: fact({ supported: true, version: '1.0.1', levels: ['group'], incremental: false }, 'third-party reports', 'M'),
  push: fact('hl7v2-middleware', 'no FHIR push; HL7v2 ADT via middleware', 'M'),
  rateLimit: fact({ requests: 250, perSeconds: 60, scope: 'base-url', window: 'fixed', retryAfter: false }, 'third-party reports: 250 calls/min per practice base URL; a 429 blocks the rest of the minute, no Retry-After', 'M'),
  extraParameters: fact([], ECW, 'L'),
  auditExport: assumed('none', 'not found'),
  sandbox: fact('by-agreement', 'developer program registration', 'M'),
};
