/**
 * moto's server (PyPI `moto[server]`), the local KMS the aws-kms KEK provider is tested against:
 * installed on first use into a cached venv (~/.cache/ehr-connectors/moto-venv, or under os.tmpdir()
 * when the home cache is not writable; EHR_MOTO_VENV overrides). Run directly
 * (`npx tsx test/security/moto.ts`) it installs moto and prints moto_server's path — .ci/run does so
 * before the tests.
 */
import { spawnSync } from 'node:child_process';
import fs, { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Requirement } from '../suites-not-run.js';

export function motoVenvDir(): string {
  if (process.env.EHR_MOTO_VENV) return path.resolve(process.env.EHR_MOTO_VENV);
  const home = path.join(os.homedir(), '.cache', 'ehr-connectors', 'moto-venv');
  try {
    fs.mkdirSync(path.dirname(home), { recursive: true });
    fs.accessSync(path.dirname(home), fs.constants.W_OK);
    return home;
  } catch {
    return path.join(os.tmpdir(), 'ehr-connectors-moto-venv');
  }
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
  if (r.status !== 0)
    throw new Error(
      `${path.basename(cmd)} ${args.slice(0, 3).join(' ')} failed (exit ${r.status}): ${(r.stderr || '').slice(-2000)}`,
    );
}

/** moto_server's path, installing moto[server] into the venv first when it is not there. */
export async function ensureMoto(log: (line: string) => void = () => undefined): Promise<string> {
  const dir = motoVenvDir();
  const bin = path.join(dir, 'bin', 'moto_server');
  if (existsSync(bin)) return bin;
  const t0 = Date.now();
  if (!existsSync(path.join(dir, 'bin', 'pip'))) run('python3', ['-m', 'venv', dir]);
  run(path.join(dir, 'bin', 'pip'), ['install', '--quiet', 'moto[server]']);
  log(`installed moto[server] into ${dir} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return bin;
}

/**
 * What the KMS suite needs: moto already installed, or python3 able to create a venv to install it
 * into (Debian splits the venv module into python3-venv).
 */
export function motoRequirement(venvDir: string): Requirement {
  const fix =
    'apt-get install -y python3 python3-venv (the suite then installs moto[server] itself; .ci/run does both)';
  if (existsSync(path.join(venvDir, 'bin', 'moto_server'))) return { missing: undefined, fix };
  const python = spawnSync('python3', ['-c', 'import venv, ensurepip'], { stdio: 'ignore' });
  if (python.error)
    return { missing: 'python3 is not installed, so moto[server] (the local KMS) cannot be installed', fix };
  if (python.status !== 0) return { missing: "python3 cannot create a venv (no 'venv'/'ensurepip' module)", fix };
  return { missing: undefined, fix };
}

if (typeof require !== 'undefined' && typeof module !== 'undefined' && require.main === module) {
  ensureMoto((line) => process.stderr.write(`${line}\n`)).then(
    (bin) => process.stdout.write(`${bin}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
