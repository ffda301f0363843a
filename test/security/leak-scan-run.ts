/**
 * The end-of-run leak scan over a whole run (test/leak-scan-setup.ts): every history of the run's
 * Temporal server and of every Temporal server tests registered (live, or as preserved before it
 * stopped), every registered log file and error output — through the scanner of
 * test/security/leak-scan.ts. Never returns matched text.
 */
import fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import { readLeakRegistry } from './leak-registry.js';
import type { RegisteredTemporalServer } from './leak-registry.js';
import { LeakScanner, scanFiles, scanHistory, secretNeedles } from './leak-scan.js';
import type { LeakHit } from './leak-scan.js';

type History = temporal.api.history.v1.IHistory;

export interface LeakScanOptions {
  /**
   * The run's leak registry (test/security/leak-registry.ts): identifiers, files, and the Temporal
   * servers tests registered (each scanned live, or from the histories preserved before it stopped).
   */
  registryDir: string;
  /** The run's own Temporal server: list and scan every workflow started on it (since `since`, when given). */
  temporal?: { address: string; namespace: string; since?: Date };
  /** Histories given directly (fixtures), scanned in addition. */
  histories?: ReadonlyArray<{ source: string; history: History }>;
  kekDir?: string;
  secretsDir?: string;
  /** The run's payload codec, when payloads are encrypted. */
  codec?: PayloadCodec;
  /** Extra identifying strings to look for. */
  identifiers?: readonly string[];
}

export interface LeakScanReport {
  hits: LeakHit[];
  workflows: number;
  files: number;
  identifiers: number;
  secrets: number;
  /** Temporal servers whose histories were scanned, live or preserved. */
  temporalServers: number;
}

/** Scans every history, registered log file and error output of a run. Never returns matched text. */
export async function runLeakScan(options: LeakScanOptions): Promise<LeakScanReport> {
  const registry = readLeakRegistry(options.registryDir);
  const secrets = secretNeedles({ kekDir: options.kekDir, secretsDir: options.secretsDir });
  const scanner = new LeakScanner({ identifiers: [...registry.identifiers, ...(options.identifiers ?? [])], secrets });
  const hits: LeakHit[] = [];
  let workflows = 0;
  const scan = async (source: string, history: History) => {
    hits.push(...(await scanHistory(scanner, source, history, options.codec)));
    workflows += 1;
  };
  for (const { source, history } of options.histories ?? []) await scan(source, history);
  let temporalServers = 0;
  const since = options.temporal?.since;
  const live = new Set<string>();
  if (options.temporal) {
    await scanLiveServer(options.temporal.address, options.temporal.namespace, since, scan);
    live.add(options.temporal.address);
    temporalServers += 1;
  }
  for (const server of registry.temporalServers) {
    if (live.has(server.address)) continue;
    if (await reachable(server)) {
      await scanLiveServer(server.address, server.namespace, since, scan);
      live.add(server.address);
      temporalServers += 1;
    } else if (server.preservedAt) {
      temporalServers += 1; // its histories are among the preserved files below
    } else {
      hits.push({
        source: `temporal server ${server.label} at ${server.address}`,
        kind: 'unscanned-temporal-server',
        count: 1,
      });
    }
  }
  for (const file of registry.historyFiles) {
    const record = JSON.parse(fs.readFileSync(file, 'utf8')) as { workflowId: string; runId: string; history: unknown };
    await scan(
      `workflow ${record.workflowId} run ${record.runId} (preserved in ${file})`,
      historyFromJSON(record.history),
    );
  }
  hits.push(...scanFiles(scanner, registry.files));
  return {
    hits,
    workflows,
    files: registry.files.length,
    identifiers: scanner.identifierCount,
    secrets: secrets.length,
    temporalServers,
  };
}

/** Why the run fails, or undefined when it passes: a hit, or histories scanned with nothing to look for. */
export function leakScanProblem(report: LeakScanReport): string | undefined {
  if (report.hits.length > 0) return `leak scan found ${report.hits.length} problem(s)`;
  if (report.workflows > 0 && report.identifiers === 0) {
    return (
      'leak scan looked for nothing: tests ran workflows but registered no synthetic identifier ' +
      '(start sandboxes with startTestSandbox, or call recordSandboxIdentifiers)'
    );
  }
  return undefined;
}

async function reachable(server: RegisteredTemporalServer): Promise<boolean> {
  try {
    const connection = await Connection.connect({ address: server.address, connectTimeout: 3_000 });
    try {
      await connection.workflowService.getSystemInfo({});
      return true;
    } finally {
      await connection.close();
    }
  } catch {
    return false;
  }
}

async function scanLiveServer(
  address: string,
  namespace: string,
  since: Date | undefined,
  scan: (source: string, history: History) => Promise<void>,
): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection, namespace });
    const query = since ? `StartTime >= "${since.toISOString()}"` : undefined;
    for await (const execution of client.workflow.list(query ? { query } : {})) {
      const history = await client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
      await scan(`workflow ${execution.workflowId} run ${execution.runId}`, history);
    }
  } finally {
    await connection.close();
  }
}
