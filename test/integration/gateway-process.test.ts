/**
 * The gateway process as it ships (workers/gateway.ts started like every process of ours, over HTTPS with its
 * own certificate and access-token key by reference) answers discovery; and the operator's path by hand through
 * it: `ehrctl consumers add … --dev-key`, `ehrctl dev consumer-token`, the token opening /fhir/, `consumers revoke`
 * closing it on the next request, and a scope outside the purpose refused at registration with a clear error.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomFreePort } from '../../dev/ports.js';
import { createCertificateAuthority, issueCertificate } from '../../lib/crypto/tls-certs.js';
import { devKeyPath } from '../../lib/gateway/consumers.js';
import { PROCESS_ENV, nodeArgsFor } from '../../workers/node-process.js';
import { uniqueId } from '../harness.js';
import { registerLogFile } from '../security/leak-registry.js';
import { ehrctlEnv, runEhrctl } from './ehrctl-process.js';
import { testConfig } from './support.js';

const repoRoot = path.resolve(__dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-process-'));
const logPath = path.join(tmp, 'gateway.log');
const config = testConfig();
let child: ChildProcess;
let exited: Promise<number | null>;
let gatewayUrl: string;
let caPem: string;

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca: caPem, headers, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

beforeAll(async () => {
  const ca = await createCertificateAuthority('gateway test CA', 1);
  const server = await issueCertificate(ca, { commonName: '127.0.0.1', altNames: ['127.0.0.1'], usage: 'server' });
  caPem = ca.certPem;
  const files = {
    ca: path.join(tmp, 'ca.pem'),
    cert: path.join(tmp, 'gateway.pem'),
    key: path.join(tmp, 'gateway.key'),
    access: path.join(tmp, 'gateway-access.key'),
  };
  fs.writeFileSync(files.ca, ca.certPem);
  fs.writeFileSync(files.cert, server.certPem);
  fs.writeFileSync(files.key, server.keyPem, { mode: 0o600 });
  const access = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
  fs.writeFileSync(files.access, access, { mode: 0o600 });
  const port = await randomFreePort();
  gatewayUrl = `https://127.0.0.1:${port}`;

  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' };
  for (const [k, v] of Object.entries(config)) env[k] = String(v);
  Object.assign(env, PROCESS_ENV, {
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_PORT: String(port),
    GATEWAY_PUBLIC_URL: gatewayUrl,
    GATEWAY_TLS_CERT: `file:${files.cert}`,
    GATEWAY_TLS_KEY: `file:${files.key}`,
    GATEWAY_ACCESS_SIGNING_KEY: `file:${files.access}`,
  });
  child = spawn(process.execPath, nodeArgsFor('workers/gateway.ts'), {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  registerLogFile(logPath);
  const log = fs.createWriteStream(logPath, { flags: 'a' });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!(fs.existsSync(logPath) && fs.readFileSync(logPath, 'utf8').includes('gateway listening'))) {
    if (child.exitCode !== null) throw new Error(`gateway exited early with ${child.exitCode}; see ${logPath}`);
    if (Date.now() > deadline) throw new Error(`gateway not ready; see ${logPath}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await exited;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the gateway process', () => {
  it('serves discovery over HTTPS at its public URL', async () => {
    const res = await get(`${gatewayUrl}/.well-known/smart-configuration`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({
      issuer: gatewayUrl,
      token_endpoint: `${gatewayUrl}/auth/token`,
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
    });
  });

  it('takes a --dev-key consumer by hand: consumers add, dev consumer-token, a read, revoke on the next request', async () => {
    const env = { ...ehrctlEnv({ config }), GATEWAY_PUBLIC_URL: gatewayUrl };
    const tenant = uniqueId('gw-cli');
    const consumer = uniqueId('gw-cli-c');
    expect((await runEhrctl(['tenants', 'add', '--id', tenant, '--name', 'Synthetic CLI Clinic'], env)).code).toBe(0);

    const refused = await runEhrctl(
      [
        'consumers',
        'add',
        '--id',
        consumer,
        '--tenant',
        tenant,
        '--purpose',
        'billing-export',
        '--scopes',
        'system/Patient.rs system/Observation.rs',
        '--dev-key',
      ],
      env,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/purpose billing-export does not allow resource type\(s\) Observation/);

    const added = await runEhrctl(
      [
        'consumers',
        'add',
        '--id',
        consumer,
        '--tenant',
        tenant,
        '--purpose',
        'clinical-sync',
        '--scopes',
        'system/Patient.rs system/Observation.rs',
        '--dev-key',
      ],
      env,
    );
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain(`consumer ${consumer} registered for tenant ${tenant} (clinical-sync)`);
    const shown = JSON.parse((await runEhrctl(['consumers', 'show', consumer, '--json'], env)).stdout) as {
      jwks: { keys: Array<{ kid: string }> };
      status: string;
    };
    expect(shown).toMatchObject({ status: 'active', ratePerMinute: 600, rateBurst: 60 });
    const keyFile = devKeyPath(config.EHR_SECRETS_DIR, consumer, shown.jwks.keys[0]!.kid);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const listed = await runEhrctl(['consumers', 'list', '--tenant', tenant], env);
    expect(listed.stdout).toMatch(new RegExp(`${consumer}\\s+${tenant}\\s+clinical-sync\\s+active`));

    const caFile = path.join(tmp, 'ca.pem');
    const token = await runEhrctl(['dev', 'consumer-token', '--consumer', consumer, '--ca', caFile], env);
    expect(token.code, token.stderr).toBe(0);
    // Every registered scope unless --scope; an EdDSA JWT for the consumer and its tenant, short-lived.
    expect(decodeProtectedHeader(token.stdout.trim())).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
    const claims = decodeJwt(token.stdout.trim());
    expect(claims).toMatchObject({ sub: consumer, tenant, scope: 'system/Patient.rs system/Observation.rs' });
    expect(claims.exp! - claims.iat!).toBe(300);
    const bearer = { authorization: `Bearer ${token.stdout.trim()}` };
    // A search of a type the token covers (the tenant has stored nothing: an empty page).
    const read = await get(`${gatewayUrl}/fhir/Patient?_count=1`, bearer);
    expect(read.status).toBe(200);
    expect(JSON.parse(read.body)).toMatchObject({ resourceType: 'Bundle', type: 'searchset' });

    expect((await runEhrctl(['consumers', 'revoke', consumer, '--reason', 'synthetic test'], env)).code).toBe(0);
    const after = await get(`${gatewayUrl}/fhir/Patient?_count=1`, bearer);
    expect(after.status).toBe(401);
    expect(JSON.parse(after.body)).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'login' }] });
    const again = await runEhrctl(['dev', 'consumer-token', '--consumer', consumer, '--ca', caFile], env);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
  });
});
