/**
 * `ehrctl keys rotate | schedule | status`: key rotation as durable workflows (workflows/key-rotation.ts),
 * started now or by a Temporal Schedule, and a view of every key's versions, states and floors.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import type { Command } from 'commander';
import { InvalidArgumentError, KeyRotationRolledBackError } from '../../lib/errors/index.js';
import { keyStatus } from '../../lib/keys/key-status-repository.js';
import { activeIntegrationIds } from '../../lib/integrations/repository.js';
import type { KeyKind, KeyRotationInput, KeyRotationResult } from '../../workflows/key-rotation-api.js';
import { withContext } from '../context.js';
import { IntegrationIdKey, TenantIdKey } from '../sync-client.js';
import { print, printJson, table } from '../output.js';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `90d`, `12h`, `30m`, `45s` → seconds. */
export function parseDurationSeconds(value: string, option: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(value);
  if (!m) throw new InvalidArgumentError(option, 'expected a number and a unit (s, m, h, d), e.g. 90d or 30s');
  return Number(m[1]) * UNIT_SECONDS[m[2]!]!;
}

export function rotationScope(input: Pick<KeyRotationInput, 'tenantId' | 'integrationId'>): string {
  return input.tenantId ?? input.integrationId ?? 'global';
}

/** `key-rotation/<kind>/<scope>/<ISO ms>`. */
export function keyRotationWorkflowId(kind: KeyKind, scope: string, at: Date = new Date()): string {
  return `key-rotation/${kind}/${scope}/${at.toISOString()}`;
}

/** Starts a rotation; a tenant's or integration's rotation is findable in the Web UI by TenantId / IntegrationId. */
export async function startKeyRotation(
  client: Client,
  taskQueue: string,
  input: KeyRotationInput,
): Promise<WorkflowHandle> {
  const typedSearchAttributes = [
    ...(input.tenantId ? [{ key: TenantIdKey, value: input.tenantId }] : []),
    ...(input.integrationId ? [{ key: IntegrationIdKey, value: input.integrationId }] : []),
  ];
  return client.workflow.start('keyRotation', {
    taskQueue,
    workflowId: keyRotationWorkflowId(input.kind, rotationScope(input)),
    args: [input],
    typedSearchAttributes,
  });
}

export async function keyRotationResult(handle: WorkflowHandle): Promise<KeyRotationResult> {
  return (await handle.result()) as KeyRotationResult;
}

interface KindOptions {
  kek?: boolean;
  tenant?: string;
  signingKey?: boolean;
  signingKeys?: boolean;
  webhookSecret?: boolean;
  payloadKey?: boolean;
  integration?: string;
}

function kindOf(opts: KindOptions): Pick<KeyRotationInput, 'kind' | 'tenantId' | 'integrationId'> {
  const chosen = [
    opts.kek,
    opts.tenant !== undefined,
    opts.signingKey || opts.signingKeys,
    opts.webhookSecret,
    opts.payloadKey,
  ].filter(Boolean).length;
  if (chosen !== 1)
    throw new InvalidArgumentError(
      'key',
      'choose exactly one of --kek, --tenant T, --signing-key, --webhook-secret, --payload-key',
    );
  if (opts.kek) return { kind: 'kek' };
  if (opts.payloadKey) return { kind: 'payload-key' };
  if (opts.tenant !== undefined) return { kind: 'tenant-dek', tenantId: opts.tenant };
  const kind: KeyKind = opts.webhookSecret ? 'webhook-secret' : 'signing-key';
  if (!opts.integration && !opts.signingKeys)
    throw new InvalidArgumentError('--integration', `is required with --${kind}`);
  return opts.integration ? { kind, integrationId: opts.integration } : { kind };
}

function printResult(result: KeyRotationResult): void {
  table(result.steps.map((s) => ({ at: s.at, step: s.step, detail: s.detail ? JSON.stringify(s.detail) : '' })));
  print(`outcome: ${result.outcome}`);
}

/** Why a rotation rolled back, from its `failed` step: which step, its error code and message. */
export function rollbackReason(result: KeyRotationResult): string {
  const failed = result.steps.find((s) => s.step === 'failed')?.detail ?? {};
  const step = typeof failed['activity'] === 'string' ? `step ${failed['activity']}` : 'a step';
  const code = typeof failed['errorCode'] === 'string' ? failed['errorCode'] : 'UNCLASSIFIED';
  const message = typeof failed['message'] === 'string' ? `: ${failed['message']}` : '';
  return `${step} failed with ${code}${message}; the previous key is in use again`;
}

