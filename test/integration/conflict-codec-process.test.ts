/**
 * The codec server process as it ships (workers/codec-server.ts, started like every process of ours, its TLS key and
 * token issuer key by reference) serves a conflict's decoded diff with the tenant keyring it builds itself: both
 * sides for a decode-role token, a 403 without the role.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomFreePort } from '../../dev/ports.js';
import { createCertificateAuthority, issueCertificate } from '../../lib/crypto/tls-certs.js';
import { PROCESS_ENV, nodeArgsFor } from '../../workers/node-process.js';
import { recordIdentifiers, registerLogFile } from '../security/leak-registry.js';
import { httpsCall } from './codec-support.js';
import type { OpenedConflict } from './conflict-support.js';
import { openTestConflict, testKeyring } from './conflict-support.js';
import { registerSandboxTenant, useSyncHarness } from './support.js';

const LOCAL_START = '2029-10-11T10:11:12.000Z';
recordIdentifiers([LOCAL_START]);
const repoRoot = path.resolve(__dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'conflict-codec-'));
const logPath = path.join(tmp, 'codec-server.log');
const issuer = generateKeyPairSync('ed25519');

const h = useSyncHarness({ worker: false });
let child: ChildProcess;
let exited: Promise<number | null>;
let codecUrl: string;
let caPem: string;
let conflict: OpenedConflict;

const token = (roles: string[]) =>
  new SignJWT({ roles })
    .setProtectedHeader({ alg: 'EdDSA' })
    .setIssuer('https://issuer.test.invalid')
    .setAudience('ehr-connectors-codec')
    .setSubject('process-decoder@example.test')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(issuer.privateKey);

beforeAll(async () => {
  const keyring = await testKeyring(h);
  const { tenantId, integrationIds } = await registerSandboxTenant(h.pool, h.sandbox, {
    resourceTypes: ['Patient', 'Appointment'],
  });
  conflict = await openTestConflict(
    h,
    keyring,
    { tenantId, integrationId: integrationIds[0]! },
    { local: { start: LOCAL_START } },
  );
  const ca = await createCertificateAuthority('codec process test CA', 1);
  const server = await issueCertificate(ca, { commonName: '127.0.0.1', altNames: ['127.0.0.1'], usage: 'server' });
  caPem = ca.certPem;
  const files = {
    cert: path.join(tmp, 'codec.pem'),
    key: path.join(tmp, 'codec.key'),
    issuer: path.join(tmp, 'iss.pem'),
  };
  fs.writeFileSync(files.cert, server.certPem);
  fs.writeFileSync(files.key, server.keyPem, { mode: 0o600 });
  fs.writeFileSync(files.issuer, issuer.publicKey.export({ type: 'spki', format: 'pem' }));
  const port = await randomFreePort();
  codecUrl = `https://127.0.0.1:${port}`;
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' };
  for (const [k, v] of Object.entries(h.config)) if (v !== undefined) env[k] = String(v);
  Object.assign(env, PROCESS_ENV, {
    CODEC_HOST: '127.0.0.1',
    CODEC_PORT: String(port),
    CODEC_TLS_CERT: `file:${files.cert}`,
    CODEC_TLS_KEY: `file:${files.key}`,
    CODEC_AUTH_ISSUER_KEY: `file:${files.issuer}`,
    CODEC_AUTH_ISSUER: 'https://issuer.test.invalid',
    CODEC_AUTH_AUDIENCE: 'ehr-connectors-codec',
  });
  child = spawn(process.execPath, nodeArgsFor('workers/codec-server.ts'), { cwd: repoRoot, env, stdio: 'pipe' });
  registerLogFile(logPath);
  const log = fs.createWriteStream(logPath, { flags: 'a' });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!(fs.existsSync(logPath) && fs.readFileSync(logPath, 'utf8').includes('codec server listening'))) {
    if (child.exitCode !== null) throw new Error(`codec server exited early with ${child.exitCode}; see ${logPath}`);
    if (Date.now() > deadline) throw new Error(`codec server not ready; see ${logPath}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await exited;
  }
});

describe('the codec server process', () => {
  it('serves a conflict diff to the decode role only', async () => {
    const get = async (roles: string[]) =>
      httpsCall(`${codecUrl}/conflicts/${conflict.conflictId}`, caPem, {
        method: 'GET',
        headers: { authorization: `Bearer ${await token(roles)}` },
      });
    expect((await get([])).status).toBe(403);
    const served = await get(['phi-decoder']);
    expect(served.status).toBe(200);
    expect(served.body).toMatchObject({ elements: ['start'], local: { start: LOCAL_START } });
  });
});
