/**
 * `ehrctl export run | schedule | status | list | verify | decrypt | shred`: encrypted batch exports
 * (workflows/export.ts). Nothing of the exported content is ever printed: ids, counts, paths and checksums.
 */
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { Option } from 'commander';
import type { Command } from 'commander';
import { publicKeyFromJwk } from '../../lib/audit/checkpoint-jws.js';
import { isResourceType } from '../../lib/domain.js';
import { EXIT } from '../../lib/errors/exit-codes.js';
import { InvalidArgumentError, NotFoundError } from '../../lib/errors/index.js';
import { listExportJobs, readExportJob } from '../../lib/exports/export-repository.js';
import type { ExportJob } from '../../lib/exports/export-repository.js';
import { assertExportPurpose } from '../../lib/exports/jobs.js';
import { verifyExportDirectory } from '../../lib/exports/manifest.js';
import { decryptExport } from '../../lib/exports/recipient.js';
import { assertTypesWithinPurpose } from '../../lib/fhir/classification.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { openPurposeKeys } from '../../lib/keys/open-purpose-keys.js';
import { tenantExists } from '../../lib/store/tenants.js';
import type { ExportInput } from '../../workflows/export-api.js';
import type { CliContext } from '../context.js';
import { withContext } from '../context.js';
import { exportProgress, newExportJobId, scheduleExport, startExport, waitUntilWritten } from '../export-client.js';
import { print, printJson, table } from '../output.js';
import { syncFailureOf } from '../sync-failure.js';
import { parseEvery } from './schedule.js';

const DAY = 86_400;

interface ExportOptions {
  tenant: string;
  types?: string;
  purpose: string;
  to: string;
  retainDays?: string;
  retainSeconds?: string;
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError(flag, 'must be a positive whole number');
  return n;
}

async function exportInput(ctx: CliContext, o: ExportOptions, since?: string): Promise<Omit<ExportInput, 'jobId'>> {
  const purpose = assertExportPurpose(o.purpose);
  const types = o.types?.split(',').map((t) => t.trim());
  if (types) {
    const unknown = types.filter((t) => !isResourceType(t));
    if (unknown.length > 0) throw new InvalidArgumentError('--types', `unknown resource type(s) ${unknown.join(', ')}`);
    assertTypesWithinPurpose(purpose, types);
  }
  if (since !== undefined && Number.isNaN(Date.parse(since)))
    throw new InvalidArgumentError('--since', 'expected an ISO 8601 instant, e.g. 2026-01-01T00:00:00Z');
  if (!(await tenantExists(await ctx.db(), o.tenant))) throw new NotFoundError('tenant', o.tenant);
  const retainSeconds =
    o.retainSeconds !== undefined
      ? positiveInt('--retain-seconds', o.retainSeconds)
      : positiveInt('--retain-days', o.retainDays ?? '30') * DAY;
  return {
    tenantId: o.tenant,
    purpose,
    ...(types ? { types } : {}),
    since: since === undefined ? null : new Date(since).toISOString(),
    to: path.resolve(o.to),
    retainSeconds,
    requestedBy: ctx.audit.actor,
  };
}

async function verificationKeys(ctx: CliContext): Promise<Map<string, KeyObject>> {
  const keys = await openPurposeKeys(ctx.config, { pool: await ctx.db(), actor: ctx.audit.actor });
  const map = new Map<string, KeyObject>();
  for (const k of await keys.auditSigning.verificationKeys()) map.set(k.kid, publicKeyFromJwk(k.publicJwk));
  return map;
}

function jobRow(j: ExportJob): Record<string, string | number> {
  const records = Object.values(j.counts ?? {}).reduce((n, c) => n + c.count, 0);
  return {
    job: j.id,
    tenant: j.tenantId,
    purpose: j.purpose,
    status: j.status,
    types: j.resourceTypes.join(','),
    records: j.counts ? records : '-',
    created: j.createdAt,
    retainUntil: j.retainUntil ?? '-',
    shredded: j.shreddedAt ?? '-',
  };
}

function exportOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--purpose <purpose>', 'clinical-sync | scheduling-sync | billing-export (caps the data classes)')
    .requiredOption('--to <dir>', "directory on the worker's host; the job writes into <dir>/<job id>")
    .option('--types <list>', 'comma-separated resource types (default: every stored type the purpose allows)')
    .option('--retain-days <n>', 'days before the job key is destroyed and the files removed (default 30)')
    .addOption(new Option('--retain-seconds <n>', 'retention in seconds (drills and tests)').hideHelp());
}

