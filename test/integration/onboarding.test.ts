/**
 * Onboarding as an operator meets it through ehrctl (issue 11 items 4 and 9), against a tiny FHIR listener
 * of the test's own on loopback (no SMART discovery; an open server; one that demands authentication):
 * registration with --token-url, a pending client id that syncs refuse, the JWKS URL and public key for the
 * vendor's form, `integrations update` of every field audited, auth method none refused without TLS/loopback
 * or without the acknowledgement, its sync sends no Authorization header, and a failed sync says why.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getIntegration } from '../../lib/integrations/repository.js';
import { createTenant } from '../../lib/store/tenants.js';
import { uniqueId } from '../harness.js';
import { ehrctlEnv, runEhrctl } from './ehrctl-process.js';
import { testActor, useSyncHarness } from './support.js';

const harness = useSyncHarness({ sandbox: { size: 5 } });

/** Requests the listener saw: path and whether an Authorization header came with them. */
const seen: Array<{ path: string; authorization: boolean }> = [];
let server: http.Server;
let origin: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push({ path: url.pathname, authorization: req.headers.authorization !== undefined });
    if (url.pathname.startsWith('/open/fhir/') && !url.pathname.includes('.well-known')) {
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      return res.end(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry: [] }));
    }
    if (url.pathname.startsWith('/closed/fhir/')) {
      res.writeHead(401, { 'content-type': 'application/json' });
      return res.end('{}');
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function ehrctl(args: string[], extra: Record<string, string> = {}) {
  return runEhrctl(args, { ...ehrctlEnv({ config: harness.config }), ...extra });
}

async function newTenant(): Promise<string> {
  const tenant = uniqueId('onb');
  await createTenant(harness.pool, { id: tenant, name: 'Synthetic Onboarding Clinic' }, testActor);
  return tenant;
}

type Details = Record<string, unknown> & { changed?: Record<string, { from: unknown; to: unknown }> };

async function audits(integrationId: string, action: string): Promise<Details[]> {
  const { rows } = await harness.pool.query<{ details: Details; actor: string }>(
    'SELECT details, actor FROM audit_events WHERE action = $1 AND integration_id = $2 ORDER BY seq',
    [action, integrationId],
  );
  return rows.map((r) => ({ ...r.details, actor: r.actor }));
}

const add = (id: string, tenant: string, ...rest: string[]) =>
  ehrctl([
    'integrations',
    'add',
    '--id',
    id,
    '--tenant',
    tenant,
    '--vendor',
    'fhir-server',
    '--types',
    'Patient',
    ...rest,
  ]);

describe('a server without SMART discovery, registered before the vendor issues a client id', () => {
  it('needs --token-url, waits as pending-client-id, prints the JWKS URL and public key, and is updated field by field', async () => {
    const tenant = await newTenant();
    const id = `${tenant}-nd`;
    const base = `${origin}/nodisc/fhir`;
    const noToken = await add(id, tenant, '--base-url', base);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('.well-known/smart-configuration');
    expect(noToken.stderr).toContain('--token-url');

    const added = await add(id, tenant, '--base-url', base, '--token-url', `${origin}/nodisc/token`);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain('client id: PENDING');
    expect(added.stdout).toContain('JWKS URL: not configured');
    expect(added.stdout).toContain('-----BEGIN PUBLIC KEY-----');
    const stored = await getIntegration(harness.pool, id);
    expect(stored).toMatchObject({ status: 'pending-client-id', clientId: null, tokenUrl: `${origin}/nodisc/token` });
    expect((await audits(id, 'integration.registered'))[0]).toMatchObject({ tokenUrlSource: 'given' });

    // Neither changes anything: side by side.
    const [shown, refused] = await Promise.all([
      ehrctl(['integrations', 'show', id], { JWKS_PUBLIC_URL: 'https://jwks.example.test' }),
      ehrctl(['sync', 'run', '--integration', id]),
    ]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`JWKS URL: https://jwks.example.test/jwks/${id}.json`);
    expect(shown.stdout).toContain(`"kid":"${stored.signingKid}"`);
    expect(shown.stdout).toContain('-----BEGIN PUBLIC KEY-----');
    expect(shown.stdout).toContain('read strategy: search');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('pending-client-id');

    const reason = ['--reason', 'vendor issued the client id'];
    const issued = await ehrctl(['integrations', 'update', id, '--client-id', 'client-0042', ...reason]);
    expect(issued.code, issued.stderr).toBe(0);
    const active = await getIntegration(harness.pool, id);
    expect(active).toMatchObject({ status: 'active', clientId: 'client-0042' });
    expect(active.signingKid).toBe(stored.signingKid); // no new key
    expect(active.credentialGeneration).toBe(stored.credentialGeneration + 1);

    const moved = `${origin}/moved/fhir`;
    const steps: string[][] = [
      ['--base-url', moved, '--token-url', `${origin}/moved/token`],
      ['--types', 'Patient,Observation'],
      [
        '--strategy',
        'bulk',
        '--bulk-level',
        'group',
        '--group-id',
        'grp-1',
        '--type-filter',
        'Observation?category=laboratory',
      ],
      ['--bulk-file-host', 'files.example.test', '--bulk-file-host', 'cdn.example.test:8443'],
      ['--strategy', 'search', '--overlap-seconds', '60'],
    ];
    for (const step of steps) {
      const r = await ehrctl(['integrations', 'update', id, ...step, ...reason]);
      expect(r.code, `${step.join(' ')}: ${r.stderr}`).toBe(0);
    }
    const updated = await getIntegration(harness.pool, id);
    expect(updated).toMatchObject({
      baseUrl: moved,
      tokenUrl: `${origin}/moved/token`,
      resourceTypes: ['Patient', 'Observation'],
      readStrategy: 'search',
      readOptions: { overlapSeconds: 60 },
      bulkFileHosts: ['files.example.test', 'cdn.example.test:8443'],
      signingKid: stored.signingKid,
    });
    const events = await audits(id, 'integration.updated');
    expect(events.map((e) => Object.keys(e.changed ?? {}).sort())).toEqual([
      ['clientId', 'credentialGeneration', 'status'],
      ['baseUrl', 'credentialGeneration', 'tokenUrl'],
      ['credentialGeneration', 'resourceTypes', 'scopes'],
      ['readOptions', 'readStrategy'],
      ['bulkFileHosts', 'credentialGeneration'],
      ['readOptions', 'readStrategy'],
    ]);
    expect(events[0]).toMatchObject({
      reason: 'vendor issued the client id',
      actor: expect.any(String),
      changed: { clientId: { from: null, to: 'client-0042' }, status: { from: 'pending-client-id', to: 'active' } },
    });
    expect(events[2]!.changed!.scopes!.to).toEqual(['system/Patient.rs', 'system/Observation.rs']);

    // Checked against the purpose and the vendor: refused, nothing changes, nothing audited. Refusals change
    // nothing, so the three processes run side by side; each is still checked on its own.
    const [outside, noGroup, badHost] = await Promise.all([
      ehrctl(['integrations', 'update', id, '--types', 'Appointment,Spaceship', ...reason]),
      ehrctl(['integrations', 'update', id, '--strategy', 'patient', ...reason]),
      ehrctl(['integrations', 'update', id, '--bulk-file-host', 'https://x.test/path', ...reason]),
    ]);
    expect(outside.code).toBe(2);
    expect(noGroup.code).toBe(2);
    expect(noGroup.stderr).toContain('--roster-search');
    expect(badHost.code).toBe(2);
    expect(await audits(id, 'integration.updated')).toHaveLength(6);
  });
});

describe('auth method none: an open server on a network the organisation controls', () => {
  it('is refused without the acknowledgement or without TLS/loopback, and accepted with both (audited)', async () => {
    const tenant = await newTenant();
    const none = ['--auth-method', 'none'];
    const ack = '--acknowledge-unauthenticated-server';
    const noAck = await add(`${tenant}-a`, tenant, '--base-url', 'https://fhir.example.test/fhir', ...none);
    expect(noAck.code).toBe(2);
    expect(noAck.stderr).toContain(ack);
    const plain = await add(`${tenant}-b`, tenant, '--base-url', 'http://10.20.30.40/fhir', ...none, ack);
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toMatch(/TLS|https/i);
    const tls = await add(`${tenant}-c`, tenant, '--base-url', 'https://fhir.example.test/fhir', ...none, ack);
    expect(tls.code, tls.stderr).toBe(0);
    expect(tls.stdout).toContain('WARNING: auth method none');
    expect(await getIntegration(harness.pool, `${tenant}-c`)).toMatchObject({
      authMethod: 'none',
      status: 'active',
      clientId: null,
      tokenUrl: null,
    });
    expect((await audits(`${tenant}-c`, 'integration.registered'))[0]).toMatchObject({
      authMethod: 'none',
      unauthenticatedServerAcknowledged: true,
    });
    expect((await ehrctl(['vendors', 'matrix'])).stdout).toContain('unauthenticated-server');
  });

  it('syncs without an Authorization header; a server that demands one fails the sync with its code', async () => {
    const tenant = await newTenant();
    const ack = ['--auth-method', 'none', '--acknowledge-unauthenticated-server'];
    expect((await add(`${tenant}-open`, tenant, '--base-url', `${origin}/open/fhir`, ...ack)).code).toBe(0);
    const before = seen.length;
    const ok = await ehrctl(['sync', 'run', '--integration', `${tenant}-open`, '--wait']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(': completed');
    const calls = seen.slice(before).filter((s) => s.path.startsWith('/open/fhir/'));
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((c) => !c.authorization)).toBe(true);

    expect((await add(`${tenant}-closed`, tenant, '--base-url', `${origin}/closed/fhir`, ...ack)).code).toBe(0);
    const failed = await ehrctl(['sync', 'run', '--integration', `${tenant}-closed`, '--wait']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/: failed — VENDOR_AUTH_FAILED: .*demands authentication/);
    const workflowId = /started (\S+)/.exec(failed.stdout)![1]!;
    const status = await ehrctl(['sync', 'status', workflowId]);
    expect(status.code).toBe(1);
    expect(JSON.parse(status.stdout)).toMatchObject({
      workflowId,
      status: 'failed',
      error: { code: 'VENDOR_AUTH_FAILED', message: expect.stringContaining('demands authentication') },
    });
  });
});
