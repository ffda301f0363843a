/**
 * `ehrctl writes policy show | set` as an operator runs it (a real ehrctl process): the built-in default until a
 * change, a change with its reason stored and audited (element names and authorities only), bad input refused
 * naming the flag — and the gateway enforcing the changed policy on the next write.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TenantKeyring } from '../../lib/keys/keyring.js';
import { ehrctlEnv, runEhrctl } from './ehrctl-process.js';
import { openKeyring } from './gateway-support.js';
import { useSyncHarness } from './support.js';
import { access, appointment, newTenant, outboxOf, storeAsSynced, writer } from './gateway-write-support.js';

const harness = useSyncHarness({ sandbox: { size: 20 }, worker: false });
const ehrctl = (...args: string[]) => runEhrctl(args, ehrctlEnv({ config: harness.config }));
let keyring: TenantKeyring;
const write = writer(() => ({ pool: harness.pool, keyring }));
let tenantId: string;
let integrationId: string;

beforeAll(async () => {
  keyring = await openKeyring(harness.pool, harness.config);
  ({
    tenantId,
    integrationIds: [integrationId = ''],
  } = await newTenant(harness));
  await storeAsSynced({ pool: harness.pool, keyring }, { tenantId, integrationId }, 'Appointment', [
    appointment('appt-w1', 'pat-w'),
  ]);
}, 120_000);

describe('ehrctl writes policy', () => {
  it('shows the default, sets a change with its reason (audited), and the gateway enforces it', async () => {
    const shown = await ehrctl('writes', 'policy', 'show', '--integration', integrationId, '--type', 'Appointment');
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/Appointment: create on, update on \(built-in default\)/);
    expect(shown.stdout).toMatch(/ {2}status: local\n/);

    const set = await ehrctl(
      'writes',
      'policy',
      'set',
      '--integration',
      integrationId,
      '--type',
      'Appointment',
      '--element',
      'description=local',
      '--element',
      'status=remote',
      '--create',
      'off',
      '--reason',
      'front desk owns descriptions (ticket 42)',
      '--json',
    );
    expect(set.code, set.stderr).toBe(0);
    const after = JSON.parse(set.stdout) as {
      source: string;
      policy: { create: boolean; elements: Record<string, string> };
    };
    expect(after.source).toBe('integration');
    expect(after.policy.create).toBe(false);
    expect(after.policy.elements.description).toBe('local');
    expect(after.policy.elements.status).toBeUndefined();
    const { rows } = await harness.pool.query<{ details: Record<string, unknown> }>(
      `SELECT details FROM audit_events WHERE action = 'writeback.policy_set' AND integration_id = $1`,
      [integrationId],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.details).toMatchObject({
      resourceType: 'Appointment',
      reason: 'front desk owns descriptions (ticket 42)',
      before: { create: true, elements: { status: 'local' } },
      after: { create: false, elements: { description: 'local' } },
    });

    const scheduler = access(tenantId, 'scheduling-sync', 'system/Appointment.cu');
    const status = await write(
      scheduler,
      'PUT',
      'Appointment/appt-w1',
      appointment('appt-w1', 'pat-w', { status: 'noshow' }),
    );
    expect(status.body).toMatchObject({ issue: [{ expression: ['Appointment.status'] }] });
    const description = await write(
      scheduler,
      'PUT',
      'Appointment/appt-w1',
      appointment('appt-w1', 'pat-w', { description: 'Moved' }),
    );
    expect(description.status, JSON.stringify(description.body)).toBe(200);
    expect((await outboxOf(harness.pool, tenantId, 'appt-w1')).map((c) => c.changed_elements)).toEqual([
      ['description'],
    ]);
    const { id: _id, ...fresh } = appointment('x', 'pat-w');
    expect((await write(scheduler, 'POST', 'Appointment', fresh)).status).toBe(422);
  });

  it('refuses an unknown authority, a vendor-assigned element and a missing reason, naming the flag', async () => {
    const base = ['writes', 'policy', 'set', '--integration', integrationId, '--type', 'Appointment'];
    const cases: Array<[string[], RegExp]> = [
      [
        ['--element', 'status=mine', '--reason', 'r'],
        /--element: status=mine: one of remote, local, shared, local-only/,
      ],
      [['--element', 'meta=local', '--reason', 'r'], /--element: meta is assigned by the vendor/],
      [['--element', 'status=local'], /required option '--reason <text>'/],
      [['--element', 'status=local', '--create', 'yes', '--reason', 'r'], /--create: on or off/],
    ];
    for (const [args, message] of cases) {
      const res = await ehrctl(...base, ...args);
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toMatch(message);
    }
  });
});
