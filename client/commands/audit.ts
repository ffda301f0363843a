import fs from 'node:fs';
import { finished } from 'node:stream/promises';
import type { Command } from 'commander';
import { FileAuditAnchor } from '../../lib/audit/anchor.js';
import { recordAuditEvent } from '../../lib/audit/chain.js';
import { writeCheckpoint } from '../../lib/audit/checkpoint.js';
import type { AuditExportFormat } from '../../lib/audit/export.js';
import { exportAuditEvents } from '../../lib/audit/export.js';
import type { AuditTrailVerification } from '../../lib/audit/verify.js';
import { verifyAuditTrail } from '../../lib/audit/verify.js';
import { EXIT } from '../../lib/errors/exit-codes.js';
import { openPurposeKeys } from '../../lib/keys/open-purpose-keys.js';
import { ConflictError, InvalidArgumentError } from '../../lib/errors/index.js';
import { assertExportAllowed } from '../../lib/incidents/holds.js';
import { withContext } from '../context.js';
import { print, printJson } from '../output.js';

function describe(result: AuditTrailVerification): string[] {
  const out: string[] = [];
  if (result.firstBrokenSeq !== undefined) {
    out.push(
      `audit chain BROKEN at seq ${result.firstBrokenSeq}: ${result.reason} (${result.eventsChecked} events checked)`,
    );
  } else {
    out.push(`audit chain intact: ${result.eventsChecked} events verified, head at seq ${result.headSeq}`);
  }
  if (result.purgedThroughSeq !== undefined)
    out.push(
      `events 1..${result.purgedThroughSeq} were purged by retention (whole signed segments); verified from there`,
    );
  for (const p of result.checkpointProblems.slice(0, 10)) out.push(`audit checkpoints BROKEN: ${p.reason}`);
  if (result.checkpointProblems.length > 10)
    out.push(`... and ${result.checkpointProblems.length - 10} more checkpoint problems`);
  if (result.checkpointProblems.length === 0) {
    if (result.lastCheckpoint) {
      out.push(
        `checkpoints intact: ${result.checkpoints} signed checkpoints match the anchor ${result.anchor} ` +
          `(keys from ${result.keySource}); the last, #${result.lastCheckpoint.checkpointSeq}, ` +
          `covers seq 1..${result.lastCheckpoint.eventSeq}`,
      );
    } else if (result.firstBrokenSeq === undefined) {
      out.push(
        `no signed checkpoints yet (anchor ${result.anchor}): ` +
          `a truncated tail or a rebuilt chain cannot be detected until the first one`,
      );
    }
  }
  return out;
}

function parseDate(option: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(d.getTime()))
    throw new InvalidArgumentError(
      option,
      'expected an ISO 8601 date or timestamp, e.g. 2024-11-01 or 2024-11-01T00:00:00Z',
    );
  return d;
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit trail');
  audit
    .command('checkpoint')
    .description(
      'sign a checkpoint over everything recorded so far and append it to the anchor (e.g. before an evidence export)',
    )
    .action(async () =>
      withContext(async (ctx) => {
        const pool = await ctx.db();
        const keys = await openPurposeKeys(ctx.config, { pool, actor: ctx.audit.actor });
        const cp = await writeCheckpoint(
          pool,
          keys.auditSigning,
          new FileAuditAnchor(ctx.config.EHR_AUDIT_ANCHOR_PATH),
        );
        if (cp)
          print(
            `checkpoint #${cp.checkpointSeq} signed over seq 1..${cp.eventSeq} (key ${cp.kid}), ` +
              `anchored in ${ctx.config.EHR_AUDIT_ANCHOR_PATH}`,
          );
        else print('nothing new since the last checkpoint');
      }),
    );
  audit
    .command('verify')
    .description(
      'verify the hash chain, the signed checkpoints and the anchor; print the first broken sequence number (exit 4)',
    )
    .option('--anchor <path>', 'the checkpoint anchor file (default EHR_AUDIT_ANCHOR_PATH)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { anchor?: string; json?: boolean }) =>
      withContext(async (ctx) => {
        // Verification keys: the anchor's copies (cross-checked with the database's). Once the
        // purpose-key source is available here, pass verificationKeys from auditSigning.verificationKeys().
        const result = await verifyAuditTrail(await ctx.db(), {
          anchorPath: opts.anchor ?? ctx.config.EHR_AUDIT_ANCHOR_PATH,
        });
        if (opts.json) printJson(result);
        else for (const line of describe(result)) print(line);
        if (!result.ok) process.exitCode = EXIT.auditBroken;
      }),
    );
  audit
    .command('export')
    .description('export audit events for compliance reports (streamed, seq order)')
    .requiredOption('--since <iso>', 'events that occurred at or after this time')
    .option('--until <iso>', 'events that occurred before this time')
    .option('--tenant <id>', 'only this tenant')
    .option('--format <format>', 'jsonl or csv', 'jsonl')
    .option('--output <file>', 'write to this new file (0600) instead of stdout')
    .action(async (opts: { since: string; until?: string; tenant?: string; format: string; output?: string }) =>
      withContext(async (ctx) => {
        if (opts.format !== 'jsonl' && opts.format !== 'csv')
          throw new InvalidArgumentError('--format', 'use jsonl or csv');
        const format: AuditExportFormat = opts.format;
        const since = parseDate('--since', opts.since)!;
        const until = parseDate('--until', opts.until);
        if (until && until <= since) throw new InvalidArgumentError('--until', 'must be after --since');
        const pool = await ctx.db();
        // An incident freezes exports for its scope (the incident's own evidence package is the record meanwhile).
        await assertExportAllowed(pool, 'audit export', opts.tenant);
        // Reading the audit trail is itself audited, before any row leaves (fail closed).
        await recordAuditEvent(pool, {
          ...ctx.audit,
          action: 'audit.exported',
          outcome: 'success',
          tenantId: opts.tenant ?? null,
          details: {
            format,
            since: since.toISOString(),
            ...(until ? { until: until.toISOString() } : {}),
            destination: opts.output ? 'file' : 'stdout',
          },
        });
        if (!opts.output) {
          await exportAuditEvents(pool, { since, until, tenantId: opts.tenant }, format, process.stdout);
          return;
        }
        let out: fs.WriteStream;
        try {
          const fd = fs.openSync(opts.output, 'wx', 0o600);
          out = fs.createWriteStream('', { fd });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ConflictError('output file', opts.output);
          throw err;
        }
        let rows: number;
        try {
          ({ rows } = await exportAuditEvents(pool, { since, until, tenantId: opts.tenant }, format, out));
        } finally {
          out.end();
          await finished(out).catch(() => undefined);
        }
        print(`exported ${rows} audit events to ${opts.output} (${format})`);
      }),
    );
}
