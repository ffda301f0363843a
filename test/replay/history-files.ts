/**
 * What every history recorder does last: check a recorded history for the sandbox's synthetic
 * identifiers (refusing to write one that leaks) and write it as JSON under histories/.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { temporal } from '@temporalio/proto';
import type { SandboxHandle } from '../../sandbox/index.js';
import { findLeaks, historyText } from '../security/leak-scan.js';

const outDir = path.join(__dirname, 'histories');

export async function sandboxIdentifiers(sandbox: SandboxHandle): Promise<string[]> {
  const res = await fetch(`${sandbox.url}/admin/identifiers`, { headers: { 'x-sandbox-admin': sandbox.adminToken } });
  return ((await res.json()) as { strings: string[] }).strings;
}

export async function writeHistory(name: string, handle: WorkflowHandle, identifiers: readonly string[]): Promise<void> {
  const history = await handle.fetchHistory();
  const leaks = findLeaks(historyText(history), [...identifiers]);
  if (leaks.length > 0) throw new Error(`history ${name} contains ${leaks.length} synthetic identifiers; not written`);
  fs.writeFileSync(path.join(outDir, `${name}.json`), `${historyToJSON(temporal.api.history.v1.History.create(history))}\n`);
  process.stdout.write(`wrote ${name}.json (${history.events?.length} events)\n`);
}
