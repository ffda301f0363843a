/**
 * Second vitest global setup (listed after test/global-setup.ts, so its teardown runs FIRST, while
 * Temporal is still up): the end-of-run leak scan (DESIGN §4 invariants 1 and 11).
 *
 * Setup creates the run's leak registry (test/security/leak-registry.ts) and exports its path as
 * EHR_LEAK_REGISTRY_DIR before any test worker starts, so every test process inherits it. Tests
 * record the sandbox's synthetic identifying strings there and write their logs and error outputs
 * there. Teardown lists every workflow started on the test Temporal server during the run, fetches
 * and decodes each history (through the payload codec named by EHR_LEAK_SCAN_CODEC_MODULE, when
 * set), and scans histories, logs and error outputs for those identifiers and for secret material
 * (PEM private keys, the test KEK files' contents, the secrets dir's private keys, JWTs). One hit
 * fails the run (through test/leak-scan-verdict.ts, after the servers have stopped); the message
 * names the workflow or file and the KIND of hit, never the hit.
 *
 * EHR_LEAK_SCAN_CODEC_MODULE: a module exporting `createLeakScanCodec(infra)` (or a default export
 * of the same shape) returning a PayloadCodec; `infra` is the provided TestInfra.
 * EHR_LEAK_SCAN=off skips the scan (printed). EHR_TEST_KEEP_TMP keeps the registry directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PayloadCodec } from '@temporalio/common';
import type { TestProject } from 'vitest/node';
import type { TestInfra } from './harness.js';
import { LEAK_REGISTRY_ENV, initLeakRegistry } from './security/leak-registry.js';
import { describeHits, runLeakScan } from './security/leak-scan.js';

const log = (line: string) => console.log(`[leak-scan] ${line}`);

export const CODEC_MODULE_ENV = 'EHR_LEAK_SCAN_CODEC_MODULE';

// The verdict is handed to test/leak-scan-verdict.ts (whose teardown runs last) through a global:
// both modules run in vitest's main process, but may be loaded as separate module instances.
const VERDICT = Symbol.for('ehr-connectors.leak-scan.verdict');
type VerdictHolder = { [VERDICT]?: Error };

export function takeLeakScanVerdict(): Error | undefined {
  const holder = globalThis as VerdictHolder;
  const verdict = holder[VERDICT];
  delete holder[VERDICT];
  return verdict;
}

type CodecFactory = (infra: TestInfra) => PayloadCodec | Promise<PayloadCodec>;

export async function loadScanCodec(modulePath: string | undefined, infra: TestInfra): Promise<PayloadCodec | undefined> {
  if (!modulePath) return undefined;
  const resolved = path.isAbsolute(modulePath) ? modulePath : path.resolve(__dirname, '..', modulePath);
  const mod = (await import(resolved)) as { createLeakScanCodec?: CodecFactory; default?: CodecFactory | { createLeakScanCodec?: CodecFactory } };
  const factory =
    mod.createLeakScanCodec ?? (typeof mod.default === 'function' ? mod.default : mod.default?.createLeakScanCodec);
  if (typeof factory !== 'function') throw new Error(`${CODEC_MODULE_ENV}=${modulePath} exports no createLeakScanCodec(infra)`);
  return factory(infra);
}

export default function setup(project: TestProject): () => Promise<void> {
  const since = new Date(Date.now() - 5_000);
  const dir = initLeakRegistry(fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-leak-')));
  fs.chmodSync(dir, 0o700);
  // Set before the pool forks its workers: they inherit the main process's environment.
  process.env[LEAK_REGISTRY_ENV] = dir;

  return async () => {
    try {
      await scan();
    } catch (err) {
      (globalThis as VerdictHolder)[VERDICT] = err instanceof Error ? err : new Error(String(err));
      log(`FAILED: ${(globalThis as VerdictHolder)[VERDICT]!.message.split('\n')[0]}`);
    }
  };

  async function scan(): Promise<void> {
    if (process.env.EHR_LEAK_SCAN === 'off') {
      log('SKIPPED (EHR_LEAK_SCAN=off): histories, logs and error outputs of this run were NOT scanned');
      return;
    }
    const t0 = Date.now();
    const infra = project.getProvidedContext() as Partial<TestInfra>;
    const codec = await loadScanCodec(process.env[CODEC_MODULE_ENV], infra as TestInfra);
    const report = await runLeakScan({
      registryDir: dir,
      temporal: infra.temporalAddress ? { address: infra.temporalAddress, namespace: infra.namespace || 'default', since } : undefined,
      kekDir: infra.kekDir || undefined,
      secretsDir: infra.secretsDir || undefined,
      codec,
    });
    const summary =
      `${report.workflows} workflow histories, ${report.files} log/error files; ` +
      `${report.identifiers} synthetic identifiers, ${report.secrets} secret needles${codec ? ', payload codec' : ''}`;
    if (report.identifiers === 0) log('warning: no sandbox identifiers were registered (recordSandboxIdentifiers); only secret material was looked for');
    if (report.hits.length > 0) {
      log(`registry kept for inspection at ${dir}`);
      throw new Error(`leak scan found ${report.hits.length} leak(s) in ${summary}:\n${describeHits(report.hits)}`);
    }
    log(`clean: ${summary} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if (!process.env.EHR_TEST_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
  }
}
