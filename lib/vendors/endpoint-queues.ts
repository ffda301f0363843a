/**
 * A request rate per vendor endpoint that holds across every worker: each rate-limited endpoint (a
 * vendor with a published limit, at one base URL) gets its own activity task queue, and the workers
 * serving it set `maxTaskQueueActivitiesPerSecond`, which the Temporal server enforces for all
 * pollers together. One page activity makes one vendor request (a 401 retry is the only second one,
 * and the rate keeps 10 % headroom for it and for token requests), so activities per second is
 * requests per second.
 *
 * Queue names read well in the Web UI: `<main queue>-vendor-<vendor>-<12 hex of origin+path>`. The
 * main queue prefix keeps deployments (and test runs) sharing a namespace apart.
 */
import { createHash } from 'node:crypto';
import { PROFILES } from './profiles/index.js';
import { activityRatePerSecond } from './profiles/adapters.js';
import type { RateLimit, VendorProfile } from './profiles/types.js';
import { isVendorId } from './profiles/types.js';

/** Per-vendor replacement of the published limit (config EHR_VENDOR_RATE_LIMITS). */
export type RateOverrides = ReadonlyMap<string, { requests: number; perSeconds: number }>;

/** What a worker needs to route and serve endpoint queues. */
export interface EndpointQueuePolicy {
  /** The deployment's main task queue (config TEMPORAL_TASK_QUEUE): the prefix of every endpoint queue. */
  mainTaskQueue: string;
  overrides: RateOverrides;
}

export interface EndpointQueue {
  taskQueue: string;
  vendor: string;
  /** origin + path of the base URL (no query, no trailing slash). */
  endpoint: string;
  activitiesPerSecond: number;
}

/** Parses `vendor=requests/seconds[,…]`; the config schema has already checked the syntax. */
export function parseRateOverrides(text: string | undefined): RateOverrides {
  const map = new Map<string, { requests: number; perSeconds: number }>();
  for (const item of (text ?? '').split(',').filter(Boolean)) {
    const m = /^([a-z][a-z0-9-]*)=(\d+)\/(\d+)$/.exec(item.trim());
    if (!m) continue;
    const requests = Number(m[2]);
    const perSeconds = Number(m[3]);
    if (requests > 0 && perSeconds > 0) map.set(m[1]!, { requests, perSeconds });
  }
  return map;
}

export function endpointOf(baseUrl: string): string {
  const url = new URL(baseUrl);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

export function endpointQueueName(mainTaskQueue: string, vendor: string, baseUrl: string): string {
  const hash = createHash('sha256').update(endpointOf(baseUrl), 'utf8').digest('hex').slice(0, 12);
  return `${mainTaskQueue}-vendor-${vendor}-${hash}`;
}

/** The profile with its limit replaced by an override (a vendor without a published limit gets a sliding one). */
function effectiveProfile(
  profile: VendorProfile,
  override: { requests: number; perSeconds: number } | undefined,
): VendorProfile {
  if (!override) return profile;
  const base: RateLimit = profile.rateLimit.value ?? {
    requests: 0,
    perSeconds: 1,
    scope: 'base-url',
    window: 'sliding',
    retryAfter: true,
  };
  return { ...profile, rateLimit: { ...profile.rateLimit, value: { ...base, ...override } } };
}

/** The queue for an integration's vendor endpoint, or undefined when its vendor has no limit. */
export function endpointQueueFor(
  policy: EndpointQueuePolicy,
  integration: { vendor: string; baseUrl: string },
): EndpointQueue | undefined {
  if (!isVendorId(integration.vendor)) return undefined;
  const rate = activityRatePerSecond(
    effectiveProfile(PROFILES[integration.vendor], policy.overrides.get(integration.vendor)),
  );
  if (rate === undefined || rate <= 0) return undefined;
  return {
    taskQueue: endpointQueueName(policy.mainTaskQueue, integration.vendor, integration.baseUrl),
    vendor: integration.vendor,
    endpoint: endpointOf(integration.baseUrl),
    activitiesPerSecond: rate,
  };
}

/** One queue per distinct rate-limited endpoint among the integrations. */
export function endpointQueuesFor(
  policy: EndpointQueuePolicy,
  integrations: ReadonlyArray<{ vendor: string; baseUrl: string }>,
): EndpointQueue[] {
  const queues = new Map<string, EndpointQueue>();
  for (const i of integrations) {
    const q = endpointQueueFor(policy, i);
    if (q && !queues.has(q.taskQueue)) queues.set(q.taskQueue, q);
  }
  return [...queues.values()];
}
