/**
 * The workflow bundle, built by webpack in a short-lived child process rather than in the worker: bundling
 * grows a process's heap by about 100 MB that V8 keeps long after (the worker's resident memory at rest went
 * from ~390 MB to ~270 MB). The bundle is the same: same SDK, same options, the code handed back on stdout.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The workflows every worker runs. */
export const WORKFLOWS_PATH = path.join(__dirname, '../workflows/index.ts');

/** A -e script: CommonJS, plain JavaScript (no loader), resolving @temporalio/worker from the repository. */
const SCRIPT = `
const { bundleWorkflowCode } = require('@temporalio/worker');
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
bundleWorkflowCode({ workflowsPath: process.argv[1], logger: quiet }).then(
  (bundle) => process.stdout.write(bundle.code),
  (err) => { process.stderr.write(String((err && err.stack) || err)); process.exit(1); },
);`;

export async function bundleWorkflowsApart(workflowsPath: string): Promise<{ code: string }> {
  const { stdout } = await run(process.execPath, ['-e', SCRIPT, workflowsPath], {
    cwd: path.join(__dirname, '..'),
    // The bundler needs no configuration: none of the worker's settings (secrets among them) go to it.
    env: pickEnv(['PATH', 'HOME', 'TMPDIR', 'NODE_PATH']),
    maxBuffer: 256 * 1024 * 1024,
    encoding: 'utf8',
  });
  if (stdout.length === 0) throw new Error('the workflow bundle came back empty');
  return { code: stdout };
}

/**
 * Builds the bundle once and writes it to `file` (config WORKER_WORKFLOW_BUNDLE), so workers started from it skip
 * bundling. Written beside and renamed into place: a reader never sees half a bundle.
 */
export async function writeWorkflowBundle(file: string, workflowsPath = WORKFLOWS_PATH): Promise<string> {
  const { code } = await bundleWorkflowsApart(workflowsPath);
  const partial = `${file}.${process.pid}.partial`;
  fs.writeFileSync(partial, code, { mode: 0o644 });
  fs.renameSync(partial, file);
  return file;
}

function pickEnv(names: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of names) if (process.env[name] !== undefined) env[name] = process.env[name];
  return env;
}
