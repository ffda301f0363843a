/**
 * Runs `ehrctl` as a real process, as an operator would, with exactly the environment given (plus
 * PATH and HOME). Asynchronous, because the sandbox and worker a test uses live in the test's process.
 * Its stderr is registered for the end-of-run scan for PHI and secrets.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../../lib/config/schema.js';
import { recordErrorOutput } from '../security/leak-registry.js';

const repoRoot = path.resolve(__dirname, '../..');

export interface EhrctlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runEhrctl(args: string[], env: Record<string, string | undefined>): Promise<EhrctlResult> {
  const merged: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v;
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/ehrctl.js'), ...args], {
    cwd: repoRoot,
    env: merged,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  return new Promise((resolve) =>
    child.on('close', (code) => {
      recordErrorOutput(`ehrctl-${args[0] ?? ''}`, stderr);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** What a test's ehrctl needs to reach the test run's servers; the sandbox's addresses when one is given. */
export interface EhrctlTarget {
  config: Pick<
    Config,
    | 'DATABASE_URL'
    | 'TEMPORAL_ADDRESS'
    | 'TEMPORAL_TASK_QUEUE'
    | 'EHR_KEK_DIR'
    | 'EHR_SECRETS_DIR'
    | 'EHR_AUDIT_ANCHOR_PATH'
  >;
  sandbox?: { url: string; fhirBaseUrl: string; adminToken: string };
}

let noStackDir: string | undefined;

/**
 * The environment of an operator's ehrctl pointed at the test run's servers, with a dev-stack
 * directory that holds no stack, so a developer's running `ehrctl dev up` is never picked up.
 */
export function ehrctlEnv({ config, sandbox }: EhrctlTarget): Record<string, string> {
  noStackDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'ehrctl-nostack-'));
  return {
    EHR_DEV_DATA_DIR: noStackDir,
    DATABASE_URL: config.DATABASE_URL,
    TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS,
    TEMPORAL_TASK_QUEUE: config.TEMPORAL_TASK_QUEUE,
    EHR_KEK_DIR: config.EHR_KEK_DIR,
    EHR_SECRETS_DIR: config.EHR_SECRETS_DIR,
    EHR_AUDIT_ANCHOR_PATH: config.EHR_AUDIT_ANCHOR_PATH,
    ...(sandbox
      ? {
          EHR_SANDBOX_URL: sandbox.url,
          EHR_SANDBOX_FHIR_BASE_URL: sandbox.fhirBaseUrl,
          EHR_SANDBOX_ADMIN_TOKEN: sandbox.adminToken,
        }
      : {}),
  };
}
