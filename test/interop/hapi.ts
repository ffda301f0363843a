/**
 * Starts the interop FHIR server — HAPI FHIR JPA (R4, in-memory H2), a server this project did not
 * write — on a free loopback port, for tests that prove a read path against a real third party.
 *
 * The JVM's output goes to a temp file (never to the test output); its tail is in any start error.
 * The JVM is killed on every failure path, on stop(), when this process exits, and — should this
 * process be killed outright — by the server itself (it watches its parent pid). It inherits this
 * process's environment, so a test's EHR_PROCESS_MARK (test/process-scan.ts) finds it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DevSetupError } from '../../dev/errors.js';
import { findFreePort } from '../../dev/ports.js';
import { hasExited, sleep, spawnLogged, stopChild, terminateOnExit } from '../../dev/process.js';
import type { StopList } from '../../dev/stop-list.js';
import { ensureHapiJar, resolveJava, type HapiBuildOptions } from './hapi-build.js';

export { ensureHapiJar, hapiCacheRoot } from './hapi-build.js';

/** Server settings a test may change per instance (each maps to an `interop.*` property). */
export interface HapiSettings {
  /** HAPI reuses an identical search's results for this long; HAPI's default is 60 000 ms. */
  reuseCachedSearchResultsMillis?: number;
  /** Page size without _count (HAPI default 20). */
  defaultPageSize?: number;
  /** Largest page served whatever _count asks (HAPI default 200). */
  maxPageSize?: number;
  /**
   * Truncates every search after about this many matches, Bundle.total included (HAPI's last search
   * pre-fetch threshold; it loads max(cap, page size) + 1); unset: no cap, HAPI's default.
   */
  resultCap?: number;
  /** Registers $export at system, Patient and Group level (default true). */
  bulkExport?: boolean;
  /** Lets HAPI hand back an earlier identical export job (HAPI's default; false here). */
  bulkExportReuse?: boolean;
  /** How often batch2 maintenance advances export jobs (default 1000 ms; HAPI's is a minute). */
  batchMaintenanceMillis?: number;
  /** Retry-After on $export status answers, in seconds (unset: HAPI's own, a fixed 120). */
  bulkRetryAfterSeconds?: number;
  /**
   * HAPI partitioning with URL-based tenants (default false): every URL names its partition first,
   * `/fhir/<partition>/Patient`, the built-in one being DEFAULT; createPartition() adds one.
   */
  partitioning?: boolean;
}

export interface StartHapiOptions extends HapiSettings {
  /** Heap limit, as for -Xmx (default 768m). */
  maxHeap?: string;
  /** Give up waiting for /fhir/metadata after this long (default 180 s: a loaded 2-core CI). */
  startTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Registered here the moment the JVM exists, taken off on stop(). */
  stops?: StopList;
  /** Aborts the start (the JVM is stopped), as startSideBySide does when a sibling fails. */
  signal?: AbortSignal;
  onProgress?: HapiBuildOptions['onProgress'];
}

export interface HapiServer {
  /** e.g. http://127.0.0.1:41234/fhir (with partitioning, add a partition: …/fhir/DEFAULT) */
  baseUrl: string;
  partitioning: boolean;
  port: number;
  pid: number;
  /** The JVM's log (removed by stop()). */
  logFile: string;
  /** Milliseconds from spawning the JVM to the first CapabilityStatement. */
  startMs: number;
  stop(): Promise<void>;
}

const SETTING_PROPERTIES: Record<keyof HapiSettings, string> = {
  reuseCachedSearchResultsMillis: 'interop.reuse-cached-search-results-millis',
  defaultPageSize: 'interop.default-page-size',
  maxPageSize: 'interop.max-page-size',
  resultCap: 'interop.result-cap',
  bulkExport: 'interop.bulk-export',
  bulkExportReuse: 'interop.bulk-export-reuse',
  batchMaintenanceMillis: 'interop.batch-maintenance-millis',
  bulkRetryAfterSeconds: 'interop.bulk-retry-after-seconds',
  partitioning: 'interop.partitioning',
};

/** The server's `--interop.*=value` arguments for these settings (unset ones keep the defaults). */
export function settingsArgs(settings: HapiSettings): string[] {
  return (Object.keys(SETTING_PROPERTIES) as (keyof HapiSettings)[])
    .filter((key) => settings[key] !== undefined)
    .map((key) => `--${SETTING_PROPERTIES[key]}=${String(settings[key])}`);
}

