/**
 * Control of the embedded dev stack (`ehrctl dev up|down|status`). The stack itself runs in a
 * detached daemon (stack-daemon.ts); this side spawns it, relays its progress from
 * .data/logs/stack.log, and reads the .data/stack.json it publishes when ready.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DevSetupError } from './errors.js';
import { isPidAlive, sleep, waitForPidExit } from './process.js';
import {
  readLockPid,
  readRunningStack,
  readStackFile,
  removeStackFile,
  repoRoot,
  stackPaths,
  type StackInfo,
} from './stack-files.js';
import { resolveTemporalCli } from './temporal-cli.js';

export {
  readStackEnv,
  readRunningStack,
  stackEnvFromInfo,
  stackPaths,
  type StackInfo,
  type StackPaths,
} from './stack-files.js';

export interface DevUpOptions {
  /** One line of progress per call. */
  out: (line: string) => void;
  sandboxSize?: number;
  /** Give up (and stop the daemon) after this long; default 10 minutes. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface DevUpResult {
  status: 'started' | 'already-running';
  info: StackInfo;
}

export async function devUp(options: DevUpOptions): Promise<DevUpResult> {
  const env = options.env ?? process.env;
  const paths = stackPaths(env);
  const running = readRunningStack(paths);
  if (running) return { status: 'already-running', info: running };
  const stale = readStackFile(paths);
  if (stale) {
    options.out(
      `removing stale ${paths.stackFile} (daemon pid ${stale.pid} is gone; ` +
        `check ${paths.logDir} for leftover processes)`,
    );
    removeStackFile(paths);
  }

  // 0755: under root PostgreSQL runs as `postgres`, and keeps its cluster in .data/postgres when it can reach it
  // (otherwise dev/postgres-placement.ts places it elsewhere and links it here).
  fs.mkdirSync(paths.dataDir, { recursive: true, mode: 0o755 });
  fs.mkdirSync(paths.logDir, { recursive: true, mode: 0o700 });
  const logOffset = fileSize(paths.stackLog);
  let daemonPid = readLockPid(paths);
  let daemonExited: Promise<void> | undefined;
  if (daemonPid !== undefined) {
    options.out(`a dev stack daemon (pid ${daemonPid}) is already starting; waiting for it`);
  } else {
    const cliPath = await resolveTemporalCli({ env, onProgress: options.out });
    const fd = fs.openSync(paths.stackLog, 'a', 0o600);
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'stack-daemon.ts')], {
      cwd: repoRoot,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: {
        ...env,
        TEMPORAL_CLI: cliPath,
        EHR_DEV_DATA_DIR: paths.dataDir,
        ...(options.sandboxSize !== undefined ? { EHR_SANDBOX_SIZE: String(options.sandboxSize) } : {}),
      },
    });
    fs.closeSync(fd);
    daemonExited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.unref();
    daemonPid = child.pid;
    if (daemonPid === undefined) throw new DevSetupError('dev stack', 'could not spawn the daemon');
    options.out(`dev stack daemon started (pid ${daemonPid}); log: ${paths.stackLog}`);
  }

  const relay = new LogRelay(paths.stackLog, logOffset, options.out);
  let exited = false;
  void daemonExited?.then(() => (exited = true));
  const deadline = Date.now() + (options.timeoutMs ?? 600_000);
  for (;;) {
    await sleep(300);
    relay.poll();
    const info = readStackFile(paths);
    if (info && info.pid === daemonPid && isPidAlive(info.pid)) return { status: 'started', info };
    if (exited || !isPidAlive(daemonPid)) {
      relay.poll();
      throw new DevSetupError('dev stack', `the daemon exited before the stack was ready; see ${paths.stackLog}`);
    }
    if (Date.now() > deadline) {
      process.kill(daemonPid, 'SIGTERM');
      throw new DevSetupError(
        'dev stack',
        `not ready after ${Math.round((options.timeoutMs ?? 600_000) / 1000)} s; stopping it (see ${paths.stackLog})`,
      );
    }
  }
}

export async function devDown(options: {
  out: (line: string) => void;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}): Promise<'stopped' | 'not-running'> {
  const paths = stackPaths(options.env ?? process.env);
  const info = readStackFile(paths);
  const pid = info && isPidAlive(info.pid) ? info.pid : readLockPid(paths);
  if (pid === undefined) {
    if (info) removeStackFile(paths);
    return 'not-running';
  }
  const timeoutMs = options.timeoutMs ?? 60_000;
  const relay = new LogRelay(paths.stackLog, fileSize(paths.stackLog), options.out);
  options.out(`stopping the dev stack (daemon pid ${pid}): worker, sandbox, Temporal, PostgreSQL…`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (!(await waitForPidExit(pid, 500))) {
    relay.poll();
    if (Date.now() > deadline) {
      throw new DevSetupError(
        'dev stack',
        `daemon pid ${pid} did not stop within ${Math.round(timeoutMs / 1000)} s; ` +
          `see ${paths.stackLog} (kill -9 ${pid} ends it, leaving its children)`,
      );
    }
  }
  relay.poll();
  removeStackFile(paths);
  return 'stopped';
}

export interface DevStatus {
  running: boolean;
  /** A daemon holds the lock but has not published stack.json yet. */
  starting: boolean;
  daemonPid?: number;
  workerRunning?: boolean;
  info?: StackInfo;
}

