/**
 * Last vitest global setup (listed after test/global-setup.ts, so its teardown runs FIRST, while
 * Temporal is still up): the end-of-run leak scan (DESIGN §4 invariants 1 and 11).
 *
 * The run's leak registry (test/security/leak-registry.ts) is created by the first global setup
 * (test/leak-scan-verdict.ts) and exported as EHR_LEAK_REGISTRY_DIR before anything starts, so every
 * test process inherits it. Tests record the sandbox's synthetic identifying strings there, write
 * their logs and error outputs there, and register every other Temporal server they start
 * (test/security/scanned-temporal.ts). Teardown lists every workflow started during the run on the
 * run's Temporal server and on every registered one (or reads the histories preserved before such a
 * server stopped), decodes each history (through the payload codec named by
 * EHR_LEAK_SCAN_CODEC_MODULE, when set), and scans histories, logs and error outputs for those
 * identifiers and for secret material (PEM private keys, the test KEK files' contents, the secrets
 * dir's private keys, JWTs). One hit fails the run (through test/leak-scan-verdict.ts, after the
 * servers have stopped); so does a registered server it could not scan, and histories scanned with
 * no identifier registered (a scan that looked for nothing). The message names the workflow or file
 * and the KIND of hit, never the hit.
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
import { LEAK_REGISTRY_ENV, initLeakRegistry, leakRegistryDir } from './security/leak-registry.js';
import { describeHits } from './security/leak-scan.js';
import { leakScanProblem, runLeakScan } from './security/leak-scan-run.js';

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

export async function loadScanCodec(
  modulePath: string | undefined,
  infra: TestInfra,
): Promise<PayloadCodec | undefined> {
  if (!modulePath) return undefined;
  const resolved = path.isAbsolute(modulePath) ? modulePath : path.resolve(__dirname, '..', modulePath);
  const mod = (await import(resolved)) as {
    createLeakScanCodec?: CodecFactory;
    default?: CodecFactory | { createLeakScanCodec?: CodecFactory };
  };
  const factory =
    mod.createLeakScanCodec ?? (typeof mod.default === 'function' ? mod.default : mod.default?.createLeakScanCodec);
  if (typeof factory !== 'function')
    throw new Error(`${CODEC_MODULE_ENV}=${modulePath} exports no createLeakScanCodec(infra)`);
  return factory(infra);
}

/**
 * Creates the run's registry and exports it (called by the FIRST global setup, test/leak-scan-verdict.ts,
 * so the other global setups can register their servers and logs, and before the pool forks its
 * workers: they inherit the main process's environment).
 */
export function createRunLeakRegistry(): string {
  const dir = initLeakRegistry(fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-leak-')));
  fs.chmodSync(dir, 0o700);
  process.env[LEAK_REGISTRY_ENV] = dir;
  return dir;
}

export default function setup(project: TestProject): () => Promise<void> {
  const since = new Date(Date.now() - 5_000);
  const registered = leakRegistryDir();
  if (!registered)
    throw new Error(`${LEAK_REGISTRY_ENV} is not set: test/leak-scan-verdict.ts must be the first globalSetup`);
  const dir: string = registered;

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
      temporal: infra.temporalAddress
        ? { address: infra.temporalAddress, namespace: infra.namespace || 'default', since }
        : undefined,
      kekDir: infra.kekDir || undefined,
      secretsDir: infra.secretsDir || undefined,
      codec,
    });
    const summary =
      `${report.workflows} workflow histories of ${report.temporalServers} Temporal server(s), ` +
      `${report.files} log/error files; ` +
      `${report.identifiers} synthetic identifiers, ${report.secrets} secret needles${codec ? ', payload codec' : ''}`;
    const problem = leakScanProblem(report);
    if (problem) {
      log(`registry kept for inspection at ${dir}`);
      throw new Error(`${problem} in ${summary}${report.hits.length > 0 ? `:\n${describeHits(report.hits)}` : ''}`);
    }
    log(`clean: ${summary} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if (!process.env.EHR_TEST_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
  }
}
