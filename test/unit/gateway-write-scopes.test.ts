/**
 * The decisions of a gateway write that need no database: SMART v2 write scopes (c, u; d grants nothing; v1
 * `.write`), which held scopes cover a write (never break-glass), and what a PUT changes — hidden elements kept,
 * EHR-owned elements named, local-only ones stored but not sent, base values beside new ones.
 */
import { describe, expect, it } from 'vitest';
import type { GatewayAccess } from '../../lib/gateway/access.js';
import { grantFor } from '../../lib/gateway/fhir/policy.js';
import {
  changedElements,
  elementsNotStored,
  elementsToSend,
  mergeForUpdate,
  remoteOwned,
  updatePayload,
} from '../../lib/gateway/fhir/write-changes.js';
import { formatScope, parseScope, parseScopes, scopeCovered, splitScopes } from '../../lib/gateway/scopes.js';
import { defaultWritePolicy } from '../../lib/writeback/authority.js';

const writes = { writes: true };

describe('write scopes', () => {
  it('parses c and u in SMART order; d grants nothing; v1 .write is cu; prints them back canonically', () => {
    expect(parseScope('system/Appointment.cu', 'scope', writes)).toEqual({
      context: 'system',
      resourceType: 'Appointment',
      read: false,
      search: false,
      create: true,
      update: true,
    });
    expect(formatScope(parseScope('system/Appointment.cud', 'scope', writes))).toBe('system/Appointment.cu');
    expect(formatScope(parseScope('system/Appointment.cruds', 'scope', writes))).toBe('system/Appointment.crus');
    expect(formatScope(parseScope('system/Appointment.write', 'scope', writes))).toBe('system/Appointment.cu');
    expect(formatScope(parseScope('system/Patient.u', 'scope', writes))).toBe('system/Patient.u');
    expect(parseScopes('system/Appointment.c system/Appointment.rs', 'scope', writes).map(formatScope)).toEqual([
      'system/Appointment.crs',
    ]);
    expect(() => parseScope('system/Appointment.d', 'scope', writes)).toThrow(/d grants nothing/);
    expect(() => parseScope('system/Appointment.uc', 'scope', writes)).toThrow(/c, r, u, s in that order/);
    // Where only reads are taken (break-glass), writes are refused by name.
    expect(() => parseScope('system/Appointment.cu')).toThrow(/"system\/Appointment.cu": read-only here/);
  });

  it('covers a write only with a held c or u on the type; break-glass never grants one', () => {
    const held = splitScopes('system/Appointment.cu system/Patient.rs').scopes;
    expect(scopeCovered(held, parseScope('system/Appointment.c', 'scope', writes))).toBe(true);
    expect(scopeCovered(held, parseScope('system/Appointment.cru', 'scope', writes))).toBe(false);
    expect(scopeCovered(held, parseScope('system/Patient.u', 'scope', writes))).toBe(false);
    const access: GatewayAccess = {
      tenantId: 't',
      consumerId: 'c',
      purpose: 'clinical-sync',
      scopes: splitScopes('system/Patient.rs').scopes,
      breakGlass: [
        {
          id: 'bg-1',
          consumerId: 'c',
          scopes: splitScopes('system/Patient.crus').scopes,
          reasonCode: 'emergency-care',
          expiresAt: new Date(Date.now() + 60_000),
        },
      ],
      correlationId: 'x',
    };
    expect(grantFor(access, 'Patient', 'read')).toEqual({ scope: 'system/Patient.rs' });
    expect(grantFor(access, 'Patient', 'update')).toBeUndefined();
    expect(grantFor({ ...access, scopes: held }, 'Appointment', 'create')).toEqual({ scope: 'system/Appointment.cu' });
  });
});

describe('what an update changes', () => {
  const stored = {
    resourceType: 'Patient',
    id: 'p-1',
    meta: { versionId: '3', lastUpdated: '2026-01-01T00:00:00Z' },
    name: [{ family: 'Synthetica' }],
    telecom: [{ system: 'phone', value: '555-0100' }],
    maritalStatus: { text: 'Synthetic' },
    gender: 'female',
  };

  it('keeps what the consumer purpose hides, removes what it could see and left out, and lists changes', () => {
    const sent = { resourceType: 'Patient', id: 'p-1', name: stored.name, telecom: [{ system: 'email', value: 'x' }] };
    const merged = mergeForUpdate('Patient', stored, sent, 'scheduling-sync');
    expect(merged).toEqual({ name: stored.name, telecom: sent.telecom, maritalStatus: stored.maritalStatus });
    // gender was visible and left out: removed; meta is the vendor's and never a change.
    expect(changedElements(stored, merged)).toEqual(['gender', 'telecom']);
    const policy = defaultWritePolicy('Patient');
    expect(remoteOwned(policy, ['gender', 'telecom', '_gender'])).toEqual(['gender']);
    expect(updatePayload(stored, merged, ['gender', 'telecom'])).toEqual({
      kind: 'update',
      elements: { gender: null, telecom: sent.telecom },
      base: { gender: 'female', telecom: stored.telecom },
    });
    expect(
      elementsNotStored('Patient', { maritalStatus: {}, telecom: [] }, ['clinical-sync', 'scheduling-sync']),
    ).toEqual(['maritalStatus']);
  });

  it('sends local and shared elements back, never local-only ones', () => {
    const policy = defaultWritePolicy('Appointment');
    expect(elementsToSend(policy, ['comment', 'start', 'status', '_status'])).toEqual(['start', 'status', '_status']);
    expect(remoteOwned(policy, ['comment', 'start', 'status', 'description'])).toEqual(['description']);
  });
});
