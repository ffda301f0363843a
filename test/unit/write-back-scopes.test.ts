/**
 * Write scopes travel only on the vendor door's write token: a read token asks for exactly the read scopes, the
 * write token adds the write scopes of the types the integration writes back, in the profile's syntax (v2 `.cud`,
 * v1 `.write`) — so a vendor registration without write scopes fails the writes, never the reads.
 */
import { describe, expect, it } from 'vitest';
import type { ResourceType } from '../../lib/domain.js';
import { tokenRequest } from '../../lib/vendors/client-auth.js';
import type { IntegrationCredentials } from '../../lib/vendors/vendor-call.js';

function cred(vendor: string, writeTypes?: ResourceType[]): IntegrationCredentials {
  return {
    tenantId: 't',
    integrationId: 'i',
    vendor,
    baseUrl: 'https://ehr.example.org/fhir',
    tokenUrl: 'https://ehr.example.org/token',
    clientId: 'client-1',
    scopes: [],
    resourceTypes: ['Patient', 'Appointment', 'Observation'],
    ...(writeTypes ? { writeTypes } : {}),
    authMethod: 'client_secret_post',
    clientSecret: async () => 'synthetic-secret-value',
    signAssertion: async () => '',
  };
}

const scopeOf = async (c: IntegrationCredentials, forWrites: boolean) =>
  new URLSearchParams((await tokenRequest(c, forWrites)).body).get('scope')?.split(' ');

describe('write scopes', () => {
  it('a read token asks for read scopes only; the write token adds the written types', async () => {
    const sandbox = cred('sandbox', ['Patient', 'Appointment']);
    expect(await scopeOf(sandbox, false)).toEqual([
      'system/Patient.rs',
      'system/Appointment.rs',
      'system/Observation.rs',
    ]);
    expect(await scopeOf(sandbox, true)).toEqual([
      'system/Patient.rs',
      'system/Appointment.rs',
      'system/Observation.rs',
      'system/Patient.cud',
      'system/Appointment.cud',
    ]);
    // v1 syntax (Epic): `.write`.
    expect(await scopeOf(cred('epic', ['Appointment']), true)).toContain('system/Appointment.write');
    // An integration that writes nothing asks for nothing more, even on the write token.
    expect(await scopeOf(cred('sandbox'), true)).toEqual(await scopeOf(cred('sandbox'), false));
  });
});
