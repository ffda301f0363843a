/**
 * Break-glass end to end, as operators do it with ehrctl against the real Temporal dev server, PostgreSQL and an
 * in-process worker: the grant is recorded, audited and returned by activeGrantsFor until it expires; the alert
 * reaches a local hook at once (and the structured log); the requester's own review is refused (four eyes) and
 * audited; the reminder and the escalation fire on short timers; the review is recorded in the audit trail and the
 * workflow completes; an inappropriate review ends a running grant; the audit trail verifies afterwards.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../lib/config/schema.js';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { activeGrantsFor, revokeBreakGlassGrant } from '../../lib/gateway/break-glass.js';
import { addConsumer } from '../../lib/gateway/consumers.js';
import { createTenant } from '../../lib/store/tenants.js';
import type { BreakGlassAlert } from '../../lib/gateway/break-glass-alerts.js';
import type { Pool } from '../../lib/store/pool.js';
import { uniqueId } from '../harness.js';
import { recordIdentifiers } from '../security/leak-registry.js';
import { ehrctlEnv, runEhrctl } from './ehrctl-process.js';
import type { RunningWorker } from './support.js';
import { logFile, startInProcessWorker, temporalClient, testActor, testConfig, testPool } from './support.js';

const REMIND_SECONDS = 2;
const ESCALATE_SECONDS = 4;
const REASON = 'synthetic drill: cardiology consult needs recent labs';
const HOOK_TOKEN = 'synthetic-hook-token-5f1c';

let pool: Pool;
let config: Config;
let worker: RunningWorker;
let hook: http.Server;
const posts: BreakGlassAlert[] = [];
/** Consumers whose grant's first alert POST the hook answers 503 (the activity retries). */
const failFirst = new Set<string>();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'break-glass-'));

beforeAll(async () => {
  // The requester's words and the hook's token: never in a workflow history, a log line or an error output.
  recordIdentifiers([REASON, HOOK_TOKEN]);
  hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      const alert = JSON.parse(body) as BreakGlassAlert;
      posts.push(alert);
      const refuse = failFirst.delete(alert.consumerId);
      res.writeHead(refuse ? 503 : 204).end();
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  // The hook URL is a secret (such URLs carry a token): given by reference, a 0600 file.
  const ref = path.join(tmp, 'alert-url');
  const { port } = hook.address() as AddressInfo;
  fs.writeFileSync(ref, `http://127.0.0.1:${port}/hooks/break-glass?token=${HOOK_TOKEN}\n`, { mode: 0o600 });
  config = testConfig({
    EHR_BREAK_GLASS_ALERT_URL: `file:${ref}`,
    EHR_BREAK_GLASS_REMIND_SECONDS: String(REMIND_SECONDS),
    EHR_BREAK_GLASS_ESCALATE_SECONDS: String(ESCALATE_SECONDS),
    EHR_BREAK_GLASS_MAX_MINUTES: '60',
  });
  pool = testPool();
  await createTenant(pool, { id: TENANT, name: 'Break-glass Clinic (synthetic)' }, testActor);
  worker = await startInProcessWorker(config);
});

const TENANT = uniqueId('bg-tenant');

