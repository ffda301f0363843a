/**
 * Compensating controls as an integration's own settings, as an operator meets them through ehrctl:
 * registration stores the vendor profile's sync interval and (for a client secret) rotation period,
 * `integrations show` prints them with their source, `integrations update` changes one only with a
 * reason (audited), `schedule nightly` runs at the integration's interval by default, and
 * `integrations due` flags an overdue secret with exit 1.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { scheduleIdFor } from '../../lib/domain.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import { testEnv, uniqueId } from '../harness.js';
import { recordIdentifiers } from '../security/leak-registry.js';
import { ehrctlEnv, runEhrctl } from './ehrctl-process.js';
import { useSyncHarness } from './support.js';

const harness = useSyncHarness({ sandbox: { size: 20 }, worker: false });

function ehrctl(args: string[]) {
  return runEhrctl(args, ehrctlEnv({ config: harness.config, sandbox: harness.sandbox }));
}

function secretRef(): string {
  const secret = `sb-${randomBytes(18).toString('base64url')}`;
  recordIdentifiers([secret]);
  const file = path.join(testEnv().secretsDir, `${uniqueId('settings')}.secret`);
  fs.writeFileSync(file, secret, { mode: 0o600 });
  return `file:${file}`;
}

describe('integration settings from compensating controls', () => {
  it('stores the profile defaults at registration, shows them, changes them only with a reason, and schedules at the interval', async () => {
    const tenant = uniqueId('set');
    const id = `${tenant}-k`;
    expect((await ehrctl(['tenants', 'add', '--id', tenant, '--name', 'Settings Clinic'])).code).toBe(0);
    expect(
      (
        await ehrctl([
          'integrations',
          'add',
          '--id',
          id,
          '--tenant',
          tenant,
          '--vendor',
          'sandbox',
          '--types',
          'Patient',
        ])
      ).code,
    ).toBe(0);
    // The sandbox profile has no push: every 6 h; it authenticates with a key: no secret rotation period.
    expect(await getIntegration(harness.pool, id)).toMatchObject({
      syncIntervalHours: 6,
      credentialRotationDays: null,
    });
    const shown = await ehrctl(['integrations', 'show', id]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('sync interval: every 6 h — the sandbox profile at registration');
    expect(shown.stdout).toContain('audit retention: not a setting; audit rows are never deleted');

    const scheduled = await ehrctl(['schedule', 'nightly', '--integration', id, '--at', '02:00', '--timezone', 'UTC']);
    expect(scheduled.stdout).toContain("every 6 h from 02:00 UTC (the integration's sync interval)");
    const schedule = harness.temporal.client.schedule.getHandle(scheduleIdFor({ tenantId: tenant, integrationId: id }));
    expect((await schedule.describe()).spec.calendars?.[0]?.hour).toEqual(
      [2, 8, 14, 20].map((h) => ({ start: h, end: h, step: 1 })),
    );
    await schedule.delete();

    const noReason = await ehrctl(['integrations', 'update', id, '--sync-interval', '12h']);
    expect(noReason.code).not.toBe(0);
    expect(noReason.stderr).toContain('--reason');
    expect((await ehrctl(['integrations', 'update', id, '--sync-interval', '5h', '--reason', 'x'])).code).toBe(2);
    expect((await ehrctl(['integrations', 'update', id, '--rotation-days', '30', '--reason', 'x'])).stderr).toContain(
      'only client secrets have a rotation period',
    );
    const updated = await ehrctl([
      'integrations',
      'update',
      id,
      '--sync-interval',
      '12h',
      '--reason',
      'vendor asked for fewer runs',
    ]);
    expect(updated.code).toBe(0);
    const audited = await harness.pool.query<{ details: Record<string, unknown> }>(
      `SELECT details FROM audit_events WHERE action = 'integration.settings_changed' AND integration_id = $1`,
      [id],
    );
    expect(audited.rows).toEqual([
      { details: { syncIntervalHours: { from: 6, to: 12 }, reason: 'vendor asked for fewer runs' } },
    ]);
    expect((await ehrctl(['integrations', 'show', id])).stdout).toMatch(
      /sync interval: every 12 h — override by \S+ at .+ \(was 6\): vendor asked for fewer runs/,
    );
    const again = await ehrctl(['schedule', 'nightly', '--integration', id, '--at', '02:00', '--timezone', 'UTC']);
    expect(again.stdout).toContain('every 12 h from 02:00 UTC');
    await schedule.delete();
  });

  it('gives a client secret a rotation period and flags it when overdue', async () => {
    const tenant = uniqueId('due');
    const id = `${tenant}-s`;
    await ehrctl(['tenants', 'add', '--id', tenant, '--name', 'Due Clinic']);
    const added = await ehrctl([
      'integrations',
      'add',
      '--id',
      id,
      '--tenant',
      tenant,
      '--vendor',
      'sandbox',
      '--types',
      'Patient',
      '--auth-method',
      'client_secret_basic',
      '--client-secret-ref',
      secretRef(),
    ]);
    expect(added.stderr).toBe('');
    expect(await getIntegration(harness.pool, id)).toMatchObject({ credentialRotationDays: 90 });
    const fresh = await ehrctl(['integrations', 'due', '--tenant', tenant, '--json']);
    expect(fresh.code).toBe(0);
    expect(JSON.parse(fresh.stdout)).toEqual([]);
    // Registered 100 days ago (as an old row would be): overdue by 10 days.
    await harness.pool.query(
      `UPDATE integrations SET credential_rotated_at = now() - interval '100 days' WHERE id = $1`,
      [id],
    );
    const overdue = await ehrctl(['integrations', 'due', '--tenant', tenant, '--json']);
    expect(overdue.code).toBe(1);
    expect(JSON.parse(overdue.stdout)).toEqual([
      expect.objectContaining({ integration: id, authMethod: 'client_secret_basic', overdue: true }),
    ]);
    expect((await ehrctl(['integrations', 'show', id])).stdout).toMatch(/OVERDUE since \d{4}-\d{2}-\d{2}/);
    // A longer period, with a reason, makes it due again rather than overdue.
    expect(
      (
        await ehrctl([
          'integrations',
          'update',
          id,
          '--rotation-days',
          '120',
          '--reason',
          'vendor contract allows 180 days',
        ])
      ).code,
    ).toBe(0);
    const later = await ehrctl(['integrations', 'due', '--tenant', tenant, '--within-days', '30', '--json']);
    expect(later.code).toBe(0);
    expect(JSON.parse(later.stdout)).toEqual([expect.objectContaining({ integration: id, overdue: false })]);
  });
});
