/**
 * `ehrctl incident approve | retry-rotation | override-rotation | release-legal-hold`: the commander's
 * way from a contained incident back to traffic. Approval carries the rotated client secrets and
 * certificates by reference (`--client-secret-ref I=file:…`); the workflow checks them before it
 * records the approval. A rotation that failed or rolled back blocks recovery until it is retried or
 * overridden.
 */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { Command } from 'commander';
import { ID_PATTERN } from '../../lib/domain.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../../lib/errors/index.js';
import type { RecoveryCredentials, ReplacementCredentials } from '../../lib/incidents/recovery-credentials.js';
import {
  approveResumption,
  incidentHandle,
  incidentTimeline,
  overrideIncidentRotation,
  retryIncidentRotation,
} from '../incident-client.js';
import { getIncident, releaseLegalHold } from '../../lib/incidents/store.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import type { Queryable } from '../../lib/store/pool.js';
import { withContext } from '../context.js';
import { print } from '../output.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** An update the workflow refused: its validator's or handler's message, as a usage error (exit 2). */
async function refusedAsUsage<T>(command: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError && err.cause)
      throw new InvalidArgumentError(command, err.cause.message);
    throw err;
  }
}

type RefField = keyof ReplacementCredentials;
const METHODS: Record<RefField, string[]> = {
  clientSecretRef: ['client_secret_basic', 'client_secret_post'],
  tlsCertRef: ['tls_client_auth'],
  tlsKeyRef: ['tls_client_auth'],
};

/**
 * `I=<ref>` names the integration; a bare `<ref>` is allowed when exactly one integration of the
 * incident authenticates with that kind of credential.
 */