/** A gateway consumer of the tenant (break-glass is granted to registered consumers only). */
async function registeredConsumer(): Promise<string> {
  const { publicKey } = await generateKeyPair('ES384', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const id = uniqueId('consumer');
  await addConsumer(
    pool,
    {
      id,
      tenantId: TENANT,
      purpose: 'clinical-sync',
      scopes: 'system/Patient.rs',
      keys: { kind: 'jwks', jwks: { keys: [{ ...jwk, kid, alg: 'ES384', use: 'sig' }] } },
    },
    testActor,
  );
  return id;
}

afterAll(async () => {
  await worker?.stop();
  await pool?.end();
  await new Promise((resolve) => hook?.close(resolve));
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** ehrctl as the operator runs it: the same timers as the worker's configuration, no alert hook of its own. */
const ehrctl = (...args: string[]) =>
  runEhrctl(args, {
    ...ehrctlEnv({ config }),
    EHR_BREAK_GLASS_REMIND_SECONDS: String(REMIND_SECONDS),
    EHR_BREAK_GLASS_ESCALATE_SECONDS: String(ESCALATE_SECONDS),
    EHR_BREAK_GLASS_MAX_MINUTES: '60',
  });

async function breakGlass(
  consumer: string,
  requestedBy: string,
  minutes = 30,
  reason = REASON,
): Promise<{ id: string }> {
  const res = await ehrctl(
    'access',
    'break-glass',
    '--consumer',
    consumer,
    '--scope',
    'system/Observation.rs',
    '--reason-code',
    'emergency-care',
    '--reason',
    reason,
    '--minutes',
    String(minutes),
    '--requested-by',
    requestedBy,
    '--json',
  );
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as { id: string };
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const alertsOf = (grantId: string) => posts.filter((p) => p.grantId === grantId).map((p) => p.event);

function logEvents(grantId: string): Array<Record<string, unknown>> {
  return fs
    .readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((line) => line.includes(grantId))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => typeof entry.event === 'string');
}

async function auditRows(grantId: string) {
  const { rows } = await pool.query<{
    action: string;
    actor: string;
    outcome: string;
    details: Record<string, unknown>;
  }>(`SELECT action, actor, outcome, details FROM audit_events WHERE details->>'grantId' = $1 ORDER BY seq`, [grantId]);
  return rows;
}

describe('break-glass', () => {
  let consumer: string;
  let grantId: string;

  it('records a time-boxed grant, audited, returned by activeGrantsFor until it expires, and alerts at once', async () => {
    consumer = await registeredConsumer();
    const before = Date.now();
    ({ id: grantId } = await breakGlass(consumer, 'alice@clinic'));

    const [grant, ...more] = await activeGrantsFor(pool, consumer);
    expect(more).toEqual([]);
    expect(grant).toMatchObject({
      id: grantId,
      consumerId: consumer,
      reasonCode: 'emergency-care',
      scopes: [{ context: 'system', resourceType: 'Observation', read: true, search: true }],
    });
    const expiresAt = grant!.expiresAt.getTime();
    expect(expiresAt).toBeGreaterThanOrEqual(before + 30 * 60_000 - 1000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 30 * 60_000);
    expect(await activeGrantsFor(pool, consumer, new Date(expiresAt - 1))).toHaveLength(1);
    expect(await activeGrantsFor(pool, consumer, new Date(expiresAt))).toEqual([]);
    expect(await activeGrantsFor(pool, uniqueId('other-consumer'))).toEqual([]);

    const granted = await until('the granted alert at the hook', () =>
      posts.find((p) => p.grantId === grantId && p.event === 'break-glass.granted'),
    );
    expect(granted).toMatchObject({
      consumerId: consumer,
      scopes: ['system/Observation.rs'],
      requestedBy: 'alice@clinic',
    });
    // Ids, codes and times only: the requester's words stay in the grant's row.
    expect(Object.keys(granted).sort()).toEqual(
      [
        'at',
        'consumerId',
        'event',
        'expiresAt',
        'grantId',
        'grantedAt',
        'reasonCode',
        'requestedBy',
        'reviewWorkflowId',
        'scopes',
      ].sort(),
    );
    expect(JSON.stringify(posts)).not.toContain('cardiology');
    const logged = await until('the structured log event', () =>
      logEvents(grantId).find((e) => e.event === 'break-glass.granted'),
    );
    expect(logged).toMatchObject({ grantId, consumerId: consumer, reasonCode: 'emergency-care', alertHook: true });

    const audit = await auditRows(grantId);
    expect(audit[0]).toMatchObject({
      action: 'break_glass.granted',
      outcome: 'success',
      details: { consumerId: consumer, reasonCode: 'emergency-care', minutes: 30, requestedBy: 'alice@clinic' },
    });
    expect(JSON.stringify(audit)).not.toContain('cardiology');

    // The requester's words are in the grant's row, for the reviewer.
    const shown = await ehrctl('access', 'show', grantId);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      id: grantId,
      reason: REASON,
      state: 'active',
      reviewState: 'pending',
    });
    const codes = await ehrctl('access', 'reason-codes');
    expect(
      codes.stdout
        .trim()
        .split('\n')
        .map((line) => line.split(' ')[0]),
    ).toEqual(['emergency-care', 'patient-safety', 'care-continuity', 'system-outage', 'legal-obligation']);
  });

  it('refuses bad requests by name and records nothing', async () => {
    const other = uniqueId('consumer');
    const base = [
      'access',
      'break-glass',
      '--consumer',
      other,
      '--reason',
      'synthetic',
      '--requested-by',
      'alice@clinic',
    ];
    const cases: Array<[string[], RegExp]> = [
      [
        ['--scope', 'system/Observation.rs', '--reason-code', 'curiosity', '--minutes', '5'],
        /--reason-code: one of emergency-care/,
      ],
      [
        ['--scope', 'system/Observation.rs', '--reason-code', 'emergency-care', '--minutes', '61'],
        /--minutes: .*from 1 to 60/,
      ],
      [
        ['--scope', 'system/Observation.cruds', '--reason-code', 'emergency-care', '--minutes', '5'],
        /--scope: .*read-only/,
      ],
    ];
    for (const [args, message] of cases) {
      const res = await ehrctl(...base, ...args);
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toMatch(message);
    }
    // A well-formed request for a consumer the gateway does not know.
    const unknown = await ehrctl(
      ...base,
      ...['--scope', 'system/Observation.rs', '--reason-code', 'emergency-care', '--minutes', '5'],
    );
    expect(unknown.code, unknown.stderr).toBe(3);
    expect(unknown.stderr).toMatch(/gateway consumer .* does not exist/);
    const { rows } = await pool.query('SELECT 1 FROM break_glass_grants WHERE consumer_id = $1', [other]);
    expect(rows).toEqual([]);
  });

  it('refuses the requester as reviewer (audited), reminds and escalates, then records a second person’s review', async () => {
    const own = await ehrctl(
      'access',
      'review',
      grantId,
      '--appropriate',
      '--note',
      'it was fine',
      '--reviewer',
      'alice@clinic',
    );
    expect(own.code, own.stderr).toBe(2);
    expect(own.stderr).toMatch(/someone other than its requester \(four eyes\)/);
    expect((await auditRows(grantId)).map((r) => [r.action, r.outcome])).toContainEqual([
      'break_glass.review_refused',
      'failure',
    ]);

    await until('the escalation at the hook', () =>
      alertsOf(grantId).includes('break-glass.review-escalated') ? true : undefined,
    );
    expect(alertsOf(grantId)).toEqual([
      'break-glass.granted',
      'break-glass.review-reminder',
      'break-glass.review-escalated',
    ]);
    const logged = await until('reminder and escalation in the log', () => {
      const events = logEvents(grantId).map((e) => e.event);
      return events.includes('break-glass.review-escalated') ? events : undefined;
    });
    expect(logged).toEqual(expect.arrayContaining(['break-glass.review-reminder', 'break-glass.review-escalated']));
    const pending = await ehrctl('access', 'reviews', '--pending');
    expect(pending.code, pending.stderr).toBe(0);
    expect(pending.stdout).toMatch(new RegExp(`${grantId} .*active +pending, escalated`));

    const ok = await ehrctl(
      'access',
      'review',
      grantId,
      '--appropriate',
      '--note',
      'consult confirmed',
      '--reviewer',
      'bob@clinic',
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`break-glass ${grantId} reviewed as appropriate by bob@clinic`);
    const { client, close } = await temporalClient();
    try {
      const result: unknown = await client.workflow.getHandle(`break-glass/${grantId}`).result();
      expect(result).toMatchObject({ grantId, verdict: 'appropriate', reviewedBy: 'bob@clinic', revoked: false });
    } finally {
      await close();
    }
    const audit = await auditRows(grantId);
    // The refusal may come before or after the timers fired; the grant is first and the review last.
    expect(audit.map((r) => r.action).sort()).toEqual([
      'break_glass.granted',
      'break_glass.review_escalated',
      'break_glass.review_refused',
      'break_glass.review_reminded',
      'break_glass.reviewed',
    ]);
    expect(audit[0]!.action).toBe('break_glass.granted');
    expect(audit[4]).toMatchObject({
      actor: 'bob@clinic',
      details: { verdict: 'appropriate', requestedBy: 'alice@clinic' },
    });
    expect(JSON.stringify(audit)).not.toContain('consult confirmed');

    const again = await ehrctl(
      'access',
      'review',
      grantId,
      '--inappropriate',
      '--note',
      'second look',
      '--reviewer',
      'carol@clinic',
    );
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/already reviewed by bob@clinic/);
    expect((await auditRows(grantId)).filter((r) => r.action === 'break_glass.review_refused')).toHaveLength(2);
    expect(JSON.stringify(posts)).not.toContain('consult confirmed');
    const listed = await ehrctl('access', 'reviews', '--json');
    const mine = (JSON.parse(listed.stdout) as Array<Record<string, unknown>>).find((g) => g.id === grantId);
    expect(mine).toMatchObject({ reviewVerdict: 'appropriate', reviewedBy: 'bob@clinic', state: 'active' });
    expect((await ehrctl('access', 'reviews', '--pending')).stdout).not.toContain(grantId);
    // Reviewed as appropriate: the grant runs on until it expires.
    expect(await activeGrantsFor(pool, consumer)).toHaveLength(1);
  });

  it('ends a running grant reviewed as inappropriate; a revoked grant is never returned; a hook failure is retried', async () => {
    const consumer2 = await registeredConsumer();
    failFirst.add(consumer2);
    const { id } = await breakGlass(consumer2, 'dave@clinic', 10);
    // The hook answered 503 first: the alert is retried (log event once), and arrives.
    await until('the retried alert', () => (alertsOf(id).length >= 2 ? true : undefined));
    expect(alertsOf(id).slice(0, 2)).toEqual(['break-glass.granted', 'break-glass.granted']);
    expect(logEvents(id).filter((e) => e.event === 'break-glass.granted')).toHaveLength(1);
    expect(logEvents(id).find((e) => e.event === 'break-glass.alert-hook-failed')).toMatchObject({
      alert: 'break-glass.granted',
      attempt: 1,
      error: 'break-glass alert hook: HTTP 503',
    });
    expect(JSON.stringify(logEvents(id))).not.toContain('127.0.0.1');

    expect(await activeGrantsFor(pool, consumer2)).toHaveLength(1);
    const res = await ehrctl(
      'access',
      'review',
      id,
      '--inappropriate',
      '--note',
      'no emergency',
      '--reviewer',
      'erin@clinic',
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/still running and is revoked/);
    expect(await activeGrantsFor(pool, consumer2)).toEqual([]);
    expect((await auditRows(id)).map((r) => r.action)).toEqual(
      expect.arrayContaining(['break_glass.reviewed', 'break_glass.revoked']),
    );

    const consumer3 = await registeredConsumer();
    const third = await breakGlass(consumer3, 'dave@clinic', 10);
    await revokeBreakGlassGrant(pool, third.id, { by: 'frank@clinic', reason: 'no longer needed', audit: testActor });
    expect(await activeGrantsFor(pool, consumer3)).toEqual([]);
    const twice = await ehrctl('access', 'revoke', third.id, '--reason', 'again', '--as', 'frank@clinic');
    expect(twice.code).toBe(3);
    expect(twice.stderr).toMatch(/already revoked by frank@clinic/);
    // (Its reminder may have fired meanwhile.)
    const revokedRows = (await auditRows(third.id)).filter((r) => r.action === 'break_glass.revoked');
    expect(revokedRows).toMatchObject([{ details: { revokedBy: 'frank@clinic', early: true } }]);
    const listed = JSON.parse((await ehrctl('access', 'reviews', '--json')).stdout) as Array<Record<string, unknown>>;
    expect(listed.filter((g) => g.id === id || g.id === third.id).map((g) => g.state)).toEqual(['revoked', 'revoked']);
  });

  it('lets the application role neither delete a grant nor rewrite it, nor record a review by its requester', async () => {
    // PostgreSQL's log shows a row that fails a check (DETAIL: Failing row contains …): this one's reason is not the
    // registered identifier the leak scan looks for.
    const { id } = await breakGlass(await registeredConsumer(), 'gina@clinic', 5, 'synthetic: privilege check');
    await expect(pool.query('DELETE FROM break_glass_grants WHERE id = $1', [id])).rejects.toMatchObject({
      code: '42501',
    });
    await expect(
      pool.query(`UPDATE break_glass_grants SET expires_at = expires_at + interval '1 hour' WHERE id = $1`, [id]),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(
      pool.query(`UPDATE break_glass_grants SET scopes = '{system/*.rs}' WHERE id = $1`, [id]),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(
      pool.query(
        `UPDATE break_glass_grants SET reviewed_at = now(), reviewed_by = 'gina@clinic', review_verdict = 'appropriate'
          WHERE id = $1`,
        [id],
      ),
    ).rejects.toMatchObject({ code: '23514', constraint: 'break_glass_four_eyes' });
  });

  it('leaves an audit trail that verifies', async () => {
    const checkpoint = await ehrctl('audit', 'checkpoint');
    expect(checkpoint.code, checkpoint.stderr).toBe(0);
    const verify = await ehrctl('audit', 'verify');
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toContain('audit chain intact');
  });
});
