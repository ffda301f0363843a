/**
 * Temporal servers a test starts besides the run's own (the Web UI test's, a dev stack's) are part
 * of the end-of-run leak scan like the main one: registered when they start, and — since they stop
 * before the scan runs — their histories copied into the leak registry before they stop. Their log
 * files go to the registry too. The scan fails on a registered server it can neither reach nor find
 * preserved histories of (test/security/leak-scan.ts); test/security/leak-scan-coverage.test.ts
 * fails on a test file that starts a Temporal server without this module.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import { startTemporalDevServer } from '../../dev/temporal-server.js';
import type { TemporalDevServer, TemporalDevServerOptions } from '../../dev/temporal-server.js';
import {
  leakLogFile,
  leakRegistryDir,
  markTemporalServerPreserved,
  preservedHistoryDir,
  registerLogFile,
  registerTemporalServer,
} from './leak-registry.js';

export interface ScannedTemporal {
  /** Copies every workflow history of the server into the leak registry (call before it stops). */
  preserve(): Promise<number>;
}

/** Registers a running server (one the test did not start itself, e.g. a dev stack's) for the scan. */
export function scanTemporalServer(
  server: { label: string; address: string; namespace: string },
  dir = leakRegistryDir(),
): ScannedTemporal {
  const id = registerTemporalServer(server, dir);
  return {
    async preserve() {
      if (!dir || !id) return 0;
      const count = await copyHistories(server.address, server.namespace, preservedHistoryDir(id, dir));
      markTemporalServerPreserved(id, dir);
      return count;
    },
  };
}

/** startTemporalDevServer, registered for the scan, logging into the registry, preserving its histories on stop. */
export async function startScannedTemporalDevServer(
  options: TemporalDevServerOptions & { label: string },
): Promise<TemporalDevServer> {
  const { label, ...serverOptions } = options;
  const logFile = serverOptions.logFile ?? leakLogFile(`temporal-${label}`);
  if (serverOptions.logFile) registerLogFile(serverOptions.logFile);
  const server = await startTemporalDevServer({ ...serverOptions, logFile });
  const scanned = scanTemporalServer({ label, address: server.address, namespace: server.namespace });
  return {
    ...server,
    async stop() {
      try {
        await scanned.preserve();
      } finally {
        await server.stop();
      }
    },
  };
}

/** Copies log files (e.g. a dev stack's logs directory, before it is deleted) into the registry's logs. */
export function preserveLogFiles(files: readonly string[], label: string): void {
  for (const file of files) {
    if (!fs.existsSync(file) || !fs.statSync(file).isFile()) continue;
    const copy = leakLogFile(`${label}-${path.basename(file)}`);
    fs.copyFileSync(file, copy);
    fs.chmodSync(copy, 0o600);
  }
}

async function copyHistories(address: string, namespace: string, into: string): Promise<number> {
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection, namespace });
    let n = 0;
    for await (const execution of client.workflow.list()) {
      const history = await client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
      const file = path.join(into, `${(n += 1)}.json`);
      const record = {
        workflowId: execution.workflowId,
        runId: execution.runId,
        history: JSON.parse(historyToJSON(history as temporal.api.history.v1.History)) as unknown,
      };
      fs.writeFileSync(file, JSON.stringify(record), { mode: 0o600 });
    }
    return n;
  } finally {
    await connection.close();
  }
}