export function devStatus(env: NodeJS.ProcessEnv = process.env): DevStatus {
  const paths = stackPaths(env);
  const info = readRunningStack(paths);
  if (info)
    return { running: true, starting: false, daemonPid: info.pid, workerRunning: isPidAlive(info.workerPid), info };
  const lockPid = readLockPid(paths);
  return lockPid === undefined
    ? { running: false, starting: false }
    : { running: false, starting: true, daemonPid: lockPid };
}

/** postgresql://user:***@host:port/db — for display. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable database URL)';
  }
}

/** Human summary; never includes the database password or the sandbox admin token. */
export function describeStack(info: StackInfo, workerRunning = true): string[] {
  return [
    `  Temporal     ${info.temporalAddress}  (namespace ${info.namespace}, task queue ${info.taskQueue})`,
    `  Web UI       ${info.temporalUiUrl}`,
    `  PostgreSQL   ${redactDatabaseUrl(info.databaseUrl)}  (full URL: ehrctl dev status --json)`,
    `  sandbox      ${info.sandboxUrl}  (FHIR ${info.sandboxFhirBaseUrl}, token ${info.sandboxTokenUrl})`,
    ...(info.sandboxes ?? []).map(
      (s) => `    as ${s.personality.padEnd(15)} FHIR ${s.fhirBaseUrl}  (integrations add --vendor ${s.personality})`,
    ),
    ...(info.codecUrl
      ? [
          `  codec server ${info.codecUrl}  (dev CA ${info.devCaPath ?? '?'}; token: ` +
            `ehrctl dev token --role phi-decoder)`,
        ]
      : []),
    `  worker       pid ${info.workerPid}${workerRunning ? '' : '  — NOT RUNNING, see worker.log'}`,
    ...(info.webhookUrl
      ? [`  webhooks     ${info.webhookUrl}/webhooks/<integrationId>  (pid ${info.webhookPid ?? '?'})`]
      : []),
    ...(info.gatewayUrl
      ? [
          `  gateway      ${info.gatewayUrl}  (FHIR ${info.gatewayUrl}/fhir, token ${info.gatewayUrl}/auth/token; ` +
            `pid ${info.gatewayPid ?? '?'})`,
        ]
      : []),
    `  keys         ${info.kekDir}  (secrets ${info.secretsDir})`,
    `  logs         ${info.logDir}`,
    `  daemon       pid ${info.pid}, up since ${info.startedAt}`,
  ];
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** Relays new lines of the daemon's JSON log as progress (starting/ready/errors) and raw lines verbatim. */
class LogRelay {
  private partial = '';
  constructor(
    private readonly file: string,
    private offset: number,
    private readonly out: (line: string) => void,
  ) {}

  poll(): void {
    const size = fileSize(this.file);
    if (size <= this.offset) return;
    const fd = fs.openSync(this.file, 'r');
    try {
      const buf = Buffer.alloc(size - this.offset);
      fs.readSync(fd, buf, 0, buf.length, this.offset);
      this.offset = size;
      const text = this.partial + buf.toString('utf8');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) this.relay(line);
    } finally {
      fs.closeSync(fd);
    }
  }

  private relay(line: string): void {
    if (!line.trim()) return;
    let entry: { level?: number; msg?: string; phase?: string; part?: string; err?: { message?: string } };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      this.out(`  ${line}`);
      return;
    }
    const level = entry.level ?? 30;
    const cause = entry.err?.message && !entry.msg?.includes(entry.err.message) ? ` (${entry.err.message})` : '';
    if (level >= 50) this.out(`  error: ${entry.msg ?? ''}${cause}`);
    else if (level >= 40) this.out(`  warning: ${entry.msg ?? ''}`);
    else if (entry.phase === 'starting' && entry.part) this.out(`  ${entry.msg ?? ''}…`);
    else if (entry.part && entry.msg) this.out(`  ${entry.msg}`);
  }
}
