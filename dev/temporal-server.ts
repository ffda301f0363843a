/**
 * Starts `temporal server start-dev` (Temporal server + optional Web UI in one Go binary) on loopback
 * and waits until it answers: gRPC reachable, namespace described, custom search attributes listed
 * (and the UI serving, unless headless). Measured on a 2-core machine: ready in well under a second
 * when idle; the 60 s default timeout covers a loaded machine.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../lib/domain.js';
import { InfrastructureUnavailableError } from '../lib/errors/index.js';
import { DevSetupError } from './errors.js';
import { findFreePort } from './ports.js';
import { hasExited, sleep, spawnLogged, stopChild, terminateOnExit } from './process.js';
import { abortedReason, type StopList } from './stop-list.js';

export type SearchAttributeType = 'Text' | 'Keyword' | 'Int' | 'Double' | 'Bool' | 'Datetime' | 'KeywordList';

/** The product's custom search attributes (TenantId, IntegrationId, Vendor, …), all Keyword. */
export function productSearchAttributes(): Record<string, SearchAttributeType> {
  return Object.fromEntries(Object.values(SEARCH_ATTRIBUTES).map((name) => [name, 'Keyword' as const]));
}

export interface TemporalDevServerOptions {
  cliPath: string;
  /** gRPC frontend port; a free one when omitted. */
  port?: number;
  /** Web UI port (ignored when headless); a free one when omitted. */
  uiPort?: number;
  /** SQLite file for persistent state; in-memory when omitted. */
  dbFile?: string;
  headless?: boolean;
  namespace?: string;
  /** Where the server's stdout/stderr go; kept in memory (last 8 kB) when omitted. */
  logFile?: string;
  uiCodecEndpoint?: string;
  searchAttributes?: Record<string, SearchAttributeType>;
  readyTimeoutMs?: number;
  /** The server is registered here the moment it is spawned. */
  stops?: StopList;
  /** Abort the start (stopping the server) when another part of a start-up failed. */
  signal?: AbortSignal;
}

export interface TemporalDevServer {
  /** host:port for Connection.connect / TEMPORAL_ADDRESS. */
  address: string;
  uiUrl?: string;
  namespace: string;
  pid: number;
  /** SIGTERM, then SIGKILL after 10 s. */
  stop(): Promise<void>;
}

export async function startTemporalDevServer(options: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const namespace = options.namespace ?? 'default';
  const headless = options.headless ?? false;
  const searchAttributes = options.searchAttributes ?? productSearchAttributes();
  const port = options.port ?? (await findFreePort());
  const uiPort = headless ? undefined : (options.uiPort ?? (await findFreePort({ avoid: [port] })));
  const address = `127.0.0.1:${port}`;
  const uiUrl = uiPort === undefined ? undefined : `http://127.0.0.1:${uiPort}`;

  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port)];
  if (uiPort !== undefined) args.push('--ui-port', String(uiPort));
  if (headless) args.push('--headless');
  if (options.dbFile) {
    fs.mkdirSync(path.dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile);
  }
  args.push('--namespace', namespace);
  for (const [name, type] of Object.entries(searchAttributes)) args.push('--search-attribute', `${name}=${type}`);
  if (options.uiCodecEndpoint && !headless) args.push('--ui-codec-endpoint', options.uiCodecEndpoint);
  args.push('--log-level', 'warn');

  const aborted = abortedReason(options.signal);
  if (aborted) throw new DevSetupError('Temporal dev server', aborted);
  const { child, outputTail } = spawnLogged(options.cliPath, args, { logFile: options.logFile });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  terminateOnExit(child);
  const stopChildNow = async () => {
    await stopChild(child, 10_000);
  };
  const stop = options.stops?.add('Temporal dev server', stopChildNow).stop ?? stopChildNow;

  try {
    await Promise.race([
      waitForTemporal(address, {
        namespace,
        searchAttributes: Object.keys(searchAttributes),
        uiUrl,
        timeoutMs: options.readyTimeoutMs ?? 60_000,
        abortIf: () =>
          hasExited(child)
            ? `the server exited (code ${child.exitCode ?? child.signalCode})`
            : abortedReason(options.signal),
      }),
      spawnError.then((err) => {
        throw new DevSetupError('Temporal dev server', `could not run ${options.cliPath}: ${err.message}`);
      }),
    ]);
  } catch (err) {
    await stop();
    if (err instanceof InfrastructureUnavailableError) {
      throw new InfrastructureUnavailableError(
        'temporal',
        address,
        `${err.hint}\n--- server output (tail) ---\n${outputTail().trim()}\n  fix: ` +
          `the output above says why it did not start; ` +
          'TEMPORAL_CLI=<path> picks another Temporal CLI, TEMPORAL_ADDRESS=<host:port> uses a running server instead',
      );
    }
    throw err;
  }
  if (child.pid === undefined) throw new DevSetupError('Temporal dev server', 'spawned without a pid');
  return { address, uiUrl, namespace, pid: child.pid, stop };
}

