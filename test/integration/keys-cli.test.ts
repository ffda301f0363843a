/**
 * `ehrctl keys` as an operator meets it (a real process): rotate with --wait prints the steps and the
 * outcome, status shows versions and the last rotation, schedule creates a Temporal Schedule whose
 * next run status shows, and a rotation asked for two keys at once is refused as bad usage.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { activityFaults } from '../activity-faults.js';
import { TenantIdKey } from '../../client/sync-client.js';
import { uniqueId } from '../harness.js';
import { registerSandboxTenant, useSyncHarness } from './support.js';
import { runEhrctl, type EhrctlResult } from './ehrctl-process.js';

const harness = useSyncHarness({ sandbox: { size: 50 } });
afterAll(() => activityFaults.failOnce.clear());

function ehrctl(args: string[]): Promise<EhrctlResult> {
  const c = harness.config;
  return runEhrctl(args, {
    EHR_DEV_DATA_DIR: path.join(c.EHR_SECRETS_DIR, `no-stack-${uniqueId('d')}`),
    DATABASE_URL: c.DATABASE_URL,
    TEMPORAL_ADDRESS: c.TEMPORAL_ADDRESS,
    TEMPORAL_TASK_QUEUE: c.TEMPORAL_TASK_QUEUE,
    EHR_KEK_DIR: c.EHR_KEK_DIR,
    EHR_SECRETS_DIR: c.EHR_SECRETS_DIR,
    EHR_AUDIT_ANCHOR_PATH: c.EHR_AUDIT_ANCHOR_PATH,
  });
}

interface Status {
  tenantKeys: Array<{
    tenantId: string;
    primary: number;
    decryptOnly: number[];
    destroyed: number[];
    pseudonymKey: string | null;
  }>;
  signingKeys: Array<{ integrationId: string; current: string | null; successor: string | null; retired: number }>;
  lastRotations: Array<{ kind: string; scope: string; outcome: string }>;
  scheduled: Array<{ id: string; next: string }>;
}

describe('ehrctl keys', () => {
  it('rotates a tenant key with --wait, shows it in status, schedules the next one', { timeout: 120_000 }, async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Patient'],
    });
    const first = await ehrctl(['keys', 'rotate', '--tenant', tenantId, '--grace', '1s', '--wait']);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`started key-rotation/tenant-dek/${tenantId}/\\d{4}-\\d{2}-\\d{2}T`));
    expect(first.stdout).toContain('outcome: completed');
    const workflowId = /started (\S+)/.exec(first.stdout)![1]!;
    expect(
      (await harness.temporal.client.workflow.getHandle(workflowId).describe()).typedSearchAttributes.get(TenantIdKey),
    ).toBe(tenantId);
    const second = await ehrctl(['keys', 'rotate', '--tenant', tenantId, '--grace', '1s', '--wait']);
    expect(second.stdout).toContain('old DEK retired');
    expect(second.stdout).toContain('outcome: completed');
    // A finished workflow refuses signals: exit 3, saying so.
    const late = await ehrctl(['sync', 'pause', workflowId]);
    expect(late.code).toBe(3);
    expect(late.stderr).toContain(`workflow "${workflowId}" has already completed`);

    const scheduled = await ehrctl(['keys', 'schedule', '--tenant', tenantId, '--every', '90d']);
    expect(scheduled.code).toBe(0);
    expect(scheduled.stdout).toContain(`schedule key-rotation/tenant-dek/${tenantId} created: every 90d`);
    try {
      const status = await ehrctl(['keys', 'status', '--json']);
      expect(status.code).toBe(0);
      const parsed = JSON.parse(status.stdout) as Status;
      // v1 destroyed by the second rotation, after the pseudonym key it derives was stored (wrapped by the KEK).
      expect(parsed.tenantKeys.find((t) => t.tenantId === tenantId)).toMatchObject({
        primary: 2,
        decryptOnly: [],
        destroyed: [1],
        pseudonymKey: expect.stringMatching(/^local v\d+$/) as unknown,
      });
      // The integration's signing key: one current kid, no successor yet.
      expect(parsed.signingKeys.find((k) => k.integrationId === integrationIds[0])).toMatchObject({
        current: expect.any(String) as unknown,
        successor: null,
        retired: 0,
      });
      expect(parsed.lastRotations).toContainEqual(
        expect.objectContaining({ kind: 'tenant-dek', scope: tenantId, outcome: 'completed' }),
      );
      const next = parsed.scheduled.find((s) => s.id === `key-rotation/tenant-dek/${tenantId}`)?.next;
      expect(Date.parse(next ?? '')).toBeGreaterThan(Date.now());
      const text = await ehrctl(['keys', 'status']);
      const sections = ['key-encryption keys', 'tenant data keys', 'integration signing keys', 'webhook secrets'];
      expect(text.stdout).toMatch(new RegExp([...sections, 'scheduled rotations'].join('[\\s\\S]*')));
    } finally {
      await harness.temporal.client.schedule.getHandle(`key-rotation/tenant-dek/${tenantId}`).delete();
    }
  });

  it(
    'a rotation that rolled back exits 1 and prints why; the old key is primary again',
    { timeout: 120_000 },
    async () => {
      const { tenantId } = await registerSandboxTenant(harness.pool, harness.sandbox, { resourceTypes: ['Patient'] });
      expect((await ehrctl(['keys', 'rotate', '--tenant', tenantId, '--wait'])).code).toBe(0); // the tenant's first DEK
      activityFaults.failOnce.add('retireTenantDek'); // the worker runs in this process
      const res = await ehrctl(['keys', 'rotate', '--tenant', tenantId, '--grace', '1s', '--wait']);
      expect(res.code).toBe(1);
      expect(res.stdout).toContain('outcome: rolled-back');
      const reason =
        'step retireTenantDek failed with TEST_INJECTED_FAULT: injected fault in retireTenantDek; ' +
        'the previous key is in use again';
      expect(res.stderr).toMatch(
        new RegExp(`^ehrctl: key rotation key-rotation/tenant-dek/${tenantId}/\\S+ rolled back: ${reason}\\n$`),
      );
      const status = JSON.parse((await ehrctl(['keys', 'status', '--json'])).stdout) as Status;
      expect(status.tenantKeys.find((t) => t.tenantId === tenantId)).toMatchObject({ primary: 1, decryptOnly: [2] });
    },
  );

  it('refuses a rotation that names two keys, or a signing key without an integration', async () => {
    const both = await ehrctl(['keys', 'rotate', '--kek', '--payload-key']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('choose exactly one');
    const noIntegration = await ehrctl(['keys', 'rotate', '--signing-key']);
    expect(noIntegration.code).toBe(2);
    expect(noIntegration.stderr).toContain('--integration');
    const badGrace = await ehrctl(['keys', 'rotate', '--payload-key', '--grace', 'soon']);
    expect(badGrace.code).toBe(2);
  });
});