export async function parseRecoveryCredentials(
  db: Queryable,
  incidentId: string,
  options: Record<RefField, string[]>,
): Promise<RecoveryCredentials> {
  const out: RecoveryCredentials = {};
  for (const field of Object.keys(METHODS) as RefField[]) {
    for (const value of options[field]) {
      const flag = `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      const m = /^([a-z0-9][a-z0-9-]{0,62})=(.+)$/.exec(value);
      const id = m ? m[1]! : await onlyIntegrationUsing(db, incidentId, field, flag);
      const ref = m ? m[2]! : value;
      if (!ID_PATTERN.test(id)) throw new InvalidArgumentError(flag, 'use <integration>=<reference>');
      if (out[id]?.[field] !== undefined) throw new InvalidArgumentError(flag, `given twice for ${id}`);
      out[id] = { ...out[id], [field]: ref };
    }
  }
  return out;
}

async function onlyIntegrationUsing(db: Queryable, incidentId: string, field: RefField, flag: string): Promise<string> {
  const incident = await getIncident(db, incidentId);
  if (!incident) throw new NotFoundError('incident', incidentId);
  const candidates: string[] = [];
  for (const a of incident.affected.filter((i) => i.status === 'active')) {
    if (METHODS[field].includes((await getIntegration(db, a.integrationId)).authMethod))
      candidates.push(a.integrationId);
  }
  if (candidates.length === 1) return candidates[0]!;
  const which =
    candidates.length === 0 ? 'no integration of the incident uses one' : `name one of ${candidates.join(', ')}`;
  throw new InvalidArgumentError(flag, `${which}: use ${flag} <integration>=<reference>`);
}

export function registerIncidentRecoveryCommands(incident: Command, defaultIdentity: () => string): void {
  incident
    .command('approve')
    .description(
      'approve resumption (refused before containment and evidence are done, for the declarer, ' +
        'and without the rotated secret or certificate of each integration that uses one)',
    )
    .argument('<id>')
    .option('--note <text>')
    .option('--as <identity>')
    .option(
      '--client-secret-ref <[integration=]ref>',
      'the rotated client secret of a client_secret_* integration (repeatable)',
      collect,
      [],
    )
    .option(
      '--tls-cert-ref <[integration=]ref>',
      'the new client certificate of a tls_client_auth integration (repeatable)',
      collect,
      [],
    )
    .option('--tls-key-ref <[integration=]ref>', "that certificate's new private key (repeatable)", collect, [])
    .option('--wait', 'wait until recovery is complete (it first waits for every key rotation to switch keys)')
    .action(
      async (
        id: string,
        opts: {
          note?: string;
          as?: string;
          wait?: boolean;
          clientSecretRef: string[];
          tlsCertRef: string[];
          tlsKeyRef: string[];
        },
      ) =>
        withContext(async (ctx) => {
          const handle = incidentHandle(await ctx.temporal(), id);
          const credentials = await parseRecoveryCredentials(await ctx.db(), id, opts);
          const approval = {
            by: opts.as ?? defaultIdentity(),
            ...(opts.note ? { note: opts.note } : {}),
            ...(Object.keys(credentials).length > 0 ? { credentials } : {}),
          };
          const by = await refusedAsUsage('approve', approveResumption(handle, approval));
          if (!opts.wait)
            return print(`resumption approved by ${by}; recovery is running (ehrctl incident status ${id})`);
          print(`resumption approved by ${by}; waiting for recovery`);
          let seen = 0;
          for (;;) {
            const t = await incidentTimeline(handle);
            // Progress: the recovery steps as they land (the wait for key switches can take minutes).
            const approvedAt = [...t.entries].reverse().find((x) => x.step === 'resumption-approved')?.at ?? '';
            const fresh = t.entries.slice(seen).filter((e) => e.at >= approvedAt);
            seen = t.entries.length;
            for (const e of fresh) {
              const why =
                e.step === 'recovery-blocked' || e.step === 'recovery-failed' ? ` ${JSON.stringify(e.detail)}` : '';
              print(`  ${e.at}  ${e.step}${why}`);
            }
            if (t.status === 'recovered') return print(`recovered in ${t.timeToRecoverMs} ms after approval`);
            if (t.status === 'recovery-blocked' || t.approvedBy === null) {
              process.exitCode = 1;
              return print(
                `recovery is ${t.approvedBy === null ? 'waiting for a new approval' : 'blocked'}: ` +
                  `ehrctl incident status ${id}`,
              );
            }
            await new Promise((r) => setTimeout(r, 500));
          }
        }),
    );
  incident
    .command('retry-rotation')
    .description(
      'start a failed or rolled-back key rotation of the incident again (it blocks recovery until it switches)',
    )
    .argument('<id>')
    .argument('<rotation>', 'as listed by `incident status`, e.g. signing-key/<integration> or tenant-dek/<tenant>')
    .option('--as <identity>')
    .action(async (id: string, rotation: string, opts: { as?: string }) =>
      withContext(async (ctx) => {
        const handle = incidentHandle(await ctx.temporal(), id);
        const workflowId = await refusedAsUsage(
          'retry-rotation',
          retryIncidentRotation(handle, { by: opts.as ?? defaultIdentity(), rotation }),
        );
        print(`rotation ${rotation} started again as ${workflowId}`);
      }),
    );
  incident
    .command('override-rotation')
    .description('let recovery go ahead although a rotation failed or rolled back (audited; not the declarer)')
    .argument('<id>')
    .argument('<rotation>')
    .requiredOption('--reason <text>', 'why the old key is acceptable (recorded in the audit trail; no PHI)')
    .option('--as <identity>')
    .action(async (id: string, rotation: string, opts: { reason: string; as?: string }) =>
      withContext(async (ctx) => {
        const handle = incidentHandle(await ctx.temporal(), id);
        await refusedAsUsage(
          'override-rotation',
          overrideIncidentRotation(handle, { by: opts.as ?? defaultIdentity(), rotation, reason: opts.reason }),
        );
        print(`rotation ${rotation} overridden; it no longer blocks recovery`);
      }),
    );
  incident
    .command('release-legal-hold')
    .description(
      "release the incident's legal hold after recovery (counsel's decision; audited): " +
        'crypto-shredding its tenants is refused until then',
    )
    .argument('<id>')
    .requiredOption('--reason <text>', 'e.g. the matter it was kept for (no PHI)')
    .option('--as <identity>')
    .action(async (id: string, opts: { reason: string; as?: string }) =>
      withContext(async (ctx) => {
        const released = await releaseLegalHold(
          await ctx.db(),
          id,
          { by: opts.as ?? defaultIdentity(), reason: opts.reason },
          ctx.audit,
        );
        if (!released) throw new ConflictError('legal hold of incident', id, 'is already released');
        print(`legal hold of incident ${id} released`);
      }),
    );
}
