/**
 * Test-only workflow: probes one integration's vendor in waves of concurrent activities, with a
 * durable pause between waves. Loaded by test/integration/token-fanout.test.ts through `workflowsPath`.
 * A failed probe is not retried, so the vendor sees exactly one request per probe.
 */
import { proxyActivities, sleep } from '@temporalio/workflow';
import type { VendorProbeActivities } from '../vendor-probe-activities.js';

const { probeVendor } = proxyActivities<VendorProbeActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 1 },
});

export interface ProbeWavesInput {
  tenantId: string;
  integrationId: string;
  /** Probes per wave; every probe of a wave is scheduled at once. */
  waves: number[];
  pauseBetweenWavesMs: number;
}

export interface ProbeWaveResult {
  /** Probes per HTTP status. */
  statuses: Record<string, number>;
}

export async function probeWaves(input: ProbeWavesInput): Promise<ProbeWaveResult[]> {
  const results: ProbeWaveResult[] = [];
  for (const [i, size] of input.waves.entries()) {
    if (i > 0) await sleep(input.pauseBetweenWavesMs);
    const probes = await Promise.all(
      Array.from({ length: size }, () => probeVendor({ tenantId: input.tenantId, integrationId: input.integrationId })),
    );
    const statuses: Record<string, number> = {};
    for (const p of probes) statuses[p.status] = (statuses[p.status] ?? 0) + 1;
    results.push({ statuses });
  }
  return results;
}
