/** `ehrctl dev up | status | down` end to end, in a temporary data dir (real PostgreSQL, Temporal, sandbox, worker). */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { isPidAlive } from '../../dev/process.js';
import { readStackEnv, stackPaths } from '../../dev/stack-files.js';
import { filesUnder } from '../security/leak-scan.js';
import { preserveLogFiles, scanTemporalServer } from '../security/scanned-temporal.js';

const repoRoot = path.resolve(__dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-dev-up-'));
fs.chmodSync(tmp, 0o755); // under root the embedded PostgreSQL runs as `postgres`
const dataDir = path.join(tmp, 'data');

function ehrctl(
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, EHR_DEV_DATA_DIR: dataDir, EHR_SANDBOX_SIZE: '50', ...extraEnv };
  for (const name of ['TEMPORAL_ADDRESS', 'DATABASE_URL', 'EHR_KEK_DIR', 'EHR_SECRETS_DIR']) delete env[name];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(repoRoot, 'bin', 'ehrctl.js'), ...args],
      { env, cwd: repoRoot, timeout: 300_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

function httpsGet(url: string, ca: string, bearer?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = bearer ? { authorization: `Bearer ${bearer}` } : {};
    const req = https.get(url, { ca, headers, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

afterAll(async () => {
  await ehrctl(['dev', 'down']);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('ehrctl dev', () => {
  it('reports a start-up failure with its reason and leaves nothing behind', async () => {
    const up = await ehrctl(['dev', 'up'], { EHR_SANDBOX_SIZE: 'lots' });
    expect(up.code).toBe(1);
    expect(up.stdout + up.stderr).toMatch(/EHR_SANDBOX_SIZE must be a positive integer/);
    expect(fs.existsSync(path.join(dataDir, 'stack.json'))).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'stack.lock'))).toBe(false);
  });

  it('brings the stack up, reports it, is idempotent, and takes it down', async () => {
    const up = await ehrctl(['dev', 'up']);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(/starting PostgreSQL…/);
    expect(up.stdout).toMatch(/dev stack ready in/);

    const status = JSON.parse((await ehrctl(['dev', 'status', '--json'])).stdout) as Record<string, unknown>;
    expect(status).toMatchObject({ running: true, workerRunning: true, namespace: 'default' });
    // The stack's Temporal server and logs are part of the end-of-run leak scan.
    const scanned = scanTemporalServer({
      label: 'dev-stack',
      address: status.temporalAddress as string,
      namespace: 'default',
    });
    for (const key of [
      'temporalAddress',
      'temporalUiUrl',
      'databaseUrl',
      'sandboxUrl',
      'sandboxFhirBaseUrl',
      'sandboxTokenUrl',
      'kekDir',
      'secretsDir',
    ]) {
      expect(status[key], key).toBeTruthy();
    }
    // The human output never carries the database password.
    const password = new URL(status.databaseUrl as string).password;
    expect(up.stdout).not.toContain(password);
    expect((await ehrctl(['dev', 'status'])).stdout).not.toContain(password);
    expect(fs.statSync(path.join(dataDir, 'stack.json')).mode & 0o777).toBe(0o600);

    // Recorded as the owner from the stack's directories: what stored secret references are checked against.
    const db = new pg.Client({ connectionString: status.databaseUrl as string });
    await db.connect();
    const roots = (await db.query<{ path: string; kind: string }>('SELECT path, kind FROM secret_roots')).rows;
    await db.end();
    expect(roots).toEqual(
      expect.arrayContaining([
        { path: status.secretsDir, kind: 'root' },
        { path: status.kekDir, kind: 'excluded' },
      ]),
    );

    const ui = await fetch(status.temporalUiUrl as string);
    expect(ui.ok).toBe(true);
    const env = readStackEnv(stackPaths({ EHR_DEV_DATA_DIR: dataDir }));
    expect(env?.DATABASE_URL).toBe(status.databaseUrl);

    // The mediation gateway: HTTPS with the dev CA, discovery at its URL, and a --dev-key consumer's token by hand.
    expect(status.gatewayUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(up.stdout).toContain(`gateway      ${status.gatewayUrl as string}`);
    const ca = fs.readFileSync(status.devCaPath as string, 'utf8');
    const discovery = await httpsGet(`${status.gatewayUrl as string}/.well-known/smart-configuration`, ca);
    expect(discovery.status).toBe(200);
    expect(JSON.parse(discovery.body)).toMatchObject({ token_endpoint: `${status.gatewayUrl as string}/auth/token` });
    expect((await ehrctl(['tenants', 'add', '--id', 'dev-gw', '--name', 'Synthetic Dev Clinic'])).code).toBe(0);
    const consumer = await ehrctl([
      'consumers',
      'add',
      '--id',
      'dev-gw-app',
      '--tenant',
      'dev-gw',
      '--purpose',
      'scheduling-sync',
      '--scopes',
      'system/Appointment.rs',
      '--dev-key',
    ]);
    expect(consumer.code, consumer.stderr).toBe(0);
    const token = await ehrctl(['dev', 'consumer-token', '--consumer', 'dev-gw-app']);
    expect(token.code, token.stderr).toBe(0);
    const read = await httpsGet(`${status.gatewayUrl as string}/fhir/metadata`, ca, token.stdout.trim());
    expect(read.status).toBe(200);
    expect(JSON.parse(read.body)).toMatchObject({ resourceType: 'CapabilityStatement' });

    const again = await ehrctl(['dev', 'up']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already running/);

    await scanned.preserve();
    const down = await ehrctl(['dev', 'down']);
    preserveLogFiles(filesUnder(stackPaths({ EHR_DEV_DATA_DIR: dataDir }).logDir), 'dev-stack');
    expect(down.code).toBe(0);
    expect(down.stdout).toMatch(/dev stack stopped/);
    expect(isPidAlive(status.pid as number)).toBe(false);
    expect(isPidAlive(status.workerPid as number)).toBe(false);
    expect(isPidAlive(status.gatewayPid as number)).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'stack.json'))).toBe(false);
    expect(JSON.parse((await ehrctl(['dev', 'status', '--json'])).stdout)).toEqual({ running: false });
    // Data survives for the next `dev up`.
    expect(fs.existsSync(path.join(dataDir, 'postgres', 'PG_VERSION'))).toBe(true);
    expect(fs.existsSync(path.join(dataDir, 'temporal.db'))).toBe(true);
  });
});
