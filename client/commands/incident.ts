/**
 * `ehrctl incident …`: declare an incident (the containment workflow `incident/<id>`), read its
 * timeline, and steer it through updates (notes, severity, notifications sent, approval).
 */
import os from 'node:os';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import type { IncidentTimeline, Recipient, Severity } from '../../workflows/incident-api.js';
import {
  addIncidentNote,
  declareIncident,
  escalateIncident,
  incidentHandle,
  incidentTimeline,
  recordIncidentNotification,
} from '../incident-client.js';
import {
  INCIDENT_SEVERITIES as SEVERITIES,
  NOTIFICATION_RECIPIENTS as RECIPIENTS,
  integrationsInScope,
  parseScope,
} from '../../lib/incidents/scope.js';
import { listIncidents } from '../../lib/incidents/store.js';
import { ID_PATTERN } from '../../lib/domain.js';
import { withContext } from '../context.js';
import { devSandboxAdminFor } from '../dev-sandboxes.js';
import { print, printJson, table } from '../output.js';
import { registerIncidentRecoveryCommands } from './incident-recovery.js';

const defaultIdentity = (): string => `${os.userInfo().username}@${os.hostname()}`.replace(/[^A-Za-z0-9@._:+-]/g, '-');

function oneOf<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new InvalidArgumentError(option, `one of ${allowed.join(', ')}`);
  return value as T;
}

function newIncidentId(): string {
  const now = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').toLowerCase();
  return `inc-${now}-${Math.random().toString(16).slice(2, 6)}`;
}

function printTimeline(t: IncidentTimeline): void {
  print(
    `incident ${t.incidentId}${t.drill ? ' (DRILL)' : ''}: ${t.status}, severity ${t.severity}, ` +
      `scope ${t.scope} (${t.integrations} integrations)`,
  );
  print(`declared by ${t.declaredBy} at ${t.declaredAt}: ${t.reason}`);
  print(
    `time to contain: ${t.timeToContainMs === null ? '-' : `${t.timeToContainMs} ms`}; ` +
      `time to recover: ${t.timeToRecoverMs === null ? '-' : `${t.timeToRecoverMs} ms`}`,
  );
  print(`evidence: ${t.evidenceId ?? '-'}; approved by: ${t.approvedBy ?? '-'}`);
  printRotations(t);
  // In time order (parallel steps are recorded together once all have finished); sort is stable.
  const entries = [...t.entries].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  table(
    entries.map((e) => ({ at: e.at, step: e.step, actor: e.actor, detail: e.detail ? JSON.stringify(e.detail) : '' })),
  );
}

/** The child rotations, and what to do about one that blocks recovery. */
function printRotations(t: IncidentTimeline): void {
  const rotations = t.rotations ?? [];
  for (const r of rotations) {
    const state = r.overriddenBy
      ? `${r.outcome}, overridden by ${r.overriddenBy}: ${r.overrideReason ?? ''}`
      : r.outcome;
    print(`rotation ${r.rotation}: ${state} (${r.workflowId}${r.attempts > 1 ? `, attempt ${r.attempts}` : ''})`);
  }
  const blocking = rotations.filter((r) => (r.outcome === 'failed' || r.outcome === 'rolled-back') && !r.overriddenBy);
  if (blocking.length === 0 || t.status === 'recovered') return;
  print(`recovery is blocked by ${blocking.map((r) => r.rotation).join(', ')}: the old key may still be in use`);
  for (const r of blocking) {
    print(`  retry:    ehrctl incident retry-rotation ${t.incidentId} ${r.rotation}`);
    print(
      `  override: ehrctl incident override-rotation ${t.incidentId} ${r.rotation} --reason <why>` +
        ` --as <not ${t.declaredBy}>`,
    );
  }
}

