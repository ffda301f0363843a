/**
 * Three vendor personalities at once (issue 4): Epic and Oracle Health sync at full speed while
 * eClinicalWorks, limited to 250 requests/min per base URL (fixed window, 429 without Retry-After),
 * syncs beside them. Prints, as medians over BENCH_VENDOR_RUNS runs:
 *   - the limited vendor's busiest 60-second window of FHIR requests (from the sandbox's request
 *     ledger) against its limit, and the 429s it had to answer;
 *   - the other vendors' sync time alone (the floor, same run) and alongside the limited one.
 * Runs on its own (`npm run bench:sync:vendors`) and at the end of `npm run bench:sync`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { registerIntegration } from '../lib/integrations/registration.js';
import { startSync, syncResult } from '../client/sync-client.js';
import { median } from '../dev/ephemeral.js';
import type { Pool } from '../lib/store/pool.js';
import { createTenant } from '../lib/store/tenants.js';
import { activityRatePerSecond } from '../lib/vendors/profiles/adapters.js';
import { profileFor } from '../lib/vendors/profiles/index.js';
import { startSandbox, type LedgerEntry, type SandboxHandle } from '../sandbox/index.js';
import type { PersonalityId } from '../sandbox/personalities.js';

const RUNS = Number(process.env.BENCH_VENDOR_RUNS ?? 3);
/** Enough eCW pages (at page size 100) to keep it throttled for over a minute. */
const LIMITED_SIZE = Number(process.env.BENCH_VENDOR_LIMITED_SIZE ?? 30_000);
const FREE_SIZE = Number(process.env.BENCH_VENDOR_SIZE ?? 20_000);
const actor = { actor: 'bench:sync-vendors', correlationId: randomUUID() };

interface Setup {
  pool: Pool;
  client: Client;
  taskQueue: string;
  secretsDir: string;
}

/** The most requests that arrived within any 60-second window. */
function busiestMinute(entries: LedgerEntry[]): number {
  const times = entries.map((e) => e.atMs).sort((a, b) => a - b);
  let best = 0;
  for (let start = 0, end = 0; start < times.length; start++) {
    while (end < times.length && times[end]! < times[start]! + 60_000) end++;
    best = Math.max(best, end - start);
  }
  return best;
}