export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('key rotation and key status');
  const withKindOptions = (c: Command): Command =>
    c
      .option('--kek', 'the key-encryption key')
      .option('--tenant <id>', "a tenant's data key (records are re-encrypted)")
      .option('--webhook-secret', "an integration's webhook secret (with --integration)")
      .option('--payload-key', 'the Temporal payload key')
      .option('--integration <id>', 'integration id');
  withKindOptions(keys.command('rotate').description('rotate a key now (a workflow; compensates on failure)'))
    .option('--signing-key', "an integration's client-assertion signing key (with --integration)")
    .option('--grace <duration>', 'grace / dual-acceptance window, e.g. 7d or 30s (default: per kind)')
    .option('--reason <text>', 'why (recorded in the audit trail; no PHI)', 'operator rotation')
    .option('--wait', 'wait for the result and print its steps')
    .action(async (opts: KindOptions & { grace?: string; reason: string; wait?: boolean }) =>
      withContext(async (ctx) => {
        const input: KeyRotationInput = { ...kindOf(opts), requestedBy: ctx.audit.actor, reason: opts.reason };
        if (opts.grace !== undefined) input.graceSeconds = parseDurationSeconds(opts.grace, '--grace');
        const handle = await startKeyRotation(await ctx.temporal(), ctx.config.TEMPORAL_TASK_QUEUE, input);
        print(`started ${handle.workflowId}`);
        if (!opts.wait) return;
        const result = await keyRotationResult(handle);
        printResult(result);
        if (result.outcome === 'rolled-back') {
          throw new KeyRotationRolledBackError(handle.workflowId, rollbackReason(result));
        }
      }),
    );
  withKindOptions(
    keys
      .command('schedule')
      .description('rotate a key on a Temporal Schedule (e.g. --kek --every 365d, --signing-keys --every 90d)'),
  )
    .option('--signing-keys', 'the signing key of every private_key_jwt integration (or one with --integration)')
    .requiredOption('--every <duration>', 'interval, e.g. 365d or 90d')
    .action(async (opts: KindOptions & { every: string }) =>
      withContext(async (ctx) => {
        const every = parseDurationSeconds(opts.every, '--every');
        const base = kindOf(opts);
        let targets: Array<Pick<KeyRotationInput, 'kind' | 'tenantId' | 'integrationId'>> = [base];
        if (base.kind === 'signing-key' && !base.integrationId) {
          const ids = await activeIntegrationIds(await ctx.db(), { authMethod: 'private_key_jwt' });
          targets = ids.map((id) => ({ kind: 'signing-key', integrationId: id }));
        }
        const client = await ctx.temporal();
        for (const t of targets) {
          const scope = rotationScope(t);
          const input: KeyRotationInput = {
            ...t,
            requestedBy: `schedule:${ctx.audit.actor}`,
            reason: `scheduled every ${opts.every}`,
          };
          const handle = await client.schedule.create({
            scheduleId: `key-rotation/${t.kind}/${scope}`,
            spec: { intervals: [{ every: `${every}s` }] },
            action: {
              type: 'startWorkflow',
              workflowType: 'keyRotation',
              taskQueue: ctx.config.TEMPORAL_TASK_QUEUE,
              workflowId: `key-rotation/${t.kind}/${scope}/scheduled`,
              args: [input],
            },
            policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
          });
          print(`schedule ${handle.scheduleId} created: every ${opts.every}`);
        }
        if (targets.length === 0) print('no private_key_jwt integrations to schedule');
      }),
    );
  keys
    .command('status')
    .description('key versions, states, floors, last rotations and the next scheduled ones')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) =>
      withContext(async (ctx) => {
        const db = await ctx.db();
        const status = {
          ...(await keyStatus(db)),
          scheduled: [] as Array<{ id: string; next: string; paused: boolean }>,
        };
        for await (const s of (await ctx.temporal()).schedule.list()) {
          if (s.scheduleId.startsWith('key-rotation/'))
            status.scheduled.push({
              id: s.scheduleId,
              next: s.info.nextActionTimes[0]?.toISOString() ?? '-',
              paused: s.state.paused,
            });
        }
        if (opts.json) return printJson(status);
        print('key-encryption keys');
        table(
          status.kek.map((k) => ({
            kek: k.kekId,
            version: k.version,
            state: k.state,
            floor: k.floor,
            destroyAfter: k.destroyAfter ?? '',
          })),
        );
        print('\ntenant data keys');
        table(
          status.tenantKeys.map((t) => ({
            tenant: t.tenantId,
            primary: t.primary ?? '-',
            decryptOnly: t.decryptOnly.join(',') || '-',
            destroyed: t.destroyed.join(',') || '-',
            pseudonymKeyKek: t.pseudonymKey ?? 'not stored yet',
          })),
        );
        print('\npayload keys');
        table(status.payloadKeys.map((p) => ({ keyId: p.keyId, status: p.status })));
        print('\nintegration signing keys (kid)');
        if (status.signingKeys.length === 0) print('none');
        table(
          status.signingKeys.map((k) => ({
            integration: k.integrationId,
            current: k.current ?? '-',
            successor: k.successor ?? '-',
            previous: k.previous ?? '-',
            retired: String(k.retired),
          })),
        );
        print('\nwebhook secrets (version)');
        if (status.webhookSecrets.length === 0) print('none');
        table(
          status.webhookSecrets.map((w) => ({
            integration: w.integrationId,
            current: String(w.current ?? '-'),
            previous: String(w.previous ?? '-'),
            retired: String(w.retired),
          })),
        );
        print('\nlast rotations');
        if (status.lastRotations.length === 0) print('none');
        table(status.lastRotations.map((r) => ({ kind: r.kind, scope: r.scope, outcome: r.outcome, at: r.at })));
        print('\nscheduled rotations');
        if (status.scheduled.length === 0) print('none');
        table(status.scheduled.map((s) => ({ id: s.id, next: s.next, paused: String(s.paused) })));
      }),
    );
}
