/**
 * The run-wide leak registry: what the end-of-run leak scan (test/leak-scan-setup.ts) looks for and
 * where. The scan's global setup creates a run directory and exports its path as
 * EHR_LEAK_REGISTRY_DIR before any test worker starts, so every test process sees it:
 *
 *   <dir>/identifiers/*.txt   synthetic identifying strings of every sandbox a test started
 *   <dir>/logs/               log files of test workers (write them here: leakLogDir())
 *   <dir>/log-files.txt       other log files to scan (registerLogFile)
 *   <dir>/errors/             error outputs (stderr of CLI runs, failure messages) to scan
 *   <dir>/temporal-servers/   every Temporal server a test started (registerTemporalServer); the scan
 *                             reads each one's histories live, or the copies preserved before it stopped
 *   <dir>/histories/          those preserved copies (test/security/scanned-temporal.ts)
 *
 * The first global setup (test/leak-scan-verdict.ts) creates it, so the global setup's own servers
 * and logs can be registered too. In a vitest process a missing registry is an error, not a no-op:
 * a scan that silently received nothing would report a clean run.
 * Files are 0600 in 0700 directories. Nothing here prints what it records.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const LEAK_REGISTRY_ENV = 'EHR_LEAK_REGISTRY_DIR';

/** The run directory, or undefined when the leak-scan global setup is not active. */
export function leakRegistryDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = env[LEAK_REGISTRY_ENV];
  return dir && dir.length > 0 ? dir : undefined;
}

/**
 * The run directory for recording. Outside vitest (a recorder script) none is fine: recording is
 * then a no-op. Inside vitest the leak-scan global setup must have exported it: otherwise whatever
 * this process records would be lost and the end-of-run scan would pass having seen none of it.
 */
function recordingDir(): string | undefined {
  const dir = leakRegistryDir();
  if (!dir && process.env.VITEST) {
    throw new Error(
      `${LEAK_REGISTRY_ENV} is not set in this vitest process: test/leak-scan-verdict.ts must be the first globalSetup`,
    );
  }
  return dir;
}

function ensureDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