export async function threeVendorBench(setup: Setup, log: (line: string) => void): Promise<void> {
  const limitedProfile = profileFor('eclinicalworks');
  const limit = limitedProfile.rateLimit.value!;
  log(
    `\nthree vendors at once — eClinicalWorks (${limit.requests}/${limit.perSeconds}s, ` +
      `${LIMITED_SIZE} resources; ` +
      `connector paces its endpoint queue at ${activityRatePerSecond(limitedProfile)!.toFixed(2)} ` +
      `pages/s) beside Epic and Oracle Health (${FREE_SIZE} resources each), ${RUNS} runs`,
  );
  const tenantId = `bench-vendors-${Date.now().toString(36)}`;
  await createTenant(setup.pool, { id: tenantId, name: 'Benchmark Vendors Clinic (synthetic)' }, actor);
  const sandboxes: Partial<Record<PersonalityId, SandboxHandle>> = {};
  let n = 0;
  const register = async (vendor: 'epic' | 'oracle-health' | 'eclinicalworks'): Promise<string> => {
    const sandbox = sandboxes[vendor]!;
    const id = `${tenantId}-${vendor}-${++n}`;
    let clientSecretRef: string | undefined;
    if (vendor === 'oracle-health') {
      const file = path.join(setup.secretsDir, `${id}.client-secret`);
      fs.writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600 });
      clientSecretRef = `file:${file}`;
    }
    await registerIntegration(
      setup.pool,
      {
        id,
        tenantId,
        vendor,
        baseUrl: sandbox.fhirBaseUrl,
        secretsDir: setup.secretsDir,
        sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
        ...(clientSecretRef ? { clientSecretRef } : {}),
      },
      actor,
    );
    return id;
  };
  const timedSync = async (
    vendor: 'epic' | 'oracle-health' | 'eclinicalworks',
    integrationId: string,
  ): Promise<{ seconds: number; fetched: number }> => {
    const started = performance.now();
    const report = await syncResult(
      await startSync(setup.client, setup.taskQueue, { tenantId, integrationId, vendor }, { full: true }),
    );
    if (report.outcome !== 'completed') throw new Error(`${vendor} sync ended ${report.outcome}`);
    return { seconds: (performance.now() - started) / 1000, fetched: report.totals.fetched };
  };

  try {
    sandboxes.epic = await startSandbox({ seed: 11, size: FREE_SIZE, personality: 'epic' });
    sandboxes['oracle-health'] = await startSandbox({ seed: 12, size: FREE_SIZE, personality: 'oracle-health' });
    const alone: Record<'epic' | 'oracle-health', number[]> = { epic: [], 'oracle-health': [] };
    const beside: Record<'epic' | 'oracle-health', number[]> = { epic: [], 'oracle-health': [] };
    const windows: number[] = [];
    const throttled: number[] = [];
    const limitedSeconds: number[] = [];
    for (let run = 1; run <= RUNS; run++) {
      // A fresh eCW sandbox per run: its ledger and its fixed window start empty.
      await sandboxes.eclinicalworks?.close();
      sandboxes.eclinicalworks = await startSandbox({ seed: 13, size: LIMITED_SIZE, personality: 'eclinicalworks' });
      for (const vendor of ['epic', 'oracle-health'] as const)
        alone[vendor].push((await timedSync(vendor, await register(vendor))).seconds);

      const limitedId = await register('eclinicalworks');
      const freeIds = { epic: await register('epic'), 'oracle-health': await register('oracle-health') };
      const limitedRun = timedSync('eclinicalworks', limitedId);
      for (const vendor of ['epic', 'oracle-health'] as const)
        beside[vendor].push((await timedSync(vendor, freeIds[vendor])).seconds);
      const limited = await limitedRun;
      const entries = sandboxes.eclinicalworks.ledger();
      windows.push(busiestMinute(entries));
      throttled.push(entries.filter((e) => e.status === 429).length);
      limitedSeconds.push(limited.seconds);
      log(
        `run ${run}: eCW ${limited.fetched} resources in ${limited.seconds.toFixed(1)} s, ` +
          `busiest minute ${windows.at(-1)} requests (limit ${limit.requests}), 429s ${throttled.at(-1)}; ` +
          `Epic alone ${alone.epic.at(-1)!.toFixed(2)} s / beside ${beside.epic.at(-1)!.toFixed(2)} s; ` +
          `Oracle alone ${alone['oracle-health'].at(-1)!.toFixed(2)} s / ` +
          `beside ${beside['oracle-health'].at(-1)!.toFixed(2)} s`,
      );
    }
    log('results (medians)');
    log(
      `  eClinicalWorks busiest 60 s window: ` +
        `${median(windows)} FHIR requests (limit ${limit.requests}; ` +
        `${median(windows) <= limit.requests ? 'within' : 'OVER'}), 429s answered: ` +
        `${median(throttled)}, sync time ${median(limitedSeconds).toFixed(1)} s`,
    );
    for (const vendor of ['epic', 'oracle-health'] as const) {
      const slowdown = (median(beside[vendor]) / median(alone[vendor]) - 1) * 100;
      log(
        `  ${vendor.padEnd(13)} alone ${median(alone[vendor]).toFixed(2)} s (floor), ` +
          `beside the limited vendor ${median(beside[vendor]).toFixed(2)} s ` +
          `(${slowdown >= 0 ? '+' : ''}${slowdown.toFixed(0)} %)`,
      );
    }
  } finally {
    for (const sandbox of Object.values(sandboxes)) await sandbox?.close();
  }
}