export function registerExportCommands(program: Command): void {
  const ex = program.command('export').description('encrypted batch exports: run, schedule, verify, decrypt');
  exportOptions(ex.command('run').description("export a tenant's records now, encrypted under a per-job key"))
    .option('--since <iso>', 'only records last updated at or after this instant')
    .option('--wait', 'wait until the files and the signed manifest are written')
    .action(async (o: ExportOptions & { since?: string; wait?: boolean }) =>
      withContext(async (ctx) => {
        const jobId = newExportJobId();
        const input = { ...(await exportInput(ctx, o, o.since)), jobId };
        const handle = await startExport(await ctx.temporal(), ctx.config.TEMPORAL_TASK_QUEUE, input);
        print(`started ${handle.workflowId} (job ${jobId})`);
        if (!o.wait) return;
        try {
          const p = await waitUntilWritten(handle);
          for (const t of p.types) print(`  ${t.resourceType}: ${t.count ?? 0} records, ${t.bytes ?? 0} bytes`);
          print(`export ${jobId} written to ${p.directory ?? '-'}; key destroyed after ${p.retainUntil ?? '-'}`);
        } catch (err) {
          const failure = syncFailureOf(err);
          if (!failure) throw err;
          print(`export ${handle.workflowId}: ${failure.status} — ${failure.code}: ${failure.message}`);
          process.exitCode = failure.exitCode;
        }
      }),
    );
  exportOptions(ex.command('schedule').description("export a tenant's records on a Temporal Schedule"))
    .requiredOption('--at <HH:MM>', 'local time of day')
    .requiredOption('--timezone <Area/City>', 'IANA time zone')
    .option('--every <interval>', 'nightly (default) or 1h|2h|3h|4h|6h|8h|12h|24h')
    .action(async (o: ExportOptions & { at: string; timezone: string; every?: string }) =>
      withContext(async (ctx) => {
        const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(o.at);
        if (!m) throw new InvalidArgumentError('--at', 'expected HH:MM in 24-hour time, e.g. 02:00');
        try {
          new Intl.DateTimeFormat('en', { timeZone: o.timezone });
        } catch {
          throw new InvalidArgumentError('--timezone', 'unknown IANA time zone (e.g. America/Chicago)');
        }
        const every = parseEvery(o.every ?? 'nightly');
        const step = typeof every === 'object' ? every.hours : 24;
        const hours = Array.from({ length: 24 / step }, (_, k) => (Number(m[1]) + k * step) % 24).sort((a, b) => a - b);
        const input = await exportInput(ctx, o);
        const handle = await scheduleExport(await ctx.temporal(), ctx.config.TEMPORAL_TASK_QUEUE, input, {
          hours,
          minute: Number(m[2]),
          timezone: o.timezone,
        });
        print(`schedule ${handle.scheduleId} created: ${step === 24 ? 'daily' : `every ${step} h from`} ${o.at}`);
      }),
    );
  ex.command('list')
    .description('export jobs, newest first, with their status (writing, written, failed, shredded)')
    .option('--tenant <id>', 'only this tenant')
    .option('--json', 'machine-readable output')
    .action(async (o: { tenant?: string; json?: boolean }) =>
      withContext(async (ctx) => {
        const jobs = await listExportJobs(await ctx.db(), o.tenant);
        if (o.json) return printJson(jobs.map(({ wrapped: _w, ...j }) => ({ ...j, keyDestroyed: !_w })));
        if (jobs.length === 0) print('no export jobs');
        table(jobs.map(jobRow));
      }),
    );
  ex.command('status')
    .description("one export job: its record, and its workflow's progress while it runs")
    .argument('<job>', 'job id')
    .action(async (jobId: string) =>
      withContext(async (ctx) => {
        const job = await readExportJob(await ctx.db(), jobId);
        if (!job) throw new NotFoundError('export job', jobId);
        const { wrapped, ...rest } = job;
        const handle = (await ctx.temporal()).workflow.getHandle(job.workflowId);
        const progress = await exportProgress(handle).catch(() => undefined);
        printJson({ ...rest, keyDestroyed: wrapped === undefined, ...(progress ? { progress } : {}) });
      }),
    );
  ex.command('shred')
    .description('end the retention period of a job now: its key is destroyed and its files removed (audited)')
    .argument('<job>', 'job id')
    .action(async (jobId: string) =>
      withContext(async (ctx) => {
        const job = await readExportJob(await ctx.db(), jobId);
        if (!job) throw new NotFoundError('export job', jobId);
        await (await ctx.temporal()).workflow.getHandle(job.workflowId).signal('exportShred');
        print(`export ${jobId}: shredding requested (deferred while a legal hold covers ${job.tenantId})`);
      }),
    );
  ex.command('verify')
    .description('check the manifest signature and every file checksum; names what does not match (exit 1)')
    .argument('<dir>', "an export job's directory")
    .action(async (dir: string) =>
      withContext(async (ctx) => {
        const result = await verifyExportDirectory(path.resolve(dir), await verificationKeys(ctx));
        for (const p of result.problems) print(`FAIL ${p}`);
        if (!result.ok) {
          process.exitCode = EXIT.failed;
          return;
        }
        const m = result.manifest!;
        print(`ok: export ${m.jobId} (${m.purpose}), ${m.files.length} files verified, signed by ${m.kid}`);
      }),
    );
  ex.command('decrypt')
    .description('for the recipient: verify, then decrypt every file to <out>/<Type>.ndjson (audited)')
    .argument('<dir>', "an export job's directory")
    .requiredOption('--to <out>', 'where the NDJSON files go (files there are never overwritten)')
    .action(async (dir: string, o: { to: string }) =>
      withContext(async (ctx) => {
        const pool = await ctx.db();
        const kek = await KeyHierarchy.open({ pool, backend: await createKekProvider(ctx.config), audit: ctx.audit });
        const out = await decryptExport(
          { pool, kek, keys: await verificationKeys(ctx) },
          path.resolve(dir),
          path.resolve(o.to),
          ctx.audit,
        );
        for (const f of out.files) print(`  ${f.resourceType}: ${f.count} records → ${f.file}`);
        print(`export ${out.jobId} decrypted to ${path.resolve(o.to)}`);
      }),
    );
}