export async function startHapi(options: StartHapiOptions = {}): Promise<HapiServer> {
  const env = options.env ?? process.env;
  const jar = await ensureHapiJar({ env, onProgress: options.onProgress });
  const java = await resolveJava(env);
  // The port is free when picked but bound only at the end of start-up; one retry covers a thief.
  try {
    return await startOnce(java, jar, env, options);
  } catch (err) {
    if (!(err instanceof DevSetupError && /Port \d+ (is|was) already in use/.test(err.message))) throw err;
    return startOnce(java, jar, env, options);
  }
}

async function startOnce(
  java: string,
  jar: string,
  env: NodeJS.ProcessEnv,
  options: StartHapiOptions,
): Promise<HapiServer> {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-hapi-'));
  const logFile = path.join(logDir, 'hapi.log');
  const port = await findFreePort();
  const args = [
    `-Xmx${options.maxHeap ?? '768m'}`,
    // Start-up speed over peak throughput: a test server lives for seconds to minutes.
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-Djava.io.tmpdir=' + logDir,
    '-jar',
    jar,
    `--server.port=${port}`,
    '--server.address=127.0.0.1',
    `--interop.parent-pid=${process.pid}`,
    ...settingsArgs(options),
  ];
  const spawned = spawnLogged(java, args, { logFile, env });
  const { child } = spawned;
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  const untrack = terminateOnExit(child);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      registration?.forget();
      await stopChild(child, 15_000);
      untrack();
      fs.rmSync(logDir, { recursive: true, force: true });
    })());
  const registration = options.stops?.add(`HAPI FHIR server :${port}`, stop);

  const baseUrl = `http://127.0.0.1:${port}/fhir`;
  const partitioning = options.partitioning ?? false;
  const started = Date.now();
  try {
    await waitForMetadata(
      partitioning ? `${baseUrl}/DEFAULT` : baseUrl,
      child,
      options.startTimeoutMs ?? 180_000,
      () => {
        if (options.signal?.aborted) return new Error('start aborted');
        return spawnError;
      },
    );
  } catch (err) {
    const tail = spawned.outputTail();
    await stop();
    throw new DevSetupError(
      'HAPI FHIR server',
      `${err instanceof Error ? err.message : String(err)}; the end of its log:\n${tail.trim()}`,
    );
  }
  return { baseUrl, partitioning, port, pid: child.pid ?? -1, logFile, startMs: Date.now() - started, stop };
}

/** Partition names HAPI accepts here: letters, digits, - and _ (and not DEFAULT). */
const PARTITION_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Creates partition `name` (numbered `id`, unique on the server) on a partitioned server and returns its base URL,
 * `…/fhir/<name>`: searches, history, transactions and $export there see that partition's resources only.
 */
export async function createPartition(server: Pick<HapiServer, 'baseUrl'>, id: number, name: string): Promise<string> {
  if (!PARTITION_NAME.test(name) || name === 'DEFAULT') throw new Error(`not a partition name: ${name}`);
  const res = await fetch(`${server.baseUrl}/DEFAULT/$partition-management-create-partition`, {
    method: 'POST',
    headers: { accept: 'application/fhir+json', 'content-type': 'application/fhir+json' },
    body: JSON.stringify({
      resourceType: 'Parameters',
      parameter: [
        { name: 'id', valueInteger: id },
        { name: 'name', valueCode: name },
      ],
    }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`creating HAPI partition ${name} answered ${res.status}: ${text.slice(0, 500)}`);
  return `${server.baseUrl}/${name}`;
}

async function waitForMetadata(
  baseUrl: string,
  child: Parameters<typeof hasExited>[0],
  timeoutMs: number,
  failure: () => Error | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failed = failure();
    if (failed) throw new Error(`the JVM did not start: ${failed.message}`);
    if (hasExited(child)) throw new Error(`the JVM exited (code ${child.exitCode}, signal ${child.signalCode})`);
    try {
      const res = await fetch(`${baseUrl}/metadata`, {
        headers: { accept: 'application/fhir+json' },
        signal: AbortSignal.timeout(30_000),
      });
      if (res.ok) {
        const body = (await res.json()) as { resourceType?: string };
        if (body.resourceType === 'CapabilityStatement') return;
      } else {
        await res.body?.cancel();
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no CapabilityStatement at ${baseUrl}/metadata after ${timeoutMs} ms`);
    await sleep(500);
  }
}
