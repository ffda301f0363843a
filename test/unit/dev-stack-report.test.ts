/**
 * What `ehrctl dev status|up` and `npm run demo` say about the dev stack is what is true: plain
 * status never shows the database password or the sandboxes' admin tokens (`--json` does, for
 * scripts), and the demo never claims a stack it failed to start is "left running", nor stops a stack
 * it did not start. A fake stack.json (its daemon a `sleep` we own) stands in for a running stack.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomFreePort } from '../../dev/ports.js';
import { isPidAlive } from '../../dev/process.js';
import { writeStackFile, stackPaths, type StackInfo } from '../../dev/stack-files.js';

const repoRoot = path.resolve(__dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-dev-report-'));
const PASSWORD = 'synthetic-db-password-4711';
const ADMIN_TOKEN = 'synthetic-sandbox-admin-token-0815';
const EPIC_ADMIN_TOKEN = 'synthetic-epic-admin-token-2342';

function run(
  args: string[],
  dataDir: string,
  extraEnv: Record<string, string> = {},
): Promise<{ code: number; output: string; stdout: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, EHR_DEV_DATA_DIR: dataDir, FORCE_COLOR: '0', ...extraEnv };
  for (const name of ['TEMPORAL_ADDRESS', 'DATABASE_URL', 'EHR_KEK_DIR', 'EHR_SECRETS_DIR']) delete env[name];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { env, cwd: repoRoot, timeout: 240_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr, stdout });
    });
  });
}
const ehrctl = (args: string[], dataDir: string, env?: Record<string, string>) =>
  run([path.join(repoRoot, 'bin', 'ehrctl.js'), ...args], dataDir, env);
const demo = (args: string[], dataDir: string, env?: Record<string, string>) =>
  run(['--import', 'tsx', path.join(repoRoot, 'client', 'demo.ts'), ...args], dataDir, env);

describe('with a dev stack running', () => {
  const dataDir = path.join(tmp, 'running');
  let daemon: ChildProcess;

  beforeAll(async () => {
    daemon = spawn('sleep', ['600'], { stdio: 'ignore' });
    const closedPort = await randomFreePort(); // nothing listens: commands needing the database fail fast
    const info: StackInfo = {
      pid: daemon.pid!,
      startedAt: new Date().toISOString(),
      temporalAddress: '127.0.0.1:1',
      temporalUiUrl: 'http://127.0.0.1:2',
      namespace: 'default',
      taskQueue: 'ehr-connectors',
      databaseUrl: `postgresql://ehr_app:${PASSWORD}@127.0.0.1:${closedPort}/ehr_connectors`,
      sandboxUrl: 'http://127.0.0.1:3',
      sandboxFhirBaseUrl: 'http://127.0.0.1:3/fhir',
      sandboxTokenUrl: 'http://127.0.0.1:3/token',
      sandboxAdminToken: ADMIN_TOKEN,
      kekDir: path.join(dataDir, 'keys'),
      secretsDir: path.join(dataDir, 'secrets'),
      workerPid: daemon.pid!,
      logDir: path.join(dataDir, 'logs'),
      sandboxes: [
        {
          personality: 'epic',
          url: 'http://127.0.0.1:4',
          fhirBaseUrl: 'http://127.0.0.1:4/fhir',
          adminToken: EPIC_ADMIN_TOKEN,
        },
      ],
    };
    fs.mkdirSync(path.join(dataDir, 'secrets'), { recursive: true, mode: 0o700 });
    writeStackFile(info, stackPaths({ EHR_DEV_DATA_DIR: dataDir }));
  });

  afterAll(() => {
    daemon.kill('SIGKILL');
  });

  it('plain `dev status` and `dev up` never print the database password or an admin token; `--json` does', async () => {
    for (const args of [
      ['dev', 'status'],
      ['dev', 'up'],
    ]) {
      const res = await ehrctl(args, dataDir);
      expect(res.code, res.output).toBe(0);
      expect(res.output).toMatch(/PostgreSQL +postgresql:\/\/ehr_app:\*\*\*@/);
      for (const secret of [PASSWORD, ADMIN_TOKEN, EPIC_ADMIN_TOKEN]) expect(res.output).not.toContain(secret);
    }
    const json = await ehrctl(['dev', 'status', '--json'], dataDir);
    for (const secret of [PASSWORD, ADMIN_TOKEN, EPIC_ADMIN_TOKEN]) expect(json.output).toContain(secret);
  });

  it('the demo uses a stack it did not start, and leaves it running when a step fails', async () => {
    const res = await demo([], dataDir);
    expect(res.code).toBe(1);
    expect(res.output).toMatch(/a dev stack is already running: the demo uses it and leaves it running/);
    expect(res.output).toMatch(/demo failed: ehrctl tenants add/);
    expect(res.output).toMatch(/The dev stack was running before the demo and stays running/);
    expect(res.output).not.toMatch(/Stopping the stack|dev down\n/);
    expect(isPidAlive(daemon.pid!)).toBe(true);
  }, 240_000);
});

describe('when the dev stack fails to start', () => {
  for (const args of [[], ['--keep']]) {
    it(`the demo${args.length ? ' -- --keep' : ''} says so, and claims nothing is left running because nothing is`, async () => {
      const dataDir = path.join(tmp, `failing${args.join('')}`);
      const res = await demo(args, dataDir, { EHR_SANDBOX_SIZE: 'lots' });
      expect(res.code).toBe(1);
      expect(res.output).toMatch(/EHR_SANDBOX_SIZE must be a positive integer/);
      // Its last word (stdout's last line).
      expect(res.stdout).toMatch(/The dev stack did not start \(the reason is above\); nothing was left running\.\n*$/);
      expect(res.output).not.toMatch(/left running:|Stopping the stack/);
      expect(JSON.parse((await ehrctl(['dev', 'status', '--json'], dataDir)).output)).toEqual({ running: false });
    }, 240_000);
  }
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