export interface WaitForTemporalOptions {
  namespace: string;
  searchAttributes?: readonly string[];
  uiUrl?: string;
  timeoutMs?: number;
  /** Returns a reason to give up early (e.g. the server process died). */
  abortIf?: () => string | undefined;
}

/** Polls until the server answers for the namespace and lists the search attributes (and the UI serves). */
export async function waitForTemporal(address: string, options: WaitForTemporalOptions): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let lastProblem = 'not tried yet';
  for (;;) {
    const aborted = options.abortIf?.();
    if (aborted) throw new InfrastructureUnavailableError('temporal', address, aborted);
    lastProblem = await probeTemporal(address, options, Math.max(250, Math.min(3_000, deadline - Date.now())));
    if (lastProblem === '') return;
    if (Date.now() >= deadline) {
      throw new InfrastructureUnavailableError(
        'temporal',
        address,
        `not ready after ${Math.round((options.timeoutMs ?? 60_000) / 1000)} s (last problem: ${lastProblem})`,
      );
    }
    await sleep(250);
  }
}

/** '' when ready, else what is missing. */
async function probeTemporal(
  address: string,
  options: WaitForTemporalOptions,
  connectTimeoutMs: number,
): Promise<string> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: connectTimeoutMs });
    await connection.workflowService.getSystemInfo({});
    await connection.workflowService.describeNamespace({ namespace: options.namespace });
    const wanted = options.searchAttributes ?? [];
    if (wanted.length > 0) {
      const listed = await connection.operatorService.listSearchAttributes({ namespace: options.namespace });
      const missing = wanted.filter((name) => !(name in (listed.customAttributes ?? {})));
      if (missing.length > 0) {
        // A dev database created by an older version lacks attributes added since (the CLI's
        // --search-attribute applies only to a new database): register them, then probe again.
        const types = productSearchAttributes();
        await connection.operatorService
          .addSearchAttributes({
            namespace: options.namespace,
            searchAttributes: Object.fromEntries(
              missing.map((name) => [name, indexedValueType[types[name] ?? 'Keyword']]),
            ),
          })
          .catch(() => undefined);
        return `search attributes not registered yet: ${missing.join(', ')}`;
      }
    }
    if (options.uiUrl) {
      const res = await fetch(options.uiUrl, { signal: AbortSignal.timeout(3_000) });
      if (!res.ok) return `Web UI answered ${res.status}`;
    }
    return '';
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

const indexedValueType: Record<SearchAttributeType, temporal.api.enums.v1.IndexedValueType> = {
  Text: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  Keyword: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  Int: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
  Double: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  Bool: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  Datetime: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  KeywordList: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

/**
 * For a server we did not start (TEMPORAL_ADDRESS): registers whichever product search attributes
 * are missing in the namespace. Returns the names it added.
 */
export async function ensureSearchAttributes(
  address: string,
  namespace: string,
  searchAttributes: Record<string, SearchAttributeType> = productSearchAttributes(),
): Promise<string[]> {
  const connection = await Connection.connect({ address, connectTimeout: '10s' });
  try {
    const listed = await connection.operatorService.listSearchAttributes({ namespace });
    const missing = Object.entries(searchAttributes).filter(([name]) => !(name in (listed.customAttributes ?? {})));
    if (missing.length === 0) return [];
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, indexedValueType[type]])),
    });
    return missing.map(([name]) => name);
  } finally {
    await connection.close();
  }
}
