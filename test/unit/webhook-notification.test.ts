/**
 * What the receiver keeps of a delivery: event type, known resource types and counts — from a FHIR
 * subscription notification or plain `{type, resourceTypes}` — and never an id; anything else is refused.
 */
import { describe, expect, it } from 'vitest';
import { summariseNotification } from '../../lib/webhooks/notification.js';

const backport = (type: string, focus: string[], entries: string[]) =>
  JSON.stringify({
    resourceType: 'Bundle',
    type: 'history',
    entry: [
      {
        resource: {
          resourceType: 'Parameters',
          parameter: [
            { name: 'type', valueCode: type },
            ...focus.map((reference) => ({
              name: 'notification-event',
              part: [
                { name: 'event-number', valueString: '3' },
                { name: 'focus', valueReference: { reference } },
              ],
            })),
          ],
        },
      },
      ...entries.map((fullUrl) => ({ fullUrl, request: { method: 'PUT', url: fullUrl } })),
    ],
  });

describe('summariseNotification', () => {
  it('reads an R4 backport event notification: types from entries and focus, unknown types counted', () => {
    const body = backport(
      'event-notification',
      ['Observation/obs-1', 'Basic/b-9'],
      ['https://ehr.example.org/fhir/Observation/obs-1', 'https://ehr.example.org/fhir/Encounter/e-2/_history/4'],
    );
    expect(summariseNotification(body)).toEqual({
      kind: 'change',
      eventType: 'event-notification',
      resourceTypes: ['Encounter', 'Observation'],
      unknownTypes: 1,
      entryCount: 2,
    });
    expect(JSON.stringify(summariseNotification(body))).not.toMatch(/obs-1|e-2/);
  });

  it('reads an R5 SubscriptionStatus and recognises handshakes and heartbeats', () => {
    const r5 = {
      resourceType: 'Bundle',
      type: 'subscription-notification',
      entry: [{ resource: { resourceType: 'SubscriptionStatus', type: 'heartbeat' } }],
    };
    expect(summariseNotification(JSON.stringify(r5))).toMatchObject({
      kind: 'heartbeat',
      resourceTypes: [],
      entryCount: 0,
    });
    expect(summariseNotification(backport('handshake', [], []))).toMatchObject({ kind: 'handshake' });
  });

  it('reads plain {type, resourceTypes}; an odd event type becomes "unspecified"', () => {
    expect(
      summariseNotification(
        JSON.stringify({ type: 'observation.updated', resourceTypes: ['Observation', 'Observation'] }),
      ),
    ).toEqual({
      kind: 'change',
      eventType: 'observation.updated',
      resourceTypes: ['Observation'],
      unknownTypes: 0,
      entryCount: 2,
    });
    expect(summariseNotification(JSON.stringify({ type: 'Jane Doe <jane@example.org>' })).eventType).toBe(
      'unspecified',
    );
  });

  it('refuses what it does not understand, without quoting the body', () => {
    for (const body of [
      'not json {',
      '[1,2]',
      JSON.stringify({ resourceType: 'Bundle', entry: [] }),
      JSON.stringify({ resourceTypes: 'Observation' }),
    ]) {
      expect(() => summariseNotification(body)).toThrow(/webhook body/);
    }
    expect(() => summariseNotification('secret-looking-body')).toThrow(/^webhook body: is not JSON$/);
  });
});
