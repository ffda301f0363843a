/**
 * `ehrctl consumers add | list | show | revoke | restore`: the mediation gateway's consumers
 * (lib/gateway/consumers.ts), every change audited. `add` takes the consumer's public keys as a JWKS URL, a
 * JWKS file, or `--dev-key` (a key pair made here for trying the gateway by hand: the private key in a 0600 file
 * under EHR_SECRETS_DIR, used by `ehrctl dev consumer-token`).
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import type { ConsumerKeySource, ConsumerRow } from '../../lib/gateway/consumers.js';
import {
  CONSUMER_ALGS,
  addConsumer,
  listConsumers,
  restoreConsumer,
  revokeConsumer,
  showConsumer,
} from '../../lib/gateway/consumers.js';
import type { SigningAlg } from '../../lib/keys/signing-keys.js';
import { withContext } from '../context.js';
import { print, printJson, table } from '../output.js';

interface AddOptions {
  id: string;
  tenant: string;
  purpose: string;
  scopes: string;
  jwksUrl?: string;
  jwksFile?: string;
  devKey?: boolean;
  alg: string;
  rateLimit?: string;
  burst?: string;
}

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(name, 'expected a positive integer');
  return n;
}

function readJwksFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new InvalidArgumentError('--jwks-file', `cannot read ${file}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InvalidArgumentError('--jwks-file', `${file} is not JSON`);
  }
}

function keySource(opts: AddOptions, secretsDir: string): ConsumerKeySource {
  const given = [opts.jwksUrl !== undefined, opts.jwksFile !== undefined, opts.devKey === true].filter(Boolean).length;
  if (given !== 1) throw new InvalidArgumentError('keys', 'give exactly one of --jwks-url, --jwks-file or --dev-key');
  if (opts.jwksUrl !== undefined) return { kind: 'jwks-url', url: opts.jwksUrl };
  if (opts.jwksFile !== undefined) return { kind: 'jwks', jwks: readJwksFile(opts.jwksFile) };
  if (!(CONSUMER_ALGS as readonly string[]).includes(opts.alg))
    throw new InvalidArgumentError('--alg', 'must be ES384 or RS384');
  return { kind: 'dev-key', alg: opts.alg as SigningAlg, secretsDir };
}

function summary(c: ConsumerRow): Record<string, string | number> {
  return {
    id: c.id,
    tenant: c.tenantId,
    purpose: c.purpose,
    status: c.status,
    scopes: c.scopes.join(' '),
    keys: c.jwksUrl ?? `${c.jwks?.keys.length ?? 0} key(s) registered`,
    rate: `${c.ratePerMinute}/min, burst ${c.rateBurst}`,
  };
}

export function registerConsumerCommands(program: Command): void {
  const consumers = program
    .command('consumers')
    .description("the mediation gateway's consumers: the organisation's systems that read through it");
  consumers
    .command('add')
    .description('register a consumer (a SMART Backend Services client of the gateway) for one tenant and purpose')
    .requiredOption('--id <id>', 'consumer id = its client_id (lowercase letters, digits, hyphens; max 63)')
    .requiredOption('--tenant <id>', 'the one tenant it reads')
    .requiredOption('--purpose <purpose>', 'clinical-sync | scheduling-sync | billing-export: caps what it receives')
    .requiredOption(
      '--scopes <scopes>',
      'SMART v2 scopes, e.g. "system/Patient.rs system/Observation.rs" (writes: "system/Appointment.cu")',
    )
    .option('--jwks-url <url>', "the consumer's JWKS URL (https)")
    .option('--jwks-file <file>', "a file with the consumer's public JWKS")
    .option('--dev-key', 'make a key pair here (private key 0600 under EHR_SECRETS_DIR), for `dev consumer-token`')
    .option('--alg <alg>', 'ES384 | RS384 (with --dev-key)', 'ES384')
    .option('--rate-limit <n>', 'requests per minute (default 600)')
    .option('--burst <n>', 'requests at once (default 60)')
    .action(async (opts: AddOptions) =>
      withContext(async (ctx) => {
        const keys = keySource(opts, ctx.config.EHR_SECRETS_DIR);
        const { consumer, devKeyFile } = await addConsumer(
          await ctx.db(),
          {
            id: opts.id,
            tenantId: opts.tenant,
            purpose: opts.purpose,
            scopes: opts.scopes,
            keys,
            ratePerMinute: positiveInt('--rate-limit', opts.rateLimit),
            rateBurst: positiveInt('--burst', opts.burst),
          },
          ctx.audit,
        );
        print(`consumer ${consumer.id} registered for tenant ${consumer.tenantId} (${consumer.purpose})`);
        print(`  scopes ${consumer.scopes.join(' ')}`);
        if (devKeyFile) {
          print(`  private key ${devKeyFile} (0600)`);
          print(`  token: ehrctl dev consumer-token --consumer ${consumer.id}`);
        }
      }),
    );
  consumers
    .command('list')
    .description('list consumers')
    .option('--tenant <id>', 'only this tenant')
    .option('--json', 'machine-readable output')
    .action(async (opts: { tenant?: string; json?: boolean }) =>
      withContext(async (ctx) => {
        const rows = await listConsumers(await ctx.db(), opts.tenant);
        if (opts.json) return printJson(rows);
        if (rows.length === 0) print('no consumers');
        table(rows.map(summary));
      }),
    );
  consumers
    .command('show <id>')
    .description('one consumer')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) =>
      withContext(async (ctx) => {
        const c = await showConsumer(await ctx.db(), id);
        if (opts.json) return printJson(c);
        for (const [k, v] of Object.entries(summary(c))) print(`${k.padEnd(8)} ${v}`);
        print(`${'since'.padEnd(8)} ${c.statusChangedAt.toISOString()}`);
        for (const k of c.jwks?.keys ?? []) print(`${'key'.padEnd(8)} ${k.kid ?? '?'} (${k.alg ?? k.kty ?? '?'})`);
      }),
    );
  for (const [name, verb] of [
    ['revoke', 'refused from its next request on'],
    ['restore', 'active again; tokens issued before stay refused'],
  ] as const) {
    consumers
      .command(`${name} <id>`)
      .description(`${name} a consumer: ${verb}`)
      .option('--reason <text>', 'why (recorded in the audit trail; no PHI)')
      .action(async (id: string, opts: { reason?: string }) =>
        withContext(async (ctx) => {
          const change = name === 'revoke' ? revokeConsumer : restoreConsumer;
          const c = await change(await ctx.db(), id, ctx.audit, opts.reason);
          print(`consumer ${c.id} ${c.status}`);
        }),
      );
  }
}
