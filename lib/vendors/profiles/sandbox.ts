import type { VendorProfile } from './types.js';

const OURS = 'sandbox/ (this repository)';

/** Our simulated vendor: standards-conformant SMART Backend Services; personalities impersonate the others. */
export const sandbox: VendorProfile = {
  id: 'sandbox',
  name: 'ehr-connectors sandbox',
  fhirVersion: { value: 'R4', source: OURS, confidence: 'H' },
  auth: {
    methods: {
      value: ['private_key_jwt', 'client_secret_basic', 'client_secret_post', 'tls_client_auth'],
      source: OURS,
      confidence: 'H',
    },
    algorithms: { value: ['ES384', 'RS384'], source: OURS, confidence: 'H' },
    assertionAudience: { value: 'token-endpoint', source: OURS, confidence: 'H' },
    jwks: { value: 'either', source: OURS, confidence: 'H' },
    jwksCacheSeconds: { value: 5, source: OURS, confidence: 'H' },
    revocationEndpoint: { value: true, source: OURS, confidence: 'H' },
    secretLifetimeDays: { value: null, source: OURS, confidence: 'H' },
  },
  tokens: {
    lifetimeSeconds: { value: 300, source: OURS, confidence: 'H' },
    refresh: { value: 'new-assertion', source: OURS, confidence: 'H' },
  },
  scopes: {
    syntax: { value: 'v2', source: OURS, confidence: 'H' },
    granularity: { value: 'resource', source: OURS, confidence: 'H' },
  },
  paging: { value: 'next-link', source: OURS, confidence: 'H' },
  bulk: {
    value: { supported: true, version: '2.0.0', levels: ['system', 'group', 'patient'], incremental: true },
    source: OURS,
    confidence: 'H',
  },
  reads: {
    value: {
      defaultStrategy: 'search',
      systemSearch: true,
      lastUpdatedSearch: true,
      overlapSeconds: 120,
      maxPageSize: 1000,
    },
    source: OURS,
    confidence: 'H',
  },
  push: { value: 'none', source: OURS, confidence: 'H' },
  rateLimit: { value: null, source: OURS, confidence: 'H' },
  extraParameters: { value: [], source: OURS, confidence: 'H' },
  auditExport: { value: 'granular', source: OURS, confidence: 'H' },
  sandbox: { value: 'public', source: OURS, confidence: 'H' },
};