export function registerIncidentCommands(program: Command): void {
  const incident = program
    .command('incident')
    .description('declare, contain and recover from a breach (the containment workflow)');
  incident
    .command('declare')
    .description('start containment now: revoke, hold, pause and cancel the scope in parallel, then preserve evidence')
    .requiredOption('--scope <scope>', 'tenant:T | integration:I | vendor:V | all')
    .requiredOption('--severity <level>', SEVERITIES.join(' | '))
    .requiredOption('--reason <text>', 'why (no patient data)')
    .option('--id <id>', 'incident id (default: inc-<UTC time>-<random>)')
    .option('--as <identity>', 'who declares (default: user@host)')
    .option('--drill', 'a tabletop drill: only sandbox integrations; waits for containment and prints the drill report')
    .option('--no-eradicate', 'skip the child key rotations')
    .option(
      '--rotation-grace-seconds <n>',
      "grace periods of the child rotations (default: each rotation's own, days); " +
        'they run on after recovery, which waits only for each key to switch',
    )
    .option(
      '--jwks-cache-seconds <n>',
      "signing keys: wait for the vendor's JWKS cache before switching kid (default: " +
        "the vendor profile's, bounded by the grace)",
    )
    .option('--deadline-seconds <n>', 'notification deadline (default 60 days)')
    .option('--ba-notice-seconds <n>', 'business-associate notice (default 24 h)')
    .action(
      async (opts: {
        scope: string;
        severity: string;
        reason: string;
        id?: string;
        as?: string;
        drill?: boolean;
        eradicate: boolean;
        rotationGraceSeconds?: string;
        jwksCacheSeconds?: string;
        deadlineSeconds?: string;
        baNoticeSeconds?: string;
      }) =>
        withContext(async (ctx) => {
          const scope = parseScope(opts.scope);
          const severity = oneOf<Severity>('--severity', opts.severity, SEVERITIES);
          if (!/^[\x20-\x7e]{1,200}$/.test(opts.reason))
            throw new InvalidArgumentError('--reason', 'at most 200 printable ASCII characters (no PHI)');
          const id = opts.id ?? newIncidentId();
          if (!ID_PATTERN.test(id)) throw new InvalidArgumentError('--id', 'lowercase letters, digits and dashes');
          const seconds = (name: string, v: string | undefined): number | undefined => {
            if (v === undefined) return undefined;
            if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError(name, 'a positive number of seconds');
            return Number(v);
          };
          const affected = await integrationsInScope(await ctx.db(), scope);
          // A drill touches only sandboxes: the vendor `sandbox`, or any vendor personality the dev stack serves.
          if (opts.drill && affected.some((i) => i.vendor !== 'sandbox' && !devSandboxAdminFor(ctx, i.baseUrl))) {
            throw new InvalidArgumentError(
              '--drill',
              'a drill runs only against sandbox integrations; the scope includes real vendors',
            );
          }
          const deadline = seconds('--deadline-seconds', opts.deadlineSeconds);
          const ba = seconds('--ba-notice-seconds', opts.baNoticeSeconds);
          const grace = seconds('--rotation-grace-seconds', opts.rotationGraceSeconds);
          const jwksCache = seconds('--jwks-cache-seconds', opts.jwksCacheSeconds);
          const handle = await declareIncident(await ctx.temporal(), ctx.config.TEMPORAL_TASK_QUEUE, {
            incidentId: id,
            scope,
            severity,
            reason: opts.reason,
            declaredBy: opts.as ?? defaultIdentity(),
            drill: opts.drill ?? false,
            eradicate: opts.eradicate,
            ...(deadline ? { notificationDeadlineSeconds: deadline } : {}),
            ...(ba ? { businessAssociateNoticeSeconds: ba } : {}),
            ...(grace ? { rotationGraceSeconds: grace } : {}),
            ...(jwksCache !== undefined ? { vendorJwksCacheSeconds: jwksCache } : {}),
          });
          print(`declared ${handle.workflowId} (${affected.length} integrations in scope)`);
          if (!opts.drill) return;
          for (;;) {
            const t = await incidentTimeline(handle);
            if (t.evidenceId && t.status !== 'preserving-evidence' && t.status !== 'eradicating') {
              print('drill report');
              printTimeline(t);
              print(`approve resumption (a second person): ehrctl incident approve ${id} --as <identity>`);
              return;
            }
            await new Promise((r) => setTimeout(r, 250));
          }
        }),
    );
  incident
    .command('list')
    .description('declared incidents, newest first')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) =>
      withContext(async (ctx) => {
        const rows = await listIncidents(await ctx.db());
        if (opts.json) return printJson(rows);
        table(
          rows.map((r) => ({
            id: r.id,
            scope: r.scope,
            severity: r.severity,
            status: r.status,
            drill: r.drill ? 'yes' : '',
            declaredBy: r.declaredBy,
            declaredAt: r.declaredAt.toISOString(),
            contain_ms: r.timeToContainMs ?? '-',
            recover_ms: r.timeToRecoverMs ?? '-',
          })),
        );
      }),
    );
  for (const name of ['status', 'timeline'] as const) {
    incident
      .command(name)
      .description(
        name === 'status'
          ? 'where the incident is, in one line'
          : 'the incident report: every step with its time and actor',
      )
      .argument('<id>')
      .option('--json', 'machine-readable output')
      .action(async (id: string, opts: { json?: boolean }) =>
        withContext(async (ctx) => {
          const t = await incidentTimeline(incidentHandle(await ctx.temporal(), id));
          if (opts.json) return printJson(name === 'status' ? { ...t, entries: undefined } : t);
          if (name === 'timeline') return printTimeline(t);
          print(
            `${t.incidentId}: ${t.status}, severity ${t.severity}, ` +
              `contained in ${t.timeToContainMs ?? '-'} ms, evidence ${t.evidenceId ?? '-'}, ` +
              `approved by ${t.approvedBy ?? '-'}`,
          );
          printRotations(t);
          const refused = [...t.entries]
            .reverse()
            .find((e) => e.step === 'recovery-failed' || e.step === 'approval-refused');
          if (refused && t.approvedBy === null) print(`last ${refused.step}: ${JSON.stringify(refused.detail)}`);
        }),
      );
  }
  incident
    .command('note')
    .description('add a note to the timeline (no patient data)')
    .argument('<id>')
    .argument('<text>')
    .option('--as <identity>')
    .action(async (id: string, text: string, opts: { as?: string }) =>
      withContext(async (ctx) => {
        await addIncidentNote(incidentHandle(await ctx.temporal(), id), { by: opts.as ?? defaultIdentity(), text });
        print('noted');
      }),
    );
  incident
    .command('escalate')
    .description('raise the severity')
    .argument('<id>')
    .requiredOption('--severity <level>', SEVERITIES.join(' | '))
    .option('--as <identity>')
    .action(async (id: string, opts: { severity: string; as?: string }) =>
      withContext(async (ctx) => {
        const severity = oneOf<Severity>('--severity', opts.severity, SEVERITIES);
        const handle = incidentHandle(await ctx.temporal(), id);
        print(`severity ${await escalateIncident(handle, opts.as ?? defaultIdentity(), severity)}`);
      }),
    );
  incident
    .command('notify')
    .description('record a notification sent (stops its deadline reminders)')
    .argument('<id>')
    .requiredOption('--recipient <who>', RECIPIENTS.join(' | '))
    .option('--reference <ref>', 'letter or ticket id')
    .option('--as <identity>')
    .action(async (id: string, opts: { recipient: string; reference?: string; as?: string }) =>
      withContext(async (ctx) => {
        const recipient = oneOf<Recipient>('--recipient', opts.recipient, RECIPIENTS);
        await recordIncidentNotification(incidentHandle(await ctx.temporal(), id), {
          by: opts.as ?? defaultIdentity(),
          recipient,
          ...(opts.reference ? { reference: opts.reference } : {}),
        });
        print(`notification to ${recipient} recorded`);
      }),
    );
  registerIncidentRecoveryCommands(incident, defaultIdentity);
}
