/**
 * Placeholder for the FHIR read side of the gateway (the fhir helper's file; the lead takes that version at
 * merge). It has the agreed signature and answers 501 until then.
 */
import type { TenantKeyring } from '../../keys/keyring.js';
import type { Pool } from '../../store/pool.js';
import type { GatewayAccess, GatewayResponse } from '../access.js';

export async function handleFhirRead(
  deps: { pool: Pool; keyring: TenantKeyring },
  access: GatewayAccess,
  request: { method: string; path: string; query: URLSearchParams; baseUrl: string },
): Promise<GatewayResponse> {
  void deps;
  void access;
  void request;
  return {
    status: 501,
    headers: { 'content-type': 'application/fhir+json' },
    body: {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'not-supported', diagnostics: 'FHIR reads are not available yet' }],
    },
  };
}
