/**
 * `ehrctl reconcile conflicts | conflict | resolve` as an operator runs them (a real ehrctl process against the test
 * run's PostgreSQL and Temporal, an in-process worker, the sandbox vendor): the list and the show name elements,
 * never values; `--decode` shows both sides only through the codec server with a decode-role token; `resolve
 * --fields` says what it did; a refused resolution is a usage error that names the undecided element; an open
 * conflict whose workflow never started (a lost notification) is resolved all the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TenantKeyring } from '../../lib/keys/keyring.js';
import { conflictDiff } from '../../lib/writeback/conflicts.js';
import { recordIdentifiers } from '../security/leak-registry.js';
import type { TestCodecServer } from './codec-support.js';
import { startTestCodecServer } from './codec-support.js';
import type { OpenedConflict } from './conflict-support.js';
import { openTestConflict, testKeyring } from './conflict-support.js';
import { ehrctlEnv, runEhrctl } from './ehrctl-process.js';
import { registerSandboxTenant, useSyncHarness } from './support.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const LOCAL_START = '2029-09-30T07:07:07.000Z';
const LOCAL_END = '2029-09-30T07:52:07.000Z';
recordIdentifiers([LOCAL_START, LOCAL_END]);

const h = useSyncHarness({});
let keyring: TenantKeyring;
let scope: { tenantId: string; integrationId: string };
let conflict: OpenedConflict;
let server: TestCodecServer;
let caFile: string;

beforeAll(async () => {
  keyring = await testKeyring(h);
  const { tenantId, integrationIds } = await registerSandboxTenant(h.pool, h.sandbox, {
    resourceTypes: ['Patient', 'Appointment'],
  });
  scope = { tenantId, integrationId: integrationIds[0]! };
  conflict = await openTestConflict(h, keyring, scope, { local: { start: LOCAL_START, end: LOCAL_END } });
  server = await startTestCodecServer(h.config, h.pool, 'http://127.0.0.1:18233', {
    conflicts: { diff: (id) => conflictDiff(h.pool, keyring, id) },
  });
  caFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'conflict-cli-')), 'ca.pem');
  fs.writeFileSync(caFile, server.caPem);
});

afterAll(async () => {
  await server?.close();
});

const ehrctl = (...args: string[]) => runEhrctl(['reconcile', ...args], ehrctlEnv({ config: h.config }));

describe('ehrctl reconcile conflicts', () => {
  it('lists and shows a conflict by element names only; --decode shows both sides for the decode role', async () => {
    const list = await ehrctl('conflicts', '--integration', scope.integrationId, '--json');
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({ id: conflict.conflictId, elements: ['start', 'end'], reason: 'both-changed' }),
    ]);
    const show = await ehrctl('conflict', conflict.conflictId);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('elements: start, end');
    expect(show.stdout).toMatch(/reconcile\.conflict_opened/);
    for (const out of [list.stdout, show.stdout]) expect(out).not.toContain(LOCAL_START);

    const decodeArgs = ['--decode', '--codec-url', server.url, '--codec-ca', caFile];
    const refused = await ehrctl(
      'conflict',
      conflict.conflictId,
      ...decodeArgs,
      '--token',
      await server.token({ roles: [] }),
    );
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/403: role phi-decoder required to decode/);
    expect(refused.stdout).not.toContain(LOCAL_START);
    const token = await server.token({ sub: 'auditor@example.test', roles: ['phi-decoder'] });
    const decoded = await ehrctl('conflict', conflict.conflictId, ...decodeArgs, '--token', token);
    expect(decoded.code).toBe(0);
    expect(decoded.stdout).toContain(`local:  "${LOCAL_START}"`);
    expect(decoded.stdout).toContain(`remote: ${JSON.stringify(conflict.vendor.start)}`);
  });

  it('resolve refuses a partial decision as a usage error, then applies --fields and says what it did', async () => {
    const partial = await ehrctl('resolve', conflict.conflictId, '--fields', 'start=local', '--by', 'dr.kim');
    expect(partial.code).toBe(2);
    expect(partial.stderr).toMatch(/undecided: end/);
    const done = await ehrctl('resolve', conflict.conflictId, '--fields', 'start=local,end=remote', '--by', 'dr.kim');
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    expect(done.stdout).toContain(`conflict ${conflict.conflictId} resolved by dr.kim: start=local, end=remote`);
    expect(done.stdout).toMatch(/write-back queued: change [0-9a-f-]{36}/);
    expect(done.stdout).toContain("local copy took the vendor's current end");
    const open = await ehrctl('conflicts', '--integration', scope.integrationId);
    expect(open.stdout.trim()).toBe('no open conflicts');
    const all = await ehrctl('conflicts', '--integration', scope.integrationId, '--all', '--json');
    expect(JSON.parse(all.stdout)).toEqual([
      expect.objectContaining({ id: conflict.conflictId, status: 'resolved', resolvedBy: 'dr.kim' }),
    ]);
    const show = await ehrctl('conflict', conflict.conflictId);
    expect(show.stdout).toContain('resolved by dr.kim: start=local,end=remote');
    expect(show.stdout).toMatch(/reconcile\.conflict_resolved\s+dr\.kim/);
  });

  it('resolve starts the workflow of an open conflict whose start notification was lost, then resolves it', async () => {
    const lost = await openTestConflict(h, keyring, scope, { local: { end: LOCAL_END }, notify: false });
    const done = await ehrctl('resolve', lost.conflictId, '--take', 'remote', '--by', 'nurse.lee');
    expect(done.stderr).toBe('');
    expect(done.stdout).toContain(`conflict ${lost.conflictId} resolved by nurse.lee: end=remote`);
  });
});
