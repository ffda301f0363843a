/**
 * The broker side of the run's shared HAPI FHIR server (the test-file side is hapi-shared.ts): it runs in vitest's
 * main process, so nothing here imports vitest.
 *
 * One HAPI FHIR JPA server per test run, shared by the interop files, each in a partition of its own.
 *
 * Test files run in worker processes that end with the file, so the server lives in vitest's main process: the
 * global setup (hapi-shared-setup.ts) opens a small loopback broker, and the first file that asks for a partition
 * starts the JVM there (a run without interop files starts none). Each file then gets a new HAPI partition
 * (URL-based tenant: `/fhir/<partition>/…`), so its searches, history, transactions and $export see its own data
 * only. The JVM is registered in the global setup's stop list the moment it exists, stopped at the run's
 * teardown, and exits by itself should vitest's main process be killed outright (it watches its parent pid).
 *
 * A file that needs another server configuration (hapi-sync-capped: a result cap, which HAPI applies to every
 * search on the server) starts its own with startHapi() instead.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { StopList } from '../../dev/stop-list.js';
import { createPartition, startHapi, type HapiServer, type HapiSettings, type StartHapiOptions } from './hapi.js';

/**
 * How the shared server runs: HAPI's defaults (its 60 s search reuse included) but partitioned, and a 1 s
 * Retry-After on $export status answers (HAPI's own 120 s would make each export take two minutes).
 */
export const SHARED_HAPI_SETTINGS: HapiSettings = { partitioning: true, bulkRetryAfterSeconds: 1 };

/** One file's place on the shared server. */
export interface SharedHapiPartition {
  /** The partition's FHIR base, e.g. http://127.0.0.1:41234/fhir/p3-hapi-sync */
  baseUrl: string;
  partition: string;
  /** The server's root, http://127.0.0.1:41234/fhir (its DEFAULT partition is `${serverUrl}/DEFAULT`). */
  serverUrl: string;
  pid: number;
  /** Milliseconds the JVM took to start (for the file that started it; the others waited less). */
  startMs: number;
}

export interface HapiBroker {
  /** For project.provide('hapiBroker', …). */
  url: string;
  /** Whether a test asked for the server (and so it was started, or its start failed). */
  started(): boolean;
  /** Stops taking requests; the JVM itself is in the stop list. */
  close(): Promise<void>;
}

const MAX_BODY = 4_096;

/** Opens the broker on a free loopback port; the JVM starts on the first partition asked for. */
export async function startHapiBroker(options: {
  stops: StopList;
  log: (line: string) => void;
  /** How the server starts (default SHARED_HAPI_SETTINGS); a test of the broker may mark or break it. */
  server?: Omit<StartHapiOptions, 'stops' | 'onProgress'>;
}): Promise<HapiBroker> {
  const token = randomBytes(16).toString('hex');
  let server: Promise<HapiServer> | undefined;
  let nextPartition = 1;

  const serverOnce = (): Promise<HapiServer> =>
    (server ??= (async () => {
      const t0 = Date.now();
      options.log('starting the shared HAPI FHIR server (first interop file)…');
      const started = await startHapi({
        ...(options.server ?? SHARED_HAPI_SETTINGS),
        stops: options.stops,
        onProgress: options.log,
      });
      options.log(`shared HAPI FHIR server ready at ${started.baseUrl} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return started;
    })());

  const partitionFor = async (label: string): Promise<SharedHapiPartition> => {
    const hapi = await serverOnce();
    const id = nextPartition++;
    const name = `p${id}-${label.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40)}`;
    const baseUrl = await createPartition(hapi, id, name);
    options.log(`HAPI partition ${name} for ${label}`);
    return { baseUrl, partition: name, serverUrl: hapi.baseUrl, pid: hapi.pid, startMs: hapi.startMs };
  };

  const http_ = http.createServer((req, res) => {
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || req.url !== `/${token}/partition`) {
      req.resume();
      answer(404, { error: 'not found' });
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > MAX_BODY) req.destroy();
    });
    req.on('end', () => {
      let label = 'interop';
      try {
        label = String((JSON.parse(body) as { label?: unknown }).label ?? label);
      } catch {
        // a label is only for the log
      }
      partitionFor(label).then(
        (partition) => answer(200, partition),
        (err: unknown) => answer(500, { error: err instanceof Error ? err.message : String(err) }),
      );
    });
  });
  // Starting the JVM takes minutes at worst (a first Maven build): no server-side timeouts.
  http_.requestTimeout = 0;
  http_.headersTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    http_.once('error', reject);
    http_.listen(0, '127.0.0.1', resolve);
  });
  const { port } = http_.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/${token}`,
    started: () => server !== undefined,
    close: () => new Promise<void>((resolve) => http_.close(() => resolve())),
  };
}