function unique(prefix: string, ext: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}${ext}`;
}

/** Creates the layout under `dir` (used by the global setup and by tests of the scanner). */
export function initLeakRegistry(dir: string): string {
  for (const sub of ['identifiers', 'logs', 'errors', 'temporal-servers', 'histories']) ensureDir(path.join(dir, sub));
  return dir;
}

/**
 * Where test workers should write their logs so the end-of-run scan reads them. Without an active
 * registry: a private temp directory (not scanned at the end of the run).
 */
export function leakLogDir(): string {
  const dir = recordingDir();
  return ensureDir(dir ? path.join(dir, 'logs') : path.join(os.tmpdir(), `ehr-test-logs-${process.pid}`));
}

/** A fresh log file path in leakLogDir(). */
export function leakLogFile(name = 'worker'): string {
  return path.join(leakLogDir(), unique(name.replace(/[^a-z0-9-]+/gi, '-'), '.ndjson'));
}

/** Adds a log file kept elsewhere to the end-of-run scan. No-op without an active registry. */
export function registerLogFile(file: string): void {
  const dir = recordingDir();
  if (!dir) return;
  fs.appendFileSync(path.join(ensureDir(dir), 'log-files.txt'), `${path.resolve(file)}\n`, { mode: 0o600 });
}

/** Saves an error output (a CLI's stderr, a failure message) for the end-of-run scan. */
export function recordErrorOutput(name: string, text: string): void {
  const dir = recordingDir();
  if (!dir || text.length === 0) return;
  fs.writeFileSync(
    path.join(ensureDir(path.join(dir, 'errors')), unique(name.replace(/[^a-z0-9-]+/gi, '-'), '.txt')),
    text,
    { mode: 0o600 },
  );
}

/** Records identifying strings the scan must never find. Returns how many were recorded. */
export function recordIdentifiers(strings: readonly string[], dir = recordingDir()): number {
  if (!dir || strings.length === 0) return 0;
  fs.writeFileSync(
    path.join(ensureDir(path.join(dir, 'identifiers')), unique('ids', '.txt')),
    `${strings.join('\n')}\n`,
    { mode: 0o600 },
  );
  return strings.length;
}

/**
 * Fetches a sandbox's synthetic identifying strings (GET /admin/identifiers) and records them.
 * Call it when a test sandbox starts (test/integration/support.ts startTestSandbox) and again
 * before it closes (tests can create patients). No-op without an active registry.
 */
export async function recordSandboxIdentifiers(sandbox: { url: string; adminToken: string }): Promise<number> {
  if (!recordingDir()) return 0;
  const res = await fetch(`${sandbox.url}/admin/identifiers`, { headers: { 'x-sandbox-admin': sandbox.adminToken } });
  if (!res.ok) throw new Error(`sandbox admin GET /admin/identifiers answered ${res.status}`);
  const body = (await res.json()) as { strings?: unknown };
  const strings = Array.isArray(body.strings) ? body.strings.filter((s): s is string => typeof s === 'string') : [];
  return recordIdentifiers(strings);
}

/** A Temporal server a test run started: scanned live at the end, or from copies preserved before it stopped. */
export interface RegisteredTemporalServer {
  /** The registration file's name (stable id). */
  id: string;
  label: string;
  address: string;
  namespace: string;
  /** Set once its histories were copied under <dir>/histories/<id>/ (a server that stops before the scan). */
  preservedAt?: string;
}

/**
 * Registers a Temporal server for the end-of-run scan. A server that stops before the run ends must
 * have its histories preserved first (test/security/scanned-temporal.ts); the scan fails on a
 * registered server it can neither reach nor find preserved histories of. Returns its id.
 */
export function registerTemporalServer(
  server: { label: string; address: string; namespace: string },
  dir = recordingDir(),
): string | undefined {
  if (!dir) return undefined;
  const id = unique(server.label.replace(/[^a-z0-9-]+/gi, '-'), '');
  const entry: RegisteredTemporalServer = {
    id,
    label: server.label,
    address: server.address,
    namespace: server.namespace,
  };
  fs.writeFileSync(path.join(ensureDir(path.join(dir, 'temporal-servers')), `${id}.json`), JSON.stringify(entry), {
    mode: 0o600,
  });
  return id;
}

/** Where a registered server's histories are preserved (created on demand). */
export function preservedHistoryDir(id: string, dir: string): string {
  return ensureDir(path.join(dir, 'histories', id));
}

/** Marks a registered server's histories as preserved (after they were written to preservedHistoryDir). */
export function markTemporalServerPreserved(id: string, dir: string): void {
  const file = path.join(dir, 'temporal-servers', `${id}.json`);
  const entry = JSON.parse(fs.readFileSync(file, 'utf8')) as RegisteredTemporalServer;
  fs.writeFileSync(file, JSON.stringify({ ...entry, preservedAt: new Date().toISOString() }), { mode: 0o600 });
}

export interface LeakRegistryContents {
  identifiers: string[];
  /** Files under logs/, those listed in log-files.txt, and files under errors/. */
  files: string[];
  temporalServers: RegisteredTemporalServer[];
  /** Preserved histories (JSON, one per workflow run) under histories/. */
  historyFiles: string[];
}

export function readLeakRegistry(dir: string): LeakRegistryContents {
  const identifiers = new Set<string>();
  for (const file of listFiles(path.join(dir, 'identifiers'))) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) if (line.length > 0) identifiers.add(line);
  }
  const listed = fs.existsSync(path.join(dir, 'log-files.txt'))
    ? fs
        .readFileSync(path.join(dir, 'log-files.txt'), 'utf8')
        .split('\n')
        .filter((l) => l.length > 0)
    : [];
  const files = [...new Set([...listFiles(path.join(dir, 'logs')), ...listed, ...listFiles(path.join(dir, 'errors'))])];
  const temporalServers = listFiles(path.join(dir, 'temporal-servers')).map(
    (file) => JSON.parse(fs.readFileSync(file, 'utf8')) as RegisteredTemporalServer,
  );
  return {
    identifiers: [...identifiers],
    files,
    temporalServers,
    historyFiles: listFiles(path.join(dir, 'histories')),
  };
}

function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full));
    else if (entry.isFile()) out.push(full);
  }
  return out.sort();
}
